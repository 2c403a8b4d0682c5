"""Provider detection and the provider table, without a server."""

from __future__ import annotations

from pgwarden.providers import BY_ID, PROVIDERS, SETTINGS, detect


def test_each_provider_is_detected_by_its_own_roles_only() -> None:
    for p in PROVIDERS:
        found = detect(["postgres", "app", *p.markers[:1]])
        assert found.provider.id == p.id, p.id
        assert found.signals == (f"role {p.markers[0]}",)
    assert detect(["postgres", "app", "anon", "authenticated", "application"]).provider.id == "community"


def test_markers_belong_to_one_provider_and_are_among_its_roles() -> None:
    seen: dict[str, str] = {}
    for p in PROVIDERS:
        for m in p.markers:
            assert m not in seen, f"{m} marks {seen.get(m)} and {p.id}"
            seen[m] = p.id
            assert p.owns(m), f"{p.id}: marker {m} is not one of its roles"
        assert not set(p.project_roles) & set(p.roles), p.id


def test_settings_and_extensions_are_signals_of_the_detected_provider_only() -> None:
    found = detect(["rds_superuser"], ["rds.extensions", "neon.timeline_id"], ["aws_s3", "neon"])
    assert found.provider.id == "rds"
    assert found.signals == ("role rds_superuser", "setting rds.extensions", "extension aws_s3")
    # a parameter alone never identifies a provider (any role may set a placeholder of that name)
    assert detect(["app"], ["rds.extensions"], ["aws_s3"]).provider.id == "community"
    assert "rds.extensions" in SETTINGS and "azure.extensions" in SETTINGS


def test_most_markers_win() -> None:
    # Cloud SQL and AlloyDB are both Google's, with distinct names; a copy of one role of another
    # provider does not outvote the provider's own set
    assert detect(["alloydbsuperuser", "alloydbiamuser", "cloudsqliamuser"]).provider.id == "alloydb"
    assert BY_ID["crunchy-bridge"].admin_is_superuser


def test_supabase_preset_file() -> None:
    from helpers import run_cli
    from pgwarden.policy.presets import preset

    text, policy = preset("supabase", "postgres", 'own"er', ("api",))
    assert policy.owner.name == 'own"er' and not policy.owner.login
    assert [a.name for a in policy.access] == ["anon", "authenticated", "service_role"]
    [authenticator] = policy.members
    assert authenticator.name == "authenticator" and authenticator.password_env is None
    assert [(m.role, m.inherit, m.set) for m in authenticator.member_of] == [
        ("anon", False, True),
        ("authenticated", False, True),
        ("service_role", False, True),
    ]
    assert {(g.role, g.profile) for g in policy.grants()} == {
        ("anon", "readonly"),
        ("authenticated", "readwrite"),
        ("service_role", "readwrite"),
    }
    result = run_cli(["init", "--preset", "supabase", "--app", "x", "-c", "-"])
    assert result.exit_code == 2 and "error: --preset supabase fixes the access roles" in result.stderr
    assert result.stdout == ""
