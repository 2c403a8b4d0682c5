"""Under load: the application keeps reading and writing through docs/adopting.md's steps; no error, bounded waits."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from conftest import PgCleanup
from helpers import role_conninfo
from pgwarden.policy import password_env_for
from pgwarden.server import LocalServer

TABLES = 200  # owned by the admin: adopt moves them in batches, apply then grants
BUSY = 4  # tables the application works on
CLIENTS = 4
LOCK_TIMEOUT_S = 1.0
#: One batch (or apply's single transaction) on a loaded two-core machine; generous on purpose.
BATCH_ALLOWANCE_S = 2.0


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self, conninfo: str, seed: int) -> None:
        rng = random.Random(seed)
        try:
            conn = psycopg.connect(conninfo, autocommit=False)
        except psycopg.Error as exc:
            self.errors.append(f"connect: {exc}")
            return
        with conn:
            while not self.stop.is_set():
                table = sql.Identifier("public", f"t{rng.randint(1, BUSY)}")
                key = rng.randint(1, 10)
                started = time.monotonic()
                try:
                    with conn.transaction():
                        conn.execute(sql.SQL("SELECT v FROM {} WHERE id = {}").format(table, sql.Literal(key)))
                        conn.execute(sql.SQL("UPDATE {} SET v = v + 1 WHERE id = {}").format(table, sql.Literal(key)))
                        conn.execute("SELECT pg_sleep(0.01)")  # hold the row and table locks a little
                except psycopg.Error as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                self.latencies.append(time.monotonic() - started)


def _pgwarden(args: list[str], cwd: Path, dsn: str, env: dict[str, str]) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        cwd=cwd,
        env={**os.environ, **env, "PGWARDEN_DSN": dsn, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def _page_steps() -> list[str]:
    """The pgwarden commands docs/adopting.md runs, in order (subcommand and options, no arguments)."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "adopting.md").read_text()
    steps = []
    for block in re.findall(r"^<!-- doc-test: shell -->\n```text\n(.*?)^```$", text, re.M | re.S):
        for line in re.findall(r"^\$ pgwarden (.*)$", block, re.M):
            steps.append(" ".join(w for w in line.split() if w.startswith("-") or w == line.split()[0]))
    return steps


def _setup(admin: str, db: str, app: str, app_password: str) -> None:
    """Everything owned by postgres; one client connects as its own login `app` (granted by hand), the
    others as postgres, as docs/adopting.md's database."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(app), sql.Literal(app_password)))
    with psycopg.connect(make_conninfo(admin, dbname=db), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN FOR i IN 1..{} LOOP "
                "EXECUTE format('CREATE TABLE public.t%s (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)', i); "
                "EXECUTE format('INSERT INTO public.t%s (id) SELECT generate_series(1, 10)', i); "
                "END LOOP; END $$"
            ).format(sql.Literal(TABLES))
        )
        for i in range(1, BUSY + 1):  # the app's own login works today, with grants from the admin
            conn.execute(
                sql.SQL("GRANT SELECT, UPDATE ON {} TO {}").format(
                    sql.Identifier("public", f"t{i}"), sql.Identifier(app)
                )
            )


def test_app_traffic_during_the_adoption_path(
    tmp_path: Path, pg_server: LocalServer, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """docs/adopting.md's steps, in its order, while the application works: one client as its own login,
    the others as postgres until the last step switches them, one by one, to the new role."""
    admin = pg_server.conninfo("postgres")
    db = pg_cleanup.database(unique_name("load"))
    owner, deploy = pg_cleanup.role(unique_name("owner")), pg_cleanup.role(unique_name("deploy"))
    app, web = pg_cleanup.role(unique_name("app")), pg_cleanup.role(unique_name("web"))
    app_password, web_password = "pw-" + unique_name("x"), "pw-" + unique_name("y")
    _setup(admin, db, app, app_password)
    env = {password_env_for(app): app_password, password_env_for(web): web_password, password_env_for(deploy): "pw-d"}
    load, switched = Load(), Load()
    postgres_clients = [Load() for _ in range(CLIENTS - 1)]
    clients = [threading.Thread(target=load.client, args=(role_conninfo(admin, app, app_password, db), 0))] + [
        threading.Thread(target=c.client, args=(make_conninfo(admin, dbname=db), n))
        for n, c in enumerate(postgres_clients, 1)
    ]
    for t in clients:
        t.start()
    lt = f"{int(LOCK_TIMEOUT_S * 1000)}ms"
    ran: list[tuple[str, tuple[int, str, float]]] = []

    def step(args: list[str]) -> tuple[int, str, float]:
        result = _pgwarden(args, tmp_path, admin, env)
        ran.append((" ".join(w for w in args if w.startswith("-") or w == args[0]), result))
        assert result[0] == 0, f"pgwarden {' '.join(args)}: {result[1]}"
        return result

    try:
        time.sleep(0.5)
        step(["init", "--from-database", db, "--owner", owner, "--deploy-login", deploy])
        policy = tmp_path / "pgwarden.toml"  # step 2 of the page: the application's own role
        text = policy.read_text() + f'\n[[roles]]\nname = "{web}"\npassword_env = "{password_env_for(web)}"\n'
        grant = f'  {{ role = "{web}", profile = "readwrite", schemas = ["public"] }},\n'
        policy.write_text(text.replace("grants = [\n", "grants = [\n" + grant, 1))
        step(["plan", "--mode", "additive"])
        step(["apply", "--yes", "--mode", "additive", "--lock-timeout", lt])
        adopt = step(["adopt", "--from", pg_server.superuser, "--yes", "--lock-timeout", lt, "--batch-size", "20"])
        step(["plan"])
        apply = step(["apply", "--yes", "--lock-timeout", lt])
        step(["plan", "--exit-code"])
        for c in postgres_clients:  # step 5: the rolling switch, one process after the other
            c.stop.set()
            t = threading.Thread(target=switched.client, args=(role_conninfo(admin, web, web_password, db), 99))
            clients.append(t)
            t.start()
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        load.stop.set()
        switched.stop.set()
        for c in postgres_clients:
            c.stop.set()
        for t in clients:
            t.join(timeout=60)
    everyone = [load, switched, *postgres_clients]
    lat = sorted(x for c in everyone for x in c.latencies)
    errors = [e for c in everyone for e in c.errors]
    max_wait = lat[-1] if lat else 0.0
    p99 = lat[int(len(lat) * 0.99)] if lat else 0.0
    print(
        f"\nunder load: {CLIENTS} app clients, {len(lat)} transactions, {len(errors)} errors, "
        f"max wait {max_wait * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
        f"(bound {LOCK_TIMEOUT_S + BATCH_ALLOWANCE_S:.1f} s); "
        f"adopt in {adopt[2]:.1f}s, apply in {apply[2]:.1f}s"
    )
    steps = [name.replace(" --lock-timeout", "").replace(" --batch-size", "") for name, _ in ran]
    assert steps == _page_steps(), "the load test no longer follows docs/adopting.md"
    assert errors == [], errors[:5]
    assert len(lat) > 50, "the application barely ran: the test proves nothing"
    assert max_wait <= LOCK_TIMEOUT_S + BATCH_ALLOWANCE_S, f"an application transaction waited {max_wait:.2f}s"
    with psycopg.connect(make_conninfo(admin, dbname=db), autocommit=True) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
    assert owners == [(owner,)]
    assert len(switched.latencies) > 5, "the clients switched to the new role did not work"
    code, out, _ = _pgwarden(["plan", "--exit-code"], tmp_path, admin, env)
    assert code == 0, out
