"""Keys: Bech32 identities and recipients, SSE-C keys, master key wrapping and rotation."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import ConfigError, IntegrityError, InvalidArgument
from gateway.sealing import (
    MasterKey,
    MasterKeyring,
    bech32,
    generate_identity,
    key_id_of,
    keys,
    parse_identity_file,
    recipient_of,
    sse_c_identity,
    sse_c_matches,
)

# The example identity and recipient of the age specification (c2sp.org/age).
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


def test_spec_identity_gives_spec_recipient() -> None:
    assert recipient_of(SPEC_IDENTITY) == SPEC_RECIPIENT
    assert keys.parse_identity(SPEC_IDENTITY).private_bytes_raw() == bytes([0x42] * 32)


def test_generated_identity_round_trips() -> None:
    identity, recipient = generate_identity()
    assert identity.startswith("AGE-SECRET-KEY-1") and identity.isupper()
    assert recipient.startswith("age1") and recipient.islower()
    assert recipient_of(identity) == recipient
    assert len(keys.parse_recipient(recipient)) == 32
    assert generate_identity()[0] != identity


@given(st.binary(min_size=0, max_size=80), st.sampled_from(["age", "AGE-SECRET-KEY-", "x"]))
@settings(max_examples=60, deadline=None)
def test_bech32_round_trip(data: bytes, hrp: str) -> None:
    text = bech32.encode(hrp, data)
    assert bech32.decode(text) == (hrp.lower(), data)
    assert bech32.decode(text.lower() if hrp.isupper() else text.upper()) == (hrp.lower(), data)


@pytest.mark.parametrize(
    "text",
    [
        SPEC_RECIPIENT[:-1] + ("q" if SPEC_RECIPIENT[-1] != "q" else "p"),  # checksum
        SPEC_RECIPIENT[:10] + SPEC_RECIPIENT[10:].upper(),  # mixed case
        "age1",  # too short
        SPEC_RECIPIENT.replace("1", "b", 1),  # no separator left
        SPEC_RECIPIENT[:-7] + "b" + SPEC_RECIPIENT[-6:],  # 'b' is not in the charset
    ],
)
def test_bech32_rejects_bad_strings(text: str) -> None:
    with pytest.raises(bech32.Bech32Error):
        bech32.decode(text)


def test_identity_and_recipient_parsing_rejects_the_wrong_kind() -> None:
    with pytest.raises(InvalidArgument):
        keys.parse_recipient(SPEC_IDENTITY)
    with pytest.raises(InvalidArgument):
        keys.parse_identity(SPEC_RECIPIENT)
    with pytest.raises(InvalidArgument):
        keys.parse_recipient(bech32.encode("age", bytes(31)))
    with pytest.raises(InvalidArgument) as info:
        keys.parse_identity("AGE-SECRET-KEY-1NOTAKEY")
    assert "NOTAKEY" not in str(info.value)  # a secret is never echoed


def test_identity_file_format() -> None:
    identity, _ = generate_identity()
    text = (
        f"# created: now\n# public key: {recipient_of(identity)}\n\n{identity}\n{SPEC_IDENTITY}\n"
    )
    assert parse_identity_file(text) == [identity, SPEC_IDENTITY]
    with pytest.raises(InvalidArgument):
        parse_identity_file("# nothing\n")
    with pytest.raises(InvalidArgument):
        parse_identity_file(identity + "\nnot a key\n")


def test_sse_c_key_is_the_identity_and_only_its_recipient_is_needed() -> None:
    customer_key = os.urandom(32)
    identity = sse_c_identity(customer_key)
    recorded = recipient_of(identity)
    assert keys.parse_identity(identity).private_bytes_raw() == customer_key
    assert sse_c_matches(customer_key, recorded)
    assert not sse_c_matches(os.urandom(32), recorded)
    with pytest.raises(InvalidArgument):
        sse_c_identity(b"short")


def test_master_key_wraps_and_names_itself() -> None:
    key = MasterKey.generate()
    wrapped = key.wrap(b"org identity", context=b"org:1")
    assert b"org identity" not in wrapped
    assert key_id_of(wrapped) == key.key_id and len(key.key_id) == 16
    assert key.unwrap(wrapped, context=b"org:1") == b"org identity"
    assert key.wrap(b"x") != key.wrap(b"x")  # fresh nonce each time
    with pytest.raises(IntegrityError):
        key.unwrap(wrapped, context=b"org:2")  # bound to its place
    tampered = bytearray(wrapped)
    tampered[-1] ^= 1
    with pytest.raises(IntegrityError):
        key.unwrap(bytes(tampered), context=b"org:1")
    with pytest.raises(ConfigError):
        MasterKey.generate().unwrap(wrapped, context=b"org:1")
    assert key.key_id not in repr(MasterKey.generate()) and "MasterKey(key_id=" in repr(key)


def test_master_key_loads_from_hex_base64_file_and_env(tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = os.urandom(32)
    by_hex = MasterKey.from_value(raw.hex())
    by_b64 = MasterKey.from_value(base64.b64encode(raw).decode())
    by_url = MasterKey.from_value(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert by_hex.key_id == by_b64.key_id == by_url.key_id == MasterKey(raw).key_id
    path = tmp_path / "master.key"
    path.write_text(f"# the operator's master key\n{raw.hex()}\n")
    assert MasterKey.from_file(path).key_id == by_hex.key_id
    assert (
        MasterKey.from_env("CS_KEY", {"CS_KEY": base64.b64encode(raw).decode()}).key_id
        == by_hex.key_id
    )
    wrapped = by_hex.wrap(b"secret")
    assert by_b64.unwrap(wrapped) == b"secret"
    for bad in ["", "abcd", base64.b64encode(os.urandom(16)).decode(), "zz" * 32]:
        with pytest.raises(ConfigError):
            MasterKey.from_value(bad)
    with pytest.raises(ConfigError):
        MasterKey.from_env("CS_KEY", {})
    with pytest.raises(ConfigError):
        MasterKey.from_file(tmp_path / "missing")


def test_keyring_unwraps_old_values_during_rotation() -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    before = MasterKeyring(old).wrap(b"access secret", context=b"ak")
    ring = MasterKeyring(new, [old])
    assert ring.key_id == new.key_id and ring.key_ids == {old.key_id, new.key_id}
    assert ring.unwrap(before, context=b"ak") == b"access secret"
    assert ring.needs_rewrap(before)
    after = ring.rewrap(before, context=b"ak")
    assert not ring.needs_rewrap(after) and key_id_of(after) == new.key_id
    assert ring.rewrap(after, context=b"ak") is after
    assert MasterKeyring(new).unwrap(after, context=b"ak") == b"access secret"
    with pytest.raises(ConfigError, match="load the old key"):
        MasterKeyring(new).unwrap(before, context=b"ak")
    with pytest.raises(IntegrityError):
        key_id_of(b"\x07" + bytes(40))
    ring2 = MasterKeyring.from_values(
        os.urandom(32).hex(), [base64.b64encode(os.urandom(32)).decode()]
    )
    assert len(ring2.key_ids) == 2 and ring2.unwrap(ring2.wrap(b"v")) == b"v"
