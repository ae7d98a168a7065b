#!/bin/bash
# test_pg_instances.sh - two danejoind instances on one PostgreSQL database (issue 13 items 2
# and 5), a private cluster (tests/lib/postgres.sh), real mutual TLS on loopback, simulated
# LoRaWAN 1.1 devices whose device side refuses a JoinNonce not above its last (lw_sim):
#
#   - the same Join-request sent to A and to B at the same moment, 200 times: exactly one
#     Success each time, and the JoinNonces the device accepted strictly increase across the
#     instances;
#   - kill -9 of one instance (A and B in turn), 20 times, while 4 workers join 12 devices through
#     both; each killed instance started again. Afterwards every request answered Success is
#     replayed (the very same Join-request, through both instances in turn): none is accepted;
#     no JoinNonce was accepted twice for a device; every device joins again.
#
# Prints the figures (requests sent, kills, Successes, replays accepted, JoinNonces repeated).
# Usage: bash test_pg_instances.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/pgload.sh"
dj_begin pginst "$@"
dj_need "$JSD" "$CLI" "$DEV"

check "a private PostgreSQL cluster starts" pg_start "$T/pg" || dj_end
DJ_STORE_CONNINFO=$PG_CONNINFO
dj_mkroot root && dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test && dj_kek ns1 || exit 1
PA=$(dj_free_port)
PB=$(dj_free_port)
dj_conf_pkix "$PA" off >a.conf
dj_conf_pkix "$PB" off >b.conf
pl_devices 13
check "store initialised on PostgreSQL, 13 devices" dj_store_init a.conf pl.csv
# start_jsd NAME - (re)start instance NAME (a or b); its pid in PID_NAME
start_jsd() {
	local port=$PA
	[ "$1" = b ] && port=$PB
	dj_spawn "$1.log" "$1.err" "$JSD" --config "$1.conf"
	eval "PID_$1=$DJ_PID"
	dj_wait_port "$port" "$DJ_PID"
}
check "danejoind A listens" start_jsd a
check "danejoind B listens (same database)" start_jsd b

# ---- the same Join-request to both at the same moment, 200 times ---------------------------------
D=$(sed -n 2p pl.csv | cut -d, -f1)
one=0 bad=0 last=-1 mono=0
for i in $(seq 1 200); do
	[ -f st.race ] && { cp st.race st.a; cp st.race st.b; } || rm -f st.a st.b
	pl_join "$PA" "$D" st.a ra.out & ja=$!
	pl_join "$PB" "$D" st.b rb.out & jb=$!
	wait $ja; ra=$?
	wait $jb; rb=$?
	if [ $ra -eq 0 ] && [ $rb -ne 0 ]; then
		cp st.a st.race
	elif [ $rb -eq 0 ] && [ $ra -ne 0 ]; then
		cp st.b st.race
	else
		bad=$((bad + 1))
		echo "  race $i: A $ra, B $rb"
		[ $ra -eq 0 ] && cp st.a st.race
		continue
	fi
	one=$((one + 1))
	jn=$(pl_jn st.race "$D")
	[ "$jn" -gt "$last" ] && mono=$((mono + 1))
	last=$jn
done
echo "figures (race): 200 identical Join-requests sent to A and B at once: $one answered" \
	"Success exactly once, $bad not; JoinNonces strictly increasing $mono/200 (last $last)"
cp st.race "pl/st.$D"	# the race device's state, for its fresh join at the end
check "200 races: exactly one Success each time" test "$one" -eq 200
check "200 races: JoinNonces strictly increasing across A and B (device side)" test "$mono" -eq 200

# ---- kill -9 of one instance, 20 times, while joins flow through both ----------------------------
DEVS=($(tail -n +3 pl.csv | cut -d, -f1))
for w in 0 1 2 3; do
	pl_worker $w "$PA $PB" "${DEVS[@]:$((w * 3)):3}" &
	WORKERS+=($!)
done
kills=0 restarted=0
for i in $(seq 1 20); do
	sleep 0.4
	v=a
	[ $((i % 2)) -eq 0 ] && v=b
	eval "p=\$PID_$v"
	kill -9 "$p" && kills=$((kills + 1))
	dj_reap "$p" >/dev/null 2>&1
	sleep 0.1
	start_jsd $v && restarted=$((restarted + 1))
done
sleep 0.5
touch pl.stop
wait "${WORKERS[@]}"
check "20 kills -9, each instance started again ($kills kills, $restarted restarts)" \
	test "$kills" -eq 20 -a "$restarted" -eq 20
pl_audit "$PB $PA"
pl_figures "kill -9 x20, two instances" "$kills"
check "joins were answered Success during the kills ($PL_OK of $PL_SENT)" test "$PL_OK" -gt 0
check "every answered request replayed ($PL_REPLAYS): none accepted" test "$PL_REPLAYS_OK" -eq 0 -a "$PL_REPLAYS" -eq "$PL_OK"
check "no JoinNonce accepted twice for a device" test "$PL_JN_REPEATED" -eq 0
check "every device joins again afterwards" test "$PL_FRESH_BAD" -eq 0
dj_end a.err b.err
