#!/bin/bash
# bench_ca.sh - bulk device certificates: danejoin-ca issue --csv makes N ECDSA P-256 device
# identities (key, certificate signed by an intermediate, files written, TLSA line) on THREADS
# threads, and prints certificates per second. Asserts nothing about time.
#
#   bash tests/bench/bench_ca.sh BUILD_DIR [DEVICES] [THREADS] [LAYOUT]
#   (defaults 20000 devices, one thread per CPU, --layout files; ctest runs a small smoke size)
#   LAYOUT: files (DIR/<dev_eui>.key + .crt), pem (DIR/<dev_eui>.pem), bundle (DIR/devices.pem)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_bench_begin bench_ca "BUILD_DIR [DEVICES] [THREADS] [LAYOUT]" "$@"
N=${2:-20000} THREADS=${3:-0} LAYOUT=${4:-files}
BIN=$CA

"$BIN" root --subject "Bench Root" --key-out root.key --cert-out root.crt >/dev/null || exit 1
"$BIN" intermediate --subject "Bench Devices" --ca-cert root.crt --ca-key root.key \
	--key-out int.key --cert-out int.crt >/dev/null || exit 1
{ echo "dev_eui,name"; seq 1 "$N" | awk '{ printf "70b3d57e%08x,\n", $1 }'; } >devs.csv
T_ARGS=()
[ "$THREADS" -gt 0 ] && T_ARGS=(--threads "$THREADS")
"$BIN" issue --csv devs.csv --zone devices.bench.test --ca-cert int.crt --ca-key int.key \
	--out-dir out --layout "$LAYOUT" --quiet "${T_ARGS[@]}" >result.txt || { cat result.txt; exit 1; }
RATE=$(sed -n 's/.*(\([0-9]*\) certs\/s).*/\1/p' result.txt)
check "tlsa.zone has every device" test "$(wc -l <out/tlsa.zone)" -eq "$N"
echo "bench_ca: $N ECDSA P-256 device certificates, threads=${THREADS/#0/auto} ($(nproc) CPUs), layout $LAYOUT: $RATE certs/s"
cat result.txt
dj_end
