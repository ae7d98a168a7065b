#!/bin/bash
# bench_own.sh - join throughput with [js] ownership = on against the same danejoind with it off,
# at the Backend Interfaces benchmark load (bench_bi.sh): a real knotd serves the manufacturer's
# and operator A's DNSSEC-signed zones; danejoin-devices enrolls N devices from maker.test to
# opa.test with their ownership chains (RFC 2136); danejoind (auth = dane) is started once with
# ownership = off and once with ownership = on, and danejoin-client bench (A's NS, DANE) drives
# JoinReqs into each. Prints both figures and their ratio; asserts nothing about time.
#
#   bash tests/bench/bench_own.sh BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]
#   (defaults 20000 devices, 64 connections, 100000 requests; ctest runs a small smoke size)
set -u
BUILD_DIR=$(cd "${1:?usage: bench_own.sh BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]}" && pwd)
NDEV=${2:-20000}
CONNS=${3:-64}
REQS=${4:-100000}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/harness.sh"
. "$HERE/../lib/knot.sh"
JSD="$BUILD_DIR/joinserver/danejoind/danejoind"
CLI="$BUILD_DIR/client/danejoin-client"
DEV="$BUILD_DIR/devices/danejoin-devices"
T=$(mktemp -d "${TMPDIR:-/tmp}/dj-bench-own.XXXXXX") || exit 1
PID=""
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; dj_knot_stop; rm -rf "$T"' EXIT
cd "$T" || exit 1
spki_hex() { openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | od -An -v -tx1 | tr -d ' \n'; }
spki256() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1; }
selfsigned() { # NAME SAN
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
		-subj "/CN=$1" -days 30 -addext "subjectAltName=$2" \
		-addext "extendedKeyUsage=serverAuth,clientAuth" -out "$1.crt" 2>/dev/null &&
		chmod 600 "$1.key"
}

dj_knot_start "$T/knot" "maker.test opa.test" "" || { echo "bench_own: knotd"; exit 1; }
NSADDR="127.0.0.1@$DJ_KNOT_PORT"
STUBS="maker.test@$NSADDR opa.test@$NSADDR"
(umask 077
for z in maker opa; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $z.key 2>/dev/null
done)
selfsigned js DNS:js.maker.test
selfsigned nsa DNS:_ns-client.ns1.opa.test
PORT=$(dj_free_port)
for z in maker opa; do
	dj_knot_update "$z.test" <<DNS || { echo "bench_own: _owner.$z.test"; exit 1; }
update add _owner.$z.test. 3600 IN TLSA 3 1 0 $(spki_hex $z.key)
DNS
done
dj_knot_update maker.test <<DNS || { echo "bench_own: js TLSA"; exit 1; }
update add _$PORT._tcp.js.maker.test. 3600 TLSA 3 1 1 $(spki256 js.crt)
DNS
dj_knot_update opa.test <<DNS || { echo "bench_own: nsa TLSA"; exit 1; }
update add _ns-client.ns1.opa.test. 3600 TLSA 3 1 1 $(spki256 nsa.crt)
DNS
dj_knot_wait _ns-client.ns1.opa.test. TLSA "3 1 1" || { echo "bench_own: records"; exit 1; }

conf() { # OWNERSHIP: the config, the verdict cache large enough for every device
	cat <<CONF
[store]
path = js.db
[keys]
master_key_file = master.key
[listen]
address = 127.0.0.1:$PORT
cert_file = js.crt
key_file = js.key
max_connections = 4096
metrics_address = off
[dane]
trust_anchor_file = $DJ_KNOT_TA
stubs = $STUBS
cache_max = $((NDEV + 1000))
[js]
join_euis = 70b3d57ed0000000/48
ownership = $1
[peer.nsa]
identity = ns1.opa.test
role = ns
sender_ids = 000013
plain_keys = yes
CONF
}
conf off >off.conf && conf on >on.conf
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv)
"$DEV" --config on.conf init >/dev/null || { echo "bench_own: init failed"; exit 1; }
t0=$(date +%s%N)
"$DEV" --config on.conf enroll devices.csv --zone opa.test --from-zone maker.test --key maker.key \
	--netids 000013 --as-ids as.opa.test --ns "$NSADDR" --tsig-file "$DJ_KNOT_TSIG_FILE" \
	--ta-file "$DJ_KNOT_TA" --ttl 3600 >enroll.out 2>&1 || {
	echo "bench_own: enrolment failed"; cat enroll.out; exit 1; }
t1=$(date +%s%N)
echo "bench_own: enrolled $NDEV devices maker.test -> opa.test with their DNS records in" \
	"$(((t1 - t0) / 1000000)) ms"
D=$(printf '%016x' $((4096 + NDEV)))
dj_knot_wait "_ownership.$D._device.opa.test." TXT . || { echo "bench_own: chains"; exit 1; }

RC=0
for mode in off on; do
	"$JSD" --config $mode.conf 2>jsd-$mode.log &
	PID=$!
	dj_wait_port "$PORT" "$PID" || { echo "bench_own: danejoind did not start"; cat jsd-$mode.log; exit 1; }
	B=("$CLI" bench --url "https://127.0.0.1:$PORT/" --server-name js.maker.test
		--trust-anchor "$DJ_KNOT_TA" --stub "$STUBS" --cert nsa.crt --key nsa.key
		--sender-id 000013 --sender-ns-id ns.test --allow-plain-keys --sim devices.csv
		--devices "$NDEV" --connections "$CONNS")
	# a warm-up pass over every device: the verdict cache is filled (ownership on) as a
	# running JS's would be; then the measured pass
	"${B[@]}" --requests "$NDEV" >warm-$mode.out || RC=1
	"${B[@]}" --requests "$REQS" >bench-$mode.out || RC=1
	echo "bench_own: ownership = $mode: $(grep -E 'success|elapsed' bench-$mode.out | tr '\n' ' ')"
	kill -TERM $PID
	wait $PID
	PID=""
done
r() { awk '/elapsed/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "joins/s") print $i }' "$1"; }
OFF=$(r bench-off.out)
ON=$(r bench-on.out)
echo "bench_own: $REQS JoinReqs from $NDEV devices over $CONNS DANE mTLS connections:" \
	"ownership off $OFF joins/s, on $ON joins/s ($(awk -v a="$ON" -v b="$OFF" \
	'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }')% of off)"
grep -q "success $REQS " bench-on.out || { echo "bench_own: not every join succeeded"; cat bench-on.out; RC=1; }
exit $RC
