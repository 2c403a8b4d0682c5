"""The engine's data: the registry of kinds, the ACL algebra, the profiles and typed plan values. No server."""

from __future__ import annotations

import pytest

from pgwarden import acl
from pgwarden.acl import Change, ChangeAction, Grant, Wanted
from pgwarden.kinds import KINDS, PRIVILEGE_LETTERS, defacl_word, describe, kind, label, ordered
from pgwarden.plan import Action, Need, Requirement
from pgwarden.profiles import BUILTIN, PROFILES, Profile
from pgwarden.snapshot import Grant as CatalogGrant

# --- registry ---------------------------------------------------------------------------------------


def test_every_privilege_of_every_kind_has_an_acl_letter() -> None:
    for k in KINDS.values():
        assert k.privileges, k.name
        for p in k.privileges:
            assert p in PRIVILEGE_LETTERS, (k.name, p)


def test_owner_privileges_follow_the_server_version() -> None:
    table = kind("table")
    assert "MAINTAIN" not in table.owner_privileges(16)
    assert table.owner_privileges(17)[-1] == "MAINTAIN"
    assert kind("parameter").privileges_on(14) == ()
    assert kind("parameter").privileges_on(15) == ("SET", "ALTER SYSTEM")
    assert kind("sequence").owner_privileges(14) == ("SELECT", "UPDATE", "USAGE")


def test_default_acl_words_are_the_ones_alter_default_privileges_takes() -> None:
    words = {code: defacl_word(code) for code in ("r", "S", "f", "T", "n", "L")}
    assert words == {
        "r": "TABLES",
        "S": "SEQUENCES",
        "f": "ROUTINES",
        "T": "TYPES",
        "n": "SCHEMAS",
        "L": "LARGE OBJECTS",
    }


def test_labels_for_people_and_words_of_pg_describe_object() -> None:
    assert label("table", "p") == "partitioned table"
    assert describe("table", "p") == "table"
    assert label("routine", "w") == "window function"
    assert describe("routine", "w") == "function"
    assert label("table", "?") == "table"  # an unknown relkind falls back to the kind
    assert kind("table").subkind("m").sql_word == "MATERIALIZED VIEW"
    assert kind("type").subkind("d").sql_word == "DOMAIN"


def test_privileges_are_ordered_as_postgresql_lists_them() -> None:
    assert ordered({"DELETE", "SELECT", "UPDATE", "INSERT"}) == ("SELECT", "INSERT", "UPDATE", "DELETE")
    assert ordered({"USAGE", "SELECT"}) == ("SELECT", "USAGE")


# --- profiles --------------------------------------------------------------------------------------


def test_profiles_are_checked_against_what_each_kind_can_carry() -> None:
    with pytest.raises(ValueError, match="sequence cannot carry MAINTAIN"):
        Profile("bad", {"sequence": frozenset({"MAINTAIN"})})
    for p in BUILTIN.values():
        for kind_name, privileges in p.grants.items():
            assert privileges <= set(kind(kind_name).privileges)


def test_builtin_profiles_give_rows_and_nothing_that_changes_the_schema() -> None:
    for name in ("readwrite", "readonly"):
        table = PROFILES[name]["table"]
        assert not table & {"TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"}, name
        assert "CREATE" not in PROFILES[name]["schema"] and "CREATE" not in PROFILES[name]["database"]
    assert PROFILES["readonly"]["table"] == {"SELECT"}
    assert BUILTIN["readwrite"].allows("sequence", "USAGE") and not BUILTIN["readonly"].allows("sequence", "USAGE")


# --- the ACL algebra ------------------------------------------------------------------------------


def _state(*entries: tuple[str | None, str, str | None, bool]) -> acl.AclState:
    return frozenset(Grant(g, p, grantor, grantable) for g, p, grantor, grantable in entries)


def test_diff_grants_what_is_missing_and_revokes_what_is_extra() -> None:
    actual = _state(("own", "SELECT", "own", False), ("app", "SELECT", "own", False), ("app", "TRUNCATE", "own", False))
    wanted = Wanted({"own": frozenset({"SELECT"}), "app": frozenset({"SELECT", "INSERT"})}, owner="own", grantor="own")
    assert acl.diff(actual, wanted) == [
        Change(ChangeAction.GRANT, "app", frozenset({"INSERT"})),
        Change(ChangeAction.REVOKE, "app", frozenset({"TRUNCATE"})),
    ]


def test_diff_revokes_all_when_nothing_is_left_and_puts_public_first() -> None:
    actual = _state(("zed", "SELECT", "own", False), (None, "SELECT", "own", False))
    changes = acl.diff(actual, Wanted({}))
    assert [c.grantee for c in changes] == [None, "zed"]
    assert all(c.action == ChangeAction.REVOKE and c.everything for c in changes)


def test_diff_counts_only_the_grantors_grants_and_revokes_grant_options() -> None:
    # app holds SELECT from another grantor, with grant option: the owner must grant it itself,
    # and nobody but the owner may keep a grant option
    actual = _state(("app", "SELECT", "other", True), ("own", "SELECT", "own", True))
    wanted = Wanted({"app": frozenset({"SELECT"}), "own": frozenset({"SELECT"})}, owner="own", grantor="own")
    assert acl.diff(actual, wanted) == [
        Change(ChangeAction.GRANT, "app", frozenset({"SELECT"})),
        Change(ChangeAction.REVOKE_GRANT_OPTION, "app", frozenset({"SELECT"})),
    ]


def test_diff_leaves_tolerated_and_ignored_grants_alone() -> None:
    actual = _state((None, "USAGE", "own", False), ("bi", "CREATE", "own", False))
    wanted = Wanted({}, {None: frozenset({"USAGE"})}, ignore=frozenset({"bi"}))
    assert acl.diff(actual, wanted) == []


def test_from_catalog_names_roles_and_moves_the_previous_owners_entries() -> None:
    names = {10: "postgres", 20: "own", 30: "app"}
    entries = [
        CatalogGrant(10, 10, "SELECT", False),
        CatalogGrant(10, 30, "SELECT", False),
        CatalogGrant(10, 0, "USAGE", False),
    ]
    state = acl.from_catalog(entries, lambda oid: None if oid == 0 else names[oid], {"postgres": "own"})
    assert state == {
        Grant("own", "SELECT", "own"),
        Grant("app", "SELECT", "own"),
        Grant(None, "USAGE", "own"),
    }


def test_grants_are_hashable_values() -> None:
    assert len({Grant("a", "SELECT"), Grant("a", "SELECT"), Grant("a", "SELECT", grantable=True)}) == 2


# --- typed plan values ------------------------------------------------------------------------------


def test_actions_are_the_strings_json_and_rule_ids_use() -> None:
    assert Action.GRANT == "grant" and f"drift.{Action.ALTER_OWNER}" == "drift.alter-owner"


def test_needs_read_as_sentences_and_keep_their_roles() -> None:
    need = Need.of(Requirement.CREATEDB, (Requirement.MEMBERSHIP, "own"))
    assert str(need) == "superuser, or CREATEDB and membership in own"
    assert need.roles == (None, "own")
    assert str(Need.superuser()) == "superuser"
    assert str(Need.of((Requirement.ADMIN_OPTION, "own"))) == "superuser or ADMIN OPTION on own"
    two = Need.of((Requirement.MEMBERSHIP, "a"), (Requirement.MEMBERSHIP, "b"), note="the objects' owner")
    assert str(two) == "superuser or membership in a and b (the objects' owner)"
