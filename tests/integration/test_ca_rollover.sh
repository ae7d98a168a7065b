#!/bin/bash
# test_ca_rollover.sh - danejoin-ca rollover (RFC 7671 §8.1) against a real knotd and a real
# TLS server, with a DANE client connected throughout that never fails verification.
#
# The client behaves like a real one with a cache: it takes the TLSA RRset from a validated
# lookup (delv), keeps it for the RRset's TTL, and checks every connection with
# `openssl s_client -dane_tlsa_rrdata` against it. The server's certificate is switched by
# the rollover's --switch-cmd. If the rollover switched before the next record had been in
# every cache for a TTL, the client would still hold only the current record and fail; if it
# retired the current record before the switch, a client that refreshed would hold only the
# next record while the server still shows the current certificate, and fail. A negative
# control shows that the client does fail on a mismatch.
#
# Also: an interrupted rollover (--no-wait) continues from its state file when the same
# command is run again, a finished rollover can be run again harmlessly, --resume works, a
# state file of another rollover is refused, a rollover whose current record is not
# published changes nothing, and a CA roll with two 2 0 1 records.
#
# Usage: bash test_ca_rollover.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin ca-rollover "$@"
BIN=$CA
dj_need "$BIN"
# the DANE client loop and the s_server stop with the test, whatever happens
stop_all() {
	touch "$T/stop"
	[ -f "$T/srv.pid" ] && kill "$(cat "$T/srv.pid")" 2>/dev/null
	dj__cleanup
}
trap stop_all EXIT
tlsa_now() {
	kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +short +norec TLSA "$1" | tr 'A-F' 'a-f' |
		sed 's/ //g' | sort | tr '\n' ' '
}

dj_knot_start "$T/knot" "lorawan.test" || { echo "FAIL: knotd"; exit 1; }
dj_knot_delv_anchors "$T/anchors.conf"
NS="127.0.0.1@$DJ_KNOT_PORT"
DNS=(--ns "$NS" --zone lorawan.test --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA")
OWNER=_443._tcp.js.lorawan.test.
TTL=2
PORT=$(dj_free_port)

for i in 1 2; do
	run 0 self-signed --role js --name js.lorawan.test --key-out js$i.key --cert-out js$i.crt
done
R1=$("$BIN" tlsa --cert js1.crt --usage 3 --selector 1 --mtype 1)
R2=$("$BIN" tlsa --cert js2.crt --usage 3 --selector 1 --mtype 1)
run 0 publish add "${DNS[@]}" --rr "$OWNER $TTL IN TLSA $R1"

# start_server CERT - s_server on $PORT with CERT; its pid in srv.pid
cat >start_server.sh <<EOF
#!/bin/bash
. "$SRC/tests/lib/harness.sh"
[ -f "$T/srv.pid" ] && kill \$(cat "$T/srv.pid") 2>/dev/null && sleep 0.1
openssl s_server -accept $PORT -cert "$T/\$1.crt" -key "$T/\$1.key" -www -quiet \
	>"$T/srv-\$1.log" 2>&1 </dev/null &
echo \$! >"$T/srv.pid"
dj_wait_port $PORT \$!
EOF
bash start_server.sh js1 || { echo "FAIL: s_server"; exit 1; }

# check_once RDATA... - one DANE connection; prints ok / fail / down. down: no server (the switch
# restarts s_server), or the connection reset before any verification (errno 104: the old
# server killed during that handshake); a verification error is a fail
check_once() {
	local a=() r
	for r in "$@"; do a+=(-dane_tlsa_rrdata "$r"); done
	timeout 5 openssl s_client -connect 127.0.0.1:$PORT -dane_tlsa_domain js.lorawan.test \
		"${a[@]}" -verify_return_error -brief </dev/null >"$T/sc.out" 2>&1
	if grep -q "^Verification: OK" "$T/sc.out"; then echo ok
	elif grep -Eq "connect:errno|Connection refused|connect error" "$T/sc.out"; then echo down
	elif grep -q "errno=104" "$T/sc.out" && ! grep -qi "verif" "$T/sc.out"; then echo down
	else echo fail; fi
}

# Negative control: the checker does fail when the TLSA does not match the server.
CHECKS=$((CHECKS + 1))
[ "$(check_once "$R2")" = fail ] || fail "the DANE client accepted a mismatching TLSA"
CHECKS=$((CHECKS + 1))
[ "$(check_once "$R1")" = ok ] || { fail "the DANE client rejected the right TLSA"; cat "$T/sc.out"; }

# client_loop - a DANE client with a TTL-honouring cache of validated TLSA records
client_loop() {
	local until=0 now rrs=() line
	while [ ! -f "$T/stop" ]; do
		now=${EPOCHREALTIME/./}; now=$((now / 1000))
		if [ "$now" -ge "$until" ]; then
			delv @127.0.0.1 -p "$DJ_KNOT_PORT" -a "$T/anchors.conf" +root=lorawan.test \
				TLSA "$OWNER" >"$T/delv.out" 2>&1
			if grep -q "; fully validated" "$T/delv.out"; then
				rrs=()
				while read -r line; do rrs+=("$line"); done < <(awk '$4 == "TLSA" {
					h = ""; for (i = 8; i <= NF; i++) h = h $i
					print $5, $6, $7, h; ttl = $2 } END { print "ttl", ttl }' \
					"$T/delv.out")
				until=$((now + 1000 * ${rrs[-1]#ttl }))
				unset 'rrs[-1]'
				echo "$(date +%s.%N) lookup ${rrs[*]}" >>"$T/client.log"
			else
				echo "$(date +%s.%N) lookup failed" >>"$T/client.log"
				echo x >>"$T/client.fail"
			fi
		fi
		case $(check_once "${rrs[@]}") in
		ok) echo x >>"$T/client.ok" ;;
		down) echo x >>"$T/client.down" ;;
		*) echo x >>"$T/client.fail"
		   { echo "$(date +%s.%N) FAILED with ${rrs[*]}"; cat "$T/sc.out"; } >>"$T/client.log" ;;
		esac
		sleep 0.2
	done
}
dj_spawn /dev/null "$T/client.err" client_loop
CLIENT=$DJ_PID
sleep 1

ROLL=(rollover --state "$T/roll.state" --current-cert js1.crt --next-cert js2.crt
	--server js.lorawan.test --port 443 --ttl $TTL --cache-cap 1 "${DNS[@]}"
	--switch-cmd "bash $T/start_server.sh js2")
# 1. Interrupted after the pre-publication (--no-wait): exit 8, step recorded.
run 8 "${ROLL[@]}" --no-wait && has "$OUT" "waiting for caches"
has "$T/roll.state" "^step=published$"
CHECKS=$((CHECKS + 1))
[ "$(tlsa_now $OWNER)" = "$(echo "$R1 $R2" | tr 'A-F' 'a-f' | awk '{print $1$2$3$4"\n"$5$6$7$8}' | sort | tr '\n' ' ')" ] ||
	fail "after pre-publication kdig shows $(tlsa_now $OWNER)"
# A state file of another rollover is refused.
run 2 rollover --state "$T/roll.state" --current-cert js2.crt --next-cert js1.crt \
	--server js.lorawan.test --port 443 --ttl $TTL "${DNS[@]}" && has "$ERR" "another rollover"
# 2. The same command again continues: waits, switches, retires.
run 0 "${ROLL[@]}" && has "$OUT" "continuing from step 'published'" && has "$OUT" "removed" &&
	has "$OUT" "complete"
has "$T/roll.state" "^step=done$"
CHECKS=$((CHECKS + 1))
[ "$(tlsa_now $OWNER)" = "$(echo "$R2" | tr 'A-F' 'a-f' | sed 's/ //g') " ] ||
	fail "after the rollover kdig shows $(tlsa_now $OWNER)"
# 3. Running it again, or resuming the finished state, changes nothing.
run 0 "${ROLL[@]}" && has "$OUT" "complete"
run 0 rollover --resume "$T/roll.state" && has "$OUT" "complete"
sleep $((TTL + 1))
touch "$T/stop"
dj_reap "$CLIENT"
OKS=$(cat "$T/client.ok" 2>/dev/null | wc -l)
BAD=$(cat "$T/client.fail" 2>/dev/null | wc -l)
CHECKS=$((CHECKS + 1))
if [ "$BAD" -ne 0 ] || [ "$OKS" -lt 10 ]; then
	echo "FAIL: the DANE client saw $BAD failures and $OKS good connections"
	cat "$T/client.log"
	FAILS=$((FAILS + 1))
fi
grep -qi "lookup.*$(echo "$R2" | awk '{print $4}')" "$T/client.log" ||
	{ echo "FAIL: the client never saw the next record"; FAILS=$((FAILS + 1)); }
CHECKS=$((CHECKS + 1))
[ "$(check_once "$R2")" = ok ] && [ "$(check_once "$R1")" = fail ] ||
	fail "the server was not switched to the next certificate"

# A rollover whose current record is not published changes nothing.
O2=_444._tcp.js.lorawan.test.
run 5 rollover --state "$T/roll2.state" --current-cert js1.crt --next-cert js2.crt \
	--name $O2 --ttl $TTL "${DNS[@]}" --no-wait && has "$ERR" "not published"
CHECKS=$((CHECKS + 1))
[ -z "$(tlsa_now $O2)" ] || fail "a refused rollover published $(tlsa_now $O2)"

# A CA roll: two DANE-TA (2 0 1) records for the old and the new private root.
for i in 1 2; do
	run 0 root --subject "Root $i" --key-out root$i.key --cert-out root$i.crt
done
O3=_8443._tcp.js.lorawan.test.
run 0 publish add "${DNS[@]}" --rr "$("$BIN" tlsa --cert root1.crt --usage 2 --selector 0 \
	--mtype 1 --name $O3 --ttl 1)"
run 8 rollover --state "$T/ca.state" --current-cert root1.crt --next-cert root2.crt --usage 2 \
	--selector 0 --mtype 1 --name $O3 --ttl 1 --cache-cap 0 "${DNS[@]}" &&
	has "$OUT" "install the next certificate on the server now"
run 0 rollover --resume "$T/ca.state" --switched
T2=$("$BIN" tlsa --cert root2.crt --usage 2 --selector 0 --mtype 1 | sed 's/ //g')
CHECKS=$((CHECKS + 1))
[ "$(tlsa_now $O3)" = "$(echo "$T2" | tr 'A-F' 'a-f') " ] || fail "CA roll left $(tlsa_now $O3)"

echo "$OKS good DANE connections"
dj_end
