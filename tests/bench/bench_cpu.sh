# tests/bench/bench_cpu.sh - sourced by the benchmarks: the CPU the server spent per request over
# the timed phase, user and system, from /proc/PID/stat (utime, stime: every thread of the
# process) of every server process. Per request, it does not depend on how busy the machine is.
#
#   cpu_mark PID...          remember the processes and their CPU so far
#   cpu_report LABEL N       "LABEL CPU per request: user U us, sys S us, total T us" over the N
#                            requests since cpu_mark; the total also in CPU_US (for ratios)

CPU_HZ=$(getconf CLK_TCK)

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
}

cpu_report() {
	local u s
	read -r u s < <(cpu__ticks "${CPU_PIDS[@]}")
	CPU_US=$(awk -v u=$((u - CPU_U0)) -v s=$((s - CPU_S0)) -v hz="$CPU_HZ" -v n="$2" \
		'BEGIN { printf "%.1f", 1e6 * (u + s) / hz / n }')
	awk -v u=$((u - CPU_U0)) -v s=$((s - CPU_S0)) -v hz="$CPU_HZ" -v n="$2" -v l="$1" 'BEGIN {
		printf "%s CPU per request: user %.1f us, sys %.1f us, total %.1f us (%d requests, %.2f CPU-s)\n",
			l, 1e6 * u / hz / n, 1e6 * s / hz / n, 1e6 * (u + s) / hz / n, n, (u + s) / hz }'
	awk -v r="$(cpu__run_ns "${CPU_PIDS[@]}")" -v r0="$CPU_R0" -v n="$2" -v l="$1" 'BEGIN {
		printf "%s CPU per request, scheduler run time (exact): %.1f us\n", l, (r - r0) / 1e3 / n }'
}
