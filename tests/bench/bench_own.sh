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
. "$(dirname "$0")/../lib/harness.sh"
dj_bench_begin bench_own "BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]" "$@"
NDEV=${2:-20000} CONNS=${3:-64} REQS=${4:-100000}

check "knotd starts" dj_knot_start "$T/knot" "maker.test opa.test" "" || dj_end
NSADDR="127.0.0.1@$DJ_KNOT_PORT"
STUBS="maker.test@$NSADDR opa.test@$NSADDR"
dj_genkey maker opa
dj_selfsigned js DNS:js.maker.test
dj_selfsigned nsa DNS:_ns-client.ns1.opa.test
PORT=$(dj_free_port)
check "_owner keys published" dj_owner_publish 3600 maker.test opa.test || dj_end
check "TLSA published" dj_tlsa_publish maker.test 3600 _$PORT._tcp.js.maker.test=js.crt || dj_end
check "TLSA published" dj_tlsa_publish opa.test 3600 _ns-client.ns1.opa.test=nsa.crt || dj_end
check "records seen" dj_knot_wait _ns-client.ns1.opa.test. TLSA "3 1 1" || dj_end

conf() { # OWNERSHIP: the config, the verdict cache large enough for every device
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:$PORT cert_file=js.crt key_file=js.key \
		max_connections=4096 metrics_address=off
	dj_conf_section dane trust_anchor_file="$DJ_KNOT_TA" stubs="$STUBS" \
		cache_max=$((NDEV + 1000))
	dj_conf_section js join_euis=70b3d57ed0000000/48 ownership="$1"
	dj_conf_peer nsa ns1.opa.test ns 000013 plain_keys=yes
}
conf off >off.conf && conf on >on.conf
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv)
check "init" dj_store_init on.conf || dj_end
t0=$(date +%s%N)
"$DEV" --config on.conf enroll devices.csv --zone opa.test --from-zone maker.test --key maker.key \
	--netids 000013 --as-ids as.opa.test --ns "$NSADDR" --tsig-file "$DJ_KNOT_TSIG_FILE" \
	--ta-file "$DJ_KNOT_TA" --ttl 3600 >enroll.out 2>&1
check "enrolment" test $? -eq 0 || dj_end enroll.out
t1=$(date +%s%N)
echo "bench_own: enrolled $NDEV devices maker.test -> opa.test with their DNS records in" \
	"$(((t1 - t0) / 1000000)) ms"
D=$(printf '%016x' $((4096 + NDEV)))
check "chains published" dj_knot_wait "_ownership.$D._device.opa.test." TXT . || dj_end

for mode in off on; do
	check "danejoind starts ($mode)" dj_jsd_start $mode.conf jsd-$mode.log "$PORT" ||
		dj_end jsd-$mode.log
	B=("$CLI" bench --url "https://127.0.0.1:$PORT/" --server-name js.maker.test
		--trust-anchor "$DJ_KNOT_TA" --stub "$STUBS" --cert nsa.crt --key nsa.key
		--sender-id 000013 --sender-ns-id ns.test --allow-plain-keys --sim devices.csv
		--devices "$NDEV" --connections "$CONNS")
	# a warm-up pass over every device: the verdict cache is filled (ownership on) as a
	# running JS's would be; then the measured pass
	check "warm-up pass ($mode)" "${B[@]}" --requests "$NDEV" >warm-$mode.out
	check "measured pass ($mode)" "${B[@]}" --requests "$REQS" >bench-$mode.out
	echo "bench_own: ownership = $mode: $(grep -E 'success|elapsed' bench-$mode.out | tr '\n' ' ')"
	dj_jsd_stop
done
r() { awk '/elapsed/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "joins/s") print $i }' "$1"; }
OFF=$(r bench-off.out)
ON=$(r bench-on.out)
echo "bench_own: $REQS JoinReqs from $NDEV devices over $CONNS DANE mTLS connections:" \
	"ownership off $OFF joins/s, on $ON joins/s ($(awk -v a="$ON" -v b="$OFF" \
	'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }')% of off)"
check "every join succeeded (ownership on)" grep -q "success $REQS " bench-on.out ||
	cat bench-on.out
dj_end
