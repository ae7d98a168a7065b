#!/bin/bash
# test_admin_dane.sh - the trust views of the management API against real DNSSEC: knotd serves
# a signed zone and an unsigned one; danejoind runs with auth = dane and [admin].
#
# Covers: GET /api/v1/peers gives each peer's TLSA verdict at its DANE name
# (_ns-client.HOST) with the TTL left: secure for a published record, insecure in the unsigned
# zone, nxdomain for a name with none; withdrawing a peer's TLSA record by TSIG update turns
# its verdict from secure to a secure denial once the cached answer expires (ttl_cap 3 s);
# GET /api/v1/self compares our certificate with our published TLSA (match, then "rollover in
# progress" when a second record is added, mismatch when only another key is published); and the
# console's Peers and trust page in chromium (tests/console/trust.test.js): ns1's card green,
# then red after the withdrawal.
#
# Usage: bash test_admin_dane.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin admin-dane "$@"
dj_need "$JSD" "$DEV"
Z=lorawan.test

dj_knot_start "$T/knot" "$Z" "plain.test" || { echo "FAIL: knotd did not start"; exit 1; }
STUBS="$Z@127.0.0.1@$DJ_KNOT_PORT plain.test@127.0.0.1@$DJ_KNOT_PORT"
dj_selfsigned js DNS:js.$Z
dj_selfsigned js2 DNS:js.$Z
dj_selfsigned ns1 DNS:_ns-client.ns1.$Z
dj_selfsigned ns8 DNS:_ns-client.ns8.plain.test
dj_kek ns1
chmod 600 ./*.key ./*.kek
PORT=$(dj_free_port)
APORT=$(dj_free_port)
printf 'update add _%s._tcp.js.%s. 2 TLSA 3 1 1 %s\nupdate add _ns-client.ns1.%s. 2 TLSA 3 1 1 %s\n' \
	"$PORT" "$Z" "$(dj_spki256 js.crt)" "$Z" "$(dj_spki256 ns1.crt)" | dj_knot_update "$Z"
check "TLSA records published" test $? -eq 0
printf 'update add _ns-client.ns8.plain.test. 2 TLSA 3 1 1 %s\n' "$(dj_spki256 ns8.crt)" |
	dj_knot_update plain.test
{
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:$PORT cert_file=js.crt key_file=js.key \
		metrics_address=off
	dj_conf_section dane trust_anchor_file="$DJ_KNOT_TA" stubs="$STUBS" ttl_cap=3 neg_ttl=2 \
		timeout_ms=2000 client_identity=_js-client.js.$Z
	dj_conf_section js join_euis=70b3d57ed0000000/48
	dj_conf_peer ns1 ns1.$Z ns 000013 kek_label=ns1-kek kek_file=ns1.kek
	dj_conf_peer ns8 ns8.plain.test ns 000013 plain_keys=yes
	dj_conf_peer ns9 ns9.$Z ns 000013 plain_keys=yes
	dj_conf_section admin address=127.0.0.1:"$APORT" console_dir="$SOURCE_DIR/console"
} >dj.conf
check "store initialised" dj_store_init dj.conf
RK=$("$DEV" --config dj.conf apikey create --name viewer --scope read 2>/dev/null)
check "danejoind (auth = dane) listens" dj_jsd_start dj.conf jsd.log "$PORT"
check "... and its admin listener" dj_wait_port "$APORT" "$DJ_JSD_PID"

# get PATH - the answer body of a GET, in get.json
get() {
	curl -s --cacert js.crt --resolve "js.$Z:$APORT:127.0.0.1" -H "Authorization: Bearer $RK" \
		"https://js.$Z:$APORT$1" >get.json
}
# verdict PEER - "VERDICT TTL NAME" of one peer in get.json
verdict() {
	python3 -c 'import json,sys
for p in json.load(open("get.json"))["peers"]:
    if p["name"] == sys.argv[1]: print(p["tlsa"]["verdict"], p["tlsa"].get("ttl_left", ""), p["tlsa"].get("name", ""))' "$1"
}
# until_verdict PEER ERE - poll /peers (10 s) until PEER's verdict matches
until_verdict() {
	local v
	for _ in $(seq 1 50); do
		get /api/v1/peers
		v=$(verdict "$1")
		grep -qE -- "$2" <<<"$v" && return 0
		sleep 0.2
	done
	echo "  $1: $v"
	return 1
}
check "ns1: secure at _ns-client.ns1.$Z, TTL left <= 3" until_verdict ns1 "^secure [0-3] _ns-client.ns1.$Z$"

# card PEER COLOUR - the console's Peers and trust page in chromium shows PEER's card in COLOUR
mkdir -p screens
card() {
	dj_console_js trust 60 DJ_URL="https://js.$Z:$APORT" DJ_RESOLVE="js.$Z:$APORT" DJ_READ_KEY="$RK" \
		DJ_OUT="$PWD/screens" DJ_PEER="$1" DJ_WANT="$2"
}
check "console: ns1's card is green" card ns1 green
check "ns8 (unsigned zone): insecure" until_verdict ns8 "^insecure "
check "ns9 (no record): nxdomain" until_verdict ns9 "^nxdomain "

# poll_self MATCH - poll /self (10 s) until our TLSA comparison says MATCH
poll_self() {
	for _ in $(seq 1 50); do
		get /api/v1/self
		grep -q "\"match\":\"$1\"" get.json && return 0
		sleep 0.2
	done
	cat get.json
	return 1
}
check "self: our certificate matches our TLSA" poll_self match
check "... 29 days or more left" grep -qE '"days_left":(29|30)' get.json

printf 'update add _%s._tcp.js.%s. 2 TLSA 3 1 1 %s\nupdate delete _ns-client.ns1.%s. TLSA\n' \
	"$PORT" "$Z" "$(dj_spki256 js2.crt)" "$Z" | dj_knot_update "$Z"
check "ns1's record withdrawn, a second key of ours published" test $? -eq 0
check "ns1: a secure denial once the cache expires" until_verdict ns1 "^(nxdomain|nodata) "
check "console: ns1's card turns red" card ns1 red
check "self: rollover in progress (our key and another)" poll_self "rollover in progress"
printf 'update delete _%s._tcp.js.%s. TLSA 3 1 1 %s\n' "$PORT" "$Z" "$(dj_spki256 js.crt)" |
	dj_knot_update "$Z"
check "self: mismatch when only the other key is published" poll_self mismatch

dj_jsd_stop; RC=$?
check "danejoind stops cleanly (exit $RC)" test $RC -eq 0
dj_end jsd.log
