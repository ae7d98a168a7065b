#!/bin/bash
# bench_pg_read.sh - the PostgreSQL store's group read against single reads (issue 15): a
# private cluster (tests/lib/postgres.sh: Unix socket, no TCP), then bench_pg_read (DEVICES
# devices; per mode and round GROUPS groups of 32: wall, round trips, client and server CPU per
# group). Then, on a second database with log_statement = all, a short run whose server log
# is counted: the statements the server executed for the group read (dev_eui = ANY) and for the
# single read (dev_eui=$1). Prints figures; asserts nothing about time.
#
#   bench_pg_read.sh BUILD [DEVICES [GROUPS [ROUNDS]]]
set -u
. "$(cd "$(dirname "$0")" && pwd)/../lib/postgres.sh"
[ $# -ge 1 ] || { echo "usage: bench_pg_read.sh BUILD [DEVICES [GROUPS [ROUNDS]]]" >&2; exit 2; }
B=$1 DEVS=${2:-20000} GROUPS_N=${3:-2000} ROUNDS=${4:-3}
BIN=$B/tests/bench/bench_pg_read
[ -x "$BIN" ] || { echo "bench_pg_read.sh: no $BIN" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/dj-pgread.XXXXXX") || exit 1
trap 'pg_stop_all; rm -rf "$T"' EXIT
pg_start "$T/pg" >/dev/null || { echo "bench_pg_read.sh: no PostgreSQL cluster" >&2; exit 1; }
"$BIN" "$PG_CONNINFO" "$PG_DIR" "$DEVS" "$GROUPS_N" "$ROUNDS" || exit 1

# the server's own count: every statement it executed, from its log
LOGN=$((GROUPS_N < 100 ? GROUPS_N : 100))
"$PG_BIN/createdb" -h "$PG_DIR" -U postgres dj2 || exit 1
pg_psql "$PG_DIR" "ALTER SYSTEM SET log_statement = 'all'" >/dev/null &&
	pg_psql "$PG_DIR" "SELECT pg_reload_conf()" >/dev/null || exit 1
: >"$PG_DIR/log"
"$BIN" "host=$PG_DIR dbname=dj2 user=postgres" "$PG_DIR" 1000 "$LOGN" 1 >/dev/null || exit 1
pg_psql "$PG_DIR" "ALTER SYSTEM RESET log_statement" >/dev/null
many=$(grep -c 'execute dj_x[0-9]*: SELECT .* FROM devices WHERE dev_eui = ANY' "$PG_DIR/log")
single=$(grep -c 'execute dj_x[0-9]*: SELECT .* FROM devices WHERE dev_eui=\$1' "$PG_DIR/log")
echo "server log (log_statement = all), 1,000 devices, 32 + $LOGN groups per mode:"
echo "  statements executed: group read (dev_eui = ANY) $many, single read (dev_eui=\$1) $single"
echo "  per group: group read $(awk -v a="$many" -v g="$((LOGN + 32))" 'BEGIN { printf "%.2f", a / g }')," \
	"single read $(awk -v a="$single" -v g="$((LOGN + 32))" 'BEGIN { printf "%.2f", a / g }')"
