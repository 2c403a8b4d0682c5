"""The one error hierarchy: every failure a user can hit is a PgwardenError with a hint."""

from __future__ import annotations


class PgwardenError(Exception):
    """Something stopped pgwarden from doing its job; the CLI prints it as one line and exits 2."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class PolicyError(PgwardenError):
    """The policy file is missing, malformed or inconsistent."""


class ConnectError(PgwardenError):
    """pgwarden could not connect (wrong host, password, database, pg_hba)."""


class PrivilegeError(PgwardenError):
    """The connected role lacks a privilege a step needs."""


class ApplyError(PgwardenError):
    """A statement failed while applying; the transaction was rolled back."""


class ApplyInterrupted(ApplyError):
    """Ctrl-C (or SIGTERM turned into it) during apply: what was committed stays, the rest was rolled back."""

    exit_code = 130


class ServerError(PgwardenError):
    """A throwaway local PostgreSQL server could not be found, started or stopped."""
