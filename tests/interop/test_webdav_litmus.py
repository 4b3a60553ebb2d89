"""The litmus WebDAV test suite (Debian package ``litmus``) against ``coolstorage serve``.

Each suite (basic, copymove, props, locks, http) runs on its own against a folder of a
bucket; the test parses litmus' summary line and requires 0 failures. Warnings are allowed
and reported as pytest warnings.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest

SUITES = ("basic", "copymove", "props", "locks", "http")
SUMMARY = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")
INSTALL_HINT = "litmus is needed for this test: apt-get install litmus"


@pytest.fixture(scope="module")
def litmus_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.fixtures.servers import launch_gateway

    if shutil.which("litmus") is None:
        pytest.fail(INSTALL_HINT)
    gateway = launch_gateway(tmp_path_factory.mktemp("litmus"), {"engine": {"enabled": False}})
    user, password = gateway.admin_auth
    org = gateway.first_admin["org"]
    with httpx.Client(base_url=gateway.webdav_url, auth=(user, password)) as client:
        assert client.request("MKCOL", f"/{org}/litmus-bucket/").status_code == 201
    yield f"{gateway.webdav_url}/{org}/litmus-bucket/", user, password, gateway
    gateway.stop()


@pytest.mark.parametrize("suite", SUITES)
def test_litmus_suite_passes(
    suite: str, litmus_url: Any, tmp_path: Any, record_property: Callable[[str, object], None]
) -> None:
    url, user, password, gateway = litmus_url
    done = subprocess.run(
        ["litmus", url, user, password],
        env={**os.environ, "TESTS": suite},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    output = done.stdout + done.stderr
    summary = SUMMARY.search(output)
    assert summary is not None, f"no litmus summary for {suite}:\n{output[-3000:]}"
    name, run, passed, failed = summary.group(1), *map(int, summary.groups()[1:])
    assert name == suite
    failures = [line for line in output.splitlines() if "FAIL" in line]
    assert failed == 0 and passed == run, (
        f"litmus {suite}: {failed} of {run} failed:\n"
        + "\n".join(failures)
        + f"\n(gateway log tail)\n{gateway.stderr[-2000:]}"
    )
    assert run >= 4
    notes = [line.strip() for line in output.splitlines() if "WARNING" in line]
    record_property(f"litmus_{suite}", f"{passed}/{run} passed, {len(notes)} warnings")
    for note in notes:
        warnings.warn(f"litmus {suite}: {note}", stacklevel=1)
