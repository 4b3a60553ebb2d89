"""Named crash points for the engine's crash tests.

The tests prove that killing the engine at any step of a transition loses and duplicates
nothing. They run ``coolstorage tier run --once`` with ``COOLSTORAGE_TEST_CRASH_AT=<name>``;
when the engine reaches the point of that name, it sends itself SIGKILL, so nothing is
cleaned up and no ``finally`` runs, exactly as if the machine lost power.

The variable is read once, at import. Only the engine's transition steps call
:func:`crash_point` (never the request path), and with the variable unset each call is one
comparison with None. Points (see tiering/transitions.py)::

    pack:after-intent    pack:after-put    pack:after-commit
    join:after-put       join:after-commit
    single:after-copy    single:after-commit
    rewrite:after-put    rewrite:after-commit
"""

from __future__ import annotations

import os
import signal

ENV = "COOLSTORAGE_TEST_CRASH_AT"

_TARGET: str | None = os.environ.get(ENV) or None


def crash_point(name: str) -> None:
    """Die at once (SIGKILL) if the crash tests asked for a crash at ``name``."""
    if _TARGET is not None and name == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
