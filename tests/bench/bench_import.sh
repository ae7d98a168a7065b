#!/bin/bash
# bench_import.sh - bulk enrolment: `danejoin-devices import` of N devices (LoRaWAN 1.1, random
# keys) into a fresh durable SQLite store, all in one transaction. Prints the wall time, the
# devices/s, the peak RSS of the import and the store's size; asserts nothing about time.
# The import draws its progress bar on stderr when that is a terminal (run by hand to see it).
#
#   bash tests/bench/bench_import.sh BUILD_DIR [DEVICES]   (default 1000000; ctest: a smoke size)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_bench_begin bench_import "BUILD_DIR [DEVICES]" "$@"
NDEV=${2:-1000000}
{ dj_conf_store; dj_conf_section js join_euis=70b3d57ed0000000/48; } >dj.conf
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv) || exit 1
check "init" dj_store_init dj.conf || dj_end
# the peak RSS from the kernel (VmHWM) when the import exits: no /usr/bin/time needed
t0=$(date +%s%N)
dj_spawn import.out import.err "$DEV" --config dj.conf import devices.csv
P=$DJ_PID
HWM=0
while kill -0 $P 2>/dev/null; do
	h=$(awk '/^VmHWM:/ { print $2 }' /proc/$P/status 2>/dev/null)
	[ -n "$h" ] && [ "$h" -gt "$HWM" ] && HWM=$h
	sleep 0.2
done
dj_reap $P
RC=$?
t1=$(date +%s%N)
check "import exits 0 (exit $RC)" test $RC -eq 0
check "... having imported every device" grep -qx "imported $NDEV devices" import.out || dj_end import.err
MS=$(((t1 - t0) / 1000000))
echo "bench_import: $NDEV devices imported in $((MS / 1000)).$(printf '%03d' $((MS % 1000))) s" \
	"($((NDEV * 1000 / (MS > 0 ? MS : 1))) devices/s), peak RSS about $((HWM / 1024)) MiB" \
	"(sampled), store $(($(stat -c %s js.db) / 1048576)) MiB"
dj_end
