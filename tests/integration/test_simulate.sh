#!/bin/bash
# test_simulate.sh - `danejoin-devices simulate` (the quick start's demo) end to end: enrolled
# devices of every version join through the engine and the SQLite store, the simulated devices
# accept the Join-accepts and derive the join server's keys, replays and forged MICs are refused,
# a device that was never enrolled is refused, and the nonce state survives into a second run.
#
# Usage: bash test_simulate.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin simulate "$@"
BIN=$DEV
dj_need "$BIN"

{ dj_conf_store; dj_conf_section join net_id=000013; } >"$T/dj.conf"
key() { openssl rand -hex 16; }
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	n=1
	for v in 1.0.0 1.0.1 1.0.2 1.0.3 1.0.4 1.1; do
		if [ "$v" = 1.1 ]; then nk=$(key); else nk=""; fi
		printf '00000000000000%02x,70b3d57ed0000000,%s,%s,%s\n' $n "$v" "$(key)" "$nk"
		n=$((n + 1))
	done
} >"$T/enrolled.csv"
cp "$T/enrolled.csv" "$T/field.csv"
echo "00000000000000ff,70b3d57ed0000000,1.1,$(key),$(key)" >>"$T/field.csv"

"$BIN" --config "$T/dj.conf" init >/dev/null 2>&1
"$BIN" --config "$T/dj.conf" import "$T/enrolled.csv" >/dev/null 2>&1
check "import worked" test $? -eq 0

"$BIN" --config "$T/dj.conf" simulate --csv "$T/field.csv" --joins 3 >"$T/out" 2>"$T/err"
rc=$?
check "simulate exits 0 (every outcome as specified), got $rc" test $rc -eq 0
check "the summary says so" grep -q "every outcome is the one the LoRaWAN specification requires" "$T/out"
check "3 joins x 6 devices + 3 rejoins = 21 accepted" grep -q "21 requests accepted" "$T/out"
check "1.1 rejoin type 0 accepted and checked" \
	grep -q "0000000000000006 1.1   rejoin type 0  accepted .*session keys match" "$T/out"
check "1.0.3 replay refused as a used DevNonce" \
	grep -q "0000000000000004 1.0.3 replayed join  refused   DevNonce already used" "$T/out"
check "1.0.4 replay refused by the counter rule" \
	grep -q "0000000000000005 1.0.4 replayed join  refused   DevNonce not above" "$T/out"
check "forged MICs refused" test "$(grep -c 'forged MIC     refused   MIC check failed' "$T/out")" -eq 6
check "the unenrolled device is refused" \
	grep -q "00000000000000ff 1.1   join           refused   unknown DevEUI" "$T/out"
check "JoinNonce 3 issued to a 1.0 device" grep -q "0000000000000001 1.0.0 join .*JoinNonce=000003" "$T/out"
check "no key in the output" bash -c "! grep -qiE '$(cut -d, -f4 "$T/enrolled.csv" | tail -n +2 | paste -sd'|')' '$T/out'"

# A second run: the counter devices' simulators start again from DevNonce 0, which the store
# remembers as used, so their first joins must now be refused; JoinNonces continue.
"$BIN" --config "$T/dj.conf" simulate --csv "$T/enrolled.csv" --joins 1 >"$T/out2" 2>&1
rc=$?
check "second run: joins the spec requires refused (restarted counters) -> exit 6, got $rc" test $rc -eq 6
check "1.1 device's restarted DevNonce refused" \
	grep -q "0000000000000006 1.1   join           refused   DevNonce not above the last one accepted  <-- UNEXPECTED" "$T/out2"
check "rejoins 0/2 not sent without a session" grep -q "rejoin type 0  not sent: the device has no 1.1 session" "$T/out2"
check "JoinNonces continue in the second run" grep -q "0000000000000001 1.0.0 join .*JoinNonce=000004" "$T/out2"

# Bad input
"$BIN" --config "$T/dj.conf" simulate --csv "$T/field.csv" --joins 0 >/dev/null 2>"$T/err"
check "--joins 0 is a usage error (exit 1)" test $? -eq 1
check "... naming the flag" grep -q -- "--joins" "$T/err"
"$BIN" --config "$T/dj.conf" simulate >/dev/null 2>"$T/err"
check "missing --csv is a usage error" test $? -eq 1
printf 'dev_eui,join_eui,mac_version,app_key,nwk_key\n0102,70b3d57ed0000000,1.1,%s,%s\n' "$(key)" "$(key)" >"$T/bad.csv"
"$BIN" --config "$T/dj.conf" simulate --csv "$T/bad.csv" >/dev/null 2>"$T/err"
check "a bad CSV is exit 3" test $? -eq 3
check "... naming line and field" grep -q "bad.csv:2: field dev_eui" "$T/err"

dj_end
