"""Keys: age X25519 identities and recipients, SSE-C keys, and the operator's master key.

- An X25519 *identity* is 32 random bytes, written as Bech32 with the ``AGE-SECRET-KEY-``
  prefix; its *recipient* is the public key, written as Bech32 with the ``age`` prefix. These
  are exactly the strings ``age-keygen`` prints and the ``age`` CLI accepts.
- An S3 SSE-C customer key (32 bytes) is used directly as an X25519 identity for one request;
  only its recipient is recorded, so a later request's key can be checked without storing it.
- The master key (32 bytes, AES-256-GCM) wraps secrets the catalog stores (org identities,
  access-key secrets). Each wrapped value carries the id of the key that wrapped it, so a
  :class:`MasterKeyring` holding the new key and the old ones can unwrap both during a
  rotation and tell which values still need rewrapping.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import ConfigError, IntegrityError, InvalidArgument
from gateway.sealing import bech32

IDENTITY_HRP = "AGE-SECRET-KEY-"
RECIPIENT_HRP = "age"
KEY_SIZE = 32


# --- X25519 identities and recipients -------------------------------------------------


def encode_identity(secret: bytes) -> str:
    """Write a 32-byte X25519 secret as an ``AGE-SECRET-KEY-1...`` string."""
    if len(secret) != KEY_SIZE:
        raise InvalidArgument("an X25519 identity is 32 bytes")
    return bech32.encode(IDENTITY_HRP, secret)


def encode_recipient(public: bytes) -> str:
    """Write a 32-byte X25519 public key as an ``age1...`` string."""
    if len(public) != KEY_SIZE:
        raise InvalidArgument("an X25519 recipient is 32 bytes")
    return bech32.encode(RECIPIENT_HRP, public)


@lru_cache(maxsize=256)
def parse_identity(identity: str) -> X25519PrivateKey:
    """Parse an ``AGE-SECRET-KEY-1...`` string into a private key (cached).

    Raises :class:`InvalidArgument` for anything else; the message never echoes the key.
    """
    try:
        hrp, data = bech32.decode(identity.strip())
    except bech32.Bech32Error as exc:
        raise InvalidArgument(f"not an age X25519 identity ({exc})") from None
    if hrp != IDENTITY_HRP.lower() or len(data) != KEY_SIZE:
        raise InvalidArgument("not an age X25519 identity (AGE-SECRET-KEY-1...)")
    return X25519PrivateKey.from_private_bytes(data)


@lru_cache(maxsize=1024)
def parse_recipient(recipient: str) -> bytes:
    """Parse an ``age1...`` string into the 32-byte X25519 public key (cached)."""
    try:
        hrp, data = bech32.decode(recipient.strip())
    except bech32.Bech32Error as exc:
        raise InvalidArgument(f"not an age X25519 recipient: {recipient!r} ({exc})") from None
    if hrp != RECIPIENT_HRP or len(data) != KEY_SIZE:
        raise InvalidArgument(f"not an age X25519 recipient (age1...): {recipient!r}")
    return data


def public_bytes(identity: str) -> bytes:
    """The 32-byte public key of an identity string."""
    return parse_identity(identity).public_key().public_bytes_raw()


def recipient_of(identity: str) -> str:
    """The ``age1...`` recipient of an ``AGE-SECRET-KEY-1...`` identity."""
    return encode_recipient(public_bytes(identity))


def generate_identity() -> tuple[str, str]:
    """A fresh X25519 identity: ``(identity "AGE-SECRET-KEY-1...", recipient "age1...")``."""
    identity = encode_identity(secrets.token_bytes(KEY_SIZE))
    return identity, recipient_of(identity)


def parse_identity_file(text: str) -> list[str]:
    """The identities in an age identity file (as ``age-keygen`` writes it).

    Blank lines and ``#`` comments are skipped; every other line must be an X25519 identity.
    """
    identities: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parse_identity(line)
        except InvalidArgument:
            raise InvalidArgument(
                f"identity file line {number} is not an age X25519 identity"
            ) from None
        identities.append(line)
    if not identities:
        raise InvalidArgument("the identity file holds no identity")
    return identities


def sse_c_identity(customer_key: bytes) -> str:
    """The X25519 identity an S3 SSE-C customer key stands for.

    The 32 key bytes are the X25519 scalar (clamped by X25519 itself), so any 256-bit key is
    valid. Record ``recipient_of(sse_c_identity(key))`` at write time; a later request's key
    matches when it yields the same recipient (see :func:`sse_c_matches`).
    """
    if len(customer_key) != KEY_SIZE:
        raise InvalidArgument("an SSE-C customer key is 32 bytes (AES-256)")
    return encode_identity(bytes(customer_key))


def sse_c_matches(customer_key: bytes, recorded_recipient: str) -> bool:
    """True when ``customer_key`` is the key whose recipient was recorded."""
    return secrets.compare_digest(
        recipient_of(sse_c_identity(customer_key)).encode(), recorded_recipient.encode()
    )


# --- master key --------------------------------------------------------------------------

_WRAP_VERSION = 1
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_WRAP_AAD = b"coolstorage/wrap/v1\x00"


def _parse_key_text(text: str) -> bytes:
    """32 key bytes from hex (64 digits) or base64 (standard or URL-safe, padding optional)."""
    value = "".join(text.split())
    if len(value) == 2 * KEY_SIZE and all(c in "0123456789abcdefABCDEF" for c in value):
        return bytes.fromhex(value)
    try:
        padded = value + "=" * (-len(value) % 4)
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("the master key must be 32 bytes as 64 hex digits or base64") from None
    if len(key) != KEY_SIZE:
        raise ConfigError(f"the master key must be 32 bytes, this one has {len(key)}")
    return key


class MasterKey:
    """One AES-256-GCM key that wraps secrets, known by a short key id.

    The key id is derived from the key (a truncated SHA-256 under a fixed label), so it can
    be shown and stored without revealing anything usable, and the same key always has the
    same id. Wrapped values are ``version (1) | key id (8) | nonce (12) | ciphertext+tag``;
    the version and key id are authenticated, and so is the optional ``context`` (say,
    ``b"org:42/identity"``), which binds a wrapped value to its place.
    """

    __slots__ = ("_aead", "_id_bytes", "key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ConfigError("the master key must be 32 bytes")
        self._aead = AESGCM(bytes(key))
        self._id_bytes = hashlib.sha256(b"coolstorage/master-key-id\x00" + bytes(key)).digest()[
            :_KEY_ID_BYTES
        ]
        #: Short public identifier of this key (16 hex digits).
        self.key_id: str = self._id_bytes.hex()

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> MasterKey:
        """A new random key."""
        return cls(secrets.token_bytes(KEY_SIZE))

    @classmethod
    def from_value(cls, text: str) -> MasterKey:
        """A key from its text form: 64 hex digits or base64 of 32 bytes."""
        return cls(_parse_key_text(text))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MasterKey:
        """A key from a file holding its text form (``#`` comment lines are skipped)."""
        try:
            content = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the master key file {os.fspath(path)}: {exc}") from None
        lines = [
            ln.strip()
            for ln in content.splitlines()
            if ln.strip() and not ln.strip().startswith("#")
        ]
        if len(lines) != 1:
            raise ConfigError(f"the master key file {os.fspath(path)} must hold exactly one key")
        return cls.from_value(lines[0])

    @classmethod
    def from_env(
        cls, name: str = "COOLSTORAGE_MASTER_KEY", environ: Mapping[str, str] | None = None
    ) -> MasterKey:
        """A key from an environment variable holding its text form."""
        env = os.environ if environ is None else environ
        value = env.get(name)
        if not value:
            raise ConfigError(f"the environment variable {name} holds no master key")
        return cls.from_value(value)

    def wrap(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        """Encrypt ``plaintext``; the result names this key and needs it (and ``context``) to unwrap."""
        prefix = bytes([_WRAP_VERSION]) + self._id_bytes
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return (
            prefix
            + nonce
            + self._aead.encrypt(nonce, bytes(plaintext), _WRAP_AAD + prefix + context)
        )

    def unwrap(self, wrapped: bytes, *, context: bytes = b"") -> bytes:
        """Decrypt a value :meth:`wrap` made with this key and the same ``context``."""
        head = 1 + _KEY_ID_BYTES
        if len(wrapped) < head + _NONCE_BYTES + 16 or wrapped[0] != _WRAP_VERSION:
            raise IntegrityError("not a wrapped value (unknown version or too short)")
        if wrapped[1:head] != self._id_bytes:
            raise ConfigError(f"wrapped by master key {wrapped[1:head].hex()}, not {self.key_id}")
        nonce = wrapped[head : head + _NONCE_BYTES]
        try:
            return self._aead.decrypt(
                nonce, wrapped[head + _NONCE_BYTES :], _WRAP_AAD + wrapped[:head] + context
            )
        except InvalidTag:
            raise IntegrityError(
                f"a value wrapped by master key {self.key_id} failed authentication"
            ) from None


def key_id_of(wrapped: bytes) -> str:
    """The id of the master key that wrapped ``wrapped``."""
    if len(wrapped) < 1 + _KEY_ID_BYTES or wrapped[0] != _WRAP_VERSION:
        raise IntegrityError("not a wrapped value (unknown version or too short)")
    return wrapped[1 : 1 + _KEY_ID_BYTES].hex()


class MasterKeyring:
    """The current master key plus older ones kept for a rotation.

    :meth:`wrap` always uses the current key; :meth:`unwrap` picks the key named in the
    wrapped value. :meth:`needs_rewrap` and :meth:`rewrap` let a rotation job move every
    stored value to the current key, after which the old keys can be dropped.
    """

    def __init__(self, current: MasterKey, old: Iterable[MasterKey] = ()) -> None:
        self.current = current
        self._keys = {key.key_id: key for key in old}
        self._keys[current.key_id] = current

    def __repr__(self) -> str:
        return f"MasterKeyring(current={self.current.key_id!r}, keys={sorted(self._keys)!r})"

    @classmethod
    def from_values(cls, current: str, old: Iterable[str] = ()) -> MasterKeyring:
        """A ring from key texts (hex or base64): the current key and any old ones."""
        return cls(MasterKey.from_value(current), [MasterKey.from_value(v) for v in old])

    @property
    def key_id(self) -> str:
        """The id of the current key (what new values are wrapped with)."""
        return self.current.key_id

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def wrap(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        return self.current.wrap(plaintext, context=context)

    def unwrap(self, wrapped: bytes, *, context: bytes = b"") -> bytes:
        key = self._keys.get(key_id_of(wrapped))
        if key is None:
            raise ConfigError(
                f"no loaded master key has id {key_id_of(wrapped)}; load the old key while rotating"
            )
        return key.unwrap(wrapped, context=context)

    def needs_rewrap(self, wrapped: bytes) -> bool:
        """True when ``wrapped`` was made by an older key."""
        return key_id_of(wrapped) != self.current.key_id

    def rewrap(self, wrapped: bytes, *, context: bytes = b"") -> bytes:
        """``wrapped`` re-encrypted under the current key (unchanged if it already is)."""
        if not self.needs_rewrap(wrapped):
            return wrapped
        return self.wrap(self.unwrap(wrapped, context=context), context=context)
