#!/usr/bin/env bash
# The fault, hostile-input and load tests at full strength, on every configured PostgreSQL version.
#
# CI runs the same files with small example counts, and the slow ones (SIGKILL/crash during a
# 3,000-table apply, readers during apply) on the newest version only. This script runs them all,
# everywhere, with more examples and more objects. See docs/security.md.
#
#   scripts/reliability.sh                 # versions 14-18
#   PGWARDEN_TEST_PG_VERSIONS=16 scripts/reliability.sh -x
set -euo pipefail
cd "$(dirname "$0")/.."
PYTEST="${PYTEST:-/work/venv/bin/pytest}"
[ -x "$PYTEST" ] || PYTEST=pytest

export PGWARDEN_SLOW_ALL_VERSIONS=1
export PGWARDEN_HOSTILE_EXAMPLES="${PGWARDEN_HOSTILE_EXAMPLES:-60}"
export PGWARDEN_FUZZ_EXAMPLES="${PGWARDEN_FUZZ_EXAMPLES:-500}"
export PGWARDEN_ATOMICITY_TABLES="${PGWARDEN_ATOMICITY_TABLES:-5000}"
export PGWARDEN_ATOMICITY_KILLS="${PGWARDEN_ATOMICITY_KILLS:-8}"

exec "$PYTEST" -s -p no:cacheprovider \
  tests/test_hostile_names.py tests/test_atomicity.py tests/test_concurrency.py tests/test_load.py \
  tests/test_secrets.py tests/test_bad_input.py tests/test_least_privilege.py tests/test_upgrade.py \
  "$@"
