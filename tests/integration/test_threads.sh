#!/bin/bash
# test_threads.sh - danejoind with several event loops ([listen] threads, issue 15 item 3),
# against a real danejoind and real clients (danejoin-client processes) over mutual TLS 1.3.
#
# - [listen] threads is checked by --check-config (0 and 65 refused, naming the key);
# - with threads = 4: three more threads named "loop N" in /proc/PID/task, and connections land
#   on more than one loop (danejoin_loop_requests_total{loop=...}); a second danejoind on the
#   same address is refused (SO_REUSEPORT would let it share the port);
# - the same JoinReq (same DevNonce) of one device sent by HAMMER processes at once, each on
#   its own connection (so on different loops): exactly one Success per DevNonce, the others
#   refused as DevNonce replays; the device's JoinNonce goes up by exactly one per round (a
#   1.1 device, DevNonce a counter, and a 1.0.3 device, DevNonce random with a history);
# - SIGHUP under load, several times, each reload adding a peer: every join of the load gets
#   its answer (Success), no connection closes before its answer, and the peer added is known
#   on every loop (HomeNSReqs of the new peer, each on a new connection, all answered Success,
#   and every loop's request counter moved);
# - SIGTERM under load (danejoin-client bench, keep-alive connections): danejoind stops
#   accepting on every loop, answers what is in flight and exits 0; every join committed to the
#   store was answered (the devices' JoinNonces add up to the Successes the bench saw), and
#   danejoin-devices check finds the store sound;
# - max_connections_per_peer = 2 with 4 loops: of 6 connections one identity holds open (landing
#   on any loops), 4 are refused; the closings and open connections are counted over the loops;
# - threads = 1: one loop, no "loop N" thread, as before.
#
# Usage: bash test_threads.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin threads "$@"
dj_need "$JSD" "$CLI" "$DEV" curl
umask 077	# the simulator's state files hold session keys

LOOPS=4
HAMMER=8	# processes sending one JoinReq at once
ROUNDS=5	# DevNonces hammered per device
RELOADS=4
LOADERS=4	# join loops running during the reloads and the drain
TERMDEV=16	# devices of the bench running into the SIGTERM (over TERMDEV / 2 connections)
CAPCONN=6	# connections of one identity held open against max_connections_per_peer = 2

dj_mkroot root
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test ns3:DNS:ns3.test
dj_kek ns1 ns3
chmod 600 ./*.key ./*.kek

PORT=$(dj_free_port)
MPORT=$(dj_free_port)
# conf THREADS [EXTRA-PEERS] - the configuration; EXTRA-PEERS more peers, ns3 the first
conf() {
	dj_conf_pkix "$PORT" "$MPORT" threads="$1" max_connections_per_peer=256
	dj_conf_section join session_lifetime=3600
	for i in $(seq 1 "${2:-0}"); do
		if [ "$i" -eq 1 ]; then
			dj_conf_peer ns3 ns3.test ns 000015 ns_ids=ns3.test kek_label=ns3-kek \
				kek_file=ns3.kek
		else
			dj_conf_peer "x$i" "x$i.test" ns "0000$((20 + i))" plain_keys=yes
		fi
	done
}
conf $LOOPS >dj.conf
key() { openssl rand -hex 16; }
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000110,70b3d57ed0000001,1.1,$(key),$(key)"
	echo "0000000000000103,70b3d57ed0000001,1.0.3,$(key),"
	for i in $(seq 1 $LOADERS); do
		echo "000000000000020$i,70b3d57ed0000001,1.1,$(key),$(key)"
	done
} >devices.csv
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	for i in $(seq 1 $TERMDEV); do
		printf '00000000000003%02x,70b3d57ed0000001,1.1,%s,%s\n' "$i" "$(key)" "$(key)"
	done
} >term.csv
check "store initialised and devices imported" dj_store_init dj.conf devices.csv
check "... and the bench's devices" "$DEV" --config dj.conf import term.csv

# ---- [listen] threads, checked ---------------------------------------------------------------
check "--check-config accepts threads = $LOOPS" dj_check_config 0 dj.conf
for bad in 0 65 two; do
	sed "s/^threads = $LOOPS\$/threads = $bad/" dj.conf >bad.conf
	check "--check-config refuses threads = $bad, naming the key" \
		dj_check_config 2 bad.conf '\[listen\] threads: expected an integer from 1 to 64'
done

# ---- several loops -------------------------------------------------------------------------
check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT" || dj_end jsd.log
check "it says it runs $LOOPS loops" dj_wait_log jsd.log "$LOOPS event loops on 127.0.0.1:$PORT"
NLOOP=$(cat /proc/"$DJ_JSD_PID"/task/*/comm | grep -c '^loop ')
eq "$NLOOP" $((LOOPS - 1)) "threads named 'loop N' in /proc/PID/task (loop 0 is the main one)"
eq "$(grep -cx -e committer -e checkpointer /proc/"$DJ_JSD_PID"/task/*/comm | awk -F: '{ n += $2 } END { print n }')" 2 \
	"one thread named committer and one checkpointer (SQLite store)"
eq "$(dj_metric "$MPORT" danejoin_loops)" $LOOPS "danejoin_loops"
# SO_REUSEPORT lets any process of this user bind the address too: danejoind must not share it
sed -e 's/^path = js.db$/path = js2.db/' -e 's/^metrics_address = .*/metrics_address = off/' \
	dj.conf >two.conf
check "a second store initialised" dj_store_init two.conf
"$JSD" --config two.conf >two.log 2>&1 &
TWO=$!
dj_wait_exit $TWO 10
wait $TWO
rc=$?
check "a second danejoind on the same address exits non-zero (exit $rc)" test $rc -ne 0
check "... saying the address is in use" grep -q "bind 127.0.0.1:$PORT: Address already in use" two.log

NS=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt --key ns1.key
	--sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek --kek-file ns1.kek)
NS3=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns3.crt
	--key ns3.key --sender-id 000015 --sender-ns-id ns3.test --kek-label ns3-kek --kek-file ns3.kek)

# join_nonce DEVEUI - the device's last JoinNonce in the store ("-": none yet)
join_nonce() { "$DEV" --config dj.conf list | awk -v d="$1" '$1 == d { print $4 }'; }

# le HEX - the bytes of HEX in reverse order (LoRaWAN frames carry EUIs little-endian)
le() { echo "$1" | fold -w2 | tac | tr -d '\n'; }
# join_request DEVEUI DEVNONCE - a 1.0.x Join-request (hex) of the device, JoinEUI
# 70b3d57ed0000001, MIC under its AppKey (from devices.csv)
join_request() {
	local d=$1 n key m
	n=$(printf '%04x' "$2")
	key=$(awk -F, -v d="$d" '$1 == d { print $4 }' devices.csv)
	m="00$(le 70b3d57ed0000001)$(le "$d")$(le "$n")"
	echo "$m" | xxd -r -p >jr.bin
	echo "$m$(openssl mac -cipher AES-128-CBC -macopt hexkey:"$key" -in jr.bin CMAC |
		cut -c1-8 | tr 'A-F' 'a-f')"
}

# hammer DEVEUI ROUND - HAMMER processes send the device's next JoinReq, all with the same
# DevNonce, at once; prints "WINS REPLAYS". A 1.1 device: copies of one simulator state (the
# DevNonce a counter), the keys of the Success checked; a 1.0.3 device: one Join-request (its
# DevNonce the round number), sent as it is.
hammer() {
	local d=$1 r=$2 k pids=() wins=0 replays=0 winner= phy=
	[ "$d" = 0000000000000103 ] && phy=$(join_request "$d" "$r")
	for k in $(seq 1 $HAMMER); do cp "st.$d" "st.$d.$k"; done
	for k in $(seq 1 $HAMMER); do
		if [ -n "$phy" ]; then
			"$CLI" join "${NS[@]}" --phy "$phy" --mac-version 1.0.3 --dev-addr 26000001 \
				>"h.$d.$r.$k.out" 2>"h.$d.$r.$k.err" &
		else
			"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui "$d" --state "st.$d.$k" \
				>"h.$d.$r.$k.out" 2>"h.$d.$r.$k.err" &
		fi
		pids+=($!)
	done
	for k in $(seq 1 $HAMMER); do
		wait "${pids[$((k - 1))]}"
		case $? in
		0) wins=$((wins + 1)); winner=$k ;;
		4) grep -qi 'devnonce' "h.$d.$r.$k.err" && replays=$((replays + 1)) ;;
		esac
	done
	[ -n "$winner" ] && cp "st.$d.$winner" "st.$d"
	echo "$wins $replays"
}

for d in 0000000000000110 0000000000000103; do
	printf '# danejoin-client simulator state v1\n' >"st.$d"
	for r in $(seq 1 $ROUNDS); do
		got=$(hammer "$d" "$r")
		eq "$got" "1 $((HAMMER - 1))" "$d round $r: one Success, the other $((HAMMER - 1)) refused as DevNonce replays"
		eq "$(join_nonce "$d")" "$r" "$d round $r: JoinNonce up by exactly one"
	done
done
LOOPS_USED=$(curl -s "http://127.0.0.1:$MPORT/metrics" |
	awk '/^danejoin_loop_requests_total/ && $2 > 0' | wc -l)
check "connections landed on more than one loop (got $LOOPS_USED)" test "$LOOPS_USED" -ge 2
ACC=$(curl -s "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "danejoin_joins_total{verdict=\"accepted\"}" { print $2 }')
eq "$ACC" $((2 * ROUNDS)) "/metrics sums the loops: accepted joins"

# ---- SIGHUP under load -------------------------------------------------------------------------
"$CLI" homens "${NS3[@]}" --receiver-id 70b3d57ed0000001 --dev-eui 0000000000000110 >h3.out 2>h3.err
check "before the reload ns3 is no peer (UnknownSender)" grep -q 'UnknownSender' h3.err
LPIDS=()
for i in $(seq 1 $LOADERS); do
	dj_spawn "load$i.out" "load$i.err" "$CLI" join "${NS[@]}" --sim devices.csv \
		--dev-eui "000000000000020$i" --state "load$i.state" --count 60
	LPIDS+=("$DJ_PID")
done
dj_wait_log jsd.log 'dev_eui=000000000000020.*result=Success' 10
# reloaded N - the log says N reloads reached every loop
reloaded() { [ "$(grep -c 'configuration reloaded: .* (every loop)' jsd.log)" -eq "$1" ]; }
for n in $(seq 1 $RELOADS); do
	conf $LOOPS "$n" >dj.conf
	kill -HUP "$DJ_JSD_PID"
	check "reload $n reached every loop" dj_wait_for 10 reloaded "$n"
done
for i in $(seq 1 $LOADERS); do
	dj_reap "${LPIDS[$((i - 1))]}"
	rc=$?
	check "loader $i: every join under the reloads answered Success (exit $rc)" test $rc -eq 0
done
check "$RELOADS reloads logged with $((RELOADS + 1)) peers at last" \
	grep -q "configuration reloaded: $((RELOADS + 1)) peers" jsd.log
lacks jsd.log 'closed before its answer'
lacks jsd.log 'reload refused'

# the peer the first reload added, on new connections: every loop knows it
before=$(curl -s "http://127.0.0.1:$MPORT/metrics" | awk '/^danejoin_loop_requests_total/ { print $2 }')
NEW_OK=0
for b in $(seq 1 5); do
	pids=()
	for k in $(seq 1 8); do
		"$CLI" homens "${NS3[@]}" --receiver-id 70b3d57ed0000001 --dev-eui 0000000000000110 \
			>/dev/null 2>"n3.$b.$k.err" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" && NEW_OK=$((NEW_OK + 1)); done
done
after=$(curl -s "http://127.0.0.1:$MPORT/metrics" | awk '/^danejoin_loop_requests_total/ { print $2 }')
eq "$NEW_OK" 40 "HomeNSReqs of the peer added by SIGHUP answered Success"
MOVED=$(paste <(echo "$before") <(echo "$after") | awk '$2 > $1' | wc -l)
eq "$MOVED" $LOOPS "loops that served the new peer's requests"

# ---- SIGTERM under load ------------------------------------------------------------------------
# danejoin-client bench keeps TERMDEV devices joining over TERMDEV / 2 keep-alive connections
# (one request in flight per device), so that requests are in flight on every loop at the SIGTERM
accepted() { curl -s "http://127.0.0.1:$MPORT/metrics" |
	awk '$1 == "danejoin_joins_total{verdict=\"accepted\"}" { print $2 }'; }
BEFORE=$(accepted)
# (SIGPIPE ignored: a write to a connection the drain closed fails, and the bench says so)
dj_spawn term.out term.err bash -c 'trap "" PIPE; exec "$@"' bench "$CLI" bench "${NS[@]}" \
	--sim term.csv --devices $TERMDEV --connections $((TERMDEV / 2)) --requests 4000
TPID=$DJ_PID
busy() { [ "$(accepted)" -ge $((BEFORE + 200)) ] 2>/dev/null; }
check "joins run before the SIGTERM" dj_wait_for 30 busy
dj_jsd_stop TERM
RC=$?
check "SIGTERM under load: danejoind drains every loop and exits 0 (got $RC)" test $RC -eq 0
dj_reap $TPID
BRC=$?
# the drain fails the bench's requests in flight (exit 3, connection failure) or none (0); a
# crash, a sanitizer report (abort: 134) or any other status is a bug of the bench
check "the bench exits 0 or 3, not by a crash (got $BRC)" test $BRC -eq 0 -o $BRC -eq 3
check "it said it drained" grep -q 'drained, exiting' jsd.log
lacks jsd.log 'closed before its answer'
# answered Success: "success", plus "accept-rejected" (the bench's device refused the accept;
# the bench no longer sends a device's JoinReq while its last is in flight, so this should stay
# 0, but a Success the device refused is still a committed join and is counted)
SEEN=$(awk '/^success / { print $2 + $8 }' term.out)
COMMITTED=0
for d in $(tail -n +2 term.csv | cut -d, -f1); do
	jn=$(join_nonce "$d")
	COMMITTED=$((COMMITTED + ${jn/-/0}))
done
eq "$COMMITTED" "${SEEN:-none}" "joins committed = Successes the bench got (every committed join answered)"
check "danejoin-devices check: the store is sound" "$DEV" --config dj.conf check

# ---- max_connections_per_peer counts over every loop -------------------------------------------
conf $LOOPS | sed 's/^max_connections_per_peer = 256$/max_connections_per_peer = 2/' >cap.conf
check "cap: danejoind listens" dj_jsd_start cap.conf cap.log "$PORT" || dj_end cap.log
HELD=()
for k in $(seq 1 $CAPCONN); do
	dj_spawn "cap$k.out" "cap$k.err" bash -c "sleep 60 | openssl s_client -quiet -connect \
		127.0.0.1:$PORT -servername js.test -CAfile root.crt -cert ns1.crt -key ns1.key"
	HELD+=("$DJ_PID")
done
capped() { [ "$(grep -c 'holds 2 connections already (max_connections_per_peer)' cap.log)" -ge \
	$((CAPCONN - 2)) ]; }
check "cap: $((CAPCONN - 2)) of $CAPCONN connections of one identity refused" dj_wait_for 20 capped
eq "$(dj_metric "$MPORT" 'danejoin_connections_closed_total{reason="peer_cap"}')" $((CAPCONN - 2)) \
	"cap: peer_cap closings, summed over the loops"
eq "$(dj_metric "$MPORT" danejoin_open_connections)" 2 "cap: open connections over every loop"
for p in "${HELD[@]}"; do dj_stop "$p" KILL; done
dj_jsd_stop TERM
check "cap: SIGTERM exits 0" test $? -eq 0

# ---- threads = 1 -------------------------------------------------------------------------------
conf 1 >one.conf
check "threads = 1: danejoind listens" dj_jsd_start one.conf one.log "$PORT" || dj_end one.log
eq "$(cat /proc/"$DJ_JSD_PID"/task/*/comm | grep -c '^loop ')" 0 "threads = 1: no 'loop N' thread"
eq "$(dj_metric "$MPORT" danejoin_loops)" 1 "threads = 1: danejoin_loops"
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000110 --state st.0000000000000110 \
	>/dev/null 2>one.err
check "threads = 1: a join succeeds" test $? -eq 0
dj_jsd_stop TERM
check "threads = 1: SIGTERM exits 0" test $? -eq 0
lacks one.log 'event loops'

dj_end jsd.log one.log term.err
