"""Assembly of the WebDAV WSGI app: wsgidav, the provider, locks, auth, error handling.

The middleware stack, outermost first:

1. :class:`~protocols.webdav.errors.ErrorGuard`: anything that goes wrong becomes a short
   response (never a traceback);
2. :class:`~protocols.webdav.auth.BasicAuthenticator` with the gateway's domain
   controller: HTTP Basic, nothing anonymous;
3. wsgidav's directory browser (an HTML listing for web browsers; ``webdav.dir_browser``);
4. wsgidav's request resolver, which runs the method handlers over
   :class:`~protocols.webdav.provider.CoolStorageProvider`.

Locks go to the catalog through :class:`~protocols.webdav.locks.CatalogLockManager`;
dead properties are handled by the provider itself (wsgidav's property manager is off).
The outermost wrapper also refuses request paths that are not UTF-8, which wsgidav would
fail on before any middleware runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from wsgidav.dir_browser import WsgiDavDirBrowser
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from gateway.config import WebdavConfig
from gateway.request_line import DecodedPath
from protocols.webdav.auth import (
    CONTEXT_KEY,
    BasicAuthenticator,
    DavContext,
    GatewayDomainController,
)
from protocols.webdav.errors import ErrorGuard, TextDAVError, as_dav_error, error_response
from protocols.webdav.locks import CatalogLockManager, CatalogLockStorage
from protocols.webdav.provider import CoolStorageProvider

if TYPE_CHECKING:
    from catalog.api import Catalog
    from gateway.app import Gateway
    from gateway.identity import IdentityService
    from gateway.objects import ObjectService

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_webdav_app(gateway: Gateway) -> WSGIApp:
    """The WebDAV listener's WSGI app for an opened gateway."""
    return build_webdav_app(
        gateway.objects, gateway.catalog, gateway.identity, gateway.config.webdav
    )


def build_webdav_app(
    objects: ObjectService,
    catalog: Catalog,
    identity: IdentityService,
    settings: WebdavConfig,
) -> WSGIApp:
    """The WebDAV app from its parts (tests build it around their own services)."""
    # wsgidav logs every request at INFO and some client quirks at WARNING; the gateway's
    # access log already has a line per request.
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    provider = CoolStorageProvider(objects, catalog, settings)
    middleware: list[Any] = [ErrorGuard, BasicAuthenticator]
    if settings.dir_browser:
        middleware.append(WsgiDavDirBrowser)
    middleware.append(RequestResolver)
    config: dict[str, Any] = {
        "provider_mapping": {"/": provider},
        "http_authenticator": {
            "domain_controller": GatewayDomainController,
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
            "trusted_auth_header": None,
        },
        CONTEXT_KEY: DavContext(identity=identity, realm=settings.realm),
        "middleware_stack": middleware,
        "lock_storage": None,
        "property_manager": None,
        "block_size": settings.block_size,
        "verbose": 1,
        "logging": {"enable": False},
        "suppress_version_info": True,
        "add_header_MS_Author_Via": True,
        "hotfixes": {"re_encode_path_info": True, "unquote_path_info": False},
        "dir_browser": {
            "enable": settings.dir_browser,
            "response_trailer": "Cool Storage",
            "davmount": True,
            "davmount_links": False,
            "ms_sharepoint_support": False,
            "libre_office_support": False,
            "show_user": True,
        },
    }
    dav = WsgiDAVApp(config)
    storage = CatalogLockStorage(catalog, max_timeout=settings.lock_timeout_max)
    provider.set_lock_manager(CatalogLockManager(storage))
    # A fully decoded path: cheroot leaves %2F encoded (gateway/request_line.py).
    return DecodedPath(_Outer(dav))


class _Outer:
    """Refuse paths that are not UTF-8, and turn an error raised around wsgidav's own
    middleware (before :class:`ErrorGuard` runs) into a response."""

    def __init__(self, app: WsgiDAVApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterator[bytes]:
        try:
            environ["PATH_INFO"].encode("iso-8859-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            yield self._fail(
                TextDAVError(400, "the request path is not UTF-8"), environ, start_response
            )
            return
        started = False

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal started
            started = True
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        try:
            yield from self.app(environ, start)
        except Exception as error:
            if started:
                raise
            yield self._fail(as_dav_error(error), environ, start_response)

    @staticmethod
    def _fail(error: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> bytes:
        status, headers, body = error_response(error, environ)
        start_response(status, headers)
        return body
