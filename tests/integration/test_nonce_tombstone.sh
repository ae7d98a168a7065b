#!/bin/bash
# test_nonce_tombstone.sh - no JoinNonce is ever issued twice for a DevEUI, whatever the operator
# does (issue 12 item 1), end to end through a real danejoind and danejoin-client.
#
# Per LoRaWAN version (1.0.3: random DevNonces, 1.0.4 and 1.1: counters) a device joins three
# times with Join-requests built here (openssl CMAC) and kept as captured bytes; the JoinNonce of
# each answer is read from its Join-accept, decrypted as the device does (AES with the root key).
# The device is deleted and its CSV imported again; the first captured request, replayed byte for
# byte, must be refused, and a fresh request must get a JoinNonce above the three old ones.
# Then --forget-nonces: the old DevNonce is usable again, but the JoinNonce still goes on. Last,
# restore-guard --bump N raises the next JoinNonce by N and refuses to pass the 24-bit counter.
#
# Usage: bash test_nonce_tombstone.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin tomb "$@"
dj_need "$JSD" "$CLI" "$DEV"

dj_mkroot root
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test
dj_kek ns1
chmod 600 ./*.key ./*.kek

PORT=$(dj_free_port)
dj_conf_pkix "$PORT" off >dj.conf
key() { openssl rand -hex 16; }
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000103,70b3d57ed0000001,1.0.3,$(key),"
	echo "0000000000000104,70b3d57ed0000001,1.0.4,$(key),"
	echo "0000000000000110,70b3d57ed0000001,1.1,$(key),$(key)"
} >devices.csv
chmod 600 devices.csv
check "store initialised and devices imported" dj_store_init dj.conf devices.csv
check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"

NS=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt
	--key ns1.key --sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek
	--kek-file ns1.kek)

# unhex - hex digits on stdin to bytes on stdout
unhex() { local h; h=$(cat); printf "$(sed 's/../\\x&/g' <<<"$h")"; }
# le HEX - the bytes of HEX in reverse order (LoRaWAN EUIs and counters are little-endian)
le() { fold -w2 <<<"$1" | tac | tr -d '\n'; }
# field EUI N - column N of the device's CSV row
field() { awk -F, -v e="$1" -v n="$2" '$1 == e { print $n }' devices.csv; }
# rootkey EUI - the key of the Join-request MIC and the Join-accept: NwkKey (1.1), else AppKey
rootkey() { local k; k=$(field "$1" 5); [ -n "$k" ] || k=$(field "$1" 4); echo "$k"; }
# req EUI DEVNONCE - a Join-request (hex) of the device with DevNonce (4 hex digits, big endian)
req() {
	local b mic
	b="00$(le 70b3d57ed0000001)$(le "$1")$(le "$2")"
	mic=$(unhex <<<"$b" | openssl mac -cipher AES-128-CBC -macopt hexkey:"$(rootkey "$1")" CMAC)
	echo "$b${mic:0:8}"
}
# send EUI PHY - the JoinReq to danejoind; the JoinNonce of the answer (decimal) on stdout,
# "refused" when the Result is not Success
send() {
	local v out acc plain
	v=$(field "$1" 3)
	out=$("$CLI" join "${NS[@]}" --phy "$2" --mac-version "$v" --dev-addr 26000001 2>>join.err)
	[ $? -eq 0 ] || { echo refused; return; }
	acc=$(sed -n 's/.*"PHYPayload":"\([0-9a-fA-F]*\)".*/\1/p' <<<"$out")
	plain=$(unhex <<<"${acc:2}" | openssl enc -aes-128-ecb -nopad -e -K "$(rootkey "$1")" |
		od -An -v -tx1 | tr -d ' \n')
	echo $((16#$(le "${plain:0:6}")))
}

for EUI in 0000000000000103 0000000000000104 0000000000000110; do
	R1=$(req "$EUI" 0101)	# the first request, captured
	eq "$(send "$EUI" "$R1")" 1 "$EUI: first join, JoinNonce"
	eq "$(send "$EUI" "$(req "$EUI" 0102)")" 2 "$EUI: second join, JoinNonce"
	eq "$(send "$EUI" "$(req "$EUI" 0103)")" 3 "$EUI: third join, JoinNonce"
	eq "$(send "$EUI" "$R1")" refused "$EUI: the first request replayed before the delete"

	check "$EUI: deleted" "$DEV" --config dj.conf delete "$EUI"
	grep -E "^dev_eui|^$EUI," devices.csv >"one-$EUI.csv"
	chmod 600 "one-$EUI.csv"
	"$DEV" --config dj.conf import "one-$EUI.csv" >/dev/null 2>&1
	check "$EUI: imported again" test $? -eq 0

	eq "$(send "$EUI" "$R1")" refused "$EUI: the first request replayed after delete and import"
	eq "$(send "$EUI" "$(req "$EUI" 0103)")" refused "$EUI: the third request replayed"
	NEW=$(send "$EUI" "$(req "$EUI" 0104)")
	check "$EUI: a fresh join after the re-import gets JoinNonce $NEW > 3" \
		test "$NEW" != refused -a "${NEW/refused/0}" -gt 3
done

# ---- --forget-nonces: the DevNonces go, the JoinNonce continues ------------------------------
EUI=0000000000000110
check "deleted again" "$DEV" --config dj.conf delete "$EUI"
"$DEV" --config dj.conf import --forget-nonces "one-$EUI.csv" >/dev/null 2>&1
check "imported with --forget-nonces" test $? -eq 0
FN=$(send "$EUI" "$(req "$EUI" 0001)")
check "a forgotten DevNonce is usable again, and the JoinNonce ($FN) still continues above 4" \
	test "$FN" != refused -a "${FN/refused/0}" -gt 4
"$DEV" --config dj.conf audit "$EUI" >audit.out 2>&1
check "the re-imports are audited (device-resume)" test "$(grep -c device-resume audit.out)" -eq 2

# ---- restore-guard --bump N ----------------------------------------------------------------
dj_jsd_stop
"$DEV" --config dj.conf restore-guard --bump 16777215 >rg.out 2>rg.err
check "restore-guard past the 24-bit counter is refused (exit 3)" test $? -eq 3
check "... naming the limit" grep -q "16777215" rg.err
"$DEV" --config dj.conf restore-guard --bump 0 >rg.out 2>rg.err
check "restore-guard --bump 0 is a usage error" test $? -eq 1
"$DEV" --config dj.conf restore-guard --bump 1000 >rg.out 2>rg.err
check "restore-guard --bump 1000 succeeds" test $? -eq 0
check "... for the three devices" grep -q "of 3 devices" rg.out
check "danejoind listens again" dj_jsd_start dj.conf jsd2.log "$PORT"
eq "$(send 0000000000000104 "$(req 0000000000000104 0105)")" 1005 \
	"a join after restore-guard --bump 1000: JoinNonce 4 + 1000 + 1"
"$DEV" --config dj.conf audit >audit.out 2>&1
check "restore-guard is audited" grep -q "restore-guard.*margin=1000" audit.out

dj_end jsd.log join.err
