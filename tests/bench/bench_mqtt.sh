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
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/bench_cpu.sh"
dj_bench_begin bench_mqtt "BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]" "$@"
NDEV=${2:-20000} CONNS=${3:-64} REQS=${4:-100000}

dj_mkroot root && dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test broker:DNS:localhost,IP:127.0.0.1 \
	jsmq:DNS:jsmq.test sub:DNS:sub.test && dj_kek ns1 || exit 1
PORT=$(dj_free_port)
MPORT=$(dj_free_port)
MQ=$(dj_free_port)
check "mosquitto starts" dj_mosq_start "$T/mq" "$MQ" root broker broker || dj_end
if [ -n "${SUBSCRIBER:-}" ]; then
	dj_spawn /dev/null /dev/null mosquitto_sub -h 127.0.0.1 -p "$MQ" --cafile root.crt \
		--cert sub.crt --key sub.key -q 1 -t 'danejoin/#' -F '%X'
fi
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv)

# run NAME MQTT(0|1) - a fresh store, danejoind, the bench; prints the bench's lines
run() {
	rm -f js.db js.db-wal js.db-shm master.key devices.csv.state
	{
		dj_conf_pkix "$PORT" "$MPORT" max_connections=4096
		[ "$2" = 1 ] && dj_conf_mqtt "$MQ" bench
	} >dj.conf
	check "[$1] enrolment" dj_store_init dj.conf devices.csv || return 1
	check "[$1] danejoind starts" dj_jsd_start dj.conf "jsd-$1.log" "$PORT" || return 1
	cpu_mark "$DJ_JSD_PID"
	"$CLI" bench --url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt \
		--cert ns1.crt --key ns1.key --sender-id 000013 --sender-ns-id ns1.test \
		--sim devices.csv --devices "$NDEV" --connections "$CONNS" --requests "$REQS" \
		--on-clock "$CPU_ON_CLOCK" >"bench-$1.out"
	check "[$1] every JoinReq answered" test $? -eq 0
	cpu_report danejoind "$REQS" >>"bench-$1.out"
	curl -s "http://127.0.0.1:$MPORT/metrics" >"metrics-$1.txt"
	check "[$1] danejoind stops cleanly" dj_jsd_stop
	sed "s/^/  [$1] /" "bench-$1.out"
}
metric() { awk -v m="$2" '$1 == m { print $2 }' "metrics-$1.txt"; }

echo "bench_mqtt: $REQS JoinReqs (LoRaWAN 1.1) from $NDEV devices over $CONNS mTLS connections," \
	"durable store; broker on loopback${SUBSCRIBER:+, one subscriber}"
run plain 0 || dj_end jsd-plain.log
run mqtt 1 || dj_end jsd-mqtt.log
P=$(sed -n 's/.* \([0-9.]*\) joins\/s.*/\1/p' bench-plain.out)
M=$(sed -n 's/.* \([0-9.]*\) joins\/s.*/\1/p' bench-mqtt.out)
EL=$(sed -n 's/^elapsed \([0-9.]*\) s.*/\1/p' bench-mqtt.out)
PUB=$(metric mqtt dj_events_published_total)
OB=$(metric mqtt dj_events_outbox)
awk -v p="$P" -v m="$M" -v pub="${PUB:-0}" -v el="$EL" -v ob="${OB:-?}" 'BEGIN {
	printf "without [mqtt]: %.0f joins/s\nwith [mqtt]:    %.0f joins/s (%.1f%% of the plain figure)\n", p, m, 100 * m / p
	printf "events published (PUBACKed) during the run: %d, %.0f events/s; outbox at the end: %s\n", pub, pub / el, ob }'
dj_end
