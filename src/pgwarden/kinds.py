"""The registry of privilege-bearing object kinds: SQL words, privileges and labels, as data.

Every module that needs a kind's vocabulary (plan, rules, probe, report, adopt) reads it from here.
A kind that profiles grant is also listed in PROFILE_KINDS; it still needs its ACLs in the snapshot,
its planner, its profile key and (for probe, report and init --from-database) their parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

#: ACL letters (aclitem text, `aclexplode` gives the words) of every privilege PostgreSQL has.
PRIVILEGE_LETTERS: Mapping[str, str] = {
    "SELECT": "r",
    "INSERT": "a",
    "UPDATE": "w",
    "DELETE": "d",
    "TRUNCATE": "D",
    "REFERENCES": "x",
    "TRIGGER": "t",
    "MAINTAIN": "m",
    "USAGE": "U",
    "EXECUTE": "X",
    "CREATE": "C",
    "CONNECT": "c",
    "TEMPORARY": "T",
    "SET": "s",
    "ALTER SYSTEM": "A",
}

#: The order privileges are written in statements and reports.
PRIVILEGE_ORDER: tuple[str, ...] = tuple(PRIVILEGE_LETTERS)

#: Privileges that exist only from a major version on.
PRIVILEGE_SINCE: Mapping[str, int] = {"MAINTAIN": 17, "SET": 15, "ALTER SYSTEM": 15}


def privilege_sort_key(privilege: str) -> int:
    return PRIVILEGE_ORDER.index(privilege) if privilege in PRIVILEGE_ORDER else len(PRIVILEGE_ORDER)


def ordered(privileges: Iterable[str]) -> tuple[str, ...]:
    """Privileges in statement order (SELECT, INSERT, ... as PostgreSQL lists them)."""
    return tuple(sorted(privileges, key=privilege_sort_key))


@dataclass(frozen=True)
class Subkind:
    """One relkind/prokind/typtype of a kind: the word ALTER takes and the words people read."""

    code: str
    sql_word: str  # ALTER <sql_word> ... OWNER TO
    label: str  # for people: "partitioned table"
    described: str  # the word pg_describe_object() uses ("table" for a partitioned table)


@dataclass(frozen=True)
class Kind:
    """A privilege-bearing object kind."""

    name: str  # registry key, also the JSON/policy word: "table", "sequence", ...
    sql_word: str  # GRANT ... ON <sql_word> name
    plural: str  # "tables": labels and counts
    privileges: tuple[str, ...]  # what an object of the kind can carry (all versions)
    all_word: str | None = None  # GRANT ... ON ALL <all_word> IN SCHEMA / ALTER DEFAULT PRIVILEGES ... ON
    defacl_code: str | None = None  # pg_default_acl.defaclobjtype
    subkinds: tuple[Subkind, ...] = ()
    catalog: str = ""  # the system catalog its objects are rows of (a plan step's and a finding's subject)
    public: tuple[str, ...] = ()  # what acldefault() gives PUBLIC on a new object of the kind
    #: objects named by name and identity arguments (`f(integer)`): ObjectRef.args holds the arguments
    signed: bool = False
    #: objects that may belong to a table (a serial's or identity column's sequence): ObjectRef.args names it
    owned: bool = False
    #: what PUBLIC holds by default (of `public`) that the policy leaves as it is on existing objects and in
    #: default privileges, rather than revoking it; `hardened`: unless hardening.revoke_public_execute is on
    public_kept: tuple[str, ...] = ()
    hardened: bool = False
    #: GRANT ... ON ALL <all_word> IN SCHEMA exists (tables, sequences, routines); else all_word is only
    #: ALTER DEFAULT PRIVILEGES' (schemas, types, large objects): the planner names each object
    bulk: bool = False

    def privileges_on(self, major: int) -> tuple[str, ...]:
        """What an object of this kind can carry on a server of major version `major`."""
        return tuple(p for p in self.privileges if PRIVILEGE_SINCE.get(p, 0) <= major)

    def owner_privileges(self, major: int) -> tuple[str, ...]:
        """What acldefault() gives the owner: every privilege of the kind on that version."""
        return self.privileges_on(major)

    def subkind(self, code: str) -> Subkind:
        for sub in self.subkinds:
            if sub.code == code:
                return sub
        return Subkind(code, self.sql_word, self.name, self.name)

    def scope_name(self, name: str, args: str | None) -> tuple[str, str | None]:
        """How the policy's scopes name one object of the kind: its name (a routine's with its identity
        arguments) and the table it belongs to (a sequence's, else None)."""
        if self.signed:
            return f"{name}({args or ''})", None
        return name, args if self.owned else None

    def kept_from_public(self, revoke_public_execute: bool) -> frozenset[str]:
        """What PUBLIC may keep on an object of the kind (never granted, never revoked) under the policy's
        hardening: EXECUTE on routines unless revoke_public_execute, USAGE on types."""
        return frozenset() if self.hardened and revoke_public_execute else frozenset(self.public_kept)

    def check_privileges(self, privileges: Iterable[str]) -> None:
        """Raise ValueError naming what the kind cannot carry."""
        bad = [p for p in privileges if p not in self.privileges]
        if bad:
            raise ValueError(f"{self.name} cannot carry {', '.join(bad)} (it can carry {', '.join(self.privileges)})")


_RELATION_SUBKINDS = (
    Subkind("r", "TABLE", "table", "table"),
    Subkind("p", "TABLE", "partitioned table", "table"),
    Subkind("v", "VIEW", "view", "view"),
    Subkind("m", "MATERIALIZED VIEW", "materialized view", "materialized view"),
    Subkind("f", "FOREIGN TABLE", "foreign table", "foreign table"),
)

KINDS: Mapping[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "database",
            "DATABASE",
            "databases",
            ("CREATE", "TEMPORARY", "CONNECT"),
            catalog="pg_database",
            public=("TEMPORARY", "CONNECT"),
        ),
        Kind(
            "schema",
            "SCHEMA",
            "schemas",
            ("USAGE", "CREATE"),
            defacl_code="n",
            all_word="SCHEMAS",
            catalog="pg_namespace",
        ),
        Kind(
            "table",
            "TABLE",
            "tables",
            ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"),
            all_word="TABLES",
            bulk=True,
            defacl_code="r",
            subkinds=_RELATION_SUBKINDS,
            catalog="pg_class",
        ),
        Kind(
            "sequence",
            "SEQUENCE",
            "sequences",
            ("SELECT", "UPDATE", "USAGE"),
            all_word="SEQUENCES",
            bulk=True,
            defacl_code="S",
            subkinds=(Subkind("S", "SEQUENCE", "sequence", "sequence"),),
            catalog="pg_class",
            owned=True,
        ),
        Kind(
            "routine",
            "ROUTINE",
            "routines",
            ("EXECUTE",),
            all_word="ROUTINES",
            bulk=True,
            defacl_code="f",
            subkinds=(
                Subkind("f", "FUNCTION", "function", "function"),
                Subkind("p", "PROCEDURE", "procedure", "procedure"),
                Subkind("a", "AGGREGATE", "aggregate", "aggregate"),
                Subkind("w", "FUNCTION", "window function", "function"),
            ),
            catalog="pg_proc",
            public=("EXECUTE",),
            signed=True,
            public_kept=("EXECUTE",),
            hardened=True,
        ),
        Kind(
            "type",
            "TYPE",
            "types",
            ("USAGE",),
            all_word="TYPES",
            defacl_code="T",
            subkinds=(
                Subkind("b", "TYPE", "type", "type"),
                Subkind("c", "TYPE", "composite type", "type"),
                Subkind("d", "DOMAIN", "domain", "type"),
                Subkind("e", "TYPE", "enum type", "type"),
                Subkind("r", "TYPE", "range type", "type"),
                Subkind("m", "TYPE", "multirange type", "type"),
            ),
            catalog="pg_type",
            public=("USAGE",),
            public_kept=("USAGE",),
        ),
        Kind("column", "TABLE", "columns", ("SELECT", "INSERT", "UPDATE", "REFERENCES")),
        Kind(
            "large_object",
            "LARGE OBJECT",
            "large objects",
            ("SELECT", "UPDATE"),
            all_word="LARGE OBJECTS",
            defacl_code="L",
        ),
        Kind(
            "foreign_data_wrapper",
            "FOREIGN DATA WRAPPER",
            "foreign-data wrappers",
            ("USAGE",),
        ),
        Kind("foreign_server", "FOREIGN SERVER", "foreign servers", ("USAGE",)),
        Kind("language", "LANGUAGE", "languages", ("USAGE",)),
        Kind("tablespace", "TABLESPACE", "tablespaces", ("CREATE",)),
        Kind("parameter", "PARAMETER", "parameters", ("SET", "ALTER SYSTEM")),
    )
}

#: The kinds a profile grants on the objects of the managed schemas (a [profiles.NAME] file's keys, a
#: grant's `defaults`), in the order plans and reports list them. A kind granted through profiles is
#: added here (and its ProfileSpec field), not re-tabled in the modules that read it.
ProfileKind = Literal["table", "sequence", "routine"]
PROFILE_KINDS: tuple[ProfileKind, ...] = get_args(ProfileKind)

#: A profile's keys and the kinds default privileges name: the object kinds above, and types (USAGE on
#: the managed schemas' types, planned with the default privileges, plan/defaults.py: types are not
#: among the objects the snapshot groups).
ProfileField = Literal["table", "sequence", "routine", "type"]
PROFILE_FIELDS: tuple[ProfileField, ...] = get_args(ProfileField)

#: pg_default_acl.defaclobjtype -> kind.
BY_DEFACL_CODE: Mapping[str, Kind] = {k.defacl_code: k for k in KINDS.values() if k.defacl_code}


def kind(name: str) -> Kind:
    """The registry entry of `name` (KeyError for an unknown kind: a bug, not user input)."""
    return KINDS[name]


def defacl_word(code: str) -> str:
    """The `ON ...` word of ALTER DEFAULT PRIVILEGES for a defaclobjtype ("r" -> "TABLES")."""
    k = BY_DEFACL_CODE.get(code)
    return k.all_word if k is not None and k.all_word else code


def describe(kind_name: str, subkind: str) -> str:
    """The word pg_describe_object uses for an object (findings match hazard rows by it)."""
    k = KINDS.get(kind_name)
    return k.subkind(subkind).described if k is not None else kind_name


def label(kind_name: str, subkind: str) -> str:
    """The word people read for an object ("partitioned table", "window function")."""
    k = KINDS.get(kind_name)
    return k.subkind(subkind).label if k is not None else kind_name
