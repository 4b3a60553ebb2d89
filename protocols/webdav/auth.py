"""HTTP Basic authentication of WebDAV requests against the gateway's users.

:class:`GatewayDomainController` is a wsgidav domain controller that checks a user name
and password with ``IdentityService.authenticate_password`` (local users, LDAP, with its
caching and throttling) and leaves the principal in ``environ["coolstorage.principal"]``
for the provider. Nothing is readable anonymously; a request without valid credentials
gets 401 with ``WWW-Authenticate: Basic realm="<webdav.realm>"``. Digest authentication
is not offered: it would need the password in clear on the server side.

:class:`BasicAuthenticator` is wsgidav's ``HTTPAuthenticator`` with a stricter parser: a
malformed ``Authorization`` header (bad base64, no colon, not UTF-8) is a 401, not a 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.http_authenticator import HTTPAuthenticator

from gateway.errors import AccessDenied, CoolStorageError
from protocols.webdav.errors import TextDAVError, dav_error
from protocols.webdav.provider import PRINCIPAL_KEY

if TYPE_CHECKING:
    from gateway.identity import IdentityService

#: Key of the wsgidav config holding the :class:`DavContext`.
CONTEXT_KEY = "coolstorage"


@dataclass(frozen=True)
class DavContext:
    """What the domain controller needs, passed through wsgidav's config."""

    identity: IdentityService
    realm: str


class GatewayDomainController(BaseDomainController):
    """Basic authentication against the gateway's identity service."""

    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        context = config[CONTEXT_KEY]
        assert isinstance(context, DavContext)
        self.identity = context.identity
        self.realm = context.realm

    def __str__(self) -> str:
        return "GatewayDomainController()"

    def get_domain_realm(self, path_info: str, environ: dict[str, Any] | None) -> str:
        return self.realm

    def require_authentication(self, realm: str, environ: dict[str, Any] | None) -> bool:
        return True

    def basic_auth_user(
        self, realm: str, user_name: str, password: str, environ: dict[str, Any]
    ) -> bool:
        try:
            principal = self.identity.authenticate_password(
                user_name, password, client=environ.get("REMOTE_ADDR")
            )
        except AccessDenied as error:
            retry_after = getattr(error, "retry_after", None)
            if isinstance(retry_after, int):
                # Too many failed logins: a 401 would only make the client ask again.
                raise TextDAVError(
                    429, str(error), headers=[("Retry-After", str(retry_after))]
                ) from None
            return False
        except CoolStorageError as error:
            # The catalog or the directory is unreachable: not the user's fault.
            raise dav_error(error) from None
        environ[PRINCIPAL_KEY] = principal
        return True

    def supports_http_digest_auth(self) -> bool:
        return False


class BasicAuthenticator(HTTPAuthenticator):
    """wsgidav's authenticator; a malformed Basic header is refused with 401."""

    def handle_basic_auth_request(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        try:
            decoded = base64.b64decode(header[len("Basic ") :].strip(), validate=True)
            user_name, password = decoded.decode("utf-8").split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return self.send_basic_auth_response(environ, start_response)
        realm = self.domain_controller.get_domain_realm(environ["PATH_INFO"], environ)
        if user_name and self.domain_controller.basic_auth_user(
            realm, user_name, password, environ
        ):
            environ["wsgidav.auth.realm"] = realm
            # The principal's own name, however the user typed it (LDAP ignores case):
            # locks belong to this name.
            environ["wsgidav.auth.user_name"] = environ[PRINCIPAL_KEY].name
            result: Iterable[bytes] = self.next_app(environ, start_response)
            return result
        return self.send_basic_auth_response(environ, start_response)
