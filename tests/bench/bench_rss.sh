#!/bin/bash
# bench_rss.sh - danejoind's resident memory with N devices enrolled in its durable SQLite
# store: import N devices, start danejoind (auth = pkix), read VmRSS from /proc after start,
# then after some JoinReqs over keep-alive mTLS connections (danejoin-client bench).
# Prints the figures; asserts nothing about time or size.
#
#   bash tests/bench/bench_rss.sh BUILD_DIR [DEVICES] [REQUESTS]   (defaults 1000000, 20000)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_bench_begin bench_rss "BUILD_DIR [DEVICES] [REQUESTS]" "$@"
NDEV=${2:-1000000} REQS=${3:-20000}

dj_mkroot root && dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test && dj_kek ns1 || exit 1
PORT=$(dj_free_port)
dj_conf_pkix "$PORT" off >dj.conf
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv)
check "enrolment" dj_store_init dj.conf devices.csv || dj_end
rss() { awk -v k="$1:" '$1 == k { printf "%.1f MiB", $2 / 1024 }' /proc/$DJ_JSD_PID/status; }
check "danejoind starts" dj_jsd_start dj.conf jsd.log "$PORT" || dj_end jsd.log
echo "bench_rss: danejoind with $NDEV devices enrolled (store $(($(stat -c %s js.db) / 1048576)) MiB)"
echo "bench_rss: after start: VmRSS $(rss VmRSS)"
# JoinReqs from devices of the file (danejoin-client bench picks them), read from the store
"$CLI" bench --url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt \
	--key ns1.key --sender-id 000013 --sender-ns-id ns1.test --sim devices.csv \
	--devices "$NDEV" --connections 16 --requests "$REQS" >bench.out
check "every JoinReq answered" test $? -eq 0
sed 's/^/bench_rss: joins: /' bench.out
echo "bench_rss: after $REQS JoinReqs: VmRSS $(rss VmRSS), peak VmHWM $(rss VmHWM)"
check "danejoind stops cleanly" dj_jsd_stop
dj_end jsd.log
