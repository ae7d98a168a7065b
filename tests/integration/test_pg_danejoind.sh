#!/bin/bash
# test_pg_danejoind.sh - danejoind on the PostgreSQL store (issue 13), against a private cluster
# (tests/lib/postgres.sh, Unix socket, no TCP) and over real mutual TLS on loopback.
#
# Covers: [store] backend = postgresql in --check-config (a password in conninfo refused, a
# passfile not 0600 refused, one of mode 0600 accepted); danejoin-devices init/import/show on
# PostgreSQL; joins (1.0.3, 1.1) answered and checked by danejoin-client's device side; a second
# danejoind on the same database answering AppSKeyReq for a join made on the first; the
# database stopped under a running danejoind: a join answered JoinReqFailed (or HTTP 503),
# never Success; the database started again: joins succeed without restarting danejoind, and
# the JoinNonce went on from where it was; danejoin-devices list, show, audit, check,
# reset-nonces, restore-guard, rewrap, delete and re-import on PostgreSQL; danejoind started
# while the database is down:
# a clear error and exit 4, no fallback to SQLite.
#
# Usage: bash test_pg_danejoind.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin pgjsd "$@"
dj_need "$JSD" "$CLI" "$DEV"

check "a private PostgreSQL cluster starts" pg_start "$T/pg" || dj_end
DJ_STORE_CONNINFO=$PG_CONNINFO

dj_mkroot root
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test as1:DNS:as1.test
dj_kek ns1
openssl rand -hex 32 >as1.kek
chmod 600 ./*.key ./*.kek

PORT=$(dj_free_port)
PORTB=$(dj_free_port)
conf() {	# conf PORT: the configuration of one instance
	dj_conf_pkix "$1" off
	dj_conf_section join session_lifetime=3600
	dj_conf_peer as1 as1.test as as-1 join_euis=70b3d57ed0000000/48 kek_label=as1-kek \
		kek_file=as1.kek
}
conf "$PORT" >dj.conf
conf "$PORTB" >djb.conf
key() { openssl rand -hex 16; }
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000103,70b3d57ed0000001,1.0.3,$(key),"
	echo "0000000000000110,70b3d57ed0000001,1.1,$(key),$(key)"
} >devices.csv
chmod 600 devices.csv

# ---- store, configuration, danejoind ---------------------------------------------------------------
check "danejoin-devices init + import on PostgreSQL" dj_store_init dj.conf devices.csv
check "... the devices are in the database" \
	test "$(pg_psql "$T/pg" 'SELECT count(*) FROM devices')" = 2

# ---- configuration -------------------------------------------------------------------------
check "--check-config accepts backend = postgresql" dj_check_config 0 dj.conf
sed "s|^conninfo = .*|& password=secret|" dj.conf >pw.conf
check "--check-config refuses a password in conninfo (exit 2)" dj_check_config 2 pw.conf
check "... saying to use a passfile" grep -q "passfile" check.out
check "... never echoing the password" bash -c "! grep -q secret check.out"
echo "*:*:*:*:secret" >pgpass && chmod 644 pgpass
sed "s|^conninfo = .*|&\npassfile = pgpass|" dj.conf >pf.conf
check "--check-config refuses a passfile of mode 0644 (exit 2)" dj_check_config 2 pf.conf
check "... naming the mode" grep -q "0600" check.out
chmod 600 pgpass
check "--check-config accepts a passfile of mode 0600" dj_check_config 0 pf.conf
sed "s|^backend = .*|backend = oracle|" dj.conf >bk.conf
check "--check-config refuses an unknown backend (exit 2)" dj_check_config 2 bk.conf

check "danejoind A listens (PostgreSQL store)" dj_jsd_start dj.conf jsd.log "$PORT"
dj_spawn jsdb.log jsdb.err "$JSD" --config djb.conf -v
JSDB=$DJ_PID
check "danejoind B listens on the same database" dj_wait_port "$PORTB" "$JSDB"

NS=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt --key ns1.key
	--sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek --kek-file ns1.kek)
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000103 >j103.json 2>j103.err
check "1.0.3 JoinReq accepted on A, keys match" grep -q "session keys match" j103.err
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000110 >j110.json 2>j110.err
check "1.1 JoinReq accepted on A, keys match" grep -q "session keys match" j110.err
SKID=$(sed -n 's/.*"SessionKeyID":"\([0-9a-fA-F]*\)".*/\1/p' j110.json)
check "... SessionKeyID present" test -n "$SKID"
AS1B=(--url "https://127.0.0.1:$PORTB/" --server-name js.test --ca root.crt --cert as1.crt
	--key as1.key --sender-id as-1 --receiver-id 70b3d57ed0000001 --kek-label as1-kek
	--kek-file as1.kek)
"$CLI" appskey "${AS1B[@]}" --dev-eui 0000000000000110 --session-key-id "$SKID" >ak.json 2>ak.err
check "AppSKeyReq on B for the join made on A succeeds" grep -q '"AppSKey":{"KEKLabel":"as1-kek"' ak.json
JN1=$(pg_psql "$T/pg" "SELECT join_nonce_last FROM devices WHERE dev_eui='\\x0000000000000110'")
check "JoinNonce recorded ($JN1)" test "${JN1:--1}" -ge 0

# ---- the database goes away ----------------------------------------------------------------
pg_stop "$T/pg" fast
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000110 >down.json 2>down.err
RC=$?
check "a join while PostgreSQL is down is not accepted (exit $RC)" test $RC -ne 0
check "... answered JoinReqFailed or HTTP 503" grep -Eq "JoinReqFailed|503" down.json down.err
check "... never Success" bash -c "! grep -q '\"Result\":{\"ResultCode\":\"Success\"' down.json"
check "danejoind A is still running" kill -0 "$DJ_JSD_PID"
check "... and logged the lost database" grep -Eqi "postgresql|connection" jsd.log

check "PostgreSQL starts again" pg_start_again "$T/pg"
ok_join() {
	"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000110 >up.json 2>up.err &&
		grep -q "session keys match" up.err
}
check "joins succeed again without restarting danejoind" dj_wait_for 20 ok_join
JN2=$(pg_psql "$T/pg" "SELECT join_nonce_last FROM devices WHERE dev_eui='\\x0000000000000110'")
check "... the JoinNonce went on ($JN1 -> $JN2)" test "${JN2:--1}" -gt "${JN1:--1}"
check "danejoind A stops cleanly" dj_jsd_stop
dj_stop "$JSDB"

# ---- danejoin-devices commands on PostgreSQL ------------------------------------------------
DV() { "$DEV" --config dj.conf "$@" >dv.out 2>dv.err; }
DV list
check "list shows both devices" test "$(grep -c . dv.out)" -ge 2
check "show prints the nonce state" DV show 0000000000000110
check "... JoinNonce $JN2" grep -q "$JN2" dv.out
check "audit lists the joins" DV audit 0000000000000110
check "... join-accept entries" grep -q "join-accept" dv.out
check "check answers ok" DV check
check "reset-nonces on one device" DV reset-nonces 0000000000000110
check "restore-guard --bump 100" DV restore-guard --bump 100
JN3=$(pg_psql "$T/pg" "SELECT join_nonce_last FROM devices WHERE dev_eui='\\x0000000000000110'")
check "... JoinNonce raised by 100 ($JN2 -> $JN3)" test "${JN3:--1}" -eq $((JN2 + 100))
openssl rand -hex 32 >master2.key && chmod 600 master2.key
check "rewrap to a new master key" DV rewrap --new-master-key master2.key
sed -i 's|^master_key_file = .*|master_key_file = master2.key|' dj.conf
check "... the store opens with the new key" DV show 0000000000000110
check "delete a device" DV delete 0000000000000103
check "... gone, tombstoned" test "$(pg_psql "$T/pg" 'SELECT count(*) FROM devices'),$(pg_psql "$T/pg" 'SELECT count(*) FROM tombstones')" = "1,1"
check "re-import continues from the tombstone" bash -c "head -2 devices.csv >one.csv && '$DEV' --config dj.conf import one.csv >/dev/null 2>&1"
check "... device-resume audited" bash -c "'$DEV' --config dj.conf audit 0000000000000103 | grep -q device-resume"

# ---- danejoin-devices check: rules on the rows, read by SQL ---------------------------------
check "check on the clean store exits 0" DV check
check "... and prints ok" grep -qx ok dv.out
check "... indexes checked or amcheck reported unavailable" \
	bash -c "! grep -q 'bt_index_check' dv.out"
pg_psql "$T/pg" "UPDATE devices SET join_nonce_last=99999999 WHERE dev_eui='\\x0000000000000110'" >/dev/null
DV check
RC=$?
check "check on a JoinNonce out of range exits 4 (got $RC)" test $RC -eq 4
check "... naming the table, the DevEUI and the rule" \
	grep -q "devices: DevEUI 0000000000000110: join_nonce_last is neither -1 nor within" dv.out
check "... not ok" bash -c "! grep -qx ok dv.out"
check "... the error names the PostgreSQL store, not its conninfo" \
	bash -c "grep -q 'store (PostgreSQL) fails its integrity check' dv.err && ! grep -q 'dbname=' dv.err"
check "... and no token bytes printed" bash -c "! grep -Eqi '[0-9a-f]{32}' dv.out"
pg_psql "$T/pg" "UPDATE devices SET join_nonce_last=$JN3 WHERE dev_eui='\\x0000000000000110'" >/dev/null
pg_psql "$T/pg" "ALTER TABLE sessions DROP CONSTRAINT sessions_dev_eui_fkey" >/dev/null
pg_psql "$T/pg" "INSERT INTO sessions VALUES('\\x0000000000000999000001', '\\x0000000000000999', 0, 0, '\\x00')" >/dev/null
DV check
RC=$?
check "check on a session whose device is gone exits non-zero (got $RC)" test $RC -ne 0
check "... naming sessions, the DevEUI and the rule" \
	grep -q "sessions: DevEUI 0000000000000999: its device does not exist" dv.out
pg_psql "$T/pg" "INSERT INTO dj_schema VALUES(1)" >/dev/null
DV check
RC=$?
check "check on a dj_schema of two rows exits non-zero (got $RC)" test $RC -ne 0
check "... naming dj_schema and the version expected" grep -q "dj_schema: version .*expects version" dv.out

# ---- no database at start: exit 4, no fallback ---------------------------------------------
pg_stop "$T/pg" fast
"$JSD" --config dj.conf >nodb.out 2>&1
RC=$?
check "danejoind with the database down exits 4 (got $RC)" test $RC -eq 4
check "... naming the PostgreSQL store" grep -q "conninfo: PostgreSQL" nodb.out
check "... and no SQLite file was made" test ! -e js.db
check "... no password or conninfo echoed" bash -c "! grep -q 'dbname=dj' nodb.out"

dj_end jsd.log jsdb.log
