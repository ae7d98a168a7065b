#!/bin/bash
# bench_bi_store.sh - bench_bi.sh with --store and --instances (issue 13 item 7): the same
# Backend Interfaces load (danejoin-client bench: simulated devices' JoinReqs over keep-alive
# mutual-TLS connections) into N danejoind instances on the SQLite store or on one PostgreSQL
# database (a private cluster, tests/lib/postgres.sh: Unix socket, fsync on, synchronous_commit
# on), each store in the same run. The client side spreads its connections over the instances:
# one danejoin-client bench per instance, each with CONNECTIONS/N connections and its own slice
# of the devices (a device joins through one instance, as behind a load balancer).
#
# Prints, per run: joins/s (the sum over the clients, each over its own elapsed time), and the
# server CPU per JoinReq: utime+stime from /proc of every danejoind and of the postgres
# processes (the postmaster with the children it reaped, and its live children), divided by the
# JoinReqs answered. Then PostgreSQL's joins/s as a share of SQLite's. Asserts nothing about
# time (STYLE.md): only that every JoinReq was answered.
#
#   bash tests/bench/bench_bi.sh BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS]
#        [--store sqlite|postgresql|both] [--instances N]
#   (SQLite holds one file: with it, --instances is 1; "both" runs SQLite with one instance,
#   then PostgreSQL with one, then, if N > 1, PostgreSQL with N)
set -u
STORE=sqlite INST=1 pos=()
while [ $# -gt 0 ]; do
	case $1 in
	--store) STORE=${2:-}; shift 2 || exit 2 ;;
	--instances) INST=${2:-}; shift 2 || exit 2 ;;
	*) pos+=("$1"); shift ;;
	esac
done
set -- "${pos[@]}"
case $STORE in sqlite | postgresql | both) ;; *) echo "bench_bi: --store sqlite|postgresql|both" >&2; exit 2 ;; esac
case $INST in [1-9] | [1-9][0-9]) ;; *) echo "bench_bi: --instances 1 to 99" >&2; exit 2 ;; esac
. "$(dirname "$0")/../lib/harness.sh"
dj_bench_begin bench_bi "BUILD_DIR [DEVICES] [CONNECTIONS] [REQUESTS] [--store S] [--instances N]" "$@"
NDEV=${2:-20000} CONNS=${3:-64} REQS=${4:-100000}
HZ=$(getconf CLK_TCK)

dj_mkroot root && dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test && dj_kek ns1 || exit 1
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv)

# ticks PID... - utime+stime (+ cutime+cstime: reaped children) of each PID, summed, in ticks
ticks() {
	local p s=0 f
	for p in "$@"; do
		f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
		# after "pid (comm)": state is field 1, utime 12, stime 13, cutime 14, cstime 15
		s=$((s + $(echo "$f" | awk '{ print $12 + $13 + $14 + $15 }')))
	done
	echo $s
}
# pg_pids DIR - the postmaster of the cluster in DIR and its live children
pg_pids() {
	local pm
	pm=$(head -1 "$1/data/postmaster.pid" 2>/dev/null) || return 0
	echo "$pm"
	grep -l "^PPid:[[:space:]]*$pm\$" /proc/[0-9]*/status 2>/dev/null | cut -d/ -f3
}

declare -A JPS
# run STORE N - one measured run; sets JPS[STORE]
run() {
	local store=$1 n=$2 d i port pids=() ports=() cli=() per_c per_r per_d t0 t1 jsd0 jsd1 pg0 pg1
	local ok=0 sum=0 answered=0
	d=$T/$store-$n
	mkdir -p "$d" && cp root.crt js.crt js.key ns1.crt ns1.key ns1.kek devices.csv "$d/" || return 1
	cd "$d" || return 1
	unset DJ_STORE_CONNINFO
	if [ "$store" = postgresql ]; then
		pg_start "$d/pg" >/dev/null || { echo "bench_bi: postgres did not start"; return 1; }
		DJ_STORE_CONNINFO=$PG_CONNINFO
	fi
	for i in $(seq 1 "$n"); do
		port=$(dj_free_port)
		ports+=("$port")
		dj_conf_pkix "$port" off max_connections=4096 >"dj$i.conf"
	done
	check "$store: enrolment" dj_store_init dj1.conf devices.csv || return 1
	for i in $(seq 1 "$n"); do
		dj_spawn "jsd$i.log" "jsd$i.log" "$JSD" --config "dj$i.conf"
		pids+=("$DJ_PID")
		dj_wait_port "${ports[$((i - 1))]}" "$DJ_PID" || { echo "bench_bi: danejoind $i did not start"; tail -5 "jsd$i.log"; return 1; }
	done
	per_c=$(((CONNS + n - 1) / n)) per_r=$((REQS / n)) per_d=$((NDEV / n))
	jsd0=$(ticks "${pids[@]}")
	pg0=0
	[ "$store" = postgresql ] && pg0=$(ticks $(pg_pids "$d/pg"))
	t0=$(date +%s.%N)
	for i in $(seq 1 "$n"); do
		# instance i gets devices (i-1)*per_d+1 .. i*per_d
		{ head -1 devices.csv; tail -n +2 devices.csv | sed -n "$(((i - 1) * per_d + 1)),$((i * per_d))p"; } >"dev$i.csv"
		"$CLI" bench --url "https://127.0.0.1:${ports[$((i - 1))]}/" --server-name js.test \
			--ca root.crt --cert ns1.crt --key ns1.key --sender-id 000013 --sender-ns-id ns1.test \
			--sim "dev$i.csv" --devices "$per_d" --connections "$per_c" --requests "$per_r" \
			>"cli$i.out" 2>&1 &
		cli+=($!)
	done
	for i in "${!cli[@]}"; do wait "${cli[$i]}" && ok=$((ok + 1)); done
	t1=$(date +%s.%N)
	jsd1=$(ticks "${pids[@]}")
	pg1=0
	[ "$store" = postgresql ] && pg1=$(ticks $(pg_pids "$d/pg"))
	for i in $(seq 1 "$n"); do
		sum=$(awk -v s="$sum" '/joins\/s/ { for (i = 1; i < NF; i++) if ($(i + 1) == "joins/s") s += $i } END { print s }' "cli$i.out")
		answered=$((answered + $(awk '/^success/ { print $2 }' "cli$i.out")))
	done
	check "$store, $n instance(s): every JoinReq answered Success ($answered)" test "$ok" -eq "$n" -a "$answered" -eq $((per_r * n))
	JPS[$store-$n]=$sum
	awk -v st="$store" -v n="$n" -v r="$answered" -v s="$sum" -v w="$(echo "$t1 - $t0" | bc)" \
		-v j=$((jsd1 - jsd0)) -v p=$((pg1 - pg0)) -v hz="$HZ" -v c="$CONNS" 'BEGIN {
		printf "bench_bi: store %-10s instances %d: %d JoinReqs over %d connections in %.2f s: " \
			"%.0f joins/s; server CPU %.0f us/JoinReq (danejoind %.0f + postgres %.0f)\n",
			st, n, r, c, w, s, (j + p) * 1e6 / hz / r, j * 1e6 / hz / r, p * 1e6 / hz / r }'
	for i in "${!pids[@]}"; do kill -TERM "${pids[$i]}"; dj_reap "${pids[$i]}" >/dev/null; done
	[ "$store" = postgresql ] && pg_stop "$d/pg"
	cd "$T" || return 1
}

echo "bench_bi: $REQS JoinReqs (LoRaWAN 1.1) from $NDEV devices over $CONNS mTLS connections;" \
	"nproc $(nproc); store $STORE, instances $INST"
case $STORE in
sqlite) run sqlite 1 ;;
postgresql) run postgresql "$INST" ;;
both)
	run sqlite 1
	run postgresql 1
	[ "$INST" -gt 1 ] && run postgresql "$INST"
	awk -v s="${JPS[sqlite-1]:-0}" -v p="${JPS[postgresql-1]:-0}" -v q="${JPS[postgresql-$INST]:-0}" \
		-v n="$INST" 'BEGIN { if (s == 0) exit
		printf "bench_bi: PostgreSQL with 1 instance reaches %.0f%% of SQLite joins/s\n", 100 * p / s
		if (n > 1) printf "bench_bi: PostgreSQL with %d instances reaches %.0f%% of SQLite joins/s\n", n, 100 * q / s }'
	;;
esac
dj_end
