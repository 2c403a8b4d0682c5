"""Under load: the app role keeps reading and writing while adopt and apply run; no app error, bounded waits."""

from __future__ import annotations

import os
import random
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
from helpers import role_conninfo, write_policy
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


def _pgwarden(args: list[str], path: Path, dsn: str, env: dict[str, str]) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pgwarden", *args, "-c", str(path), "--dsn", dsn],
        env={**os.environ, **env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def test_app_traffic_during_adopt_and_apply(
    tmp_path: Path, pg_server: LocalServer, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    admin = pg_server.conninfo("postgres")
    db = pg_cleanup.database(unique_name("load"))
    owner, app = pg_cleanup.role(unique_name("owner")), pg_cleanup.role(unique_name("app"))
    app_password = "pw-" + unique_name("x")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
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
        for i in range(1, BUSY + 1):  # the app already works today, with grants from the admin
            conn.execute(
                sql.SQL("GRANT SELECT, UPDATE ON {} TO {}").format(
                    sql.Identifier("public", f"t{i}"), sql.Identifier(app)
                )
            )
    path = write_policy(tmp_path / "p.toml", database=db, owner=owner, app=[app])
    text = path.read_text().replace("login = true", "login = false", 1)  # the owner: NOLOGIN, as created
    path.write_text(text)
    env = {password_env_for(app): app_password}

    load = Load()
    clients = [
        threading.Thread(target=load.client, args=(role_conninfo(admin, app, app_password, db), n))
        for n in range(CLIENTS)
    ]
    for t in clients:
        t.start()
    try:
        time.sleep(0.5)
        lt = f"{int(LOCK_TIMEOUT_S * 1000)}ms"
        adopt = _pgwarden(
            ["adopt", "--from", pg_server.superuser, "--yes", "--lock-timeout", lt, "--batch-size", "20"],
            path,
            admin,
            env,
        )
        apply = _pgwarden(["apply", "--yes", "--lock-timeout", lt], path, admin, env)
        time.sleep(0.5)
    finally:
        load.stop.set()
        for t in clients:
            t.join(timeout=60)
    lat = sorted(load.latencies)
    max_wait = lat[-1] if lat else 0.0
    p99 = lat[int(len(lat) * 0.99)] if lat else 0.0
    print(
        f"\nunder load: {CLIENTS} app clients, {len(lat)} transactions, {len(load.errors)} errors, "
        f"max wait {max_wait * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
        f"(bound {LOCK_TIMEOUT_S + BATCH_ALLOWANCE_S:.1f} s); "
        f"adopt exit {adopt[0]} in {adopt[2]:.1f}s, apply exit {apply[0]} in {apply[2]:.1f}s"
    )
    assert adopt[0] == 0, adopt[1]
    assert apply[0] == 0, apply[1]
    assert load.errors == [], load.errors[:5]
    assert len(lat) > 50, "the application barely ran: the test proves nothing"
    assert max_wait <= LOCK_TIMEOUT_S + BATCH_ALLOWANCE_S, f"an application transaction waited {max_wait:.2f}s"
    with psycopg.connect(make_conninfo(admin, dbname=db), autocommit=True) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
    assert owners == [(owner,)]
    code, out, _ = _pgwarden(["plan", "--exit-code"], path, admin, env)
    assert code == 0, out
