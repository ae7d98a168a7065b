#!/bin/bash
# test_ownership.sh - the device registry against a real knotd (DNSSEC-signed zones, TSIG):
# enrollment from CSV and from a CMS file (and one for another recipient, refused), records
# seen by kdig +dnssec; auth codes; transfers by signed request and by auth code; a wrong
# signer, a wrong and an expired auth code, a replayed request, all refused with nothing
# changed; a crash after each transfer step then a re-run that finishes; a batch of 1,000.
#
# Usage: bash test_ownership.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin ownership "$@"
BIN=$DEV
dj_need "$BIN"
RUN_PRE=(--config "$T/dj.conf")
q() { dj_knot_q "$@"; }
# snapshot FILE - registry state (owners, transfers, auth codes) and the DNS of the test devices
snapshot() {
	{
		sqlite3 js.db "SELECT hex(dev_eui), zone, serial, hex(chain), published FROM owners
			ORDER BY dev_eui; SELECT count(*) FROM devices; SELECT hex(dev_eui), serial,
			step FROM transfers ORDER BY id; SELECT hex(dev_eui), hex(hash) FROM authcodes
			ORDER BY dev_eui;"
		for d in $D1 $D2 $D3; do
			for z in maker.test opa.test opb.test opc.test; do
				q "$d._device.$z." ANY | sort
				q "_ownership.$d._device.$z." TXT | sort
			done
		done
	} >"$1"
}

ZONES="maker.test opa.test opb.test opc.test"
dj_knot_start "$T/knot" "$ZONES" "plain.test" || { echo "FAIL: knotd"; exit 1; }
NS="127.0.0.1@$DJ_KNOT_PORT"
DNS=(--ns "$NS" --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA")

# Ownership keys: the manufacturer and A on P-256, B on Ed25519; C publishes one, mallory's is
# nobody's.
dj_genkey maker opa opc mallory
(umask 077 && openssl genpkey -algorithm ED25519 -out opb.key 2>/dev/null)
dj_owner_publish 300 $ZONES || exit 1

# The join server's store, and its certificate as a CMS recipient (RSA: key transport).
dj_conf_store >dj.conf
run 0 init
openssl req -x509 -newkey rsa:2048 -nodes -keyout js.key -subj "/CN=js.opa.test" -days 30 \
	-out js.crt 2>/dev/null && chmod 600 js.key
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -subj "/CN=other" -days 30 \
	-out other.crt 2>/dev/null

D1=70b3d57ed0000101
D2=70b3d57ed0000102
D3=70b3d57ed0000103
D4=70b3d57ed0000104
HDR="dev_eui,join_eui,mac_version,app_key,nwk_key,model,firmware,manufacturer,date,identity_sha256"
IDH=$(printf 'device identity' | sha256sum | cut -c1-64)
cat >enroll.csv <<EOF
$HDR
$D1,70b3d57ed0000001,1.0.4,2b7e151628aed2a6abf7158809cf4f3c,,parking-meter PM-2,1.4.2,ACME Meters,2024-03-01,$IDH
$D2,70b3d57ed0000001,1.1,5a1f0c6e2d9b4a3f8e7d6c5b4a392817,000102030405060708090a0b0c0d0e0f,PM-2,1.4.2,ACME Meters,2024-03-02,
EOF
cat >cms.csv <<EOF
$HDR
$D3,70b3d57ed0000001,1.0.4,0f1e2d3c4b5a69788796a5b4c3d2e1f0,,PM-3,2.0,ACME Meters,2024-04-01,
EOF
openssl cms -encrypt -binary -outform DER -in cms.csv -out enroll.cms js.crt 2>/dev/null
openssl cms -encrypt -binary -outform DER -in cms.csv -out other.cms other.crt 2>/dev/null
ENR=(--zone opa.test --from-zone maker.test --key maker.key --netids 000013 --as-ids as.opa.test
	"${DNS[@]}")

# --- bad input to enroll: each refused, the store and the zones unchanged
snapshot before
chmod 644 maker.key
run 3 enroll enroll.csv "${ENR[@]}" && has "$ERR" "maker.key: not a regular file of mode 0600"
chmod 600 maker.key
run 7 enroll enroll.csv --zone opa.test --from-zone maker.test --key mallory.key "${DNS[@]}" &&
	has "$ERR" "not the _owner key published for maker.test"
run 7 enroll enroll.csv --zone opa.test --from-zone plain.test --key maker.key "${DNS[@]}" &&
	has "$ERR" "plain.test. _owner record is not DNSSEC-secure"
sed 's/,2024-03-01,/,2024-13-01,/' enroll.csv >bad-date.csv
run 3 enroll bad-date.csv "${ENR[@]}" && has "$ERR" "bad-date.csv:2: field date: expected YYYY-MM-DD"
sed 's/,PM-2,/,"PM-2",/' enroll.csv >bad-quote.csv
run 3 enroll bad-quote.csv "${ENR[@]}" && has "$ERR" "bad-quote.csv:3: field model"
run 1 enroll enroll.csv --zone opa.test --key maker.key "${DNS[@]}" --requests x &&
	has "$ERR" "--requests is not a flag of this command"
run 1 enroll enroll.csv --zone opa.test --key maker.key --ns "$NS" &&
	has "$ERR" "--tsig-file is required"
run 3 enroll enroll.csv "${ENR[@]/as.opa.test/bad,,id}" && has "$ERR" "--as-ids"
run 3 enroll other.cms "${ENR[@]}" --js-cert js.crt --js-key js.key &&
	has "$ERR" "other.cms is encrypted to another recipient: none of its 1 recipients"
head -c 100 enroll.cms >trunc.cms
run 3 enroll trunc.cms "${ENR[@]}" --js-cert js.crt --js-key js.key &&
	has "$ERR" "neither an enrollment CSV nor a DER CMS file"
snapshot after
same before after "refused enrollments changed something"

# --- enrollment from CSV: keys in custody, records in opa.test, seen signed by kdig
run 0 enroll enroll.csv "${ENR[@]}" && has "$OUT" "enrolled 2 devices" &&
	has "$OUT" "published the records of 2 devices"
run 0 list && has "$OUT" "$D1" && has "$OUT" "$D2"
kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +dnssec +norec TXT "$D1._device.opa.test." >kd.out 2>&1
has kd.out '"v=dj1" "model=parking-meter PM-2" "firmware=1.4.2" "manufacturer=ACME Meters" "date=2024-03-01"'
has kd.out "RRSIG.*TXT"
kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +dnssec +norec TLSA "$D1._device.opa.test." >kd.out 2>&1
has kd.out "TLSA.*3 1 1 ${IDH^^}|TLSA.*3 1 1 $IDH"
has kd.out "RRSIG.*TLSA"
kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +dnssec +norec TXT "_ownership.$D1._device.opa.test." >kd.out
has kd.out "RRSIG.*TXT"
# the chain from the DNS decodes and names the manufacturer -> opa hand-over
q "_ownership.$D2._device.opa.test." TXT | tr -d '" \n' | base64 -d >chain.bin 2>/dev/null
CHECKS=$((CHECKS + 1))
[ -s chain.bin ] && protoc --decode_raw <chain.bin 2>/dev/null | grep -q 'maker.test' ||
	grep -aq 'maker.test.' chain.bin || fail "the published chain does not decode"
run 0 ownership $D1 && has "$OUT" "owner: +opa.test." &&
	has "$OUT" "link 1: +maker.test. -> opa.test. +signed by maker.test. \(manufacturer\)"
run 3 enroll enroll.csv "${ENR[@]}" && has "$ERR" "already enrolled; nothing was enrolled"

# --- enrollment from a CMS file encrypted to the JS certificate
run 0 enroll enroll.cms "${ENR[@]}" --js-cert js.crt --js-key js.key &&
	has "$OUT" "enrolled 1 devices"
ok dj_knot_wait "$D3._device.opa.test." TXT "model=PM-3"
lacks "$ERR" "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

# --- transfer by a request signed by the current owner (A -> B)
run 0 transfer-request $D1 --zone opa.test --to-zone opb.test --key opa.key --netids 00001a \
	--as-ids as.opb.test --out req-ab.txt && has "$OUT" "signed 1 transfer requests"
run 0 transfer --requests req-ab.txt "${DNS[@]}" && has "$OUT" "transferred 1 devices"
ok dj_knot_wait "$D1._device.opa.test." CNAME "$D1._device.opb.test."
has <(q "$D1._device.opb.test." TXT) "model=parking-meter PM-2"
has <(q "_ownership.$D1._device.opb.test." TXT) "."
CHECKS=$((CHECKS + 1))
[ -z "$(q "_ownership.$D1._device.opa.test." TXT)" ] || fail "the old _ownership stayed"
kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +dnssec +norec CNAME "$D1._device.opa.test." >kd.out
has kd.out "RRSIG.*CNAME"
run 0 ownership $D1 && has "$OUT" "owner: +opb.test." &&
	has "$OUT" "link 2: +opa.test. -> opb.test. +signed by opa.test. \(signed request\)" &&
	has "$OUT" "netids 00001a  as_ids as.opb.test"
# the same request again: already done, nothing changes
snapshot before
run 0 transfer --requests req-ab.txt "${DNS[@]}" && has "$OUT" "1 already done earlier"
snapshot after
same before after "a repeated completed request changed something"

# --- refusals: a wrong signer, a bad signature, malformed requests; nothing changes
snapshot before
run 0 transfer-request $D2 --zone opa.test --to-zone opc.test --key mallory.key --netids 00001a \
	--as-ids x --out req-mallory.txt
run 7 transfer --requests req-mallory.txt "${DNS[@]}" &&
	has "$ERR" "signature does not verify under the _owner key of opa.test" &&
	has "$ERR" "nothing was transferred"
run 0 transfer-request $D2 --zone opa.test --to-zone opc.test --key opa.key --netids 00001a \
	--as-ids x --out req-ac.txt
# flip one base64 character inside the signature
awk '{ c = substr($0, length($0) - 6, 1); r = (c == "A") ? "B" : "A";
	print substr($0, 1, length($0) - 7) r substr($0, length($0) - 5) }' req-ac.txt >req-bogus.txt
run 7 transfer --requests req-bogus.txt "${DNS[@]}" && has "$ERR" "does not verify|not a signed"
echo "not base64!" >req-junk.txt
run 3 transfer --requests req-junk.txt "${DNS[@]}" && has "$ERR" "req-junk.txt:1: not a signed transfer request"
# a batch with one bad request refuses the good one too
cat req-ac.txt req-mallory.txt >req-mixed.txt
run 7 transfer --requests req-mixed.txt "${DNS[@]}"
run 7 transfer-request $D1 --zone opa.test --to-zone opc.test --key opa.key --netids 00001a \
	--as-ids x --out req-notowner.txt && has "$ERR" "owned by opb.test., not by --zone opa.test."
run 1 transfer --requests req-ac.txt --to-zone opc.test "${DNS[@]}" &&
	has "$ERR" "no --to-zone"
snapshot after
same before after "refused transfers changed something"

# --- auth codes: set by the owner (B), used by C's transfer; wrong and expired codes refused
run 7 authcode set $D1 --zone opb.test --key opa.key --ta-file "$DJ_KNOT_TA" --lookup-via "$NS" \
	--out codes-x.csv && has "$ERR" "not the _owner key published for opb.test"
CHECKS=$((CHECKS + 1)); [ ! -e codes-x.csv ] || fail "a refused authcode set wrote a file"
run 0 authcode set $D1 --zone opb.test --key opb.key --ta-file "$DJ_KNOT_TA" --lookup-via "$NS" \
	--out codes.csv && has "$OUT" "set 1 auth codes"
CHECKS=$((CHECKS + 1))
[ "$(stat -c %a codes.csv)" = 600 ] || fail "the auth code file is not 0600"
CODE=$(tail -1 codes.csv | cut -d, -f2)
CHECKS=$((CHECKS + 1))
sqlite3 js.db "SELECT count(*) FROM audit WHERE detail LIKE '%$CODE%'" | grep -qx 0 ||
	fail "the auth code is in the audit log"
lacks <(sqlite3 js.db .dump) "$CODE"
ACX=(--to-zone opc.test --netids 000099 --as-ids as.opc.test --key maker.key "${DNS[@]}")
snapshot before
printf 'dev_eui,auth_code\n%s,%s\n' $D1 0000000000000000000000AB >codes-wrong.csv
run 7 transfer --auth-codes codes-wrong.csv "${ACX[@]}" && has "$ERR" "wrong auth code" &&
	lacks "$ERR" "$CODE"
run 7 transfer --auth-codes codes.csv "${ACX[@]/maker.key/opa.key}" &&
	has "$ERR" "not the _owner key published for maker.test"
snapshot after
same before after "refused auth-code transfers changed something"
run 0 transfer --auth-codes codes.csv "${ACX[@]}" && has "$OUT" "transferred 1 devices"
run 0 ownership $D1 && has "$OUT" "owner: +opc.test." &&
	has "$OUT" "link 3: +opb.test. -> opc.test. +signed by maker.test. \(auth code\)"
ok dj_knot_wait "$D1._device.opb.test." CNAME "$D1._device.opc.test."
run 7 transfer --auth-codes codes.csv "${ACX[@]/opc.test/opa.test}" && has "$ERR" "wrong auth code"
# an expired code
run 0 authcode set $D2 --zone opa.test --key opa.key --ta-file "$DJ_KNOT_TA" --lookup-via "$NS" \
	--expires-in 1 --out codes2.csv
sleep 2
run 7 transfer --auth-codes codes2.csv "${ACX[@]}" && has "$ERR" "the auth code has expired"

# --- a replayed old request: D1 went A -> B -> C; the A -> B request again is refused
snapshot before
run 7 transfer --requests req-ab.txt "${DNS[@]}" && has "$ERR" "replayed"
snapshot after
same before after "a replayed request changed something"

# --- a crash after each step, then a re-run finishes (D2: A -> B, D3: A -> C)
for step in 0 1 2; do
	case $step in
	0) DEV=$D2; TO=opb.test; KEY=opa.key; FROM=opa.test ;;
	1) DEV=$D2; TO=opc.test; KEY=opb.key; FROM=opb.test ;;
	2) DEV=$D3; TO=opb.test; KEY=opa.key; FROM=opa.test ;;
	esac
	rm -f req-crash.txt
	run 0 transfer-request $DEV --zone $FROM --to-zone $TO --key $KEY --netids 00001a \
		--as-ids x --out req-crash.txt
	CHECKS=$((CHECKS + 1))
	DJ_DV_CRASH_AFTER_STEP=$step "$BIN" --config dj.conf transfer --requests req-crash.txt \
		"${DNS[@]}" >"$OUT" 2>"$ERR"
	[ $? -eq 70 ] || fail "the crash hook after step $step did not fire"
	CHECKS=$((CHECKS + 1))
	[ "$(sqlite3 js.db "SELECT step FROM transfers ORDER BY id DESC LIMIT 1")" = $step ] ||
		fail "after a crash at step $step the transfer is not at step $step"
	run 0 ownership $DEV && has "$OUT" "owner: +$FROM." # not half-transferred
	run 0 transfer "${DNS[@]}" && has "$OUT" "finished 1 transfers left unfinished"
	run 0 ownership $DEV && has "$OUT" "owner: +$TO."
	ok dj_knot_wait "$DEV._device.$FROM." CNAME "$DEV._device.$TO."
	has <(q "_ownership.$DEV._device.$TO." TXT) "."
	run 0 transfer --requests req-crash.txt "${DNS[@]}" && has "$OUT" "1 already done earlier"
done
# a SIGKILL-like end (the hook uses _exit) before anything reached the DNS, then the same
# command again: the transfer completes exactly once
run 0 audit $D2 && has "$OUT" "ownership-transfer"
CHECKS=$((CHECKS + 1))
[ "$(sqlite3 js.db "SELECT count(*) FROM audit WHERE event='ownership-transfer' AND
	hex(dev_eui)=upper('$D2')")" = 2 ] || fail "D2 should have exactly 2 transfer audit entries"

# --- a batch of 1,000 devices: enroll, then transfer A -> B by signed requests, then B -> C by
# auth codes; each DNS-updated and timed
dj_devices_csv 1000 1.0.4 | sed '1s/.*/dev_eui,join_eui,mac_version,app_key,nwk_key/' >batch.csv
run 0 enroll batch.csv "${ENR[@]}" && has "$OUT" "enrolled 1000 devices"
{ echo dev_eui; tail -n +2 batch.csv | cut -d, -f1; } >batch-devs.csv
run 0 transfer-request --csv batch-devs.csv --zone opa.test --to-zone opb.test --key opa.key \
	--netids 00001a --as-ids as.opb.test --out batch-req.txt
S=$(date +%s.%N)
run 0 transfer --requests batch-req.txt "${DNS[@]}" && has "$OUT" "transferred 1000 devices"
E=$(date +%s.%N)
echo "batch: 1000 transfers by signed request in $(echo "$E - $S" | bc) s (incl. DNS updates)"
LAST=$(tail -1 batch-devs.csv)
ok dj_knot_wait "$LAST._device.opa.test." CNAME "$LAST._device.opb.test."
run 0 authcode set --csv batch-devs.csv --zone opb.test --key opb.key --ta-file "$DJ_KNOT_TA" \
	--lookup-via "$NS" --out batch-codes.csv
S=$(date +%s.%N)
run 0 transfer --auth-codes batch-codes.csv "${ACX[@]}" && has "$OUT" "transferred 1000 devices"
E=$(date +%s.%N)
echo "batch: 1000 transfers by auth code in $(echo "$E - $S" | bc) s (incl. DNS updates)"
ok dj_knot_wait "$LAST._device.opb.test." CNAME "$LAST._device.opc.test."

dj_end
