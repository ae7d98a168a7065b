#!/bin/bash
# bench_import.sh - bulk enrolment: `danejoin-devices import` of N devices (LoRaWAN 1.1, random
# keys) into a fresh durable SQLite store, all in one transaction. Prints the wall time, the
# devices/s, the peak RSS of the import and the store's size; asserts nothing about time.
# The import draws its progress bar on stderr when that is a terminal (run by hand to see it).
#
#   bash tests/bench/bench_import.sh BUILD_DIR [DEVICES]   (default 1000000; ctest: a smoke size)
set -u
BUILD_DIR=$(cd "${1:?usage: bench_import.sh BUILD_DIR [DEVICES]}" && pwd)
NDEV=${2:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/harness.sh"
DEV="$BUILD_DIR/devices/danejoin-devices"
T=$(mktemp -d "${TMPDIR:-/tmp}/dj-bench-import.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
cat >dj.conf <<CONF
[store]
path = js.db
[keys]
master_key_file = master.key
[js]
join_euis = 70b3d57ed0000000/48
CONF
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv) || exit 1
"$DEV" --config dj.conf init >/dev/null || { echo "bench_import: init failed"; exit 1; }
# the peak RSS from the kernel (VmHWM) when the import exits: no /usr/bin/time needed
t0=$(date +%s%N)
"$DEV" --config dj.conf import devices.csv >import.out &
P=$!
HWM=0
while kill -0 $P 2>/dev/null; do
	h=$(awk '/^VmHWM:/ { print $2 }' /proc/$P/status 2>/dev/null)
	[ -n "$h" ] && [ "$h" -gt "$HWM" ] && HWM=$h
	sleep 0.2
done
wait $P
RC=$?
t1=$(date +%s%N)
if [ $RC -ne 0 ] || ! grep -qx "imported $NDEV devices" import.out; then
	echo "bench_import: import failed (exit $RC)"; cat import.out; exit 1
fi
MS=$(((t1 - t0) / 1000000))
echo "bench_import: $NDEV devices imported in $((MS / 1000)).$(printf '%03d' $((MS % 1000))) s" \
	"($((NDEV * 1000 / (MS > 0 ? MS : 1))) devices/s), peak RSS about $((HWM / 1024)) MiB" \
	"(sampled), store $(($(stat -c %s js.db) / 1048576)) MiB"
