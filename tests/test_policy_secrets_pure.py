"""Policy.secrets: the one place that gathers the login roles' passwords from the environment (no server)."""

from pgwarden.policy import build_policy


def test_secrets_are_the_set_password_variables_of_the_login_roles_only() -> None:
    policy = build_policy(database="shop", owner="own", app=["app"], readonly=["ro"])
    variables = [v for _, v in policy.login_roles() if v]
    assert len(variables) >= 2  # the access roles log in: the test would prove nothing otherwise
    app_var, ro_var = variables[-2], variables[-1]
    environ = {app_var: "s3cret", "PGWARDEN_PASSWORD_SOMEONE_ELSE": "x", "HOME": "/root"}
    assert policy.secrets(environ) == {app_var: "s3cret"}  # unset ones left out, other variables never read
    assert policy.secrets({**environ, ro_var: ""}) == {app_var: "s3cret", ro_var: ""}  # set but empty is set
    assert policy.secrets({}) == {}
