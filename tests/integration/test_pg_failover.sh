#!/bin/bash
# test_pg_failover.sh - PostgreSQL faults under load (issue 13 items 3 and 5): two danejoind
# instances with a multi-host conninfo (primary, then standby; target_session_attrs=read-write)
# on a primary with a synchronous streaming standby (tests/lib/postgres.sh: two private clusters,
# synchronous_commit = on, synchronous_standby_names = the standby). 4 workers join 12 simulated
# LoRaWAN 1.1 devices through both instances all along (tests/lib/pgload.sh):
#
#   - pg_ctl restart -m immediate of the primary during the load: the instances, never
#     restarted, answer joins again by themselves;
#   - failover: the primary is killed (pg_ctl stop -m immediate) and the standby promoted: the
#     instances continue against it by themselves.
#
# Afterwards, on the promoted standby, every request answered Success (before the restart,
# between, after the failover) is replayed: none is accepted; no JoinNonce was accepted twice for
# a device, and every device joins again (its device side refusing a JoinNonce not above its
# last). Prints the figures (requests sent, kills, Successes, replays accepted, JoinNonces
# repeated).
# Usage: bash test_pg_failover.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/pgload.sh"
dj_begin pgfail "$@"
dj_need "$JSD" "$CLI" "$DEV"

check "the primary starts" pg_start "$T/p" || dj_end
check "a synchronous standby streams from it" pg_add_standby "$T/p" "$T/s" || dj_end
DJ_STORE_CONNINFO="host=$T/p,$T/s dbname=dj user=postgres target_session_attrs=read-write connect_timeout=2"
dj_mkroot root && dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test && dj_kek ns1 || exit 1
PA=$(dj_free_port)
PB=$(dj_free_port)
dj_conf_pkix "$PA" off >a.conf
dj_conf_pkix "$PB" off >b.conf
pl_devices 13
check "store initialised (multi-host conninfo), 13 devices" dj_store_init a.conf pl.csv
dj_spawn a.log a.err "$JSD" --config a.conf
PID_A=$DJ_PID
check "danejoind A listens" dj_wait_port "$PA" "$PID_A"
dj_spawn b.log b.err "$JSD" --config b.conf
PID_B=$DJ_PID
check "danejoind B listens" dj_wait_port "$PB" "$PID_B"

# both_join - the spare device (line 2 of pl.csv) joins through A, then through B
SPARE=$(sed -n 2p pl.csv | cut -d, -f1)
both_join() {
	pl_join "$PA" "$SPARE" "pl/st.$SPARE" sp.out && pl_join "$PB" "$SPARE" "pl/st.$SPARE" sp.out
}
check "joins through both instances" both_join

DEVS=($(tail -n +3 pl.csv | cut -d, -f1))
for w in 0 1 2 3; do
	pl_worker $w "$PA $PB" "${DEVS[@]:$((w * 3)):3}" &
	WORKERS+=($!)
done
sleep 2
ok_before=$(cat pl/log.* | awk '$4 == "ok"' | wc -l)

# ---- pg_ctl restart -m immediate during the load ------------------------------------------------
check "pg_ctl restart -m immediate of the primary under load" pg_restart_immediate "$T/p"
check "joins through both instances again, without restarting them" dj_wait_for 40 both_join
check "... A and B were never restarted" kill -0 "$PID_A" "$PID_B"
sleep 1

# ---- failover: the primary killed, the standby promoted ----------------------------------------
ok_kill=$(cat pl/log.* | awk '$4 == "ok"' | wc -l)
check "the primary killed (pg_ctl stop -m immediate)" pg_stop "$T/p" immediate
check "the standby promoted" pg_promote "$T/s"
check "joins through both instances on the promoted standby" dj_wait_for 40 both_join
check "... A and B were never restarted" kill -0 "$PID_A" "$PID_B"
sleep 2
touch pl.stop
wait "${WORKERS[@]}"
ok_end=$(cat pl/log.* | awk '$4 == "ok"' | wc -l)
echo "Successes: $ok_before before the restart, $ok_kill before the primary was killed, $ok_end in all"
check "the primary is down: everything below is checked on the promoted standby" bash -c "! pg_isready -q -h '$T/p'"
pl_audit "$PA $PB"
pl_figures "restart -m immediate + failover, two instances" 2
check "joins answered Success before the restart, before the kill and after ($ok_before, $ok_kill, $ok_end)" \
	test "$ok_before" -gt 0 -a "$ok_kill" -gt "$ok_before" -a "$ok_end" -gt "$ok_kill"
check "every answered request replayed ($PL_REPLAYS): none accepted" test "$PL_REPLAYS_OK" -eq 0 -a "$PL_REPLAYS" -eq "$PL_OK"
check "no JoinNonce accepted twice for a device" test "$PL_JN_REPEATED" -eq 0
check "every device joins again afterwards" test "$PL_FRESH_BAD" -eq 0
dj_end a.err b.err
