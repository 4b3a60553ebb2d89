"""Storage backend plugins, found by name.

Plugins register in the ``coolstorage.backends`` entry point group (``pyproject.toml`` names
the two shipped ones), so a third party adds a backend by installing a package, as fsspec
does. The shipped plugins are also known here by dotted path, so a source checkout that was
never installed still finds them; an installed entry point of the same name wins.

Loading is lazy: importing this package imports no storage library. A plugin whose module
needs a missing package fails with a ``ConfigError`` that names the package and how to
install it, not with a bare ``ImportError`` from deep inside the config loader.

    backend = open_backend("default", {"type": "localfs", "root": "./var/blobs"})
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from gateway.errors import ConfigError

from .base import Backend, BlobInfo, Capability, RestoreStatus

__all__ = [
    "ENTRY_POINT_GROUP",
    "Backend",
    "BlobInfo",
    "Capability",
    "RestoreStatus",
    "known_plugins",
    "load_backend_class",
    "open_backend",
]

ENTRY_POINT_GROUP = "coolstorage.backends"

_BUILTIN: dict[str, str] = {
    "localfs": "tiering.backends.localfs:LocalFSBackend",
    "s3": "tiering.backends.s3:S3Backend",
}

#: The distribution to install for a missing top-level module (when the names differ).
_DISTRIBUTIONS: dict[str, str] = {"botocore": "boto3", "s3transfer": "boto3"}


def _plugin_paths() -> dict[str, str]:
    paths = dict(_BUILTIN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        paths[entry.name] = entry.value
    return paths


def known_plugins() -> list[str]:
    """Names of the plugins that can be asked for, sorted."""
    return sorted(_plugin_paths())


def load_backend_class(plugin: str) -> type[Backend]:
    """Import and return the :class:`Backend` subclass registered as ``plugin``.

    Raises ``ConfigError`` for an unknown name, for a plugin whose module needs a package
    that is not installed (naming it and the ``pip install`` that fixes it), and for an
    entry point that does not name a ``Backend`` subclass.
    """
    paths = _plugin_paths()
    if plugin not in paths:
        known = ", ".join(sorted(paths))
        raise ConfigError(f"unknown backend plugin {plugin!r} (known: {known})")
    module_name, _, attr = paths[plugin].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0] or "a dependency"
        package = _DISTRIBUTIONS.get(missing, missing)
        raise ConfigError(
            f"backend plugin {plugin!r} cannot load: the Python package {package!r} is not "
            f"installed (pip install {package}, or pip install coolstorage to get every "
            f"dependency)"
        ) from exc
    obj: Any = module
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part, None)
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        raise ConfigError(
            f"backend plugin {plugin!r} ({paths[plugin]}) does not name a Backend class"
        )
    return obj


def open_backend(name: str, options: Mapping[str, Any]) -> Backend:
    """Build the backend instance ``name`` from its config table.

    ``options["type"]`` names the plugin; the other keys are the plugin's own options,
    which its ``from_options`` validates (``ConfigError`` naming a bad option).
    """
    plugin = options.get("type")
    if not isinstance(plugin, str) or not plugin:
        known = ", ".join(known_plugins())
        raise ConfigError(f"backend {name!r} needs a 'type' (one of: {known})")
    cls = load_backend_class(plugin)
    rest = {key: value for key, value in options.items() if key != "type"}
    return cls.from_options(name, rest)
