"""manage.py of the small Django project used by tests/test_django.py."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_cfg.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
