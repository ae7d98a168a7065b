#!/bin/bash
# tests/unit/with_postgres.sh - run a store unit test binary against both persistent backends:
# start a private PostgreSQL cluster (tests/lib/postgres.sh: Unix socket in a temp directory, no
# TCP), export DJ_TEST_PG_CONNINFO, run the binary (SQLite and memory first, then PostgreSQL:
# test_store_util.h), stop the cluster. The binary's exit status is the script's.
#
#   with_postgres.sh BINARY [ARGS...]
set -u
. "$(cd "$(dirname "$0")" && pwd)/../lib/postgres.sh"
[ $# -ge 1 ] || { echo "usage: with_postgres.sh BINARY [ARGS...]" >&2; exit 2; }
T=$(mktemp -d "${TMPDIR:-/tmp}/dj-pgunit.XXXXXX") || exit 1
trap 'pg_stop_all; rm -rf "$T"' EXIT
pg_start "$T/pg" || { echo "FAIL: no PostgreSQL cluster" >&2; exit 1; }
DJ_TEST_PG_CONNINFO=$PG_CONNINFO "$@"
