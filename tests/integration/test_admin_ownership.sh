#!/bin/bash
# test_admin_ownership.sh - GET /api/v1/devices/{dev_eui}/ownership verifies each link of a
# device's stored chain under its signer's `_owner` TLSA 3 1 0 key, from DNSSEC-validated
# answers of danejoind's resolver (js_owner_inspect), against a real knotd (signed zones, TSIG
# updates) and chains enrolled and transferred by danejoin-devices.
#
# Covers: a chain of two links (maker.test enrolls to opa.test, opa.test signs a transfer to
# opb.test): both "verified", with signer, serial and rights, and the published chain equal to
# the stored one; an auth-code transfer (link 2 signed by the registry maker.test); a signer
# zone without a chain of trust for danejoind (opu.test: its DS is not among the daemon's
# anchors, as for an unsigned zone) -> "insecure"; a signer zone whose anchor does not match
# (opw.test, DS digest altered) -> "bogus"; a tampered published TXT -> same_as_stored false
# while the stored links still verify; maker.test's _owner TLSA replaced by another key (TSIG
# update, seen once ttl_cap expired) -> its links "bad signature" while opa.test's link stays
# verified; the record withdrawn -> "signer key not found ... NXDOMAIN"; knotd stopped -> "lookup
# failed"; danejoind without [dane] -> "not verified: no DNSSEC resolver configured", never
# "verified"; the console's Ownership page in chromium (tests/console/trust.test.js): D1's
# links green, link 1 red once maker's key is replaced, amber without a resolver. Each verdict
# is one the route could only give by looking the key up and checking the signature.
#
# Usage: bash test_admin_ownership.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin admin-own "$@"
dj_need "$JSD" "$DEV"

# ---- the DNS: the manufacturer, operators A and B, and two zones for the failures -----------
ZONES="maker.test opa.test opb.test opu.test opw.test"
dj_knot_start "$T/knot" "$ZONES" "" || { echo "FAIL: knotd"; exit 1; }
NSADDR="127.0.0.1@$DJ_KNOT_PORT"
STUBS=""
for z in $ZONES; do STUBS="$STUBS $z@$NSADDR"; done
DNS=(--ns "$NSADDR" --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA" --ttl 4)
dj_genkey maker opa opb opu opw other
dj_selfsigned js DNS:js.maker.test
dj_owner_publish 300 $ZONES || exit 1

# danejoind's anchors: opu.test's DS left out (no chain of trust: insecure), opw.test's digest
# altered (validation fails: bogus); the others as knotd signs them
grep -v '^opu\.test\. ' "$DJ_KNOT_TA" | sed -E '/^opw\.test\. /{s/0$/1/;t;s/.$/0/}' >jsd-ta.ds
check "daemon anchors: 4 of the 5 DS, opu.test's left out" \
	test "$(grep -c ' DS ' jsd-ta.ds)" -eq 4 -a "$(grep -c '^opw' jsd-ta.ds)" -eq 1
check "... opw.test's DS differs from knotd's" bash -c "! grep -qxF \"\$(grep '^opw' jsd-ta.ds)\" '$DJ_KNOT_TA'"

PORT=$(dj_free_port)
APORT=$(dj_free_port)
conf() { # conf dane|pkix - the configuration, with or without a DNSSEC resolver
	dj_conf_store
	if [ "$1" = dane ]; then
		dj_conf_section listen address=127.0.0.1:$PORT cert_file=js.crt key_file=js.key \
			metrics_address=off
		dj_conf_section dane trust_anchor_file=jsd-ta.ds stubs="${STUBS# }" ttl_cap=2 \
			neg_ttl=1 timeout_ms=1000
	else
		dj_conf_section listen address=127.0.0.1:$PORT cert_file=js.crt key_file=js.key \
			metrics_address=off auth=pkix client_ca_file=root.crt
	fi
	dj_conf_section js join_euis=70b3d57ed0000000/48
	dj_conf_peer nsa ns1.opa.test ns 000013 plain_keys=yes
	dj_conf_section admin address=127.0.0.1:"$APORT" console_dir="$SOURCE_DIR/console"
}
conf dane >dj.conf
check "store initialised" dj_store_init dj.conf

# ---- chains by danejoin-devices ---------------------------------------------------------------
D1=0000000000001001	# maker -> opa, then opa -> opb by a request signed by opa
D2=0000000000001002	# maker -> opa; its published TXT tampered later
D3=0000000000001003	# opu -> opa (opu.test insecure for danejoind)
D4=0000000000001004	# opw -> opa (opw.test bogus for danejoind)
D5=0000000000001005	# maker -> opa, then opa -> opb by auth code (signed by maker, the registry)
(umask 077 && dj_devices_csv 5 1.0.4 >all.csv)
{ head -1 all.csv; grep -E '^(0+1001|0+1002|0+1005),' all.csv; } >maker.csv
{ head -1 all.csv; grep '^0*1003,' all.csv; } >opu.csv
{ head -1 all.csv; grep '^0*1004,' all.csv; } >opw.csv
enroll() { # enroll CSV FROM-ZONE
	"$DEV" --config dj.conf enroll "$1" --zone opa.test --from-zone "$2" --key "${2%.test}.key" \
		--netids 000013 --as-ids as.opa.test "${DNS[@]}" >enroll.out 2>&1
}
enroll maker.csv maker.test
check "3 devices enrolled by maker.test" grep -q "enrolled 3 devices" enroll.out
enroll opu.csv opu.test
check "1 device enrolled by opu.test" grep -q "enrolled 1 devices" enroll.out
enroll opw.csv opw.test
check "1 device enrolled by opw.test" grep -q "enrolled 1 devices" enroll.out
"$DEV" --config dj.conf transfer-request $D1 --zone opa.test --to-zone opb.test --key opa.key \
	--netids 00001a --as-ids as.opb.test --out req.txt >tq.out 2>&1 &&
	"$DEV" --config dj.conf transfer --requests req.txt "${DNS[@]}" >tr.out 2>&1
check "D1 to opb.test by a request signed by opa.test" grep -q "transferred 1 devices" tr.out
dj_authcode_transfer $D5
check "chains published" dj_knot_wait "_ownership.$D5._device.opb.test." TXT .

check "danejoind (auth = dane) listens" dj_jsd_start dj.conf jsd.log "$PORT"
check "... and its admin listener" dj_wait_port "$APORT" "$DJ_JSD_PID"
RK=$("$DEV" --config dj.conf apikey create --name viewer --scope read 2>/dev/null)

# own DEV - GET its ownership into own.json; the HTTP status
own() {
	curl -s --max-time 30 -o own.json -w '%{http_code}' --cacert js.crt \
		--resolve "js.maker.test:$APORT:127.0.0.1" -H "Authorization: Bearer $RK" \
		"https://js.maker.test:$APORT/api/v1/devices/$1/ownership"
}
# jq_ EXPR - a Python expression on the answer (j), printed
jq_() { python3 -c 'import json,sys; j=json.load(open("own.json")); print(eval(sys.argv[1]))' "$1"; }
# link N - "RESULT: VERIFICATION" of link N (1-based) in own.json
link() { jq_ "(lambda l: l['result'] + ': ' + l['verification'])(j['links'][$1 - 1])"; }
# until_link DEV N ERE - poll DEV's ownership (bounded) until link N matches ERE
until_link() {
	local v
	for _ in $(seq 1 60); do
		own "$1" >/dev/null
		v=$(link "$2" 2>/dev/null)
		grep -qE -- "$3" <<<"$v" && return 0
		sleep 0.25
	done
	echo "  link $2 of $1: $v"
	return 1
}

# chain DEV COLOURS - the console's Ownership page in chromium (tests/console/trust.test.js)
# shows DEV's links in COLOURS ("green,red": link 1 green and "verified", link 2 red)
mkdir -p screens
chain() {
	dj_console_js trust 60 DJ_URL="https://js.maker.test:$APORT" DJ_RESOLVE="js.maker.test:$APORT" \
		DJ_READ_KEY="$RK" DJ_OUT="$PWD/screens" DJ_OWN_EUI="$1" DJ_WANT="$2"
}

# ---- good chains --------------------------------------------------------------------------
check "D1: 200" eq "$(own $D1)" 200
check "D1 link 1 verified" matches "$(link 1)" '^verified: verified$'
check "D1 link 2 verified" matches "$(link 2)" '^verified: verified$'
check "D1: every link verified" matches "$(jq_ "j['verification']")" '^every link verified$'
check "D1 link 1: signer maker.test., serial 1, manufacturer, rights 000013 / as.opa.test" \
	matches "$(jq_ "(lambda l: (l['signer'], l['serial'], l['auth'], l['net_ids'], l['as_ids'], l['verified']))(j['links'][0])")" \
	"^\('maker.test.', 1, 'manufacturer', \['000013'\], \['as.opa.test'\], True\)$"
check "D1 link 2: signer opa.test., serial 2, signed request, rights 00001a / as.opb.test" \
	matches "$(jq_ "(lambda l: (l['signer'], l['serial'], l['auth'], l['net_ids'], l['as_ids']))(j['links'][1])")" \
	"^\('opa.test.', 2, 'signed request', \['00001a'\], \['as.opb.test'\]\)$"
check "D1 link 1: the key from a secure answer at _owner.maker.test" \
	matches "$(jq_ "j['links'][0]['signer_key']")" "'name': '_owner.maker.test.?', 'dnssec': 'secure'"
check "D1: the DNS publishes the stored chain (secure, same bytes, serial 2)" \
	matches "$(jq_ "(j['dns']['dnssec'], j['dns']['same_as_stored'], j['dns']['serial'])")" \
	"^\('secure', True, 2\)$"
check "console: D1's two links green (verified)" chain $D1 green,green
check "D5 (auth code): link 2 signed by the registry, verified" \
	until_link $D5 2 '^verified: verified$'
check "... its auth is 'auth code', signer maker.test." \
	matches "$(jq_ "(j['links'][1]['auth'], j['links'][1]['signer'])")" "^\('auth code', 'maker.test.'\)$"

# ---- signer zones that are not secure for danejoind -----------------------------------------
check "D3 (opu.test, no chain of trust): insecure" \
	until_link $D3 1 '^insecure: insecure: _owner\.opu\.test\.? is not DNSSEC-signed'
check "... not 'every link verified'" matches "$(jq_ "j['verification']")" '^link 1: insecure'
check "D4 (opw.test, anchor mismatch): bogus" until_link $D4 1 '^bogus: bogus: _owner\.opw\.test'
check "... verified is false" matches "$(jq_ "j['links'][0]['verified']")" '^False$'

# ---- the published chain tampered (its last byte changed): compared with the stored one ----
dj_knot_txt_tamper "_ownership.$D2._device.opa.test." opa.test
check "D2's published TXT tampered (TSIG update)" test $? -eq 0
same_d2() { own $D2 >/dev/null; matches "$(jq_ "j['dns']['same_as_stored']")" '^False$'; }
check "D2: the published chain differs from the stored one" dj_wait_for 15 same_d2
check "... while the stored link still verifies" matches "$(link 1)" '^verified: verified$'

# ---- maker.test's _owner key replaced by another key ---------------------------------------
dj_knot_update maker.test <<EOF
update delete _owner.maker.test. TLSA
update add _owner.maker.test. 300 TLSA 3 1 0 $(dj_spki_hex other.key)
EOF
check "maker.test's _owner TLSA replaced by another key (TSIG update)" test $? -eq 0
check "D1 link 1: bad signature once the cached key expired" \
	until_link $D1 1 '^bad_signature: bad signature: it does not verify under the key at _owner\.maker\.test'
check "... D1 link 2 (signed by opa.test) still verified" matches "$(link 2)" '^verified: verified$'
check "... the summary names link 1" matches "$(jq_ "j['verification']")" '^link 1: bad signature'
check "console: D1's link 1 red, link 2 green" chain $D1 red,green
check "D5: link 2 (the registry's) bad signature too" until_link $D5 2 '^bad_signature: '

# ---- withdrawn -----------------------------------------------------------------------------
dj_knot_update maker.test <<EOF
update delete _owner.maker.test. TLSA
EOF
check "maker.test's _owner TLSA withdrawn" test $? -eq 0
check "D1 link 1: signer key not found (NXDOMAIN)" \
	until_link $D1 1 '^no_key: signer key not found: _owner\.maker\.test\.? TLSA: NXDOMAIN'
check "... from a secure denial" matches "$(jq_ "j['links'][0]['signer_key']['dnssec']")" '^nxdomain$'
check "... link 2 still verified" matches "$(link 2)" '^verified: verified$'

# ---- the DNS down: lookups fail -------------------------------------------------------------
dj_knot_stop
check "knotd stopped: D1 link 2 lookup failed" until_link $D1 2 '^tempfail: lookup failed: _owner\.opa\.test'
check "... never verified" bash -c "! grep -q '\"verified\":true' own.json"
# a client that leaves while the lookups are pending (they take timeout_ms each now; its answer
# is dropped when written), and one still waiting when danejoind stops (its lookups are
# cancelled): ASan sees no leak and no use after free
curl -s --max-time 0.3 -o /dev/null --cacert js.crt --resolve "js.maker.test:$APORT:127.0.0.1" \
	-H "Authorization: Bearer $RK" "https://js.maker.test:$APORT/api/v1/devices/$D5/ownership"
check "a client gone before the answer: danejoind answers the next" eq "$(own $D2)" 200
own $D5 >/dev/null &
WAITING=$!
sleep 0.3

dj_jsd_stop; RC=$?
check "danejoind stops cleanly with a request waiting (exit $RC)" test $RC -eq 0
wait $WAITING

# ---- no DNSSEC resolver: nothing is claimed --------------------------------------------------
dj_mkroot root
conf pkix >pkix.conf
check "danejoind (auth = pkix, no [dane]) listens" dj_jsd_start pkix.conf jsd2.log "$PORT"
check "... and its admin listener" dj_wait_port "$APORT" "$DJ_JSD_PID"
check "D1 without a resolver: 200" eq "$(own $D1)" 200
check "D1 link 1: not verified" matches "$(link 1)" '^not_checked: not verified: no DNSSEC resolver configured$'
check "D1 link 2: not verified" matches "$(link 2)" '^not_checked: not verified: no DNSSEC resolver configured$'
check "... no link says verified" bash -c "! grep -q '\"verified\":true' own.json"
check "console: D1's links amber (not checked)" chain $D1 amber,amber
check "... the summary says so" matches "$(jq_ "j['verification']")" '^not verified: no DNSSEC resolver configured$'
dj_jsd_stop; RC=$?
check "danejoind stops cleanly (exit $RC)" test $RC -eq 0
mkdir -p "$BUILD_DIR/console-screens" && cp screens/*.png "$BUILD_DIR/console-screens/" 2>/dev/null
dj_end jsd.log jsd2.log
