#!/bin/bash
# bench_bi.sh - Backend Interfaces throughput: danejoin-client bench drives simulated devices'
# JoinReqs over M keep-alive mutual-TLS connections into a real danejoind with the durable
# SQLite store, on this machine. Prints joins/s and p50/p99; asserts nothing about time.
#
#   bash tests/bench/bench_bi.sh BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]
#   (defaults 20000 devices, 64 connections, 100000 requests; ctest runs a small smoke size)
#   RATE=N: open loop at N JoinReqs/s (p50/p99/p99.9 from each request's due time)
#   PIN_SERVER=CPUS PIN_CLIENT=CPUS: taskset danejoind (all its threads) and the load generator
#   ATTACH="CMD ARGS": run "CMD ARGS PID" on danejoind over the timed phase, ended with SIGINT
#   (bench_calls.sh: strace -c); its CPU figure then includes the tracing
#   ON_CLOCK="CMD ARGS": also run "CMD ARGS PID" on danejoind as the client's clock starts (once
#   the warm-up is answered; bench_calls.sh: callgrind_control -z)
#   THREADS=N: danejoind's [listen] threads (default: its own, one loop per online core)
#   APPSKEY_IN_JOINANS=1: [peer.ns1] appskey_in_joinans = yes (the AppSKey in each JoinAns under
#   ns1's KEK, its release audited: ChirpStack without an application server)
# Also prints danejoind's CPU per JoinReq (user, sys) over the timed phase (bench_cpu.sh).
#   ... [--store sqlite|postgresql|both] [--instances N]: SQLite and PostgreSQL, N instances,
#   server CPU per JoinReq (tests/bench/bench_bi_store.sh)
set -u
# --store sqlite|postgresql|both and --instances N (issue 13): bench_bi_store.sh runs those
case " $* " in *" --store "* | *" --instances "*) exec bash "$(dirname "$0")/bench_bi_store.sh" "$@" ;; esac
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/bench_cpu.sh"
dj_bench_begin bench_bi "BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]" "$@"
NDEV=${2:-20000} CONNS=${3:-64} REQS=${4:-100000}

dj_mkroot root && dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test && dj_kek ns1 || exit 1
PORT=$(dj_free_port)
dj_conf_pkix "$PORT" off max_connections=4096 ${THREADS:+threads=$THREADS} >dj.conf
[ -z "${APPSKEY_IN_JOINANS:-}" ] || sed -i '/^\[peer\.ns1\]/a appskey_in_joinans = yes' dj.conf
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv)
check "enrolment" dj_store_init dj.conf devices.csv || dj_end
check "danejoind starts" dj_jsd_start dj.conf jsd.log "$PORT" || dj_end jsd.log
echo "bench_bi: $REQS JoinReqs (LoRaWAN 1.1, ProtocolVersion 1.1) from $NDEV devices over $CONNS" \
	"mTLS connections, durable store (WAL, synchronous=FULL, group commit)," \
	"threads ${THREADS:-default (one per core)}"
[ -z "${PIN_SERVER:-}" ] || taskset -a -p -c "$PIN_SERVER" "$DJ_JSD_PID" >/dev/null
if [ -n "${ATTACH:-}" ]; then
	$ATTACH "$DJ_JSD_PID" &
	ATTACH_PID=$!
	sleep 1	# attached before the first JoinReq
fi
cpu_mark "$DJ_JSD_PID"
check "every JoinReq answered" ${PIN_CLIENT:+taskset -c "$PIN_CLIENT"} "$CLI" bench ${RATE:+--rate "$RATE"} --url "https://127.0.0.1:$PORT/" --server-name js.test \
	--ca root.crt --cert ns1.crt --key ns1.key --sender-id 000013 --sender-ns-id ns1.test \
	--sim devices.csv --devices "$NDEV" --connections "$CONNS" --requests "$REQS" \
	--on-clock "$CPU_ON_CLOCK${ON_CLOCK:+; $ON_CLOCK $DJ_JSD_PID}"
cpu_report danejoind "$REQS"
check "the CPU figure is the timed phase's (sampled by --on-clock)" test "$CPU_PHASE" = timed
# --on-clock: run once the warm-up is answered, with its count; a failing command ends the bench
C=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt --key ns1.key
	--sender-id 000013 --sender-ns-id ns1.test --sim devices.csv --devices 4 --connections 4)
"$CLI" bench "${C[@]}" --requests 8 --on-clock 'echo "$DC_BENCH_WARM" >warm.txt' >/dev/null
check "bench --on-clock: run with DC_BENCH_WARM, the warm-up's count" grep -qx 4 warm.txt
"$CLI" bench "${C[@]}" --requests 8 --on-clock 'exit 7' >clk.out 2>&1
check "bench --on-clock: a failing command fails the bench (exit 2)" test $? -eq 2
check "bench --on-clock: ... and says so" grep -q "on-clock: the command failed (exit 7)" clk.out
"$CLI" bench "${C[@]}" --requests 8 --on-clock '' >clk.out 2>&1
check "bench --on-clock '': a usage error (exit 1)" test $? -eq 1
[ -z "${ATTACH_PID:-}" ] || { kill -INT "$ATTACH_PID"; wait "$ATTACH_PID"; }
check "danejoind stops cleanly" dj_jsd_stop
dj_end jsd.log
