#!/bin/bash
# bench_mqtt.sh - what MQTT events cost the Backend Interfaces: the bench_bi load (danejoin-client
# bench, simulated LoRaWAN 1.1 JoinReqs over M keep-alive mTLS connections into danejoind with
# the durable store) run twice on fresh stores, without [mqtt] and with it (a real mosquitto on
# a TLS loopback listener, client certificates, QoS 1 from the outbox). Prints both figures, the
# ratio, and the events published per second. Asserts nothing about time.
#
#   bash tests/bench/bench_mqtt.sh BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]
#   (defaults 20000 devices, 64 connections, 100000 requests; ctest runs a small smoke size)
#   SUBSCRIBER=1 adds a mosquitto_sub consuming every event (on this machine too).
set -u
BUILD_DIR=$(cd "${1:?usage: bench_mqtt.sh BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]}" && pwd)
NDEV=${2:-20000}
CONNS=${3:-64}
REQS=${4:-100000}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/harness.sh"
. "$HERE/../lib/mosquitto.sh"
JSD="$BUILD_DIR/joinserver/danejoind/danejoind"
CLI="$BUILD_DIR/client/danejoin-client"
DEV="$BUILD_DIR/devices/danejoin-devices"
T=$(mktemp -d "${TMPDIR:-/tmp}/dj-bench-mqtt.XXXXXX") || exit 1
PID=""
SUBPID=""
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; [ -n "$SUBPID" ] && kill -9 $SUBPID 2>/dev/null;
	dj_mosq_stop KILL; rm -rf "$T"' EXIT
cd "$T" || exit 1

dj_mkroot root && dj_mkcert js DNS:js.test root && dj_mkcert ns1 DNS:ns1.test root || exit 1
dj_mkcert broker DNS:localhost,IP:127.0.0.1 root && dj_mkcert jsmq DNS:jsmq.test root &&
	dj_mkcert sub DNS:sub.test root || exit 1
openssl rand -hex 16 >ns1.kek && chmod 600 ns1.kek
PORT=$(dj_free_port)
MPORT=$(dj_free_port)
MQ=$(dj_free_port)
dj_mosq_start "$T/mq" "$MQ" root broker broker || { echo "bench_mqtt: mosquitto did not start"; exit 1; }
if [ -n "${SUBSCRIBER:-}" ]; then
	mosquitto_sub -h 127.0.0.1 -p "$MQ" --cafile root.crt --cert sub.crt --key sub.key -q 1 \
		-t 'danejoin/#' -F '%X' >/dev/null 2>&1 &
	SUBPID=$!
fi
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv)

# run NAME MQTT(0|1) - a fresh store, danejoind, the bench; prints the bench's lines
run() {
	rm -f js.db js.db-wal js.db-shm master.key devices.csv.state
	cat >dj.conf <<CONF
[store]
path = js.db
[keys]
master_key_file = master.key
[listen]
address = 127.0.0.1:$PORT
auth = pkix
cert_file = js.crt
key_file = js.key
client_ca_file = root.crt
max_connections = 4096
metrics_address = 127.0.0.1:$MPORT
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
	[ "$2" = 1 ] && cat >>dj.conf <<CONF
[mqtt]
host = 127.0.0.1
port = $MQ
cafile = root.crt
cert = jsmq.crt
key = jsmq.key
client_id = bench
CONF
	"$DEV" --config dj.conf init >/dev/null && "$DEV" --config dj.conf import devices.csv >/dev/null ||
		{ echo "bench_mqtt: enrolment failed"; return 1; }
	"$JSD" --config dj.conf 2>"jsd-$1.log" &
	PID=$!
	dj_wait_port "$PORT" "$PID" || { echo "bench_mqtt: danejoind did not start"; return 1; }
	"$CLI" bench --url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt \
		--cert ns1.crt --key ns1.key --sender-id 000013 --sender-ns-id ns1.test \
		--sim devices.csv --devices "$NDEV" --connections "$CONNS" --requests "$REQS" >"bench-$1.out"
	local rc=$?
	curl -s "http://127.0.0.1:$MPORT/metrics" >"metrics-$1.txt"
	kill -TERM $PID
	wait $PID
	PID=""
	sed "s/^/  [$1] /" "bench-$1.out"
	return $rc
}
metric() { awk -v m="$2" '$1 == m { print $2 }' "metrics-$1.txt"; }

echo "bench_mqtt: $REQS JoinReqs (LoRaWAN 1.1) from $NDEV devices over $CONNS mTLS connections," \
	"durable store; broker on loopback${SUBSCRIBER:+, one subscriber}"
run plain 0 || exit 1
run mqtt 1 || exit 1
P=$(sed -n 's/.* \([0-9.]*\) joins\/s.*/\1/p' bench-plain.out)
M=$(sed -n 's/.* \([0-9.]*\) joins\/s.*/\1/p' bench-mqtt.out)
EL=$(sed -n 's/^elapsed \([0-9.]*\) s.*/\1/p' bench-mqtt.out)
PUB=$(metric mqtt dj_events_published_total)
OB=$(metric mqtt dj_events_outbox)
awk -v p="$P" -v m="$M" -v pub="${PUB:-0}" -v el="$EL" -v ob="${OB:-?}" 'BEGIN {
	printf "without [mqtt]: %.0f joins/s\nwith [mqtt]:    %.0f joins/s (%.1f%% of the plain figure)\n", p, m, 100 * m / p
	printf "events published (PUBACKed) during the run: %d, %.0f events/s; outbox at the end: %s\n", pub, pub / el, ob }'
