"""The domain errors every layer speaks.

Backends turn their library's errors into these; the catalog turns database errors into
these; front ends turn these into S3 XML errors, ``DAVError`` or JSON problems. Each error
carries a stable ``code`` (used in logs, the admin API and tests) and, for the front ends, a
default HTTP status. The class docstring is the message template, as in borg's
``helpers/errors.py``: ``str(error)`` is the docstring formatted with the arguments.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CoolStorageError(Exception):
    """Error: {0}"""

    code: ClassVar[str] = "InternalError"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, *args: Any, **details: Any) -> None:
        super().__init__(*args)
        self.details = details

    def __str__(self) -> str:
        template = (type(self).__doc__ or "{0}").strip().splitlines()[0]
        try:
            return template.format(*self.args, **self.details)
        except (IndexError, KeyError):
            return " ".join(str(a) for a in self.args) or template


class ConfigError(CoolStorageError):
    """{0}"""

    code = "ConfigError"


class NotFound(CoolStorageError):
    """Not found: {0}"""

    code = "NotFound"
    http_status = 404


class BucketNotFound(NotFound):
    """No such bucket: {0}"""

    code = "NoSuchBucket"


class ObjectNotFound(NotFound):
    """No such object: {0}"""

    code = "NoSuchKey"


class BlobNotFound(NotFound):
    """The backend has no blob {0}"""

    code = "BlobNotFound"


class AlreadyExists(CoolStorageError):
    """Already exists: {0}"""

    code = "AlreadyExists"
    http_status = 409


class BucketNotEmpty(CoolStorageError):
    """Bucket {0} is not empty"""

    code = "BucketNotEmpty"
    http_status = 409


class InvalidArgument(CoolStorageError):
    """Invalid argument: {0}"""

    code = "InvalidArgument"
    http_status = 400


class InvalidName(InvalidArgument):
    """Invalid name: {0}"""

    code = "InvalidName"


class InvalidRange(CoolStorageError):
    """The range {0} is not satisfiable for an object of {1} bytes"""

    code = "InvalidRange"
    http_status = 416


class PreconditionFailed(CoolStorageError):
    """Precondition failed: {0}"""

    code = "PreconditionFailed"
    http_status = 412


class AccessDenied(CoolStorageError):
    """Access denied: {0}"""

    code = "AccessDenied"
    http_status = 403


class QuotaExceeded(CoolStorageError):
    """The write would exceed the quota of org {0}"""

    code = "QuotaExceeded"
    http_status = 403


class ObjectArchived(CoolStorageError):
    """{0} is archived in {1}; restore it before reading"""

    code = "InvalidObjectState"
    http_status = 403


class RestoreInProgress(CoolStorageError):
    """A restore of {0} is already in progress"""

    code = "RestoreAlreadyInProgress"
    http_status = 409


class VaultSealed(CoolStorageError):
    """{0} is sealed to its owner's key; the gateway cannot read it"""

    code = "VaultSealed"
    http_status = 403


class IntegrityError(CoolStorageError):
    """Integrity check failed: {0}"""

    code = "IntegrityError"
    http_status = 500


class BackendError(CoolStorageError):
    """Storage backend error: {0}"""

    code = "BackendError"
    http_status = 503

    def __init__(self, *args: Any, retryable: bool = False, **details: Any) -> None:
        super().__init__(*args, **details)
        self.retryable = retryable  # type: ignore[misc]


class CatalogError(CoolStorageError):
    """Catalog error: {0}"""

    code = "CatalogError"
    http_status = 503
    retryable = True


class NotArchived(CoolStorageError):
    """{0} is not archived; it can be read without a restore"""

    code = "InvalidObjectState"
    http_status = 403


class BadDigest(CoolStorageError):
    """The {0} of the body does not match the one the client declared"""

    code = "BadDigest"
    http_status = 400


class RestoreBudgetExceeded(AccessDenied):
    """The restore would cost {0} USD; org {1} has {2} USD left of its monthly restore budget of {3} USD"""

    # An AccessDenied, so a front end that knows no better refuses it with 403 and this
    # message (S3 has no budget error of its own).

    code = "RestoreBudgetExceeded"
    http_status = 403
