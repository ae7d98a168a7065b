#!/bin/bash
# test_pg_migrate.sh - danejoin-devices migrate --to CONNINFO (issue 13 items 4 and 5): an SQLite
# store with devices, nonce state, sessions, a tombstone, an ownership chain (enrolled and
# transferred by auth code through a real knotd), auth codes, transfer steps and audit rows is
# copied into a private PostgreSQL 15 cluster (tests/lib/postgres.sh) and comes across complete,
# row for row (tokens still wrapped: byte-identical). Negative cases: a non-empty target is
# refused and left as it was; a migrate killed mid-way (SIGKILL after 100 rows, a test hook)
# leaves the target empty, and a second migrate into it then works; a target that holds another
# master key's store is refused; an unreachable database is a clear error (exit 4).
#
# Usage: bash test_pg_migrate.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin pgmigrate "$@"
dj_need "$DEV"

# ---- the source: an SQLite store with every kind of row ---------------------------------------
dj_knot_start "$T/knot" "maker.test opa.test opb.test" "" || { echo "FAIL: knotd"; exit 1; }
NSADDR="127.0.0.1@$DJ_KNOT_PORT"
DNS=(--ns "$NSADDR" --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA" --ttl 60)
dj_genkey maker opa opb
dj_owner_publish 300 maker.test opa.test opb.test || exit 1
{
	dj_conf_store
	dj_conf_section join net_id=000013 session_lifetime=86400
} >dj.conf
(umask 077 && dj_devices_csv 300 1.1 >devices.csv && dj_devices_csv 6 1.0.4 | sed 's/^00000000000010/00000000000020/' >owned.csv)
check "store initialised, 300 devices imported" dj_store_init dj.conf devices.csv
"$DEV" --config dj.conf enroll owned.csv --zone opa.test --from-zone maker.test --key maker.key \
	--netids 000013 --as-ids as.opa.test "${DNS[@]}" >enroll.out 2>&1
check "6 devices enrolled by maker.test to opa.test (owners)" grep -q "enrolled 6 devices" enroll.out
dj_authcode_transfer 0000000000002001	# a transfers row (its auth code is spent)
"$DEV" --config dj.conf authcode set 0000000000002002 --zone opa.test --key opa.key \
	--ta-file "$DJ_KNOT_TA" --lookup-via "$NSADDR" --out codes2.csv >ac2.out 2>&1
check "an auth code left set (authcodes)" test $? -eq 0
"$DEV" --config dj.conf simulate --csv devices.csv --joins 2 >sim.out 2>&1
check "the simulator's joins (nonce state, sessions, audit)" test $? -eq 0
check "one device deleted (a tombstone)" "$DEV" --config dj.conf delete 0000000000001005
# outbox rows are written by danejoind with [mqtt] on; three unpublished events, in its format
sqlite3 js.db "INSERT INTO outbox(at, body) VALUES (1, x'0a01'), (2, x'0a02'), (3, x'')"

# the rows of every table as text, sorted, one column after the other: blobs (bytea) as upper-case
# hex (NULL as ''), other values as text (NULL as NULL); the same on both sides, compared below
tables="devices tombstones sessions audit outbox owners authcodes transfers"
sq_dump_hex() {
	local t cols
	for t in $tables; do
		echo "== $t"
		cols=$(sqlite3 js.db "SELECT group_concat(CASE WHEN type = 'BLOB' THEN 'hex(' || name || ')'
			ELSE 'COALESCE(CAST(' || name || ' AS TEXT), ''NULL'')' END, ' || ''|'' || ')
			FROM pragma_table_info('$t')")
		sqlite3 js.db "SELECT $cols FROM $t" | sort
	done
}
pg_dump_rows() {
	local db=$1 t cols
	for t in $tables; do
		echo "== $t"
		cols=$(psql -X -At -h "$PGD" -U postgres "$db" -c "SELECT string_agg(CASE WHEN
			data_type = 'bytea' THEN 'COALESCE(upper(encode(' || column_name || ', ''hex'')), '''')'
			ELSE 'COALESCE(' || column_name || '::text, ''NULL'')' END, ' || ''|'' || '
			ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = '$t'")
		psql -X -At -h "$PGD" -U postgres "$db" -c "SELECT $cols FROM $t" | sort
	done
}
sq_dump_hex >src.rows
for t in $tables; do printf '%s=%s ' "$t" "$(sqlite3 js.db "SELECT count(*) FROM $t")"; done >src.counts
echo "source: $(cat src.counts)"
check "the source has every kind of row" awk '{ for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[2] == 0) bad = 1 } } END { exit bad }' src.counts

# ---- the target: a private PostgreSQL cluster ------------------------------------------------
pg_start "$T/pg" || { echo "FAIL: postgres"; exit 1; }
PGD=$PG_DIR
"$DEV" --config dj.conf migrate --to "$PG_CONNINFO" >mig.out 2>mig.err
rc=$?
cat mig.out
check "migrate: exit 0" test $rc -eq 0
check "migrate: progress on stderr" grep -q "rows (100%" mig.err
pg_dump_rows dj >dst.rows
check "every row came across, byte for byte (tokens still wrapped)" cmp -s src.rows dst.rows \
	|| diff src.rows dst.rows | head -20
nseq=$(pg_psql "$PGD" "SELECT nextval(pg_get_serial_sequence('audit', 'id')) > (SELECT max(id) FROM audit)")
check "the audit id sequence continues after the copied ids" test "$nseq" = t
check "the SQLite instance id kept (stable event ids)" test \
	"$(sqlite3 js.db "SELECT hex(v) FROM meta WHERE k='instance'")" = \
	"$(pg_psql "$PGD" "SELECT upper(encode(v, 'hex')) FROM meta WHERE k='instance'")"

# ---- a non-empty target is refused and left as it was -----------------------------------------
"$DEV" --config dj.conf migrate --to "$PG_CONNINFO" >mig2.out 2>mig2.err
rc=$?
check "non-empty target: exit 4" test $rc -eq 4
check "non-empty target: a clear error" grep -q "target database is not empty (table devices has rows)" mig2.err
pg_dump_rows dj >dst2.rows
check "non-empty target: unchanged" cmp -s dst.rows dst2.rows

# ---- an interrupted migrate leaves the target empty ------------------------------------------
"$PG_BIN/createdb" -h "$PGD" -U postgres dj2
C2="host=$PGD dbname=dj2 user=postgres"
DJ_TEST_MIGRATE_KILL_AFTER=100 "$DEV" --config dj.conf migrate --to "$C2" >mig3.out 2>mig3.err
rc=$?
check "interrupted migrate: killed mid-way (SIGKILL)" test $rc -eq 137
left=$(for t in $tables; do psql -X -At -h "$PGD" -U postgres dj2 -c "SELECT count(*) FROM $t"; done | paste -sd+ | bc)
check "interrupted migrate: the target is empty ($left rows)" test "$left" = 0
"$DEV" --config dj.conf migrate --to "$C2" >mig4.out 2>mig4.err
check "after the interruption, migrate into the same database works" test $? -eq 0
pg_dump_rows dj2 >dst4.rows
check "... and every row came across" cmp -s src.rows dst4.rows

# ---- a store of another master key; an unreachable database -----------------------------------
mkdir other && (cd other && dj_conf_store >dj.conf && dj_store_init dj.conf ../devices.csv)
"$PG_BIN/createdb" -h "$PGD" -U postgres dj3
(cd other && "$DEV" --config dj.conf migrate --to "$PG_CONNINFO") >mig5.out 2>mig5.err
rc=$?
check "another master key's store in the target: exit 4" test $rc -eq 4
check "another master key's store in the target: said so" grep -q "another master key" mig5.err
"$DEV" --config dj.conf migrate --to "host=$T/nowhere dbname=dj user=postgres connect_timeout=2" \
	>mig6.out 2>mig6.err
rc=$?
check "unreachable database: exit 4" test $rc -eq 4
check "unreachable database: a clear error" grep -q "cannot open the target database" mig6.err
"$DEV" --config dj.conf migrate >u1.out 2>&1
check "migrate without --to: usage error (exit 1), naming --to" test $? -eq 1 -a -n "$(grep -- '--to CONNINFO is required' u1.out)"
"$DEV" --config dj.conf list --to "$PG_CONNINFO" >u2.out 2>&1
check "--to on another command: usage error (exit 1)" test $? -eq 1 -a -n "$(grep -- '--to is only for migrate' u2.out)"
DJ_STORE_CONNINFO=$PG_CONNINFO dj_conf_store >pgsrc.conf
"$DEV" --config pgsrc.conf migrate --to "$C2" >u3.out 2>&1
check "a PostgreSQL configuration as the source: exit 2, said so" test $? -eq 2 -a -n "$(grep 'copies an SQLite store' u3.out)"
check "the source store was not changed by any of this" test "$(sq_dump_hex | md5sum)" = "$(md5sum <src.rows)"
dj_end mig.err mig3.err
