"""Run pgwarden as ``python -m pgwarden``."""

from pgwarden.cli import main

main()
