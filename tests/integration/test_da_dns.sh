#!/bin/bash
# test_da_dns.sh - da_dns (backend-auth) against a real knotd on loopback, through da_probe.
#
# Zones: lorawan.test (signed by knotd, ECDSA P-256, its DS is the trust anchor), plain.test
# (unsigned), and two zones signed here with ldns-signzone and served as-is by knotd:
# tamper.test (a TLSA record changed after signing) and expired.test (signatures expired in
# 2020). Covers: a secure TLSA RRset (3 1 1, 3 0 0, 2 0 1), secure NXDOMAIN and NODATA, an
# unsigned zone (insecure), bogus by a wrong anchor (one DS digit changed), by a tampered
# record and by expired signatures, a usage-0/1-only RRset (unusable), coalescing (one query
# for two lookups), cancellation, freeing the resolver with a lookup pending, bad properties,
# NAPTR -> SRV -> A/AAAA discovery (secure, and insecure through an unsigned step), and the
# TTL-bounded cache: knotd stopped, the answer is served until its TTL ends, then TEMPFAIL.
#
# Usage: bash test_da_dns.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin dadns "$@"
PROBE="$BUILD_DIR/tests/integration/da_probe"
dj_need "$PROBE" knotd keymgr knsupdate kdig ldns-keygen ldns-signzone

# ---- zones signed here (tamper.test, expired.test) ----------------------------------------
H1=$(openssl rand -hex 32)
H2=$(openssl rand -hex 32)
mkdir -p knot/zones keys
for z in tamper.test expired.test; do
	cat >"keys/$z.zone" <<EOF
\$ORIGIN $z.
\$TTL 60
@  SOA ns.$z. hostmaster.$z. 1 3600 600 86400 60
@  NS  ns
ns A   127.0.0.1
_443._tcp.www TLSA 3 1 1 $H1
EOF
	(cd keys && ldns-keygen -a ECDSAP256SHA256 -k "$z" >"$z.keyname") || exit 1
done
(cd keys && ldns-signzone -o tamper.test tamper.test.zone "$(cat tamper.test.keyname)") || exit 1
(cd keys && ldns-signzone -o expired.test -i 20190101000000 -e 20200101000000 \
	expired.test.zone "$(cat expired.test.keyname)") || exit 1
# the record changes after signing; its RRSIG stays
sed "s/$H1/$H2/" keys/tamper.test.zone.signed >knot/zones/tamper.test.zone
grep -q "$H2" knot/zones/tamper.test.zone || { echo "FAIL: tampering did not happen"; exit 1; }
cp keys/expired.test.zone.signed knot/zones/expired.test.zone

# ---- knotd ----------------------------------------------------------------------------------
dj_knot_start "$T/knot" "lorawan.test" "plain.test tamper.test expired.test" || {
	echo "FAIL: knotd did not start"
	cat "$T/knot/knot.log" 2>/dev/null | tail -20
	exit 1
}
TA=$T/ta.ds
cat "$DJ_KNOT_TA" keys/*.ds >"$TA"
STUBS="lorawan.test@127.0.0.1@$DJ_KNOT_PORT plain.test@127.0.0.1@$DJ_KNOT_PORT"
STUBS="$STUBS,tamper.test@127.0.0.1@$DJ_KNOT_PORT expired.test@127.0.0.1@$DJ_KNOT_PORT"

dj_mkroot cert
DER=$(openssl x509 -in cert.crt -outform DER | od -An -v -tx1 | tr -d ' \n')
SPKI=$(openssl x509 -in cert.crt -pubkey -noout | openssl pkey -pubin -outform DER |
	openssl dgst -sha256 -hex | awk '{print $NF}')
CERTH=$(openssl x509 -in cert.crt -outform DER | openssl dgst -sha256 -hex | awk '{print $NF}')
PR() { "$PROBE" --ta "$TA" --stubs "$STUBS" --timeout 4000 "$@"; }
JOINEUI1=$(printf 'joineui 70b3d57ed0000001 lorawan.test\nquit\n' | PR | sed -n 2p)
JOINEUI2=$(printf 'joineui 70b3d57ed0000002 lorawan.test\nquit\n' | PR | sed -n 2p)
check "joineui name (TS002 §19.1 form)" matches "$JOINEUI1" \
	'^1\.0\.0\.0\.0\.0\.0\.d\.e\.7\.5\.d\.3\.b\.0\.7\.joineuis\.lorawan\.test$'

dj_knot_update lorawan.test <<EOF || { echo "FAIL: update lorawan.test"; cat "$T/knot/last-update.out"; exit 1; }
update add _443._tcp.js.lorawan.test. 60 TLSA 3 1 1 $SPKI
update add _443._tcp.js.lorawan.test. 60 TLSA 3 0 0 $DER
update add _443._tcp.js.lorawan.test. 60 TLSA 2 0 1 $CERTH
update add _443._tcp.co.lorawan.test. 60 TLSA 3 1 1 $SPKI
update add _443._tcp.pkix.lorawan.test. 60 TLSA 0 0 1 $CERTH
update add _443._tcp.pkix.lorawan.test. 60 TLSA 1 1 1 $SPKI
update add _443._tcp.short.lorawan.test. 5 TLSA 3 1 1 $SPKI
update add _443._tcp.slow.lorawan.test. 60 TLSA 3 1 1 $SPKI
update add js.lorawan.test. 60 A 127.0.0.1
update add js.lorawan.test. 60 AAAA ::1
update add _lwns._tcp.js.lorawan.test. 60 SRV 0 1 8443 js.lorawan.test.
update add $JOINEUI1. 60 NAPTR 10 50 "S" "LWNS" "" _lwns._tcp.js.lorawan.test.
update add $JOINEUI2. 60 NAPTR 10 50 "S" "LWNS" "" _lwns._tcp.js.plain.test.
EOF
dj_knot_update plain.test <<EOF || { echo "FAIL: update plain.test"; exit 1; }
update add _443._tcp.www.plain.test. 60 TLSA 3 1 1 $SPKI
update add js.plain.test. 60 A 127.0.0.1
update add _lwns._tcp.js.plain.test. 60 SRV 0 1 8443 js.plain.test.
EOF
dj_knot_wait "$JOINEUI2" NAPTR LWNS || { echo "FAIL: updates not visible"; exit 1; }
dj_knot_wait _lwns._tcp.js.plain.test SRV 8443 || { echo "FAIL: plain.test not updated"; exit 1; }

# ---- verdicts, one resolver ----------------------------------------------------------------
OUT=$(PR <<EOF
tlsa _443._tcp.js.lorawan.test
tlsa _443._tcp.nope.lorawan.test
tlsa js.lorawan.test
tlsa _443._tcp.www.plain.test
tlsa _443._tcp.pkix.lorawan.test
tlsa _443._tcp.www.tamper.test
tlsa _443._tcp.www.expired.test
tlsa2 _443._tcp.co.lorawan.test
tlsa _443._tcp.js.lorawan.test
cancel _443._tcp.slow.lorawan.test
disc $JOINEUI1 lwns
disc $JOINEUI2 LWNS
disc $JOINEUI1 x-other
stats
pending _443._tcp.nope2.lorawan.test
quit
EOF
)
RC=$?
echo "$OUT" | sed 's/^/  probe: /'
line() { grep -E "^$1 " <<<"$OUT" | sed -n "${2:-1}p"; }
check "probe exits 0 (also with a lookup pending at free)" test "$RC" -eq 0
L=$(line "tlsa _443._tcp.js.lorawan.test")
check "secure TLSA: 3 records, 3 1 1 / 3 0 0 / 2 0 1 kept" matches "$L" \
	'status=secure n=3 ttl=(60|59) cache=0 '
check "secure TLSA: 3 1 1 present" matches "$L" "3:1:1:${SPKI:0:16}"
check "secure TLSA: 3 0 0 present" matches "$L" "3:0:0:${DER:0:16}"
check "secure TLSA: 2 0 1 present" matches "$L" "2:0:1:${CERTH:0:16}"
check "secure NXDOMAIN" matches "$(line "tlsa _443._tcp.nope.lorawan.test")" 'status=nxdomain n=0'
check "secure NODATA" matches "$(line "tlsa js.lorawan.test")" 'status=nodata n=0'
check "unsigned zone: insecure" matches "$(line "tlsa _443._tcp.www.plain.test")" \
	'status=insecure n=0'
check "usage 0/1 only: unusable" matches "$(line "tlsa _443._tcp.pkix.lorawan.test")" \
	'status=unusable n=0 .*2 PKIX'
check "tampered record: bogus" matches "$(line "tlsa _443._tcp.www.tamper.test")" \
	'status=bogus n=0 .*why=bogus: '
check "expired signatures: bogus" matches "$(line "tlsa _443._tcp.www.expired.test")" \
	'status=bogus n=0 .*why=bogus: .*expired'
check "coalescing: both lookups answered" matches "$(line "tlsa _443._tcp.co.lorawan.test" 2)" \
	'status=secure n=1 .* calls=1 queries\+1 coalesced\+1'
check "second lookup served from the cache" matches "$(line "tlsa _443._tcp.js.lorawan.test" 2)" \
	'status=secure n=3 .*cache=1 '
check "cancelled lookup: no callback" matches "$(line "cancel _443._tcp.slow.lorawan.test")" \
	'handle=1 calls=0'
check "discovery NAPTR -> SRV -> A/AAAA: secure" matches "$(line "disc $JOINEUI1")" \
	'status=secure n=1 srv=js\.lorawan\.test:8443/0/1\[(127\.0\.0\.1\|::1|::1\|127\.0\.0\.1)\]'
check "discovery through an unsigned SRV: insecure" matches "$(line "disc $JOINEUI2")" \
	'status=insecure n=0 srv= why=SRV: insecure'
check "discovery for another service: unusable" matches "$(line "disc $JOINEUI1" 2)" \
	'status=unusable n=0'
check "stats count each verdict" matches "$(line stats)" \
	'coalesced=1 .*bogus=2 nxdomain=1 nodata=1 unusable=1'

# ---- bogus by a wrong anchor (one digit of the DS changed) --------------------------------
awk '$1 == "lorawan.test." { d = substr($NF, 1, 1); $NF = (d == "0" ? "1" : "0") substr($NF, 2) } 1' \
	"$TA" >ta-bad.ds
cmp -s "$TA" ta-bad.ds && { echo "FAIL: the anchor was not changed"; exit 1; }
OUT=$(printf 'tlsa _443._tcp.js.lorawan.test\nquit\n' |
	"$PROBE" --ta ta-bad.ds --stubs "$STUBS" --timeout 4000)
check "wrong trust anchor: bogus" matches "$(line "tlsa _443._tcp.js.lorawan.test")" \
	'status=bogus n=0 .*why=bogus: '

# ---- bad properties: DJ_ECONFIG naming the value -------------------------------------------
OUT=$(echo quit | "$PROBE" --ta "$T/no-such.ds" --stubs "$STUBS")
check "missing ta_file named" matches "$OUT" "invalid configuration.*no-such\.ds"
OUT=$(echo quit | "$PROBE" --ta "$TA" --stubs "lorawan.test")
check "malformed stub named" matches "$OUT" 'invalid configuration.*stub "lorawan\.test"'
OUT=$(echo quit | "$PROBE" --ta "$TA" --stubs "lorawan.test@not-an-address")
check "bad stub address named" matches "$OUT" 'invalid configuration.*not-an-address'
echo "garbage line" >garbage.ds
OUT=$(echo quit | "$PROBE" --ta garbage.ds --stubs "$STUBS")
check "unparseable anchor file named" matches "$OUT" 'invalid configuration.*garbage\.ds'
OUT=$(echo quit | "$PROBE" --stubs "$STUBS")
check "no anchor at all" matches "$OUT" 'invalid configuration.*no trust anchor'

# ---- the TTL-bounded cache while the DNS is down --------------------------------------------
# ttl_cap 8: the 5 s record lives 5 s, the 60 s one 8 s (libunbound's own cache capped too)
dj_test_clock	# time for the probe moves by dj_clock_advance, not by waiting
coproc PRB { PR --ttl-cap 8 2>&1; }
PROBE_PID=$PRB_PID
DJ_PIDS+=("$PROBE_PID")
exec {PIN}>&"${PRB[1]}" {POUT}<&"${PRB[0]}"	# the coprocess's fds outlive its exit
ask() {
	echo "$1" >&"$PIN"
	read -r -t 60 REPLY <&"$POUT" || REPLY="(no answer)"
}
read -r -t 60 REPLY <&"$POUT"
check "probe ready" matches "$REPLY" '^ready$'
ask "tlsa _443._tcp.short.lorawan.test"
check "short-TTL record: secure, TTL 5 at most" matches "$REPLY" 'status=secure n=1 ttl=[1-5] cache=0'
ask "tlsa _443._tcp.slow.lorawan.test"
check "60 s record under ttl_cap 8: secure, TTL 8 at most" matches "$REPLY" \
	'status=secure n=1 ttl=[1-8] cache=0'
dj_knot_stop
ask "tlsa _443._tcp.short.lorawan.test"
check "knotd down: served from the cache within the TTL" matches "$REPLY" \
	'status=secure n=1 ttl=[1-5] cache=1'
ask "tlsa _443._tcp.slow.lorawan.test"
check "knotd down: capped entry served within ttl_cap" matches "$REPLY" \
	'status=secure n=1 ttl=[1-8] cache=1'
dj_clock_advance 9	# the TTL (5 s) and the cap (8 s) run out (the test clock, or a wait)
ask "tlsa _443._tcp.short.lorawan.test"
check "knotd down, entry expired: tempfail" matches "$REPLY" 'status=tempfail n=0 ttl=0 cache=0'
ask "tlsa _443._tcp.slow.lorawan.test"
check "knotd down, past ttl_cap (TTL 60 not over): tempfail" matches "$REPLY" \
	'status=tempfail n=0 ttl=0 cache=0'
ask "stats"
check "tempfail counted, not cached" matches "$REPLY" 'tempfail=2 '
echo quit >&"$PIN"
read -r -t 60 REPLY <&"$POUT"
dj_reap "$PROBE_PID"
RC=$?
check "probe exits 0 after the TTL session" test "$RC" -eq 0

dj_end
