"""Django app for pgwarden: the system check, the migrate guard and the `pgwarden_check` command."""
