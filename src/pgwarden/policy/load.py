"""Reading a policy file: TOML, then the model of its version; every problem is one PolicyError that
names the file, the line and the key."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pgwarden.errors import PolicyError
from pgwarden.policy.locate import locate
from pgwarden.policy.model import LocatedError, Policy
from pgwarden.policy.v2 import PolicyFileV2

_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")

#: Keys a version 1 file may not use: they need `version = 2` (docs/policy.md).
_V2_ONLY_TOP = ("members", "profiles", "retired", "roles", "databases", "leased", "pgbouncer")
_V2_ONLY_ROLE = ("connection_limit", "valid_until", "comment", "settings", "database_settings")


def load_policy(path: str | Path) -> Policy:
    """Load and validate a policy file; every problem becomes a PolicyError naming file:line and key.
    A version 2 file with several databases gives the policy of its first; `policies` gives all."""
    return load_policies(path)[0]


def load_policies(path: str | Path, read: tuple[str, dict[str, Any]] | None = None) -> list[Policy]:
    """One engine policy per database of the file (a version 1 file has one). `read`: the file's
    text and its TOML as the caller has already read them (`check` reads them early), else read here."""
    path = Path(path)
    if read is not None:
        return parse_policies(read[0], str(path), read[1])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(
            f"policy file {path} not found",
            hint="create one with `pgwarden init --database DB --owner ROLE --app ROLE`, or pass -c FILE",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    return parse_policies(text, str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    return parse_policies(text, source)[0]


def parse_policies(text: str, source: str = "<policy>", data: dict[str, Any] | None = None) -> list[Policy]:
    """`data`: the text's TOML when the caller has parsed it already (tomllib.loads(text))."""
    data = _toml(text, source) if data is None else data
    version = data.get("version", 1)
    try:
        if version == 2:
            return PolicyFileV2.model_validate(tuples(data)).resolve()
        if version == 1:
            _refuse_v2_keys(data, text, source)
        return [Policy.model_validate(tuples(data))]
    except ValidationError as exc:
        raise PolicyError(format_errors(exc, text, source)) from None


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python < 3.14 has no exc.lineno: the position is only in the text, "... (at line 7, column 7)"
        line = getattr(exc, "lineno", None)
        msg = getattr(exc, "msg", str(exc))
        at = _TOML_AT.search(msg)
        if at:
            line = line or int(at.group(1))
            msg = msg[: at.start()].rstrip()
        where = f"{source}:{line}" if line else source
        raise PolicyError(f"{where}: invalid TOML: {msg}") from None


def _refuse_v2_keys(data: dict[str, Any], text: str, source: str) -> None:
    """Version 2's keys in a version 1 file, and a v1 access role without its level."""
    found: list[tuple[tuple[int | str, ...], str]] = [((k,), "needs version = 2") for k in _V2_ONLY_TOP if k in data]
    sections: list[tuple[str, Any]] = [("owner", data.get("owner"))]
    access = data.get("access")
    if isinstance(access, list):  # anything else is the model's to report
        sections += [(f"access[{i}]", a) for i, a in enumerate(access)]
    for where, section in sections:
        if not isinstance(section, dict):
            continue
        loc: tuple[int | str, ...] = ("owner",) if where == "owner" else ("access", int(where[7:-1]))
        found += [((*loc, k), "needs version = 2") for k in _V2_ONLY_ROLE if k in section]
        if where != "owner" and "level" not in section:
            found.append(((*loc, "level"), "required key is missing"))
    if isinstance(data.get("database"), dict) and "grants" in data["database"]:
        found.append((("database", "grants"), "needs version = 2"))
    if found:
        raise PolicyError(
            "; ".join(f"{_where(source, text, loc)}: {dotted(loc)}: {msg}" for loc, msg in found),
            hint="in a version 1 file each access role has a level; scopes, profiles, people and "
            "attributes need `version = 2` (`pgwarden policy upgrade FILE` rewrites the file)",
        )


def _where(source: str | None, text: str | None, loc: Sequence[int | str]) -> str:
    where = source or "policy"
    if text is not None:
        line = locate(text, loc)
        if line:
            where = f"{where}:{line}"
    return where


def tuples(value: Any) -> Any:
    """TOML arrays arrive as lists; the frozen model stores tuples (strict mode wants exact types)."""
    if isinstance(value, dict):
        return {k: tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(tuples(v) for v in value)
    return value


def format_errors(exc: ValidationError, text: str | None, source: str | None) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, LocatedError):
            loc = (*loc, *cause.loc)
        # a tagged value that failed as a string and as a table: report the table's own problem
        loc = tuple(p for p in loc if p not in ("MembershipSpec", "[key]"))
        key = dotted(loc)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"].endswith("_type") or err["type"] == "literal_error":
            msg = f"{msg} (got {json.dumps(err.get('input'), default=str)})"
        where = _where(source, text, loc)
        lines.append(f"{where}: {key}: {msg}" if key else f"{where}: {msg}")
    return "; ".join(dict.fromkeys(lines))


def dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
