#!/bin/bash
# test_mqtt_ownership.sh - the ownership-transfer event end to end: danejoind runs with [mqtt]
# against a real mosquitto (TLS, client certificates); danejoin-devices, another process,
# transfers a device by auth code against a real knotd (DNSSEC, TSIG). The transfer's last step
# writes one outbox row in its own transaction; danejoind's publisher finds it by polling the
# outbox and publishes it on PREFIX/ownership/<DevEUI>; danejoin-client subscribe prints it with
# its fields (zones, serial, JoinEUI, NetIDs, AS-IDs).
#
# Usage: bash test_mqtt_ownership.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin mqttown "$@"
dj_need "$JSD" "$CLI" "$DEV"
command -v mosquitto >/dev/null || { echo "SKIP: mosquitto is not installed"; exit 0; }

# ---- DNS: the manufacturer, operators A and B -------------------------------------------------
dj_knot_start "$T/knot" "maker.test opa.test opb.test" "" || { echo "FAIL: knotd"; exit 1; }
NSADDR="127.0.0.1@$DJ_KNOT_PORT"
DNS=(--ns "$NSADDR" --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA" --ttl 4)
dj_genkey maker opa opb
dj_owner_publish 300 maker.test opa.test opb.test || { echo "FAIL: records"; exit 1; }

# ---- PKI, broker, configuration ----------------------------------------------------------------
dj_mkroot root || exit 1
dj_mkcerts root js:DNS:js.test broker:DNS:localhost,IP:127.0.0.1 jsmq:DNS:jsmq.test \
	sub:DNS:sub.test || exit 1
PORT=$(dj_free_port)
MQ=$(dj_free_port)
check "mosquitto starts with a TLS listener" dj_mosq_start "$T/mq" "$MQ" root broker broker
{
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:$PORT auth=pkix cert_file=js.crt key_file=js.key \
		client_ca_file=root.crt
	dj_conf_section js join_euis=70b3d57ed0000000/48
	dj_conf_mqtt "$MQ" js1 verify=cafile payload_format=protobuf keepalive=5 reconnect_min_ms=100 \
		reconnect_max_ms=800
} >dj.conf
(umask 077; dj_devices_csv 2 1.0.4 >devices.csv)
D1=0000000000001001
check "store initialised" dj_store_init dj.conf
"$DEV" --config dj.conf enroll devices.csv --zone opa.test --from-zone maker.test --key maker.key \
	--netids 000013 --as-ids as.opa.test "${DNS[@]}" >enroll.out 2>&1
check "2 devices enrolled by maker.test to opa.test" grep -q "enrolled 2 devices" enroll.out

SUB=(--url "mqtts://127.0.0.1:$MQ" --ca root.crt --cert sub.crt --key sub.key)
dj_spawn sub.out sub.err "$CLI" subscribe "${SUB[@]}" --client-id sub1 \
	--topic 'danejoin/js1/ownership/#' -v
check "danejoin-client subscribe connects" dj_wait_log mq/mosquitto.log "as sub1"
check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"
check "... and connects to the broker" dj_wait_log jsd.log "mqtt: connected to 127.0.0.1:$MQ"

# ---- the transfer, by danejoin-devices while danejoind runs ------------------------------------
dj_authcode_transfer "$D1"
check "the ownership event arrives" dj_wait_for 10 \
	bash -c "jq -c 'select(.type==\"ownership_transfer\")' sub.out 2>/dev/null | grep -q ."
E=$(jq -c 'select(.type=="ownership_transfer")' sub.out 2>/dev/null | head -1)
check "... topic danejoin/js1/ownership/<DevEUI>" \
	test "$(jq -r .topic <<<"$E")" = "danejoin/js1/ownership/$D1"
check "... dev_eui" test "$(jq -r .dev_eui <<<"$E")" = "$D1"
check "... from_zone opa.test., to_zone opb.test." \
	test "$(jq -r '.from_zone + " " + .to_zone' <<<"$E")" = "opa.test. opb.test."
check "... serial 2 (the owner row's)" test "$(jq -r .serial <<<"$E")" = \
	"$(sqlite3 js.db "SELECT serial FROM owners WHERE hex(dev_eui)='$D1'")"
check "... net_ids [00001A], as_ids [as.opb.test]" \
	test "$(jq -c '[.net_ids, .as_ids]' <<<"$E")" = '[["00001A"],["as.opb.test"]]'
check "... join_eui, an id and a time" \
	test "$(jq -r '(.join_eui|length) > 0 and (.id|test("^[0-9a-f]{16}-[0-9]+$")) and .time_ms > 0' <<<"$E")" = true
check "... exactly one" test "$(jq -c 'select(.type=="ownership_transfer")' sub.out | wc -l)" -eq 1
check "the outbox is emptied after the PUBACK" \
	dj_wait_for 10 test "$(sqlite3 js.db 'SELECT count(*) FROM outbox')" -eq 0
check "no ownership row for the other device" \
	test "$(jq -c 'select(.dev_eui=="0000000000001002")' sub.out | wc -l)" -eq 0

dj_end jsd.log
