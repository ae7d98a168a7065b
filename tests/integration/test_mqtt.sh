#!/bin/bash
# test_mqtt.sh - danejoind's MQTT events end to end, against a real mosquitto on a TLS loopback
# listener (client certificates required; throwaway private PKI).
#
# Covers: join (accepted, refused), rejoin and AppSKey events decoded by danejoin-client
# subscribe (protobuf-c) and by mosquitto_sub (raw bytes, parsed here by an independent
# protobuf wire-format reader; JSON mode read with jq); the AppSKey event's envelope equal to
# the AppSKeyAns one (RFC 3394 under the AS's KEK); the broker stopped during a join load and
# restarted; danejoind killed with SIGKILL during a join load and restarted; a broker with a
# certificate from another root refused and logged, its events kept in the outbox; bad [mqtt]
# configurations; the dj_events_* metrics; verify = dane against knotd (DNSSEC-signed TLSA
# _<port>._tcp.<broker>): no TLSA (NXDOMAIN) and a TLSA for another key refused and logged with
# the events kept in the outbox, the broker's own 3 1 1 record accepted and the events delivered. The invariant checked at the end: every join or
# rejoin accepted in the store (its audit entry, written in the same transaction as its outbox
# row) arrived as an event, counted by distinct event id.
#
# Usage: bash test_mqtt.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin mqtt "$@"
dj_need "$JSD" "$CLI" "$DEV"
command -v mosquitto >/dev/null || { echo "SKIP: mosquitto is not installed"; exit 0; }
wait_for() { dj_wait_for "$@"; }

# ---- PKI -------------------------------------------------------------------------------------
dj_mkroot root && dj_mkroot rogue || exit 1
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test as1:DNS:as1.test \
	broker:DNS:localhost,IP:127.0.0.1 jsmq:DNS:jsmq.test sub:DNS:sub.test sub2:DNS:sub2.test
dj_mkcert evil DNS:localhost,IP:127.0.0.1 rogue
dj_kek ns1 as1

# ---- broker, configuration, devices ------------------------------------------------------------
PORT=$(dj_free_port)
MPORT=$(dj_free_port)
MQ=$(dj_free_port)
check "mosquitto starts with a TLS listener" dj_mosq_start "$T/mq" "$MQ" root broker broker
mqtt_conf() { # FORMAT
	dj_conf_mqtt "$MQ" js1 verify=cafile payload_format="$1" keepalive=5 reconnect_min_ms=100 \
		reconnect_max_ms=800
}
{
	dj_conf_pkix "$PORT" "$MPORT"
	dj_conf_section join session_lifetime=3600
	dj_conf_peer as1 as1.test as as-1 join_euis=70b3d57ed0000000/48 kek_label=as1-kek \
		kek_file=as1.kek
} >base.conf
{ cat base.conf; mqtt_conf protobuf; } >dj.conf
{ cat base.conf; mqtt_conf json; } >json.conf
(umask 077; dj_devices_csv 16 1.1 >devices.csv; dj_devices_csv 1 1.1 | sed 's/^0000000000001001/00000000000ee001/' >ghost.csv)
check "store initialised and devices imported" dj_store_init dj.conf devices.csv

# ---- bad configurations ----------------------------------------------------------------------
badconf() { # EXPECTED-TEXT SED-EXPR
	sed "$2" dj.conf >bad.conf
	"$JSD" --config bad.conf --check-config >bad.out 2>&1
	local rc=$?
	[ $rc -eq 2 ] && grep -q "$1" bad.out || { echo "  exit $rc: $(cat bad.out)"; return 1; }
}
check "verify = dane with a cafile: refused (no fallback to a CA file)" badconf "\[mqtt\] cafile: not used with verify = dane" 's/^verify = cafile/verify = dane/'
check "verify = dane without a [dane] trust anchor: refused" badconf "\[mqtt\] verify = dane needs a DNSSEC trust anchor" 's/^verify = cafile/verify = dane/; /^cafile = root.crt/d'
check "verify = tofu: refused naming the key" badconf "\[mqtt\] verify: expected cafile or dane" 's/^verify = cafile/verify = tofu/'
check "payload_format = xml: refused naming the key" badconf "\[mqtt\] payload_format: expected protobuf or json" 's/^payload_format = .*/payload_format = xml/'
check "qos = 2: refused naming the key" badconf "\[mqtt\] qos: expected an integer from 1 to 1" '/^keepalive/a qos = 2'
check "[mqtt] without host: refused" badconf "\[mqtt\] host: required" '/^host = /d'
check "cert without key: refused" badconf "\[mqtt\] cert and key" '/^key = jsmq/d'
check "reconnect_min_ms above max: refused" badconf "\[mqtt\] reconnect_min_ms" 's/^reconnect_min_ms = .*/reconnect_min_ms = 5000/'
sed 's/^cafile = root.crt/cafile = nowhere.crt/' dj.conf >bad.conf
"$JSD" --config bad.conf -v >bad.out 2>&1
check "a missing cafile stops danejoind at start with exit 2" test $? -eq 2
check "... naming [mqtt] cafile" grep -q "\[mqtt\] cafile" bad.out

# ---- subscribers -----------------------------------------------------------------------------
SUB=(--url "mqtts://127.0.0.1:$MQ" --ca root.crt --cert sub.crt --key sub.key)
dj_spawn sub.out sub.err "$CLI" subscribe "${SUB[@]}" --client-id sub1 --topic 'danejoin/#' -v
SPID=$DJ_PID
check "danejoin-client subscribe connects (persistent session sub1)" wait_for 10 grep -q "as sub1" mq/mosquitto.log
MSUB=(mosquitto_sub -h 127.0.0.1 -p "$MQ" --cafile root.crt --cert sub2.crt --key sub2.key -q 1)
dj_spawn raw.hex raw.err "${MSUB[@]}" -i raw1 -t 'danejoin/js1/join/#' -C 1 -F '%x'
RPID=$DJ_PID
check "mosquitto_sub connects" wait_for 10 grep -q "as raw1" mq/mosquitto.log

check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"
check "... and connects to the broker" wait_for 10 grep -q "mqtt: connected to 127.0.0.1:$MQ" jsd.log
NS=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt --key ns1.key
	--sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek --kek-file ns1.kek)
metric() { dj_metric "$MPORT" "$1"; }

# ---- events of one join, a refusal, a rejoin, an AppSKey ---------------------------------------
D1=0000000000001001
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui $D1 >j1.json 2>j1.err
check "1.1 join accepted" test $? -eq 0
SKID=$(sed -n 's/.*"SessionKeyID":"\([0-9a-fA-F]*\)".*/\1/p' j1.json)
"$CLI" join "${NS[@]}" --sim ghost.csv --dev-eui 00000000000EE001 >/dev/null 2>&1
check "unknown device refused (exit 4)" test $? -eq 4
"$CLI" rejoin "${NS[@]}" --sim devices.csv --dev-eui $D1 --type 1 >rj.json 2>/dev/null
check "rejoin type 1 accepted" test $? -eq 0
ev() { jq -c "select($1)" sub.out 2>/dev/null | head -1; }
check "join event arrives" wait_for 10 bash -c "jq -c 'select(.type==\"join\" and .accepted)' sub.out 2>/dev/null | grep -q ."
J=$(ev '.type=="join" and .accepted')
check "... topic danejoin/js1/join/<DevEUI>" test "$(jq -r .topic <<<"$J")" = "danejoin/js1/join/$D1"
check "... fields: DevEUI, JoinEUI, NetID, MAC version, result, time" \
	test "$(jq -r '[.dev_eui,.join_eui,.net_id,.mac_version,.result,.peer,(.time_ms>0)]|join(" ")' <<<"$J")" = \
	"$D1 70B3D57ED0000001 000013 1.1 Success ns1 true"
check "... DevAddr and SessionKeyID" test "$(jq -r '.session_key_id' <<<"$J")" = "${SKID^^}"
check "... stable id <instance>-<row>" bash -c "jq -r .id <<<'$J' | grep -Eq '^[0-9a-f]{16}-[0-9]+$'"
check "refused join event arrives" wait_for 10 bash -c "jq -c 'select(.type==\"join\" and (.accepted|not))' sub.out 2>/dev/null | grep -q ."
R=$(ev '.type=="join" and (.accepted|not)')
check "... UnknownDevEUI with a reason" test "$(jq -r '[.result,.reason]|join("/")' <<<"$R")" = "UnknownDevEUI/unknown DevEUI"
check "rejoin event arrives with its type" wait_for 10 bash -c "jq -c 'select(.type==\"rejoin\" and .rejoin_type==1 and .accepted)' sub.out 2>/dev/null | grep -q ."
check "AppSKey event on the AS's topic" wait_for 10 bash -c "jq -c 'select(.topic==\"danejoin/js1/as/as1/appskey/$D1\")' sub.out 2>/dev/null | grep -q ."
A=$(ev ".type==\"appskey\" and .session_key_id==\"${SKID^^}\"")
check "... wrapped under as1's KEK (24-byte RFC 3394 wrap), no plain key" \
	test "$(jq -r '[.app_s_key.kek_label,(.app_s_key.aes_key|length)]|join(" ")' <<<"$A")" = "as1-kek 48"
AS1=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert as1.crt --key as1.key
	--sender-id as-1 --receiver-id 70b3d57ed0000001 --kek-label as1-kek --kek-file as1.kek)
"$CLI" appskey "${AS1[@]}" --dev-eui $D1 --session-key-id "$SKID" >ak.json 2>/dev/null
WRAP=$(sed -n 's/.*"AppSKey":{[^}]*"AESKey":"\([0-9a-fA-F]*\)".*/\1/p' ak.json)
check "... the same wrapped AppSKey as the AppSKeyAns" test "${WRAP^^}" = "$(jq -r .app_s_key.aes_key <<<"$A")"
check "... audited as an appskey-release via mqtt, naming the session and the KEK" bash -c "sqlite3 js.db \"select count(*) from audit where event='appskey-release' and detail='session_key_id=${SKID,,} kek=as1-kek via=mqtt'\" | grep -qx '[1-9][0-9]*'"
check "no key in the daemon's log" bash -c "! grep -qi \"$(jq -r .app_s_key.aes_key <<<"$A")\" jsd.log"

# raw bytes from mosquitto_sub, read by an independent protobuf wire-format parser
dj_reap $RPID
cat >wire.py <<'PY'
import sys
b = bytes.fromhex(open(sys.argv[1]).read().strip())
def fields(b):
    i, out = 0, {}
    while i < len(b):
        k = 0; s = 0
        while True:
            c = b[i]; i += 1; k |= (c & 0x7f) << s; s += 7
            if c < 0x80: break
        f, t = k >> 3, k & 7
        if t == 0:
            v = 0; s = 0
            while True:
                c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
                if c < 0x80: break
        elif t == 2:
            n = 0; s = 0
            while True:
                c = b[i]; i += 1; n |= (c & 0x7f) << s; s += 7
                if c < 0x80: break
            v = b[i:i + n]; i += n
        else:
            raise SystemExit("unexpected wire type %d" % t)
        out[f] = v
    return out
e = fields(b)
j = fields(e[10])
print(e[1].decode(), j[1].hex().upper(), j[5].decode(), j.get(6, 0))
PY
check "mosquitto_sub's raw payload is a protobuf Event: id, join.dev_eui, mac_version, accepted" \
	bash -c "python3 wire.py raw.hex | grep -Eq '^[0-9a-f]{16}-[0-9]+ $D1 1.1 1$'"

# ---- the broker stops during a join load, and comes back -------------------------------------
# open loop at 300/s for 10 s: the load outlasts the broker's stop and the next 100 joins however
# fast danejoind answers (a closed loop of 600 could end before the broker was down)
dj_spawn bench1.out bench1.out "$CLI" bench "${NS[@]}" --sim devices.csv --devices 16 \
	--connections 4 --requests 3000 --rate 300
BPID=$DJ_PID
acc() { metric 'danejoin_joins_total{verdict="accepted"}'; }
check "joins flow" wait_for 20 bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '/verdict=\"accepted\"/ {print \$2}')\" -ge 100 ]"
dj_mosq_stop TERM
A0=$(acc)
check "joins go on while the broker is down" wait_for 20 bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '/verdict=\"accepted\"/ {print \$2}')\" -ge $((A0 + 100)) ]"
check "... the outbox holds their events" bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '\$1==\"dj_events_outbox\" {print \$2}')\" -gt 0 ]"
check "... the lost connection is logged" grep -q "mqtt: connection to 127.0.0.1:$MQ lost" jsd.log
check "broker restarts" dj_mosq_start "$T/mq" "$MQ" root broker broker
dj_reap $BPID
check "bench: every join answered Success" grep -q "success 3000 " bench1.out
check "publisher reconnects" wait_for 20 bash -c "[ \$(grep -c 'mqtt: connected to' jsd.log) -ge 2 ]"
check "outbox drains to 0" wait_for 30 bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '\$1==\"dj_events_outbox\" {print \$2}')\" = 0 ]"
PUB=$(metric dj_events_published_total)
check "dj_events_published_total counts them ($PUB)" test "${PUB:-0}" -ge 3003

# ---- SIGKILL during a join load, restart ------------------------------------------------------
A1=$(acc)
dj_spawn bench2.out bench2.out "$CLI" bench "${NS[@]}" --sim devices.csv --devices 16 \
	--connections 4 --requests 3000
BPID=$DJ_PID
check "joins flow again" wait_for 20 bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '/verdict=\"accepted\"/ {print \$2}')\" -ge $((A1 + 300)) ]"
dj_jsd_stop KILL
dj_reap $BPID
check "danejoind restarts after SIGKILL" dj_jsd_start dj.conf jsd2.log "$PORT"
check "... and reconnects" wait_for 10 grep -q "mqtt: connected to" jsd2.log
check "... its outbox drains" wait_for 30 bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '\$1==\"dj_events_outbox\" {print \$2}')\" = 0 ]"

# ---- a broker with a certificate from another root --------------------------------------------
dj_mosq_stop TERM
check "an impostor broker starts (rogue root)" dj_mosq_start "$T/evil" "$MQ" root evil evil
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000001002 >/dev/null 2>&1
check "joins still answered" test $? -eq 0
check "the impostor is refused, logged with the TLS reason" wait_for 10 grep -q "mqtt: cannot connect to 127.0.0.1:$MQ: .*certificate verify failed" jsd2.log
check "... the event stays in the outbox" bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '\$1==\"dj_events_outbox\" {print \$2}')\" -ge 1 ]"
check "... counted as a connect failure" bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '\$1==\"dj_events_broker_connect_failures_total\" {print \$2}')\" -ge 1 ]"
dj_mosq_stop TERM
check "the real broker is back" dj_mosq_start "$T/mq" "$MQ" root broker broker
check "... the kept event is published" wait_for 20 bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '\$1==\"dj_events_outbox\" {print \$2}')\" = 0 ]"

# ---- the invariant: every accepted join in the store arrived, by distinct id ------------------
COMMITTED=$(sqlite3 js.db "select count(*) from audit where event in ('join-accept','rejoin-accept')")
distinct() { jq -r 'select((.type=="join" or .type=="rejoin") and .accepted) | .id' sub.out | sort -u | wc -l; }
check "every committed join/rejoin arrived ($COMMITTED in the store)" wait_for 30 bash -c "[ \$(jq -r 'select((.type==\"join\" or .type==\"rejoin\") and .accepted) | .id' sub.out | sort -u | wc -l) -eq $COMMITTED ]"
echo "committed joins/rejoins $COMMITTED, distinct accepted events $(distinct), lines $(wc -l <sub.out)"
check "every accepted event is one in the store (session ids match)" bash -c "
	jq -r 'select(.type==\"join\" and .accepted) | .session_key_id' sub.out | sort -u >ev.sid
	[ \$(wc -l <ev.sid) -ge 1 ] && [ \$(sqlite3 js.db \"select count(*) from audit where event='join-accept'\") -eq \$(wc -l <ev.sid) ]"
dj_stop "$SPID"

# ---- JSON payloads, read with mosquitto_sub ---------------------------------------------------
dj_jsd_stop
check "SIGTERM: clean exit" test $? -eq 0
dj_spawn json.out json.err "${MSUB[@]}" -i raw2 -t 'danejoin/js1/join/#' -C 1
RPID=$DJ_PID
check "mosquitto_sub connects" wait_for 10 grep -q "as raw2" mq/mosquitto.log
check "danejoind (payload_format = json) listens" dj_jsd_start json.conf jsd3.log "$PORT"
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000001003 >/dev/null 2>&1
check "join accepted" test $? -eq 0
check "a JSON event arrives" wait_for 10 bash -c "[ -s json.out ]"
check "... readable with jq: id, type, DevEUI, accepted" \
	bash -c "jq -e 'select((.id|test(\"^[0-9a-f]{16}-[0-9]+$\")) and .type==\"join\" and .dev_eui==\"0000000000001003\" and .accepted)' json.out >/dev/null"
dj_jsd_stop

# ---- verify = dane: the broker authenticated by its DNSSEC-signed TLSA records --------------
outbox() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "dj_events_outbox" { print $2 }'; }
# knot_up - knotd on a fresh port (a random port can collide with a client's ephemeral one)
knot_up() {
	for _ in 1 2 3; do
		DJ_KNOT_PORT=$(dj_free_port)
		rm -rf "$T/knot"
		dj_knot_start "$T/knot" "mq.test" && return 0
		dj_knot_stop
	done
	return 1
}
if ! command -v knotd >/dev/null || ! command -v keymgr >/dev/null; then
	echo "SKIP: verify = dane (knotd or keymgr is not installed)"
elif ! knot_up; then
	check "knotd serves the signed zone mq.test" false
else
	check "knotd serves the signed zone mq.test" test -s "$DJ_KNOT_TA"
	TLSA_NAME=_$MQ._tcp.broker.mq.test
	{ cat base.conf
	  mqtt_conf protobuf | sed -e 's/^host = .*/host = broker.mq.test\naddress = 127.0.0.1/' \
		-e 's/^verify = cafile/verify = dane/' -e '/^cafile = /d'
	  printf '[dane]\ntrust_anchor_file = %s\nstubs = mq.test@127.0.0.1@%s\nttl_cap = 1\nneg_ttl = 1\n' \
		"$DJ_KNOT_TA" "$DJ_KNOT_PORT"; } >dane.conf
	check "verify = dane: the configuration is accepted" "$JSD" --config dane.conf --check-config
	dj_spawn dane.out dane.err "${MSUB[@]}" -i raw3 -t 'danejoin/js1/join/0000000000001004' -C 1
	RPID=$DJ_PID
	check "mosquitto_sub connects" wait_for 10 grep -q "as raw3" mq/mosquitto.log
	# no TLSA at all: a secure NXDOMAIN authenticates nobody
	check "danejoind (verify = dane) listens" dj_jsd_start dane.conf jsd4.log "$PORT"
	"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000001004 >/dev/null 2>&1
	check "join accepted" test $? -eq 0
	check "no TLSA (NXDOMAIN): refused and logged" \
		wait_for 10 grep -q "mqtt: cannot connect to broker.mq.test:$MQ: TLSA $TLSA_NAME: nxdomain: the name does not exist" jsd4.log
	check "... the event stays in the outbox" test "$(outbox)" -ge 1
	check "... nothing was published" test ! -s dane.out
	# a TLSA record for another key (the impostor's): the real broker does not match it
	dj_knot_update mq.test <<EOF
update add $TLSA_NAME. 1 IN TLSA 3 1 1 $(dj_spki256 evil.crt)
EOF
	check "TLSA 3 1 1 of another key published" test $? -eq 0
	check "a TLSA for another key: refused and logged" wait_for 15 grep -q \
		"mqtt: cannot connect to broker.mq.test:$MQ: .*DANE: the broker's certificate does not match TLSA $TLSA_NAME (1 record)" jsd4.log
	check "... never connected" bash -c "! grep -q 'mqtt: connected to' jsd4.log"
	check "... the event stays in the outbox" test "$(outbox)" -ge 1
	check "... still nothing published" test ! -s dane.out
	# the broker's own key
	dj_knot_update mq.test <<EOF
update delete $TLSA_NAME. TLSA
update add $TLSA_NAME. 1 IN TLSA 3 1 1 $(dj_spki256 broker.crt)
EOF
	check "the broker's TLSA 3 1 1 published" test $? -eq 0
	check "the broker's TLSA: connected, verified by DANE" wait_for 15 grep -q \
		"mqtt: connected to broker.mq.test:$MQ (TLS, broker verified by DANE, TLSA $TLSA_NAME)" jsd4.log
	check "... the kept event arrives" wait_for 10 test -s dane.out
	check "... the outbox drains" wait_for 20 bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '\$1==\"dj_events_outbox\" {print \$2}')\" = 0 ]"
	P0=$(metric dj_events_published_total)
	"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000001005 >/dev/null 2>&1
	check "a new join's event is published" wait_for 10 bash -c "[ \"\$(curl -s http://127.0.0.1:$MPORT/metrics | awk '\$1==\"dj_events_published_total\" {print \$2}')\" -gt ${P0:-0} ]"
	dj_reap "$RPID"
	dj_jsd_stop
	check "SIGTERM: clean exit" test $? -eq 0
fi

dj_end jsd.log jsd2.log
