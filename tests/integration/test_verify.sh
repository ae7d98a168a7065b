#!/bin/bash
# test_verify.sh - danejoin-devices verify against a real knotd (DNSSEC-signed zones): a message
# signed by a device's own key, checked against the device's identity TLSA.
#  - 3 1 1 published by enroll (P-256 device): good with --device-key; a forged signature (9); a
#    wrong --device-key (12); no --device-key with digests only (1)
#  - 3 1 0 (Ed25519) and 3 1 2 (P-256) by dynamic update: good; signed by another key (9)
#  - the device in an unsigned zone (11), a wrong trust anchor (bogus, 11)
#  - an enrolled device without a key (NODATA, 10), an unknown device (NXDOMAIN, 10)
#  - the DNS unreachable (8); bad flags (1) and a bad DevEUI (3); no --config needed
#
# Usage: bash test_verify.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin verify "$@"
BIN=$DEV
dj_need "$BIN"
sign_ec() { openssl dgst -sha256 -sign "$1" -out "$3" "$2"; }
sign_ed() { openssl pkeyutl -sign -rawin -inkey "$1" -in "$2" -out "$3"; }

dj_knot_start "$T/knot" "maker.test opa.test" "plain.test" || { echo "FAIL: knotd"; exit 1; }
NS="127.0.0.1@$DJ_KNOT_PORT"
DNS=(--ns "$NS" --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA")
LK=(--ta-file "$DJ_KNOT_TA" --lookup-via "$NS")

(umask 077
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out maker.key 2>/dev/null
for k in dev1 dev6 other; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $k.key 2>/dev/null
done
openssl genpkey -algorithm ED25519 -out dev5.key 2>/dev/null
openssl genpkey -algorithm ED25519 -out other-ed.key 2>/dev/null)
for k in dev1 dev5 dev6 other; do openssl pkey -in $k.key -pubout -out $k.pub 2>/dev/null; done
dj_owner_publish 300 maker.test || exit 1

# D1 (identity key dev1, 3 1 1) and D2 (no key) enrolled the way a manufacturer does it
D1=70b3d57ed0000201
D2=70b3d57ed0000202
D5=70b3d57ed0000205
D6=70b3d57ed0000206
D7=70b3d57ed0000207
D9=70b3d57ed0000209
cat >dj.conf <<EOF
[store]
path = js.db
[keys]
master_key_file = master.key
EOF
CHECKS=$((CHECKS + 1))
"$BIN" --config dj.conf init >/dev/null 2>&1 || fail "init"
cat >enroll.csv <<EOF
dev_eui,join_eui,mac_version,app_key,nwk_key,model,firmware,manufacturer,date,identity_sha256
$D1,70b3d57ed0000001,1.0.4,2b7e151628aed2a6abf7158809cf4f3c,,PM-2,1.4.2,ACME Meters,2024-03-01,$(dj_spki_dgst dev1.key sha256)
$D2,70b3d57ed0000001,1.0.4,5a1f0c6e2d9b4a3f8e7d6c5b4a392817,,PM-2,1.4.2,ACME Meters,2024-03-02,
EOF
CHECKS=$((CHECKS + 1))
"$BIN" --config dj.conf enroll enroll.csv --zone opa.test --from-zone maker.test \
	--key maker.key "${DNS[@]}" >"$OUT" 2>"$ERR" || fail "enroll"
# D5: Ed25519, 3 1 0; D6: P-256, 3 1 2; D7: in the unsigned zone, 3 1 0
dj_knot_update opa.test <<EOF || { echo "FAIL: update opa.test"; exit 1; }
update add $D5._device.opa.test. 300 IN TLSA 3 1 0 $(dj_spki_hex dev5.key)
update add $D6._device.opa.test. 300 IN TLSA 3 1 2 $(dj_spki_dgst dev6.key sha512)
EOF
dj_knot_update plain.test <<EOF || { echo "FAIL: update plain.test"; exit 1; }
update add $D7._device.plain.test. 300 IN TLSA 3 1 0 $(dj_spki_hex dev1.key)
EOF
dj_knot_wait "$D6._device.opa.test." TLSA "3 1 2" || { echo "FAIL: records"; exit 1; }
dj_knot_wait "$D7._device.plain.test." TLSA "3 1 0" || { echo "FAIL: records"; exit 1; }

printf 'meter %s reading 1234.5 kWh at 2024-05-01T12:00:00Z\n' $D1 >msg
sign_ec dev1.key msg sig1
sign_ed dev5.key msg sig5
sign_ed other-ed.key msg sig5-other
sign_ec dev6.key msg sig6
sign_ec other.key msg sig-other
# forged: the same signature over a changed message, and a signature with one byte flipped
sed 's/1234.5/9234.5/' msg >msg-forged
cp sig5 sig5-flipped
printf '\x00' | dd of=sig5-flipped bs=1 seek=10 conv=notrunc 2>/dev/null
cmp -s sig5 sig5-flipped && printf '\x01' | dd of=sig5-flipped bs=1 seek=10 conv=notrunc 2>/dev/null

# the DNS unreachable: libunbound's retries take long, so this runs while the rest goes on
DEAD=$(dj_free_port)
dj_spawn dead.out dead.err "$BIN" verify --dev-eui $D5 --zone opa.test --message msg \
	--signature sig5 --ta-file "$DJ_KNOT_TA" --lookup-via "127.0.0.1@$DEAD"
DEAD_PID=$DJ_PID

# --- good signatures
run 0 verify --dev-eui $D1 --zone opa.test --message msg --signature sig1 --device-key dev1.pub \
	"${LK[@]}" && has "$OUT" "good signature: msg is signed by the identity key of $D1._device.opa.test.* \(TLSA 3 1 1, DNSSEC-secure\)"
run 0 verify --dev-eui $D5 --zone opa.test. --message msg --signature sig5 "${LK[@]}" &&
	has "$OUT" "TLSA 3 1 0"
run 0 verify --dev-eui $D5 --zone opa.test --message msg --signature sig5 --device-key dev5.pub \
	--ta-file "$DJ_KNOT_TA" --ns "$NS"
run 0 verify --dev-eui $D6 --zone opa.test --message msg --signature sig6 --device-key dev6.pub \
	"${LK[@]}" && has "$OUT" "TLSA 3 1 2"
# with a configuration too (the JS operator's form)
run 0 --config dj.conf verify --dev-eui $D5 --zone opa.test --message msg --signature sig5 "${LK[@]}"

# --- forged signatures (exit 9)
run 9 verify --dev-eui $D1 --zone opa.test --message msg-forged --signature sig1 \
	--device-key dev1.pub "${LK[@]}" && has "$ERR" "bad signature: sig1 does not verify under the identity key of $D1._device.opa.test"
run 9 verify --dev-eui $D5 --zone opa.test --message msg --signature sig5-flipped "${LK[@]}"
run 9 verify --dev-eui $D5 --zone opa.test --message msg-forged --signature sig5 "${LK[@]}"
: >sig-empty
run 9 verify --dev-eui $D5 --zone opa.test --message msg --signature sig-empty "${LK[@]}"

# --- the wrong key: signed by a key that is not the device's (9), or a --device-key that the
# DNS does not name (12), even with a signature that verifies under it
run 9 verify --dev-eui $D5 --zone opa.test --message msg --signature sig5-other "${LK[@]}"
run 9 verify --dev-eui $D1 --zone opa.test --message msg --signature sig-other \
	--device-key dev1.pub "${LK[@]}"
run 12 verify --dev-eui $D1 --zone opa.test --message msg --signature sig-other \
	--device-key other.pub "${LK[@]}" &&
	has "$ERR" "other.pub is not the key of $D1._device.opa.test.* \(matches none of its 1 identity TLSA records\)"
run 12 verify --dev-eui $D6 --zone opa.test --message msg --signature sig1 \
	--device-key dev1.pub "${LK[@]}"
run 12 verify --dev-eui $D5 --zone opa.test --message msg --signature sig6 \
	--device-key dev6.pub "${LK[@]}"
# digests only, no key given
run 1 verify --dev-eui $D1 --zone opa.test --message msg --signature sig1 "${LK[@]}" &&
	has "$ERR" "only digests of the key .* --device-key"

# --- not DNSSEC-secure (exit 11): an unsigned zone; a wrong trust anchor (bogus)
run 11 verify --dev-eui $D7 --zone plain.test --message msg --signature sig1 \
	--device-key dev1.pub "${LK[@]}" &&
	has "$ERR" "$D7._device.plain.test.* TLSA: the answer is not DNSSEC-secure \(insecure\)"
run 11 verify --dev-eui $D7 --zone plain.test --message msg --signature sig1 "${LK[@]}"
awk '$1 == "opa.test." { $NF = "00" substr($NF, 3) } { print }' "$DJ_KNOT_TA" >bad-ta.ds
run 11 verify --dev-eui $D5 --zone opa.test --message msg --signature sig5 --ta-file bad-ta.ds \
	--lookup-via "$NS" && has "$ERR" "not DNSSEC-secure \(bogus"

# --- no record (exit 10): NODATA (enrolled, no key), NXDOMAIN (unknown device)
run 10 verify --dev-eui $D2 --zone opa.test --message msg --signature sig1 \
	--device-key dev1.pub "${LK[@]}" && has "$ERR" "no identity TLSA \(secure NODATA"
run 10 verify --dev-eui $D9 --zone opa.test --message msg --signature sig1 "${LK[@]}" &&
	has "$ERR" "no identity TLSA \(secure NXDOMAIN"
# a secure RRset without a usable record (3 1 1 of the wrong length, usage 2)
dj_knot_update opa.test <<EOF || fail "update D9"
update add $D9._device.opa.test. 300 IN TLSA 2 1 0 $(dj_spki_hex dev1.key)
update add $D9._device.opa.test. 300 IN TLSA 3 1 1 0011
EOF
dj_knot_wait "$D9._device.opa.test." TLSA "2 1 0"
run 10 verify --dev-eui $D9 --zone opa.test --message msg --signature sig1 "${LK[@]}" &&
	has "$ERR" "no usable 3 1 0/1/2 record"

# --- the DNS unreachable (exit 8): checked at the end
dj_verify_dead() {
	local rc
	dj_reap "$DEAD_PID"
	rc=$?
	CHECKS=$((CHECKS + 1))
	[ $rc -eq 8 ] || { OUT=dead.out ERR=dead.err fail "verify with the DNS unreachable exited $rc, expected 8"; return 1; }
	has dead.err "cannot be looked up now"
}

# --- bad input
run 1 verify --dev-eui $D5 --zone opa.test --message msg "${LK[@]}" &&
	has "$ERR" "--signature is required"
run 1 verify --dev-eui $D5 --zone opa.test --message msg --signature sig5 &&
	has "$ERR" "--ta-file is required"
run 1 verify --dev-eui $D5 --zone opa.test --message msg --signature sig5 --key x "${LK[@]}" &&
	has "$ERR" "--key is not a flag of this command"
run 3 verify --dev-eui 70b3 --zone opa.test --message msg --signature sig5 "${LK[@]}" &&
	has "$ERR" "--dev-eui 70b3: expected 16 hex digits"
run 3 verify --dev-eui $D5 --zone opa.test --message nosuch --signature sig5 "${LK[@]}" &&
	has "$ERR" "--message nosuch: cannot read"
run 3 verify --dev-eui $D5 --zone opa.test --message msg --signature sig5 --device-key msg \
	"${LK[@]}" && has "$ERR" "not a PEM public key"
run 2 verify --dev-eui $D5 --zone opa.test --message msg --signature sig5 --ta-file nosuch \
	--lookup-via "$NS"

dj_verify_dead
dj_end
