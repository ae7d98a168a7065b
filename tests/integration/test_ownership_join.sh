#!/bin/bash
# test_ownership_join.sh - joins authorized by ownership (issue 6 deliverable 3, DESIGN.md rule
# 3) end to end: a real knotd (DNSSEC-signed zones, TSIG updates), danejoind with
# [js] ownership = on and auth = dane, danejoin-devices for enrollment and transfers, and
# danejoin-client as the network servers of operators A and B.
#
#   a device enrolled by the manufacturer (maker.test) to A (opa.test): A's NS (identity in
#   opa.test, SenderID in the rights) joins; B's NS and A's NS with a NetID outside the rights
#   are refused (ActivationDisallowed); HomeNSAns names the owner's NetID; the refusals are in
#   the audit log. Transfer to B by auth code: B's NS joins, A's NS is refused. A tampered
#   _ownership TXT (bad signature) is refused; an owner key missing from the DNS is refused;
#   knotd stopped: served from the cache within the chain's TTL, refused with
#   "ownership: DNS unavailable" once it expired (fail closed), served again when knotd is back.
#
# Usage: bash test_ownership_join.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin ownjoin "$@"
dj_need "$JSD" "$CLI" "$DEV"
q() { dj_knot_q "$@"; }

# ---- the DNS: the manufacturer, operators A and B -------------------------------------------
dj_owner_dns || exit 1
PORT=$(dj_free_port)
MPORT=$(dj_free_port)
# client and server TLSA: TTL 300 (cached ttl_cap = 60 s); the chains get --ttl 4
dj_owner_publish 300 maker.test opa.test opb.test || exit 1
dj_tlsa_publish maker.test 300 _$PORT._tcp.js.maker.test=js.crt || { echo "FAIL: js TLSA"; exit 1; }
dj_tlsa_publish opa.test 300 _ns-client.ns1.opa.test=nsa.crt || { echo "FAIL: nsa TLSA"; exit 1; }
dj_tlsa_publish opb.test 300 _ns-client.ns1.opb.test=nsb.crt || { echo "FAIL: nsb TLSA"; exit 1; }
dj_knot_wait _ns-client.ns1.opb.test. TLSA "3 1 1" || { echo "FAIL: records"; exit 1; }

# ---- danejoind: ownership on; A's NS may use 000013 and 000099, B's NS 00001a -----------------
{
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:$PORT cert_file=js.crt key_file=js.key \
		metrics_address=127.0.0.1:$MPORT
	dj_conf_section dane trust_anchor_file="$DJ_KNOT_TA" stubs="$STUBS" ttl_cap=60 neg_ttl=2 \
		timeout_ms=1000
	dj_conf_section js join_euis=70b3d57ed0000000/48 home_net_id=000042 ownership=on
	dj_conf_peer nsa ns1.opa.test ns "000013 000099" plain_keys=yes
	dj_conf_peer nsb ns1.opb.test ns 00001a plain_keys=yes
} >dj.conf
(umask 077 && dj_devices_csv 6 1.0.4 >devices.csv)
D1=0000000000001001
D2=0000000000001002
D4=0000000000001004
D5=0000000000001005
check "store initialised" dj_store_init dj.conf
"$DEV" --config dj.conf enroll devices.csv --zone opa.test --from-zone maker.test --key maker.key \
	--netids 000013 --as-ids as.opa.test "${DNS[@]}" >enroll.out 2>&1
check "6 devices enrolled by maker.test to opa.test" grep -q "enrolled 6 devices" enroll.out
check "... their chains published" dj_knot_wait "_ownership.$D5._device.opa.test." TXT .

check "--check-config accepts [js] ownership = on" dj_check_config 0 dj.conf
sed 's/^ownership = on/ownership = maybe/' dj.conf >bad.conf
check "--check-config refuses ownership = maybe" dj_check_config 2 bad.conf
dj_test_clock	# the cache lifetimes below pass by dj_clock_advance
check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"

DANE=(--trust-anchor "$DJ_KNOT_TA" --stub "$STUBS")
URL=(--url "https://127.0.0.1:$PORT/" --server-name js.maker.test)
# join WHO DEVEUI [extra...]: a JoinReq from A's (nsa) or B's (nsb) NS; JSON in r.json
join() {
	local who=$1 dev=$2 sid=000013
	shift 2
	[ "$who" = nsb ] && sid=00001a
	"$CLI" join "${URL[@]}" "${DANE[@]}" --cert $who.crt --key $who.key --sender-id $sid \
		--sender-ns-id ns.test --allow-plain-keys --sim devices.csv --dev-eui "$dev" "$@" \
		>r.json 2>r.err
}
refused() { # DESC PATTERN: the last answer is ActivationDisallowed naming PATTERN
	check "$1: ActivationDisallowed" grep -q ActivationDisallowed r.json
	check "... Description: $2" grep -q -- "$2" r.json
}

# ---- owner A ---------------------------------------------------------------------------------
join nsa $D1
check "A's NS joins a device of A (exit $?)" test $? -eq 0
join nsb $D1
refused "B's NS joins a device of A" "ns1.opb.test is not in the owner zone opa.test."
join nsa $D1 --sender-id 000099
refused "A's NS with a NetID outside the rights" "NetID 000099 is not among the rights of opa.test."
"$CLI" homens "${URL[@]}" "${DANE[@]}" --cert nsa.crt --key nsa.key --sender-id 000013 \
	--sender-ns-id ns.test --receiver-id 70b3d57ed0000001 --dev-eui $D1 >h.json 2>h.err
check "HomeNSAns names the owner's NetID 000013 (not home_net_id 000042)" \
	grep -qi '"HNetID":"000013"' h.json
"$CLI" homens "${URL[@]}" "${DANE[@]}" --cert nsb.crt --key nsb.key --sender-id 00001a \
	--sender-ns-id ns.test --receiver-id 70b3d57ed0000001 --dev-eui $D1 >h.json 2>h.err
check "HomeNSReq from B's NS: UnknownDevEUI" grep -q UnknownDevEUI h.json
check "refusals logged" grep -q "ownership: NetID 000099 is not among the rights" jsd.log
check "refusals in the audit log" test "$(sqlite3 js.db \
	"SELECT count(*) FROM audit WHERE event='ownership-refused'")" -ge 3

# ---- transfer to B by auth code: B's NS joins, A's NS is refused ------------------------------
dj_authcode_transfer "$D1"
check "... the old name is a CNAME" dj_knot_wait "$D1._device.opa.test." CNAME "$D1._device.opb.test."
join nsb $D1
check "after the transfer B's NS joins (exit $?)" test $? -eq 0
join nsa $D1
refused "after the transfer A's NS" "ns1.opa.test is not in the owner zone opb.test."

# ---- a tampered chain: the last byte of the signature flipped ---------------------------------
dj_knot_txt_tamper "_ownership.$D2._device.opa.test." opa.test
check "a tampered chain published (TSIG update)" test $? -eq 0
join nsa $D2
refused "a chain with a forged signature" "bad signature"

# ---- fail closed: the DNS stopped past the chain's validity ----------------------------------
PKIX=(--url "https://127.0.0.1:$PORT/" --server-name js.maker.test --ca js.crt)
pjoin() {
	"$CLI" join "${PKIX[@]}" --cert nsa.crt --key nsa.key --sender-id 000013 \
		--sender-ns-id ns.test --allow-plain-keys --sim devices.csv --dev-eui "$1" \
		>r.json 2>r.err
}
pjoin $D4
check "D4 joins (the chain verified and cached)" test $? -eq 0
dj_knot_stop
pjoin $D4
check "knotd stopped: D4 still joins from the cached verdict (exit $?)" test $? -eq 0
dj_clock_advance 5	# the chain's TTL (4 s) runs out
pjoin $D4
refused "knotd stopped past the cached validity (fail closed)" "ownership: DNS unavailable"
dj_knot_restart
dj_knot_wait "_ownership.$D4._device.opa.test." TXT . >/dev/null
pjoin $D4
check "knotd back: D4 joins again (exit $?)" test $? -eq 0

# ---- an owner key missing from the DNS --------------------------------------------------------
"$DEV" --config dj.conf transfer-request $D5 --zone opa.test --to-zone opb.test --key opa.key \
	--netids 00001a --as-ids as.opb.test --out req.txt >tq.out 2>&1 &&
	"$DEV" --config dj.conf transfer --requests req.txt "${DNS[@]}" >tr.out 2>&1
check "D5 to B by a request signed by A" grep -q "transferred 1 devices" tr.out
dj_knot_update opa.test <<EOF
update delete _owner.opa.test. TLSA
EOF
check "A's _owner key withdrawn" test $? -eq 0
join nsb $D5
refused "a chain whose signer's key is missing from the DNS" "no key"

curl -s "http://127.0.0.1:$MPORT/metrics" >metrics
check "metrics count ownership refusals" \
	grep -q 'danejoin_ownership_checks_total{verdict="refused"} [1-9]' metrics
check "... and cache hits" grep -q 'danejoin_ownership_cache_hits_total [1-9]' metrics
dj_jsd_stop
check "no key material in the log" bash -c "! grep -qi 'AppKey\":\"[0-9a-f]' jsd.log"
dj_end jsd.log
