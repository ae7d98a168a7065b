#!/bin/bash
# bench_bi.sh - Backend Interfaces throughput: danejoin-client bench drives simulated devices'
# JoinReqs over M keep-alive mutual-TLS connections into a real danejoind with the durable
# SQLite store, on this machine. Prints joins/s and p50/p99; asserts nothing about time.
#
#   bash tests/bench/bench_bi.sh BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]
#   (defaults 20000 devices, 64 connections, 100000 requests; ctest runs a small smoke size)
set -u
BUILD_DIR=$(cd "${1:?usage: bench_bi.sh BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]}" && pwd)
NDEV=${2:-20000}
CONNS=${3:-64}
REQS=${4:-100000}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/harness.sh"
JSD="$BUILD_DIR/joinserver/danejoind/danejoind"
CLI="$BUILD_DIR/client/danejoin-client"
DEV="$BUILD_DIR/devices/danejoin-devices"
T=$(mktemp -d "${TMPDIR:-/tmp}/dj-bench-bi.XXXXXX") || exit 1
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
max_connections = 4096
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
	echo "bench_bi: enrolment failed"; exit 1; }
"$JSD" --config dj.conf 2>jsd.log &
PID=$!
dj_wait_port "$PORT" "$PID" || { echo "bench_bi: danejoind did not start"; cat jsd.log; exit 1; }
echo "bench_bi: $REQS JoinReqs (LoRaWAN 1.1, ProtocolVersion 1.1) from $NDEV devices over $CONNS" \
	"mTLS connections, durable store (WAL, synchronous=FULL, group commit)"
"$CLI" bench --url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt \
	--key ns1.key --sender-id 000013 --sender-ns-id ns1.test --sim devices.csv \
	--devices "$NDEV" --connections "$CONNS" --requests "$REQS"
RC=$?
kill -TERM $PID
wait $PID
PID=""
exit $RC
