#!/bin/bash
# test_danejoind.sh - danejoind end to end over real mutual TLS 1.3 on loopback.
#
# A private root, a server certificate and client certificates are made at run time with the
# openssl CLI. danejoind runs as a real process; danejoin-client (the simulator-driven NS/AS
# side), curl and openssl s_client talk to it. Covers: JoinReq 1.0.3 and 1.1 with the device's
# keys equal to the unwrapped JoinAns keys, RejoinReq type 1, AppSKeyReq by the right and a
# wrong AS, HomeNSReq, malformed/oversized/bad-hex bodies with no state change, handshakes
# without a certificate or from an unknown root, a SenderID outside the identity's rights,
# asynchronous answers (a peer with async_url: empty 200, the answer POSTed to danejoin-client
# listen, retried then dropped when nobody listens), SIGHUP under load, SIGTERM draining, and
# the metrics endpoint.
#
# Usage: bash test_danejoind.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin jsd "$@"
dj_need "$JSD" "$CLI" "$DEV"

# ---- PKI (private root) --------------------------------------------------------------------
dj_mkroot root && dj_mkroot rogue
# ns2 receives async answers on 127.0.0.1: one DNS SAN (its identity for srv) plus the IP SAN
# that the join server's dc_client checks for an IP host
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test as1:DNS:as1.test as2:DNS:as2.test \
	ns2:DNS:ns2.test,IP:127.0.0.1
dj_mkcert evil DNS:ns1.test rogue
dj_kek ns1 as2 ns2
openssl rand -hex 32 >as1.kek
chmod 600 ./*.key ./*.kek

# ---- configuration, store, devices -----------------------------------------------------------
PORT=$(dj_free_port)
MPORT=$(dj_free_port)
PORT2=$(dj_free_port)
{
	dj_conf_pkix "$PORT" "$MPORT" max_body=4096
	dj_conf_section join session_lifetime=3600
	dj_conf_section js home_net_id=000013 home_ns_id=ns1.test
	dj_conf_peer as1 as1.test as as-1 join_euis=70b3d57ed0000000/48 kek_label=as1-kek \
		kek_file=as1.kek
	dj_conf_peer as2 as2.test as as-2 join_euis=70b3d57ed0010000/48 kek_label=as2-kek \
		kek_file=as2.kek rate=2
	dj_conf_peer ns2 ns2.test ns 000014 kek_label=ns2-kek kek_file=ns2.kek \
		async_url=https://127.0.0.1:$PORT2/
} >dj.conf
key() { openssl rand -hex 16; }
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000103,70b3d57ed0000001,1.0.3,$(key),"
	echo "0000000000000110,70b3d57ed0000001,1.1,$(key),$(key)"
	echo "0000000000000210,70b3d57ed0000001,1.1,$(key),$(key)"
} >devices.csv
chmod 600 devices.csv
check "store initialised and devices imported" dj_store_init dj.conf devices.csv

check "--check-config accepts the configuration" dj_check_config 0 dj.conf
sed 's/^role = as$/role = gateway/' dj.conf >bad.conf
check "--check-config refuses a bad role with exit 2" dj_check_config 2 bad.conf
check "... naming the key" grep -q "role: expected ns or as" check.out

check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"

NS=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt --key ns1.key
	--sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek --kek-file ns1.kek)

# ---- joins ---------------------------------------------------------------------------------
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000103 >j103.json 2>j103.err
check "1.0.3 JoinReq accepted, device accepts, keys match (exit $?)" test $? -eq 0
check "... keys compared" grep -q "session keys match" j103.err
check "... 1.0 session: NwkSKey envelope under ns1's KEK" grep -q '"NwkSKey":{"KEKLabel":"ns1-kek"' j103.json
check "... no AppSKey for the network server" bash -c "! grep -q AppSKey j103.json"
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000110 >j110.json 2>j110.err
check "1.1 JoinReq accepted, keys match" test $? -eq 0
check "... 1.1 envelopes" grep -q '"SNwkSIntKey":{"KEKLabel":"ns1-kek"' j110.json
SKID=$(sed -n 's/.*"SessionKeyID":"\([0-9a-fA-F]*\)".*/\1/p' j110.json)
check "... SessionKeyID present" test -n "$SKID"
"$CLI" join "${NS[@]}" --protocol 1.0 --sim devices.csv --dev-eui 0000000000000210 >j210.json 2>&1
check "ProtocolVersion 1.0 with SenderNSID is refused as malformed" test $? -ne 0
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000110 --count 2 >/dev/null 2>&1
check "two more joins on one keep-alive connection" test $? -eq 0
"$CLI" rejoin "${NS[@]}" --sim devices.csv --dev-eui 0000000000000110 --type 1 >rj.json 2>rj.err
check "RejoinReq type 1 accepted, keys match" test $? -eq 0
check "... the RejoinAns carries Lifetime ([join] session_lifetime)" grep -q '"Lifetime":3600' rj.json


"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000210 >a.json 2>/dev/null
check "1.1 device 210 joins" test $? -eq 0

# ---- AppSKeyReq ----------------------------------------------------------------------------
AS1=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert as1.crt --key as1.key
	--sender-id as-1 --receiver-id 70b3d57ed0000001 --kek-label as1-kek --kek-file as1.kek)
AS2=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert as2.crt --key as2.key
	--sender-id as-2 --receiver-id 70b3d57ed0000001 --kek-label as2-kek --kek-file as2.kek)
"$CLI" appskey "${AS1[@]}" --dev-eui 0000000000000110 --session-key-id "$SKID" >ak1.json 2>ak1.err
check "AppSKeyReq by the right AS succeeds" test $? -eq 0
check "... AppSKey wrapped under as1's KEK" grep -q '"AppSKey":{"KEKLabel":"as1-kek"' ak1.json
"$CLI" appskey "${AS2[@]}" --dev-eui 0000000000000110 --session-key-id "$SKID" >ak2.json 2>ak2.err
check "AppSKeyReq by another AS is refused (exit 4)" test $? -eq 4
check "... as UnknownDevEUI, without a key" bash -c "grep -q UnknownDevEUI ak2.json && ! grep -q AESKey ak2.json"
# as2 may send 2 requests per second: a burst of 5 gets HTTP 429 for the excess. One curl sends
# the 5 on one keep-alive connection, so a loaded machine's handshakes cannot refill the bucket.
AKREQ='{"ProtocolVersion":"1.1","SenderID":"as-2","ReceiverID":"70b3d57ed0000001","TransactionID":1,"MessageType":"AppSKeyReq","DevEUI":"0000000000000110","SessionKeyID":"00"}'
R429=$(curl -s -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
	-w '%{http_code}\n' --cacert root.crt --cert as2.crt --key as2.key \
	--resolve js.test:$PORT:127.0.0.1 -X POST --data "$AKREQ" \
	"https://js.test:$PORT/" "https://js.test:$PORT/" "https://js.test:$PORT/" \
	"https://js.test:$PORT/" "https://js.test:$PORT/" | grep -c '^429$')
check "the per-peer rate limit answers HTTP 429 beyond the rate ($R429 of 5)" test $R429 -ge 2
"$CLI" appskey "${AS1[@]}" --sender-id 000013 --dev-eui 0000000000000110 --session-key-id "$SKID" >ak3.json 2>&1
check "AppSKeyReq with a SenderID outside as1's rights -> UnknownSender" grep -q UnknownSender ak3.json

# ---- HomeNSReq, wrong sender, wrong receiver ----------------------------------------------
"$CLI" homens "${NS[@]}" --receiver-id 70b3d57ed0000001 --dev-eui 0000000000000110 >h.json 2>&1
check "HomeNSReq answered with HNetID and HNSID" grep -q '"HNetID":"000013".*"HNSID":"ns1.test"\|"HNSID":"ns1.test".*"HNetID":"000013"' h.json
"$CLI" homens "${NS[@]}" --sender-id 000099 --receiver-id 70b3d57ed0000001 --dev-eui 0000000000000110 >h2.json 2>&1
check "a SenderID outside ns1's rights gets UnknownSender" grep -q UnknownSender h2.json
"$CLI" homens "${NS[@]}" --receiver-id 1111111111111111 --dev-eui 0000000000000110 >h3.json 2>&1
check "a ReceiverID not served gets UnknownReceiver" grep -q UnknownReceiver h3.json

# ---- malformed input: answered, nothing changes --------------------------------------------
"$DEV" --config dj.conf show 0000000000000110 >state-before 2>&1
CURL=(curl -s --cacert root.crt --cert ns1.crt --key ns1.key --resolve js.test:$PORT:127.0.0.1)
"${CURL[@]}" -o m1 -w '%{http_code}' -X POST --data '{"ProtocolVersion":"1.1",' "https://js.test:$PORT/" >code1
check "broken JSON gets HTTP 400" grep -q 400 code1
"${CURL[@]}" -o m2 -w '%{http_code}' -X POST --data '{"ProtocolVersion":"1.1","SenderID":"000013","ReceiverID":"70b3d57ed0000001","TransactionID":7,"MessageType":"JoinReq","SenderNSID":"ns1.test","MACVersion":"1.1","PHYPayload":"00zz","DevEUI":"0000000000000110","DevAddr":"26000001","DLSettings":"80","RxDelay":1}' "https://js.test:$PORT/" >code2
check "bad hex gets a JoinAns with MalformedRequest" grep -q '"MalformedRequest"' m2
check "... echoing the TransactionID" grep -q '"TransactionID":7' m2
"${CURL[@]}" -o m3 -w '%{http_code}' -X POST --data "$(head -c 5000 /dev/zero | tr '\0' 'x')" "https://js.test:$PORT/" >code3
check "an oversized body gets HTTP 413" grep -q 413 code3
JR='"ProtocolVersion":"1.1","SenderID":"000013","ReceiverID":"70b3d57ed0000001","MessageType":"JoinReq","SenderNSID":"ns1.test","MACVersion":"1.1","DevEUI":"0000000000000110","DevAddr":"26000001","DLSettings":"80","RxDelay":1'
"${CURL[@]}" -o m4 -X POST --data "{$JR,\"TransactionID\":8}" "https://js.test:$PORT/"
check "a missing field (PHYPayload) gets MalformedRequest naming it" grep -q '"MalformedRequest","Description":"[^"]*PHYPayload' m4
"${CURL[@]}" -o m5 -X POST --data "{$JR,\"TransactionID\":\"9\",\"PHYPayload\":\"00\"}" "https://js.test:$PORT/"
check "a mistyped field (TransactionID as a string) gets MalformedRequest naming it" grep -q '"MalformedRequest","Description":"[^"]*TransactionID' m5
"${CURL[@]}" -o m6 -X POST --data "{$JR,\"TransactionID\":10,\"PHYPayload\":\"0001\"}" "https://js.test:$PORT/"
check "a PHYPayload of the wrong size gets FrameSizeError" grep -q '"FrameSizeError"' m6
"$DEV" --config dj.conf show 0000000000000110 >state-after 2>&1
check "malformed requests changed nothing" cmp -s state-before state-after

# ---- handshakes that must fail -------------------------------------------------------------
curl -s --cacert root.crt --resolve js.test:$PORT:127.0.0.1 -X POST --data '{}' "https://js.test:$PORT/" >/dev/null 2>&1
check "no client certificate: refused" test $? -ne 0
curl -s --cacert root.crt --cert evil.crt --key evil.key --resolve js.test:$PORT:127.0.0.1 -X POST --data '{}' "https://js.test:$PORT/" >/dev/null 2>&1
check "a certificate from an unknown root: refused" test $? -ne 0
echo | openssl s_client -connect 127.0.0.1:$PORT -verify_return_error -CAfile root.crt -verify_hostname js.test \
	-cert ns1.crt -key ns1.key -tls1_3 >sc.out 2>&1
check "openssl s_client verifies our server (TLS 1.3)" grep -q "Verify return code: 0" sc.out
echo | openssl s_client -connect 127.0.0.1:$PORT -CAfile root.crt -cert ns1.crt -key ns1.key -tls1_2 >sc2.out 2>&1
check "TLS 1.2 is refused" bash -c "! grep -q 'Verify return code: 0 (ok)' sc2.out || grep -qi 'alert\|error' sc2.out"

# ---- metrics -------------------------------------------------------------------------------
curl -s "http://127.0.0.1:$MPORT/metrics" >metrics
check "metrics: joins counted by verdict" grep -q 'danejoin_joins_total{verdict="accepted"} [1-9]' metrics
check "metrics: latency histogram" grep -q 'danejoin_request_seconds_count [1-9]' metrics
check "metrics: group commit" grep -q 'danejoin_group_commit_transactions_total [1-9]' metrics

# ---- asynchronous answers (TS002 §8): ns2 has async_url ------------------------------------
dj_spawn async.out async.err "$CLI" listen --listen 127.0.0.1:$PORT2 --cert ns2.crt --key ns2.key \
	--ca root.crt --count 2
LPID=$DJ_PID
check "async: danejoin-client listen listens" dj_wait_port "$PORT2" "$LPID"
NS2=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns2.crt --key ns2.key
	--sender-id 000014 --sender-ns-id ns2.test --kek-label ns2-kek --kek-file ns2.kek)
"$CLI" join "${NS2[@]}" --sim devices.csv --dev-eui 0000000000000103 >aj.json 2>aj.err
check "async: JoinReq from ns2 gets an empty HTTP 200 (exit 0, nothing on stdout)" \
	bash -c "test $? -eq 0 && ! test -s aj.json && grep -q asynchronously aj.err"
ATID=$(sed -n 's/.*TransactionID \([0-9]*\) accepted.*/\1/p' aj.err)
dj_wait_log async.out '"MessageType":"JoinAns"' 5
check "async: the listener received a JoinAns with Success and the same TransactionID" \
	bash -c "test -n '$ATID' && grep '\"MessageType\":\"JoinAns\"' async.out | grep -q '\"TransactionID\":$ATID[,}]' &&
		grep '\"MessageType\":\"JoinAns\"' async.out | grep -q '\"ResultCode\":\"Success\"'"
check "... its session key wrapped under ns2's KEK" grep -q '"KEKLabel":"ns2-kek"' async.out
CURL2=(curl -s --cacert root.crt --cert ns2.crt --key ns2.key --resolve js.test:$PORT:127.0.0.1)
"${CURL2[@]}" -o an.body -w '%{http_code} %{size_download}' -X POST --data '{"ProtocolVersion":"1.1","SenderID":"000099","ReceiverID":"70b3d57ed0000001","TransactionID":4242,"MessageType":"HomeNSReq","SenderNSID":"ns2.test","DevEUI":"0000000000000110"}' "https://js.test:$PORT/" >an.code
check "async: a HomeNSReq with a wrong SenderID gets HTTP 200 with an empty body" grep -qx '200 0' an.code
dj_wait_log async.out '"TransactionID":4242' 5
check "... and an UnknownSender HomeNSAns arrives at the listener" \
	bash -c "grep '\"TransactionID\":4242' async.out | grep '\"MessageType\":\"HomeNSAns\"' | grep -q UnknownSender"
dj_wait_exit $LPID 5
dj_stop $LPID KILL	# still running: fail below, do not hang
LRC=$?
check "async: listen exits 0 after --count 2 messages (got $LRC)" test $LRC -eq 0
check "async: each delivery logged with its HTTP status" grep -q "async peer=ns2 type=HomeNSAns transaction=4242: delivered, HTTP 200" jsd.log
"$CLI" homens "${NS2[@]}" --receiver-id 70b3d57ed0000001 --dev-eui 0000000000000110 >/dev/null 2>&1
dj_wait_log jsd.log "type=HomeNSAns .*answer dropped after 3 POSTs" 5
check "async: with no receiver the POST is retried, then dropped with an error" \
	grep -q "type=HomeNSAns .*answer dropped after 3 POSTs" jsd.log

# ---- SIGHUP under load, then SIGTERM drains -------------------------------------------------
dj_spawn load.out load.err "$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000210 \
	--count 300
LOAD=$DJ_PID
dj_wait_log jsd.log 'dev_eui=0000000000000210' 2
check "the reload was logged" dj_jsd_reload jsd.log
dj_reap $LOAD
check "joins under a SIGHUP reload all succeed" test $? -eq 0
dj_jsd_stop
RC=$?
check "SIGTERM: danejoind drains and exits 0 (got $RC)" test $RC -eq 0
check "no key material in the log" bash -c "! grep -qiE '$(cut -d, -f4 devices.csv | tail -n +2 | paste -sd'|')' jsd.log"

dj_end jsd.log
