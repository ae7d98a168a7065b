#!/bin/bash
# test_pg_ownership.sh - an ownership transfer made by danejoin-devices against PostgreSQL takes
# effect on every instance (issue 13): a private PostgreSQL cluster, a real knotd (DNSSEC-signed
# zones, TSIG updates), two danejoind on the one database with [js] ownership = on and
# auth = dane, danejoin-client as the network servers of operators A and B.
#
#   a device enrolled by the manufacturer (maker.test) to A (opa.test) joins through A's NS on
#   both instances and is refused to B's NS on both (each instance caches A's verdict); A sets an
#   auth code and danejoin-devices transfers the device to B (opb.test) against PostgreSQL; once
#   the documented bound has passed (the cached verdict's life: the chain's TTL, 4 s here, moved
#   on with the test clock), both instances refuse A's NS and accept B's. The check also holds
#   right after the transfer (no instance keeps the old owner while the registry has changed).
#
# Usage: bash test_pg_ownership.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin pgown "$@"
dj_need "$JSD" "$CLI" "$DEV"

check "a private PostgreSQL cluster starts" pg_start "$T/pg" || dj_end
DJ_STORE_CONNINFO=$PG_CONNINFO

# ---- the DNS: the manufacturer, operators A and B -------------------------------------------
dj_owner_dns || dj_end
PA=$(dj_free_port)
PB=$(dj_free_port)
dj_owner_publish 300 maker.test opa.test opb.test || dj_end
dj_tlsa_publish maker.test 300 _$PA._tcp.js.maker.test=js.crt _$PB._tcp.js.maker.test=js.crt ||
	{ echo "FAIL: js TLSA"; dj_end; }
dj_tlsa_publish opa.test 300 _ns-client.ns1.opa.test=nsa.crt || { echo "FAIL: nsa TLSA"; dj_end; }
dj_tlsa_publish opb.test 300 _ns-client.ns1.opb.test=nsb.crt || { echo "FAIL: nsb TLSA"; dj_end; }
dj_knot_wait _ns-client.ns1.opb.test. TLSA "3 1 1" || { echo "FAIL: records"; dj_end; }

# conf PORT MPORT - one instance's configuration (the same database, ownership on)
conf() {
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:$1 cert_file=js.crt key_file=js.key \
		metrics_address=127.0.0.1:$2
	dj_conf_section dane trust_anchor_file="$DJ_KNOT_TA" stubs="$STUBS" ttl_cap=60 neg_ttl=2 \
		timeout_ms=1000
	dj_conf_section js join_euis=70b3d57ed0000000/48 home_net_id=000042 ownership=on
	dj_conf_peer nsa ns1.opa.test ns 000013 plain_keys=yes
	dj_conf_peer nsb ns1.opb.test ns 00001a plain_keys=yes
}
conf "$PA" "$(dj_free_port)" >dj.conf
conf "$PB" "$(dj_free_port)" >b.conf
(umask 077 && dj_devices_csv 2 1.0.4 >devices.csv)
D1=0000000000001001
check "store initialised on PostgreSQL" dj_store_init dj.conf
"$DEV" --config dj.conf enroll devices.csv --zone opa.test --from-zone maker.test --key maker.key \
	--netids 000013 --as-ids as.opa.test "${DNS[@]}" >enroll.out 2>&1
check "2 devices enrolled by maker.test to opa.test" grep -q "enrolled 2 devices" enroll.out
check "... the owner rows are in PostgreSQL" \
	test "$(pg_psql "$T/pg" "SELECT zone FROM owners WHERE dev_eui='\\x$D1'")" = opa.test.
check "... the chain published" dj_knot_wait "_ownership.$D1._device.opa.test." TXT .

dj_test_clock	# the verdict cache's life passes by dj_clock_advance
check "danejoind A listens (PostgreSQL)" dj_jsd_start dj.conf a.log "$PA"
dj_spawn b.log b.err "$JSD" --config b.conf -v
check "danejoind B listens (the same database)" dj_wait_port "$PB" "$DJ_PID"

DANE=(--trust-anchor "$DJ_KNOT_TA" --stub "$STUBS")
# join WHO PORT: a JoinReq for D1 from A's (nsa) or B's (nsb) NS to the instance on PORT
join() {
	local who=$1 sid=000013
	[ "$who" = nsb ] && sid=00001a
	"$CLI" join --url "https://127.0.0.1:$2/" --server-name js.maker.test "${DANE[@]}" \
		--cert $who.crt --key $who.key --sender-id $sid --sender-ns-id ns.test \
		--allow-plain-keys --sim devices.csv --dev-eui $D1 >r.json 2>r.err
}
joins() { # DESC WHO PORT: the join is answered Success, the device side checks the keys
	join "$2" "$3"
	check "$1 (exit $?)" grep -q "session keys match" r.err
}
refused() { # DESC WHO PORT ZONE: ActivationDisallowed, the peer not in the owner zone ZONE
	join "$2" "$3"
	check "$1: ActivationDisallowed" grep -q ActivationDisallowed r.json
	check "... Description names the owner zone $4" grep -q "is not in the owner zone $4" r.json
}

# ---- owner A, on both instances --------------------------------------------------------------
joins "A's NS joins the device on instance A" nsa "$PA"
joins "A's NS joins the device on instance B" nsa "$PB"
refused "B's NS on instance A" nsb "$PA" opa.test.
refused "B's NS on instance B" nsb "$PB" opa.test.

# ---- transfer to B by auth code, against PostgreSQL ------------------------------------------
dj_authcode_transfer "$D1"
check "... the owner row is B's in PostgreSQL" \
	test "$(pg_psql "$T/pg" "SELECT zone FROM owners WHERE dev_eui='\\x$D1'")" = opb.test.
check "... the old name is a CNAME" dj_knot_wait "$D1._device.opa.test." CNAME "$D1._device.opb.test."
# at once (what a single instance does today): the registry row has changed for both
refused "right after the transfer, A's NS on instance A" nsa "$PA" opb.test.
refused "right after the transfer, A's NS on instance B" nsa "$PB" opb.test.
# past the documented bound: the cached verdicts (chain TTL 4 s) have expired everywhere
dj_clock_advance 5
joins "past the bound, B's NS joins on instance A" nsb "$PA"
joins "past the bound, B's NS joins on instance B" nsb "$PB"
refused "past the bound, A's NS on instance A" nsa "$PA" opb.test.
refused "past the bound, A's NS on instance B" nsa "$PB" opb.test.
check "the transfer is in the audit log" bash -c \
	"'$DEV' --config dj.conf audit $D1 | grep -q transfer"
check "danejoind A stops cleanly" dj_jsd_stop
dj_end a.log b.err b.log
