#!/bin/bash
# bench_rss.sh - danejoind's resident memory with N devices enrolled in its durable SQLite
# store: import N devices, start danejoind (auth = pkix), read VmRSS from /proc after start,
# then after some JoinReqs over keep-alive mTLS connections (danejoin-client bench).
# Prints the figures; asserts nothing about time or size.
#
#   bash tests/bench/bench_rss.sh BUILD_DIR [DEVICES] [REQUESTS]   (defaults 1000000, 20000)
set -u
BUILD_DIR=$(cd "${1:?usage: bench_rss.sh BUILD_DIR [DEVICES] [REQUESTS]}" && pwd)
NDEV=${2:-1000000}
REQS=${3:-20000}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/harness.sh"
JSD="$BUILD_DIR/joinserver/danejoind/danejoind"
CLI="$BUILD_DIR/client/danejoin-client"
DEV="$BUILD_DIR/devices/danejoin-devices"
T=$(mktemp -d "${TMPDIR:-/tmp}/dj-bench-rss.XXXXXX") || exit 1
PID=""
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$T"' EXIT
cd "$T" || exit 1

dj_mkroot root && dj_mkcert js DNS:js.test root && dj_mkcert ns1 DNS:ns1.test root || exit 1
openssl rand -hex 16 >ns1.kek && chmod 600 ns1.kek
PORT=$(dj_free_port)
cat >dj.conf <<CONF
[store]
path = js.db
[keys]
master_key_file = master.key
[listen]
address = 127.0.0.1:$PORT
cert_file = js.crt
key_file = js.key
auth = pkix
client_ca_file = root.crt
metrics_address = off
[js]
join_euis = 70b3d57ed0000000/48
[peer.ns1]
identity = ns1.test
role = ns
sender_ids = 000013
ns_ids = ns1.test
kek_label = ns1-kek
kek_file = ns1.kek
CONF
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv)
"$DEV" --config dj.conf init >/dev/null && "$DEV" --config dj.conf import devices.csv >/dev/null || {
	echo "bench_rss: enrolment failed"; exit 1; }
rss() { awk -v k="$1:" '$1 == k { printf "%.1f MiB", $2 / 1024 }' /proc/$PID/status; }
"$JSD" --config dj.conf 2>jsd.log &
PID=$!
dj_wait_port "$PORT" "$PID" || { echo "bench_rss: danejoind did not start"; cat jsd.log; exit 1; }
echo "bench_rss: danejoind with $NDEV devices enrolled (store $(($(stat -c %s js.db) / 1048576)) MiB)"
echo "bench_rss: after start: VmRSS $(rss VmRSS)"
# JoinReqs from devices of the file (danejoin-client bench picks them), read from the store
"$CLI" bench --url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt \
	--key ns1.key --sender-id 000013 --sender-ns-id ns1.test --sim devices.csv \
	--devices "$NDEV" --connections 16 --requests "$REQS" >bench.out
RC=$?
sed 's/^/bench_rss: joins: /' bench.out
echo "bench_rss: after $REQS JoinReqs: VmRSS $(rss VmRSS), peak VmHWM $(rss VmHWM)"
kill -TERM $PID
wait $PID
PID=""
exit $RC
