"""`manage.py pgwarden_check`: pgwarden's check (drift + hazards) against the project's database."""
# mypy: disable-error-code="import-untyped,misc"

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Check the database against the pgwarden policy (exit 1 on findings)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dsn", default=None, help="Admin connection (default: settings.PGWARDEN_DSN, $PGWARDEN_DSN, else PG*)."
        )
        parser.add_argument("--config", default=None, help="Policy file (default: settings.PGWARDEN_POLICY).")
        parser.add_argument("--fail-on", default="low", choices=["critical", "high", "medium", "low"])

    def handle(self, *args: Any, **options: Any) -> None:
        from pgwarden.check import run_check
        from pgwarden.contrib.django import admin_dsn_setting, policy_path_setting
        from pgwarden.errors import PgwardenError
        from pgwarden.policy import load_policy
        from pgwarden.render import findings_text
        from pgwarden.session import Session

        try:
            policy = load_policy(options["config"] or policy_path_setting())
            secrets = policy.secrets()
            with Session.open(options["dsn"] or admin_dsn_setting(), policy) as session:
                result = run_check(session, secrets)
        except PgwardenError as exc:
            # exit 2 like the CLI: pgwarden could not do its job (1 means it found something)
            raise CommandError(f"{exc.message}" + (f" (hint: {exc.hint})" if exc.hint else ""), returncode=2) from None
        self.stdout.write(findings_text(list(result.findings), options["fail_on"]))
        if result.failed(options["fail_on"]):
            raise CommandError("pgwarden check found problems", returncode=1)
