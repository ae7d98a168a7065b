#!/bin/bash
# test_coredump.sh - no master key and no KEK in a core dump (issue 12 item 3; threat model).
#
# danejoind runs with two KEKs (AES-128 and AES-256) and serves joins; a gcore of the live
# process is searched for the master key and each KEK, in binary and in hex. The same for
# danejoin-devices in the middle of a large import. DJ_ALLOW_DUMP=1 keeps the process dumpable,
# so gcore can attach as it would for a debugging operator; the key arena (MADV_DONTDUMP) must
# keep the keys out all the same. A positive control checks that the search finds what is in
# the dump (a KEK label, which the daemon keeps beside the KEK). Without
# DJ_ALLOW_DUMP the daemon runs with RLIMIT_CORE 0 and a SIGSEGV leaves no core file.
#
# Usage: bash test_coredump.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin coredump "$@"
dj_need "$JSD" "$CLI" "$DEV" gcore python3

dj_mkroot root
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test
dj_kek ns1
(umask 077 && openssl rand -hex 32 >as1.kek)
chmod 600 ./*.key
PORT=$(dj_free_port)
{
	dj_conf_pkix "$PORT" off
	dj_conf_peer as1 as1.test as as-1 join_euis=70b3d57ed0000000/48 kek_label=as1-kek \
		kek_file=as1.kek
} >dj.conf
dj_devices_csv 20 1.1 >devices.csv
chmod 600 devices.csv
check "store initialised and devices imported" dj_store_init dj.conf devices.csv

# A sanitizer build maps terabytes of shadow memory: a gcore of it would take minutes and more
# disk than the machine has. The dumps are checked in the release build of tests/run; here only
# the part without a dump runs.
SAN=
grep -q '^DJ_SANITIZE:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null && SAN=1

# keys_in CORE - how many times the master key or a KEK (bytes or hex, either case) is in CORE
keys_in() {
	python3 - "$1" master.key ns1.kek as1.kek <<'PY'
import mmap, sys
f = open(sys.argv[1], 'rb')
core = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
n = 0
for path in sys.argv[2:]:
    text = open(path).read().strip()
    key = bytes.fromhex(text)
    for needle in (key, text.lower().encode(), text.upper().encode()):
        c, at = 0, core.find(needle)
        while at >= 0:
            c, at = c + 1, core.find(needle, at + 1)
        if c:
            print(f"{path}: {c} copies of the {'bytes' if needle == key else 'hex text'}",
                  file=sys.stderr)
        n += c
print(n)
PY
}

# ---- the daemon, after serving joins --------------------------------------------------------
if [ -z "$SAN" ]; then
DJ_ALLOW_DUMP=1 dj_jsd_start dj.conf jsd.log "$PORT"
check "danejoind listens" test $? -eq 0
NS=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt --key ns1.key
	--sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek --kek-file ns1.kek)
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000001001 --count 3 >join.out 2>&1
check "joins were served (keys were unwrapped and sealed)" grep -q Success join.out
gcore -o jsd.core "$DJ_JSD_PID" >gcore.log 2>&1
check "gcore dumped the running daemon" test -s "jsd.core.$DJ_JSD_PID"
check "positive control: the dump holds the daemon's own strings" \
	grep -qa "as1-kek" "jsd.core.$DJ_JSD_PID"
check "no master key or KEK in the daemon's dump" test "$(keys_in "jsd.core.$DJ_JSD_PID")" = 0
rm -f "jsd.core.$DJ_JSD_PID"
dj_jsd_stop

# ---- danejoin-devices mid-operation ---------------------------------------------------------
# DevEUIs of their own (dj_devices_csv numbers from 0x1001, as the first import did)
dj_devices_csv 200000 1.1 | awk -F, -v OFS=, 'NR > 1 { $1 = sprintf("%016x", NR + 1048576) } 1' \
	>big.csv
chmod 600 big.csv
DJ_ALLOW_DUMP=1 "$DEV" --config dj.conf import big.csv >import.out 2>&1 &
IPID=$!
# the master key is open once the store is: wait for js.db among its descriptors
dj_wait_for 20 sh -c "ls -l /proc/$IPID/fd 2>/dev/null | grep -q js.db"
gcore -o dev.core "$IPID" >gcore2.log 2>&1
still=$(kill -0 "$IPID" 2>/dev/null && echo yes || echo no)
wait "$IPID"
check "danejoin-devices was dumped mid-import (still running at the dump)" \
	test -s "dev.core.$IPID" -a "$still" = yes
check "the import then finished" grep -qi "imported" import.out
check "no master key in the CLI's dump" test "$(keys_in "dev.core.$IPID")" = 0
rm -f "dev.core.$IPID"
else
	echo "SKIP: the gcore checks (sanitizer build); they run in the release build"
fi

# ---- without DJ_ALLOW_DUMP: no core at all --------------------------------------------------
mkdir crash && cd crash || exit 1
"$JSD" --config ../dj.conf >jsd2.log 2>&1 &
P2=$!
DJ_PIDS+=("$P2")
dj_wait_port "$PORT" "$P2"
check "the daemon's core limit is 0" grep -Eq '^Max core file size +0 +0' "/proc/$P2/limits"
kill -SEGV "$P2"
wait "$P2" 2>/dev/null
check "a SIGSEGV leaves no core file" test -z "$(ls core* 2>/dev/null)"
cd .. || exit 1

dj_end jsd.log import.out
