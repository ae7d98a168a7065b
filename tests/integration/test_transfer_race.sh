#!/bin/bash
# test_transfer_race.sh - ownership transfers under concurrency and a real crash, against a real
# knotd (issue 6 tests "two concurrent transfers of one device" and "a SIGKILL during a batch
# transfer, then recovery"):
#  - two danejoin-devices transfer processes started at once on one device, with different
#    requests (A -> B and A -> C) and with the same request: exactly one transfer happens, the
#    other process is refused (7) or finds nothing to do, and the chain gains exactly one link;
#  - kill -9 of a transfer of 1,000 devices while it is updating the DNS (signed requests, then
#    auth codes), then a re-run: every device transferred exactly once (serials, transfer rows,
#    audit entries, chains), and kdig shows the CNAMEs and new records for a sample.
#
# Usage: bash test_transfer_race.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin xrace "$@"
BIN=$DEV
dj_need "$BIN"
RUN_PRE=(--config "$T/dj.conf")
sql() { sqlite3 -cmd ".timeout 5000" js.db "$1"; }
q() { dj_knot_q "$@"; }

dj_knot_start "$T/knot" "maker.test opa.test opb.test opc.test" || { echo "FAIL: knotd"; exit 1; }
NS="127.0.0.1@$DJ_KNOT_PORT"
DNS=(--ns "$NS" --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA")
dj_genkey maker opa opb opc
dj_owner_publish 300 maker.test opa.test opb.test opc.test || exit 1
dj_conf_store >dj.conf
run 0 init
ENR=(--zone opa.test --from-zone maker.test --key maker.key --netids 000013 --as-ids as.opa.test
	"${DNS[@]}")

# race B C - two transfers at once from the request files B and C (danejoin-devices, in
# parallel); their outputs in b.out/b.err and c.out/c.err, their exit codes in RB and RC
race() {
	"$BIN" --config dj.conf transfer --requests "$1" "${DNS[@]}" >b.out 2>b.err &
	PB=$!
	"$BIN" --config dj.conf transfer --requests "$2" "${DNS[@]}" >c.out 2>c.err &
	PC=$!
	wait $PB; RB=$?
	wait $PC; RC=$?
}

# ---- two concurrent transfers of one device ------------------------------------------------
# RACE devices, each raced twice: different requests (A -> B vs A -> C), then the same request.
NRACE=4
dj_devices_csv $NRACE 1.0.4 | sed 's/^0000000000/70b3d57ee0/' >race.csv
run 0 enroll race.csv "${ENR[@]}" && has "$OUT" "enrolled $NRACE devices"
for d in $(tail -n +2 race.csv | cut -d, -f1); do
	rm -f req-b.txt req-c.txt
	run 0 transfer-request $d --zone opa.test --to-zone opb.test --key opa.key \
		--netids 00001a --as-ids as.opb.test --out req-b.txt
	run 0 transfer-request $d --zone opa.test --to-zone opc.test --key opa.key \
		--netids 00001c --as-ids as.opc.test --out req-c.txt
	race req-b.txt req-c.txt
	CHECKS=$((CHECKS + 1))
	if [ "$RB" = 0 ] && [ "$RC" = 7 ]; then
		WIN=opb.test
	elif [ "$RB" = 7 ] && [ "$RC" = 0 ]; then
		WIN=opc.test
	else
		fail "$d: concurrent transfers exited $RB (to B) and $RC (to C): want one 0, one 7"
		cat b.err c.err
		continue
	fi
	cat b.err c.err >race.err
	echo "race $d: to B exited $RB, to C exited $RC: $(head -1 race.err)"
	has race.err "another transfer of it is unfinished|owner changed meanwhile|serial 2 or this nonce was already used|replayed|stale"
	eq "$(sql "SELECT count(*) FROM transfers WHERE hex(dev_eui)=upper('$d')")" 1 "$d: transfer rows"
	eq "$(sql "SELECT zone, serial FROM owners WHERE hex(dev_eui)=upper('$d')")" "$WIN.|2" "$d: owner"
	run 0 ownership $d
	eq "$(grep -c '^link ' "$OUT")" 2 "$d: links"
	has "$OUT" "link 2: +opa.test. -> $WIN."
	eq "$(q "$d._device.opa.test." CNAME)" "$d._device.$WIN." "$d: CNAME"
	eq "$(sql "SELECT count(*) FROM audit WHERE event='ownership-transfer' AND hex(dev_eui)=upper('$d')")" 1 "$d: audit"

	# the same request, twice at once (from the winner onwards): one transfer, one no-op
	FROM=$WIN; [ $WIN = opb.test ] && TO=opc.test || TO=opb.test
	rm -f req-n.txt
	run 0 transfer-request $d --zone $FROM --to-zone $TO --key ${FROM%.test}.key \
		--netids 00001d --as-ids x --out req-n.txt
	race req-n.txt req-n.txt
	CHECKS=$((CHECKS + 1))
	NOK=$(grep -l "transferred 1 devices" b.out c.out 2>/dev/null | wc -l)
	echo "race $d, one request twice: exited $RB and $RC: $(cat b.out c.out b.err c.err | tr '\n' ' ')"
	if ! { [ "$RB" = 0 ] && [ "$RC" = 0 ] && [ "$NOK" = 1 ]; } &&
	   ! { [ "$RB" = 0 ] && [ "$RC" = 7 ]; } && ! { [ "$RB" = 7 ] && [ "$RC" = 0 ]; }; then
		fail "$d: the same request twice at once exited $RB and $RC ($NOK 'transferred 1')"
		cat b.out b.err c.out c.err
	fi
	eq "$(sql "SELECT count(*) FROM transfers WHERE hex(dev_eui)=upper('$d')")" 2 \
		"$d: transfer rows after the same request twice"
	eq "$(sql "SELECT zone, serial FROM owners WHERE hex(dev_eui)=upper('$d')")" "$TO.|3" \
		"$d: owner after the same request twice"
	run 0 ownership $d
	eq "$(grep -c '^link ' "$OUT")" 3 "$d: links after the same request twice"
	eq "$(sql "SELECT count(*) FROM audit WHERE event='ownership-transfer' AND hex(dev_eui)=upper('$d')")" 2 "$d: audit after the same request twice"
	eq "$(q "$d._device.$FROM." CNAME)" "$d._device.$TO." "$d: CNAME $FROM"
	eq "$(sql "SELECT count(*) FROM transfers WHERE step < 3")" 0 "$d: unfinished"
done

# ---- kill -9 during a batch transfer of 1,000 devices --------------------------------------
N=1000
dj_devices_csv $N 1.0.4 >batch.csv
run 0 enroll batch.csv "${ENR[@]}" && has "$OUT" "enrolled $N devices"
{ echo dev_eui; tail -n +2 batch.csv | cut -d, -f1; } >batch-devs.csv
BATCH_SQL="dev_eui IN (SELECT dev_eui FROM owners WHERE zone IN ('opa.test.','opb.test.','opc.test.')
	AND hex(dev_eui) NOT LIKE '70B3D57EE0%')"

# kill9 WHEN_SQL ARGS... - start "transfer ARGS" in the background and kill -9 it as soon as the
# query WHEN_SQL counts a row; "killed" if it died by SIGKILL, "finished" if it ended first
kill9() {
	local when=$1 pid i rc
	shift
	dj_spawn kill.out kill.err "$BIN" --config dj.conf transfer "$@"
	pid=$DJ_PID
	for i in $(seq 1 6000); do
		kill -0 "$pid" 2>/dev/null || break
		[ "$(sql "$when" 2>/dev/null)" -gt 0 ] 2>/dev/null && { kill -9 "$pid"; break; }
		sleep 0.005
	done
	dj_reap "$pid"
	rc=$?
	[ $rc -eq 137 ] && echo killed || echo "finished($rc)"
}

# (1) signed requests A -> B, killed once some transfers are recorded (DNS updates under way)
run 0 transfer-request --csv batch-devs.csv --zone opa.test --to-zone opb.test --key opa.key \
	--netids 00001a --as-ids as.opb.test --out batch-req.txt
R=$(kill9 "SELECT count(*) FROM transfers WHERE serial = 2 AND $BATCH_SQL" \
	--requests batch-req.txt "${DNS[@]}")
eq "$R" killed "the batch A -> B was killed mid-way"
S=$(sql "SELECT count(*), min(step), max(step) FROM transfers WHERE serial = 2 AND $BATCH_SQL")
echo "after kill -9 (A -> B): transfers recorded, min step, max step: $S"
eq "$(sql "SELECT count(*) FROM owners WHERE zone='opa.test.' AND serial=1 AND $BATCH_SQL")" "$N" \
	"no device half-transferred after kill -9"
run 0 transfer --requests batch-req.txt "${DNS[@]}" &&
	has "$OUT" "finished $N transfers left unfinished by an earlier run" &&
	has "$OUT" "transferred 0 devices \($N already done earlier"

# (2) auth codes B -> C, killed after the new zone's records went out (CNAME step under way)
run 0 authcode set --csv batch-devs.csv --zone opb.test --key opb.key --ta-file "$DJ_KNOT_TA" \
	--lookup-via "$NS" --out batch-codes.csv
ACX=(--to-zone opc.test --netids 000099 --as-ids as.opc.test --key maker.key "${DNS[@]}")
R=$(kill9 "SELECT count(*) FROM transfers WHERE serial = 3 AND step >= 1 AND $BATCH_SQL" \
	--auth-codes batch-codes.csv "${ACX[@]}")
eq "$R" killed "the batch B -> C was killed mid-way"
S=$(sql "SELECT count(*), min(step), max(step) FROM transfers WHERE serial = 3 AND $BATCH_SQL")
echo "after kill -9 (B -> C): transfers recorded, min step, max step: $S"
run 0 transfer --auth-codes batch-codes.csv "${ACX[@]}" &&
	has "$OUT" "finished $N transfers left unfinished by an earlier run"
# a further run finds nothing
run 0 transfer "${DNS[@]}" && has "$OUT" "no unfinished transfers"

# every device transferred exactly once per hand-over
eq "$(sql "SELECT count(*) FROM owners WHERE zone='opc.test.' AND serial=3 AND $BATCH_SQL")" "$N" \
	"owners at C, serial 3"
eq "$(sql "SELECT count(*), count(DISTINCT dev_eui), min(step), max(step) FROM transfers WHERE $BATCH_SQL")" \
	"$((2 * N))|$N|3|3" "transfer rows: 2 per device, all done"
eq "$(sql "SELECT count(*) FROM (SELECT dev_eui, serial FROM transfers WHERE $BATCH_SQL GROUP BY dev_eui, serial HAVING count(*) > 1)")" 0 \
	"one transfer row per device and serial"
eq "$(sql "SELECT count(*) FROM audit WHERE event='ownership-transfer' AND $BATCH_SQL")" \
	"$((2 * N))" "audit: one ownership-transfer per device and hand-over"
eq "$(sql "SELECT count(*) FROM authcodes WHERE $BATCH_SQL")" 0 "auth codes used up"
# a sample: the chain has exactly 3 links; kdig shows both CNAMEs and the records at C
for d in $(tail -n +2 batch-devs.csv | shuf -n 8 --random-source=batch.csv) $(tail -1 batch-devs.csv); do
	run 0 ownership "$d"
	eq "$(grep -c '^link ' "$OUT")" 3 "$d: links"
	has "$OUT" "link 2: +opa.test. -> opb.test. +signed by opa.test."
	has "$OUT" "link 3: +opb.test. -> opc.test. +signed by maker.test. \(auth code\)"
	eq "$(q "$d._device.opa.test." CNAME)" "$d._device.opb.test." "$d: CNAME at A"
	eq "$(q "$d._device.opb.test." CNAME)" "$d._device.opc.test." "$d: CNAME at B"
	CHECKS=$((CHECKS + 1))
	[ -n "$(q "_ownership.$d._device.opc.test." TXT)" ] || fail "$d: no _ownership at C"
	CHECKS=$((CHECKS + 1))
	[ -z "$(q "_ownership.$d._device.opb.test." TXT)" ] || fail "$d: _ownership stayed at B"
	has <(q "$d._device.opc.test." TXT) '"v=dj1"'
done

dj_end
