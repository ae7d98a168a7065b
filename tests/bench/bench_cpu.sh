# tests/bench/bench_cpu.sh - sourced by the benchmarks: the CPU the server spent per request over
# the timed phase, user and system, from /proc/PID/stat (utime, stime: every thread of the
# process) of every server process. Per request, it does not depend on how busy the machine is.
#
#   cpu_mark PID...          remember the processes and their CPU so far, and set CPU_ON_CLOCK:
#                            a command for `danejoin-client bench --on-clock`, which samples them
#                            again once the warm-up is answered, as the client's clock starts
#   cpu_report LABEL N       "LABEL CPU per request: user U us, sys S us, total T us" over the
#                            timed phase: from the --on-clock sample (N less the warm-up's
#                            requests, DC_BENCH_WARM) or, when the client took no sample, over
#                            the N requests since cpu_mark (the TLS handshakes included, and
#                            said so); the total also in CPU_US (for ratios)
#
#   bash bench_cpu.sh --mark FILE PID...   (what CPU_ON_CLOCK runs) write "UTIME STIME RUN_NS
#                            WARM" of the processes to FILE

CPU_HZ=$(getconf CLK_TCK)
CPU_SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bench_cpu.sh

# cpu__ticks PID... - "UTIME STIME" summed over the processes (clock ticks)
cpu__ticks() {
	local p u s tu=0 ts=0
	for p in "$@"; do
		# fields after "pid (comm) ": state is $1, utime $12, stime $13
		read -r u s < <(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12, $13 }')
		tu=$((tu + ${u:-0})) ts=$((ts + ${s:-0}))
	done
	echo "$tu $ts"
}

# cpu__run_ns PID... - the scheduler's own count of time on CPU (ns), summed over every thread
# (/proc/PID/task/*/schedstat, field 1). It is exact, where utime and stime are sampled at each
# clock tick (CLK_TCK, 100 Hz here) and so miss or over-count work done in short bursts.
cpu__run_ns() {
	local p
	for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done |
		awk '{ t += $1 } END { printf "%.0f\n", t }'
}

cpu_mark() {
	CPU_PIDS=("$@")
	read -r CPU_U0 CPU_S0 < <(cpu__ticks "${CPU_PIDS[@]}")
	CPU_R0=$(cpu__run_ns "${CPU_PIDS[@]}")
	CPU_MARK_FILE=${T:-${TMPDIR:-/tmp}}/cpu-mark.$$.$RANDOM
	rm -f "$CPU_MARK_FILE"
	CPU_ON_CLOCK="bash $CPU_SELF --mark $CPU_MARK_FILE ${CPU_PIDS[*]}"
}

cpu_report() {
	local u s n=$2 u0 s0 r0 warm what="timed phase"
	read -r u s < <(cpu__ticks "${CPU_PIDS[@]}")
	if [ -n "${CPU_MARK_FILE:-}" ] && read -r u0 s0 r0 warm <"$CPU_MARK_FILE" 2>/dev/null &&
		[ -n "$warm" ]; then
		n=$((n - warm)) CPU_PHASE=timed
	else
		CPU_PHASE=all
		u0=$CPU_U0 s0=$CPU_S0 r0=$CPU_R0 what="from before the warm-up, handshakes included"
	fi
	rm -f "${CPU_MARK_FILE:-}"
	CPU_US=$(awk -v u=$((u - u0)) -v s=$((s - s0)) -v hz="$CPU_HZ" -v n="$n" \
		'BEGIN { printf "%.1f", 1e6 * (u + s) / hz / n }')
	awk -v u=$((u - u0)) -v s=$((s - s0)) -v hz="$CPU_HZ" -v n="$n" -v l="$1" -v w="$what" 'BEGIN {
		printf "%s CPU per request: user %.1f us, sys %.1f us, total %.1f us (%d requests, %.2f CPU-s; %s)\n",
			l, 1e6 * u / hz / n, 1e6 * s / hz / n, 1e6 * (u + s) / hz / n, n, (u + s) / hz, w }'
	awk -v r="$(cpu__run_ns "${CPU_PIDS[@]}")" -v r0="$r0" -v n="$n" -v l="$1" 'BEGIN {
		printf "%s CPU per request, scheduler run time (exact): %.1f us\n", l, (r - r0) / 1e3 / n }'
}

# run as a script: --mark FILE PID... (CPU_ON_CLOCK); DC_BENCH_WARM from danejoin-client bench
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	[ "${1:-}" = --mark ] && [ $# -ge 3 ] || { echo "usage: bench_cpu.sh --mark FILE PID..." >&2; exit 2; }
	f=$2
	shift 2
	read -r u s < <(cpu__ticks "$@")
	echo "$u $s $(cpu__run_ns "$@") ${DC_BENCH_WARM:-0}" >"$f.tmp" && mv "$f.tmp" "$f"
fi
