#!/bin/bash
# bench_budget.sh - where one JoinReq's open-loop latency goes (issue 15): bench_bi.sh at RATE,
# with perf tracing system calls and scheduler switches of danejoind (every thread) and of the
# load generator. Prints how long each thread waited for a CPU, the committer's cycles and its
# checkpoints, and, on ONE connection (the default), the median, mean and p99 of each stage from
# the client's write of a request to its handling of the answer. Prints figures only; asserts
# nothing.
#
#   bash tests/bench/bench_budget.sh BUILD_DIR [RATE] [REQUESTS] [CONNECTIONS] [DEVICES]
#	(defaults 100/s, 500, 1 connection, 200 devices; e.g. 3000 15000 64 20000 for the tail)
#
# Needs perf (linux-perf) with tracepoints readable (root or perf_event_paranoid <= -1) and
# python3. The tracing itself adds a few microseconds to every system call.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = --record ]; then	# internal: bench_bi.sh's ATTACH, "--record OUT PID"
	out=$2 pid=$3 top=$PPID c=
	# the load generator is the danejoin-client that bench_bi.sh (our parent) starts
	for _ in $(seq 250); do
		for p in $(pgrep -x danejoin-client); do
			q=$p
			while [ "$q" -gt 1 ] && [ "$q" != "$top" ]; do
				q=$(awk '{print $4}' "/proc/$q/stat" 2>/dev/null) || break
			done
			[ "$q" = "$top" ] && { c=$p; break 2; }
		done
		sleep 0.02
	done
	[ -n "$c" ] || { echo "bench_budget: no load generator found" >&2; exit 1; }
	exec perf record -q -k CLOCK_MONOTONIC -o "$out" -p "$pid,$c" \
		-e raw_syscalls:sys_enter,raw_syscalls:sys_exit \
		-e sched:sched_switch,sched:sched_wakeup
fi
BUILD=$(cd "${1:?usage: bench_budget.sh BUILD_DIR [RATE] [REQUESTS]}" && pwd) || exit 2
RATE=${2:-100} REQS=${3:-500} CONNS=${4:-1} NDEV=${5:-200}
command -v perf >/dev/null || { echo "bench_budget: perf is not installed"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/dj-bench_budget.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
echo "bench_budget: $REQS JoinReqs at $RATE/s over $CONNS connection(s)," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
RATE=$RATE ATTACH="bash $HERE/bench_budget.sh --record $T/perf.data" \
	bash "$HERE/bench_bi.sh" "$BUILD" "$NDEV" "$CONNS" "$REQS" >"$T/bench.txt" 2>&1
grep -E "^elapsed" "$T/bench.txt" || { cat "$T/bench.txt"; exit 1; }
perf script --ns -i "$T/perf.data" >"$T/trace.txt" 2>/dev/null ||
	{ echo "bench_budget: no trace"; exit 1; }
python3 "$HERE/bench_budget.py" "$T/trace.txt" "$RATE" "$CONNS"
