#!/bin/bash
# test_admin_transfer.sh - auth codes and transfers by auth code through danejoind's management
# API ([registry], docs/admin-api.md), against a real knotd (DNSSEC-signed zones, TSIG updates)
# and devices enrolled with danejoin-devices, plus the console's Ownership page in chromium
# (tests/console/transfer.test.js).
#
# Covers: --check-config refusing a bad [registry] (a key readable by others, a missing ns, a
# malformed ns); POST /transfers answering 503 without [registry]; read scope refused (403) on
# the three routes; malformed bodies (400 naming the field) and unknown devices (404); an auth
# code set (shown once, never again: not in GET ownership, the audit log, the store or the
# log), replaced, revoked (404 the second time), each audited with the API key's name; a wrong,
# a replaced and an expired code refused (403) with nothing changed in the store or the DNS; a
# transfer by code: GET ownership names the new owner and the new link (signed by the
# registry), kdig sees the new records and the old name's CNAME, the code is deleted; the same
# code again refused (409 same zone, 403 another zone); a registry key that is not the
# _owner key refused (after a reload); a DNS server that never answers: the event loop still
# answers while the transfer waits, a second transfer meanwhile gets 503, then 502 (recorded),
# finished by the next transfer request; another DNS failure finished when danejoind starts
# again; and in the browser: an operate key sets a code and transfers a
# device with the form, then sees its new chain; a read key sees no such button.
#
# With DJ_XFER_PG=1 (test_pg_admin_transfer.sh) the store is a private PostgreSQL cluster: the
# transfer worker then shares danejoind's PostgreSQL handle.
#
# Usage: bash test_admin_transfer.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin admin-transfer "$@"
dj_need "$JSD" "$DEV"
if [ -n "${DJ_XFER_PG:-}" ]; then
	check "a private PostgreSQL cluster starts" pg_start "$T/pg" || dj_end
	DJ_STORE_CONNINFO=$PG_CONNINFO
	EUI_SQL="encode(dev_eui, 'hex')"
	store_dump() { "$PG_BIN/pg_dump" "$DJ_STORE_CONNINFO" 2>/dev/null; }
else
	EUI_SQL="lower(hex(dev_eui))"
	store_dump() { sqlite3 js.db .dump; }
fi
BIN=$DEV
RUN_PRE=(--config "$T/dj.conf")

ZONES="maker.test opa.test opb.test opc.test"
dj_knot_start "$T/knot" "$ZONES" || { echo "FAIL: knotd"; exit 1; }
NS="127.0.0.1@$DJ_KNOT_PORT"
DNS=(--ns "$NS" --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA")
q() { dj_knot_q "$@"; }
dj_genkey maker opa opb opc mallory
dj_owner_publish 300 $ZONES || exit 1
dj_mkroot root
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test
dj_kek ns1
chmod 600 ./*.key ./*.kek
cp "$DJ_KNOT_TSIG_FILE" tsig.key && chmod 600 tsig.key

PORT=$(dj_free_port)
APORT=$(dj_free_port)
# conf [REGISTRY-KEY=VALUE...] - dj.conf, with [registry] when arguments are given
conf() {
	dj_conf_pkix "$PORT" off
	dj_conf_section dane trust_anchor_file="$DJ_KNOT_TA"
	dj_conf_section admin address=127.0.0.1:"$APORT" console_dir="$SOURCE_DIR/console"
	[ $# -eq 0 ] || dj_conf_section registry "$@"
}
REG=(key_file=maker.key ns="$NS" tsig_file=tsig.key)
conf >dj.conf
run 0 init

D1=70b3d57ed0000101
D2=70b3d57ed0000102
D3=70b3d57ed0000103
D4=70b3d57ed0000104
key() { openssl rand -hex 16; }
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	for d in $D1 $D2 $D3 $D4; do echo "$d,70b3d57ed0000001,1.0.4,$(key),"; done
} >enroll.csv
chmod 600 enroll.csv
run 0 enroll enroll.csv --zone opa.test --from-zone maker.test --key maker.key --netids 000013 \
	--as-ids as.opa.test "${DNS[@]}" && has "$OUT" "enrolled 4 devices"
RK=$("$DEV" --config dj.conf apikey create --name viewer --scope read 2>/dev/null)
OK=$("$DEV" --config dj.conf apikey create --name ops --scope operate 2>/dev/null)

# ---- configuration -------------------------------------------------------------------------
conf "${REG[@]}" >dj.conf
check "--check-config accepts [registry]" dj_check_config 0 dj.conf
chmod 644 maker.key
check "--check-config: a registry key readable by others" \
	dj_check_config 2 dj.conf "\[registry\] key_file .*maker.key: has mode 0644"
chmod 600 maker.key
conf key_file=maker.key tsig_file=tsig.key >bad.conf
check "--check-config: [registry] without ns" \
	dj_check_config 2 bad.conf "\[registry\] key_file, ns and tsig_file: set all three"
conf key_file=maker.key ns=nameserver.test tsig_file=tsig.key >bad.conf
check "--check-config: a malformed ns" \
	dj_check_config 2 bad.conf "\[registry\] ns: 'nameserver.test': expected IP\[@PORT\]"
conf key_file=tsig.key ns="$NS" tsig_file=tsig.key >bad.conf
check "--check-config: a registry key that is not a key" \
	dj_check_config 2 bad.conf "\[registry\] key_file .*tsig.key: not an unencrypted PEM"

mkdir -p r
CURL=(curl -s --cacert root.crt --resolve "js.test:$APORT:127.0.0.1")
# api NAME METHOD PATH KEY [CURL-ARGS...] - one request: body in r/NAME.body, status in $CODE
api() {
	local name=$1 m=$2 path=$3 k=$4
	shift 4
	CODE=$("${CURL[@]}" -X "$m" -H "Authorization: Bearer $k" -o "r/$name.body" \
		-D "r/$name.hdr" -w '%{http_code}' "$@" "https://js.test:$APORT$path")
}
want() { eq "$CODE" "$2" "$1"; }
# reload - SIGHUP danejoind; status 0 once jsd.log has one more "configuration reloaded"
reload() {
	local n
	n=$(grep -c "configuration reloaded" jsd.log)
	kill -HUP "$DJ_JSD_PID"
	dj_wait_for 5 bash -c "[ \$(grep -c 'configuration reloaded' jsd.log) -gt $n ]"
}
# xfer NAME KEY JSON - POST /api/v1/transfers
xfer() { api "$1" POST /api/v1/transfers "$2" -H 'Content-Type: application/json' -d "$3"; }
# jget NAME EXPR - a value of r/NAME.body (python expression on j)
jget() { python3 -c "import json,sys; j=json.load(open('r/$1.body')); print($2)"; }
# snapshot FILE - the registry's rows and the DNS names of D1 and D2
snapshot() {
	{
		dj_store_sql "SELECT $EUI_SQL, zone, serial, length(chain) FROM owners ORDER BY 1"
		dj_store_sql "SELECT $EUI_SQL, serial, step FROM transfers ORDER BY id"
		dj_store_sql "SELECT $EUI_SQL, expires_at FROM authcodes ORDER BY 1"
		dj_store_sql "SELECT count(*) FROM audit"
		for d in $D1 $D2; do
			for z in opa.test opb.test opc.test; do
				q "$d._device.$z." ANY | sort
				q "_ownership.$d._device.$z." TXT | sort
			done
		done
	} >"$1"
}

# ---- without [registry]: the transfer route says what is missing ----------------------------
conf >dj.conf
check "danejoind (no [registry]) listens" dj_jsd_start dj.conf jsd0.log "$PORT"
check "... and its admin listener" dj_wait_port "$APORT" "$DJ_JSD_PID"
xfer noreg "$OK" "{\"dev_eui\":\"$D1\",\"auth_code\":\"0000000000000000000000AB\",\"to_zone\":\"opb.test\"}"
want "no [registry]: 503" 503
has r/noreg.body "not configured: set \[registry\] key_file, ns and tsig_file"
dj_jsd_stop; RC=$?
check "danejoind (no [registry]) stops cleanly (exit $RC)" test $RC -eq 0

conf "${REG[@]}" >dj.conf
check "danejoind with [registry] listens" dj_jsd_start dj.conf jsd.log "$PORT"
check "... and its admin listener" dj_wait_port "$APORT" "$DJ_JSD_PID"
has jsd.log "transfers by auth code on"

# ---- scopes and bad input -------------------------------------------------------------------
api rd-set POST /api/v1/devices/$D1/auth-code "$RK"; want "read: set refused" 403
has r/rd-set.body "needs scope operate"
api rd-del DELETE /api/v1/devices/$D1/auth-code "$RK"; want "read: revoke refused" 403
xfer rd-xfer "$RK" "{\"dev_eui\":\"$D1\"}"; want "read: transfer refused" 403
api bad-ttl POST /api/v1/devices/$D1/auth-code "$OK" -d '{"expires_in":"soon"}'
want "expires_in not a number: 400" 400; has r/bad-ttl.body "expires_in: expected 1 to"
api bad-field POST /api/v1/devices/$D1/auth-code "$OK" -d '{"expire":60}'
want "an unknown field: 400" 400; has r/bad-field.body "expire: unknown field"
api bad-eui POST /api/v1/devices/70b3d57e/auth-code "$OK"; want "a short DevEUI: 400" 400
api no-dev POST /api/v1/devices/70b3d57ed0000999/auth-code "$OK"; want "no such device: 404" 404
api bad-zone POST /api/v1/devices/$D1/auth-code "$OK" -d '{"zone":"opb.test"}'
want "another owner's zone: 409" 409; has r/bad-zone.body "owned by opa.test., not by opb.test."
snapshot before
GOOD="\"auth_code\":\"0000000000000000000000AB\",\"to_zone\":\"opb.test\""
xfer x-noeui "$OK" "{$GOOD}"; want "transfer without dev_eui: 400" 400
has r/x-noeui.body "dev_eui: expected 16 hex digits"
xfer x-code "$OK" "{\"dev_eui\":\"$D1\",\"auth_code\":\"abc\",\"to_zone\":\"opb.test\"}"
want "a malformed auth_code: 400" 400; has r/x-code.body "auth_code: expected the 24-character"
xfer x-zone "$OK" "{\"dev_eui\":\"$D1\",\"auth_code\":\"0000000000000000000000AB\",\"to_zone\":\"no zone\"}"
want "a bad to_zone: 400" 400; has r/x-zone.body "to_zone: not a DNS zone name"
xfer x-net "$OK" "{\"dev_eui\":\"$D1\",$GOOD,\"net_ids\":[\"0013\"]}"
want "a bad NetID: 400" 400; has r/x-net.body "net_ids\[0\]: expected 6 hex digits"
xfer x-json "$OK" "{\"dev_eui\":"; want "not JSON: 400" 400
xfer x-dev "$OK" "{\"dev_eui\":\"70b3d57ed0000999\",$GOOD}"; want "unknown device: 404" 404

# ---- set, replace, revoke ---------------------------------------------------------------------
api set1 POST /api/v1/devices/$D1/auth-code "$OK"; want "operate: set an auth code: 201" 201
C1=$(jget set1 'j["auth_code"]')
check "the code is shown: 24 characters" matches "$C1" '^[0-9A-HJKMNP-TV-Z]{24}$'
has r/set1.body "\"owner\":\"opa.test.\""
has r/set1.hdr "^Cache-Control: no-store"
has r/set1.hdr "^Content-Security-Policy: default-src 'self'"
api own1 GET /api/v1/devices/$D1/ownership "$RK"; want "ownership: 200" 200
has r/own1.body '"auth_code":\{"set":true,"expires_at":[0-9]+\}'
lacks r/own1.body "$C1"
api set2 POST /api/v1/devices/$D1/auth-code "$OK" -d '{"expires_in":3600,"zone":"opa.test"}'
want "set again (replaces): 201" 201
C2=$(jget set2 'j["auth_code"]')
check "a fresh code" test "$C1" != "$C2"
api del1 DELETE /api/v1/devices/$D1/auth-code "$OK"; want "revoke: 200" 200
api own2 GET /api/v1/devices/$D1/ownership "$RK"
has r/own2.body '"auth_code":\{"set":false\}'
api del2 DELETE /api/v1/devices/$D1/auth-code "$OK"; want "revoke again: 404" 404
api aud GET "/api/v1/audit?dev_eui=$D1" "$RK"
has r/aud.body '"event":"authcode-set","actor":"apikey:ops","detail":"expires_at=[0-9]+"'
has r/aud.body '"event":"authcode-revoke","actor":"apikey:ops"'
xfer x-revoked "$OK" "{\"dev_eui\":\"$D1\",\"auth_code\":\"$C2\",\"to_zone\":\"opb.test\"}"
want "a revoked code: 403" 403; has r/x-revoked.body "wrong auth code"

# ---- refusals change nothing ----------------------------------------------------------------
api set3 POST /api/v1/devices/$D1/auth-code "$OK"; want "set: 201" 201
C3=$(jget set3 'j["auth_code"]')
api set4 POST /api/v1/devices/$D1/auth-code "$OK"; want "set (replacing): 201" 201
C4=$(jget set4 'j["auth_code"]')
api set5 POST /api/v1/devices/$D2/auth-code "$OK" -d '{"expires_in":1}'; want "set (1 s): 201" 201
C5=$(jget set5 'j["auth_code"]')
sleep 2	# the store's clock is the wall clock: let D2's code expire
snapshot before
xfer x-wrong "$OK" "{\"dev_eui\":\"$D1\",$GOOD}"; want "a wrong code: 403" 403
has r/x-wrong.body '"error":"device 70b3d57ed0000101: wrong auth code \(or none is set\)","verdict":"denied"'
xfer x-replaced "$OK" "{\"dev_eui\":\"$D1\",\"auth_code\":\"$C3\",\"to_zone\":\"opb.test\"}"
want "a replaced code: 403" 403
xfer x-expired "$OK" "{\"dev_eui\":\"$D2\",\"auth_code\":\"$C5\",\"to_zone\":\"opb.test\"}"
want "an expired code: 403" 403; has r/x-expired.body "the auth code has expired"
snapshot after
same before after "refused transfers changed the store or the DNS"

# ---- a transfer by auth code ------------------------------------------------------------------
xfer ok1 "$OK" "{\"dev_eui\":\"$D1\",\"auth_code\":\"$C4\",\"to_zone\":\"opb.test\",\"net_ids\":[\"00001a\"],\"as_ids\":[\"as.opb.test\"]}"
want "transfer by auth code: 200" 200
has r/ok1.body "\"from\":\"opa.test.\",\"to\":\"opb.test.\",\"transferred\":1"
api own3 GET /api/v1/devices/$D1/ownership "$RK"
has r/own3.body '"owner":"opb.test.","serial":2'
eq "$(jget own3 '[j["links"][1][k] for k in ("serial", "from", "to", "signer", "net_ids", "as_ids")]')" \
	"[2, 'opa.test.', 'opb.test.', 'maker.test.', ['00001a'], ['as.opb.test']]" \
	"the new link: from A to B, signed by the registry (maker.test.), B's rights"
has r/own3.body '"auth_code":\{"set":false\}'
ok dj_knot_wait "$D1._device.opa.test." CNAME "$D1._device.opb.test."
has <(q "_ownership.$D1._device.opb.test." TXT) "."
kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +dnssec +norec CNAME "$D1._device.opa.test." >kd.out
has kd.out "RRSIG.*CNAME"
eq "$(dj_store_sql "SELECT count(*) FROM authcodes WHERE $EUI_SQL = '$D1'")" 0 \
	"the used code is deleted"
api aud2 GET "/api/v1/audit?dev_eui=$D1&event=ownership-transfer" "$RK"
has r/aud2.body '"actor":"apikey:ops","detail":"from=opa.test. to=opb.test. serial=2"'
"$DEV" --config dj.conf ownership $D1 >own.out 2>&1
has own.out "link 2: +opa.test. -> opb.test. +signed by maker.test. \(auth code\)"
snapshot before
xfer replay1 "$OK" "{\"dev_eui\":\"$D1\",\"auth_code\":\"$C4\",\"to_zone\":\"opb.test\"}"
want "the same code again: 409" 409; has r/replay1.body "already transferred"
xfer replay2 "$OK" "{\"dev_eui\":\"$D1\",\"auth_code\":\"$C4\",\"to_zone\":\"opc.test\"}"
want "the same code to another zone: 403" 403; has r/replay2.body "wrong auth code"
snapshot after
same before after "a replayed code changed something"

# ---- a registry key that is not the _owner key (reload) -----------------------------------
conf key_file=mallory.key ns="$NS" tsig_file=tsig.key >dj.conf
check "reload with another registry key" reload
api set6 POST /api/v1/devices/$D3/auth-code "$OK"; C6=$(jget set6 'j["auth_code"]')
snapshot before
xfer x-mallory "$OK" "{\"dev_eui\":\"$D3\",\"auth_code\":\"$C6\",\"to_zone\":\"opb.test\"}"
want "a registry key that is not maker.test's _owner key: 403" 403
has r/x-mallory.body "the registry key is not the _owner key published for maker.test."
snapshot after
same before after "a refused registry key changed something"

# ---- a DNS update failure: recorded, finished at the next start ----------------------------
# A black hole first: a TCP listener that never answers, so the DNS update hangs until its
# timeout. Meanwhile the event loop answers (GET /transfers shows the recorded transfer) and a
# second transfer is turned away (503, Retry-After).
BH=$(dj_free_port)
dj_spawn bh.out bh.err python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); held = []
while True: held.append(s.accept()[0])' "$BH"
check "the black hole listens" dj_wait_port "$BH" "$DJ_PID"
conf key_file=maker.key ns="127.0.0.1@$BH" lookup_via="$NS" tsig_file=tsig.key >dj.conf
check "reload with a DNS server that never answers" reload
"${CURL[@]}" -X POST -H "Authorization: Bearer $OK" -o r/x-dns.body -w '%{http_code}' \
	-d "{\"dev_eui\":\"$D3\",\"auth_code\":\"$C6\",\"to_zone\":\"opb.test\"}" \
	"https://js.test:$APORT/api/v1/transfers" >x-dns.code &
XPID=$!
recorded() {
	api pend0 GET /api/v1/transfers "$RK"
	grep -q "\"dev_eui\":\"$D3\",\"serial\":2,.*\"step\":\"recorded\"" r/pend0.body
}
check "the loop answers while the transfer waits for the DNS: it is recorded" \
	dj_wait_for 10 recorded
xfer x-busy "$OK" "{\"dev_eui\":\"$D2\",$GOOD}"
want "a second transfer meanwhile: 503" 503; has r/x-busy.body "another transfer is running"
check "... and the first one still runs" kill -0 $XPID
wait $XPID
CODE=$(cat x-dns.code)
want "DNS update failure: 502" 502
has r/x-dns.body '"recorded":true'
has r/x-dns.body "finishes it at the next transfer request or at its next start"
api pend GET /api/v1/transfers "$RK"
has r/pend.body "\"dev_eui\":\"$D3\",\"serial\":2,\"from\":\"opa.test.\",\"to\":\"opb.test.\",\"step\":\"recorded\""
api own4 GET /api/v1/devices/$D3/ownership "$RK"
has r/own4.body '"owner":"opa.test."'	# not half-transferred
# the DNS server back: the next transfer request (here refused: a wrong code) finishes it first
conf "${REG[@]}" >dj.conf
check "reload with the DNS server back" reload
xfer x-next "$OK" "{\"dev_eui\":\"$D2\",$GOOD}"; want "the next request (a wrong code): 403" 403
api pend1 GET /api/v1/transfers "$RK"
has r/pend1.body '^\{"transfers":\[\]\}$'
api own4b GET /api/v1/devices/$D3/ownership "$RK"
has r/own4b.body '"owner":"opb.test.","serial":2'
ok dj_knot_wait "$D3._device.opa.test." CNAME "$D3._device.opb.test."
# a second failure (D2: no server at all), then a stop: the next start finishes it
DEAD=$(dj_free_port)
api set7 POST /api/v1/devices/$D2/auth-code "$OK"; C7=$(jget set7 'j["auth_code"]')
conf key_file=maker.key ns="127.0.0.1@$DEAD" lookup_via="$NS" tsig_file=tsig.key >dj.conf
check "reload with an unreachable DNS server again" reload
xfer x-dns2 "$OK" "{\"dev_eui\":\"$D2\",\"auth_code\":\"$C7\",\"to_zone\":\"opb.test\"}"
want "DNS update failure again: 502" 502
api own4c GET /api/v1/devices/$D2/ownership "$RK"
has r/own4c.body '"owner":"opa.test."'
dj_jsd_stop; RC=$?
check "danejoind stops cleanly after the failed transfer (exit $RC)" test $RC -eq 0
conf "${REG[@]}" >dj.conf
check "danejoind starts again" dj_jsd_start dj.conf jsd2.log "$PORT"
check "... and finishes the unfinished transfer" dj_wait_log jsd2.log "finished 1 transfers left unfinished" 20
api own5 GET /api/v1/devices/$D2/ownership "$RK"
has r/own5.body '"owner":"opb.test.","serial":2'
ok dj_knot_wait "$D2._device.opa.test." CNAME "$D2._device.opb.test."
api pend2 GET /api/v1/transfers "$RK"
has r/pend2.body '^\{"transfers":\[\]\}$'

# ---- the console: set a code and transfer D4 with the form, see the new chain --------------
if dj_console_ready; then
	mkdir -p screens
	dj_console_checks transfer 120 DJ_URL="https://js.test:$APORT" DJ_RESOLVE="js.test:$APORT" \
		DJ_READ_KEY="$RK" DJ_OPS_KEY="$OK" DJ_DEV="$D4" DJ_TO=opc.test DJ_OUT="$PWD/screens"
	RC=$?
	eq "$RC" 0 "the browser checks passed"
	api own6 GET /api/v1/devices/$D4/ownership "$RK"
	has r/own6.body '"owner":"opc.test.","serial":2'
	ok dj_knot_wait "$D4._device.opa.test." CNAME "$D4._device.opc.test."
	check "screenshots of the transfer" test -s screens/ownership-transfer-1280.png
	mkdir -p "$BUILD_DIR/console-screens" && cp screens/*.png "$BUILD_DIR/console-screens/"
	echo "screenshots: $PWD/screens"
else
	echo "FAIL: chromium or puppeteer-core is missing: run config/install-deps"
	FAILS=$((FAILS + 1))
fi

# ---- no code, no key anywhere it should not be ----------------------------------------------
dj_jsd_stop; RC=$?
check "danejoind stops cleanly (exit $RC)" test $RC -eq 0
lacks <(cat jsd0.log jsd.log jsd2.log) "AddressSanitizer|LeakSanitizer|runtime error"
SECRET=$(cut -d: -f3 tsig.key)
KEYB64=$(sed -n 2p maker.key)
for c in $C1 $C2 $C3 $C4 $C5 $C6 $C7; do
	for f in r/*.body; do
		case $f in r/set[1-7].body) continue ;; esac
		CHECKS=$((CHECKS + 1))
		! grep -q "$c" "$f" || fail "an auth code in $f"
	done
	CHECKS=$((CHECKS + 1))
	! grep -q "$c" jsd.log jsd2.log || fail "an auth code in the log"
done
store_dump >store.dump
check "the store dump is not empty" test -s store.dump
for c in $C1 $C2 $C3 $C4 $C5 $C6 $C7; do
	CHECKS=$((CHECKS + 1))
	! grep -aq "$c" store.dump || fail "an auth code in the store"
done
CHECKS=$((CHECKS + 1))
! grep -rqF -e "$SECRET" -e "$KEYB64" r/ jsd.log jsd2.log || fail "a key in a response or the log"
dj_end jsd.log jsd2.log
