"""SCRAM-SHA-256 verifiers computed on the client, so clear-text passwords never reach the server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stringprep
import unicodedata

DEFAULT_ITERATIONS = 4096
SALT_BYTES = 16

_VERIFIER = re.compile(
    r"^SCRAM-SHA-256\$(?P<iter>[0-9]+):(?P<salt>[A-Za-z0-9+/=]+)"
    r"\$(?P<stored>[A-Za-z0-9+/=]+):(?P<server>[A-Za-z0-9+/=]+)$"
)


#: RFC 3454 table C.1.2 as PostgreSQL has it; Python's in_table_c12 follows newer Unicode categories
#: and misses U+200B ZERO WIDTH SPACE, which PostgreSQL maps to a space.
_C12 = frozenset([0x00A0, 0x1680, *range(0x2000, 0x200C), 0x202F, 0x205F, 0x3000])


def _non_ascii_space(ch: str) -> bool:
    return ord(ch) in _C12


def saslprep(password: str) -> str | None:
    """RFC 4013 SASLprep as PostgreSQL applies it; None when the password is not preparable,
    in which case the server (and libpq) use the raw bytes."""
    # map non-ASCII spaces to " " first, then drop what is "commonly mapped to nothing" (PostgreSQL's order)
    mapped = "".join(
        " " if _non_ascii_space(ch) else ch for ch in password if _non_ascii_space(ch) or not stringprep.in_table_b1(ch)
    )
    normalized = unicodedata.normalize("NFKC", mapped)
    if not normalized:
        return None
    prohibited = (
        _non_ascii_space,
        stringprep.in_table_c21,
        stringprep.in_table_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    for ch in normalized:
        if any(test(ch) for test in prohibited):
            return None
    has_ral = any(stringprep.in_table_d1(ch) for ch in normalized)
    if has_ral:
        if any(stringprep.in_table_d2(ch) for ch in normalized):
            return None
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            return None
    return normalized


def _prepared(password: str) -> bytes:
    prepared = saslprep(password)
    return (prepared if prepared is not None else password).encode("utf-8")


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", _prepared(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def make_verifier(password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS) -> str:
    """The string PostgreSQL stores in pg_authid.rolpassword for this password."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    stored, server = _keys(password, salt, iterations)
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored).decode()}:{b64(server).decode()}"


def is_verifier(value: str) -> bool:
    return _VERIFIER.match(value) is not None


def matches(password: str, verifier: str | None) -> bool:
    """Whether `verifier` (a stored rolpassword) was computed from `password`."""
    if not verifier:
        return False
    m = _VERIFIER.match(verifier)
    if not m:
        return False
    try:
        salt = base64.b64decode(m["salt"], validate=True)
        stored = base64.b64decode(m["stored"], validate=True)
        server = base64.b64decode(m["server"], validate=True)
    except ValueError:
        return False
    want_stored, want_server = _keys(password, salt, int(m["iter"]))
    return hmac.compare_digest(stored, want_stored) and hmac.compare_digest(server, want_server)
