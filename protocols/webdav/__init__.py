"""The WebDAV front end: a wsgidav provider over the ObjectService, served by cheroot.

``make_webdav_app(gateway)`` is the WebDAV listener's WSGI app (``gateway/server.py``).
See :mod:`protocols.webdav.paths` for the namespace, :mod:`protocols.webdav.provider` for
the methods, :mod:`protocols.webdav.locks` for the shared lock store and
:mod:`protocols.webdav.errors` for how failures reach clients.
"""

from protocols.webdav.app import build_webdav_app, make_webdav_app

__all__ = ["build_webdav_app", "make_webdav_app"]
