#!/bin/bash
# bench_dane.sh - full mutual TLS 1.3 handshakes per second into danejoind, DANE on both sides
# (warm caches) against the same handshakes verified by PKIX against a CA file; and the latency
# of one request on a cold cache. Each connection carries exactly one JoinReq (danejoin-client
# bench with --connections == --requests), so every request pays a full handshake and the
# server's check of the client certificate. Session resumption is off in danejoind (every
# connection is verified in full), so there is no resumed-handshake figure to report.
# Prints figures; asserts nothing about time.
#
#   bash tests/bench/bench_dane.sh BUILD_DIR [HANDSHAKES] [ROUNDS]   (defaults 1000, 3)
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/bench_cpu.sh"
dj_bench_begin bench_dane "BUILD_DIR [HANDSHAKES] [ROUNDS]" "$@"
N=${2:-1000} ROUNDS=${3:-3}
Z=bench.test
check "knotd starts" dj_knot_start "$T/knot" "$Z" || dj_end
STUBS="$Z@127.0.0.1@$DJ_KNOT_PORT"

# the same CA-issued leaves for both modes: PKIX checks the chain, DANE the TLSA 3 1 1
dj_mkroot root && dj_mkcerts root "js:DNS:js.$Z" "ns1:DNS:_ns-client.ns1.$Z" || exit 1
PORT=$(dj_free_port)
check "TLSA published" dj_tlsa_publish "$Z" 3600 "_$PORT._tcp.js.$Z=js.crt" \
	"_ns-client.ns1.$Z=ns1.crt" || dj_end
dj_devices_csv $((N * (ROUNDS * 2 + 2))) 1.1 >devices.csv
chmod 600 devices.csv

conf() { # MODE
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:$PORT cert_file=js.crt key_file=js.key \
		metrics_address=off max_connections=$((N + 64)) max_connections_per_peer=$((N + 64)) \
		auth="$1" client_ca_file=root.crt
	dj_conf_section dane trust_anchor_file="$DJ_KNOT_TA" stubs="$STUBS"
	dj_conf_section js join_euis=70b3d57ed0000000/48
	dj_conf_peer ns1 ns1.$Z ns 000013 plain_keys=yes
}
conf dane >dane.conf
conf pkix >pkix.conf
check "enrolment" dj_store_init dane.conf devices.csv || dj_end

start() { check "danejoind starts ($1)" dj_jsd_start "$1" jsd.log "$PORT" || dj_end jsd.log; }
stop() { dj_jsd_stop; }
DANE_C=(--url "https://127.0.0.1:$PORT/" --server-name "js.$Z" --trust-anchor "$DJ_KNOT_TA" --stub "$STUBS")
PKIX_C=(--url "https://127.0.0.1:$PORT/" --server-name "js.$Z" --ca root.crt)
OFF=0
run() { # LABEL CLIENT-ARGS...: one bench of N connections x 1 request; prints its rate
	local label=$1 out el ok
	shift
	# devices not used before (DevNonces): the next N rows of the CSV
	{ head -1 devices.csv; tail -n +$((2 + 2 + OFF * N)) devices.csv | head -n "$N"; } >round.csv
	cpu_mark "$DJ_JSD_PID"
	out=$("$CLI" bench "$@" --cert ns1.crt --key ns1.key --sender-id 000013 --sender-ns-id ns.test \
		--allow-plain-keys --sim round.csv --state "sim.state.$OFF" --devices "$N" \
		--connections "$N" --requests "$N" 2>&1)
	OFF=$((OFF + 1))
	el=$(echo "$out" | sed -n 's/^elapsed \([0-9.]*\) s.*/\1/p')
	ok=$(echo "$out" | sed -n 's/^success \([0-9]*\) .*/\1/p')
	echo "$label: $ok/$N joins, $(echo "$N $el" | awk '{ printf "%.0f", $1 / $2 }') handshakes/s" \
		"($(echo "$out" | grep -o 'p50.*'))"
	cpu_report "  danejoind (handshake included)" "$N"
	check "$label: every join succeeded" test "$ok" = "$N" || echo "$out"
}

echo "== $N connections, one JoinReq each, $ROUNDS rounds per mode (2 cores shared by client and server)"
start dane.conf
# cold: the server's cache is empty; one request, timed from outside (client start included)
t0=$(date +%s%N)
"$CLI" join "${DANE_C[@]}" --cert ns1.crt --key ns1.key --sender-id 000013 --sender-ns-id ns.test \
	--allow-plain-keys --sim devices.csv --state cold.state \
	--dev-eui "$(sed -n 2p devices.csv | cut -d, -f1)" >/dev/null 2>&1
t1=$(date +%s%N)
"$CLI" join "${DANE_C[@]}" --cert ns1.crt --key ns1.key --sender-id 000013 --sender-ns-id ns.test \
	--allow-plain-keys --sim devices.csv --state cold.state \
	--dev-eui "$(sed -n 3p devices.csv | cut -d, -f1)" >/dev/null 2>&1
t2=$(date +%s%N)
echo "one JoinReq, DANE, server cache cold: $(((t1 - t0) / 1000)) us; warm: $(((t2 - t1) / 1000)) us (client process and its own cold lookup included in both)"
for r in $(seq 1 "$ROUNDS"); do run "DANE both ways, round $r" "${DANE_C[@]}"; done
stop
start pkix.conf
for r in $(seq 1 "$ROUNDS"); do run "PKIX (CA file), round $r" "${PKIX_C[@]}"; done
stop
dj_end
