#!/bin/bash
# test_admin_api.sh - danejoind's management API ([admin], docs/admin-api.md) with curl, against
# a real danejoind over TLS: every route with every scope, and the refusals.
#
# Covers: API keys from danejoin-devices apikey (read, operate, admin) and mTLS (a client
# certificate of the private root, [admin] mtls_scope = read); 401 without or with a wrong or
# revoked key; 403 for a scope too small on every change route; 404/405; devices list (paging,
# filters), show, CSV import all-or-nothing with the bad line named, duplicate import refused,
# reset-nonces, delete; audit filters and the API key's name as actor; peers, self, ownership,
# transfers, metrics after joins by danejoin-client (a wrong key's join counted as MICFailed by
# reason), GET /events receiving a join; console
# session cookie (HttpOnly, Secure, SameSite=Strict) and its CSRF token; no CORS (OPTIONS 405,
# a foreign Origin 403, no Access-Control-* header); the auth-failure rate limit (429); and no
# device key in any response of the run.
#
# Usage: bash test_admin_api.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin admin-api "$@"
dj_need "$JSD" "$CLI" "$DEV"

dj_mkroot root && dj_mkroot rogue
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test op1:DNS:op1.test
dj_mkcert evil DNS:op1.test rogue
dj_kek ns1
chmod 600 ./*.key ./*.kek

PORT=$(dj_free_port)
APORT=$(dj_free_port)
{
	dj_conf_pkix "$PORT" off
	dj_conf_section admin address=127.0.0.1:"$APORT" client_ca_file=root.crt \
		mtls_scope=read auth_fail_max=20
} >dj.conf
key() { openssl rand -hex 16; }
dj_devices3_csv >devices.csv
chmod 600 devices.csv
check "store initialised and devices imported" dj_store_init dj.conf devices.csv

# ---- API keys (danejoin-devices apikey) ----------------------------------------------------
mkkey() { "$DEV" --config dj.conf apikey create --name "$1" --scope "$2" 2>/dev/null; }
RK=$(mkkey viewer read)
OK=$(mkkey ops operate)
AK=$(mkkey boss admin)
XK=$(mkkey gone read)
check "three keys made, shown once as djk_ tokens" matches "$RK $OK $AK" '^djk_[0-9a-f]{48} djk_[0-9a-f]{48} djk_[0-9a-f]{48}$'
check "a name is taken once" bash -c "! '$DEV' --config dj.conf apikey create --name ops --scope read"
check "a bad scope is refused" bash -c "! '$DEV' --config dj.conf apikey create --name x --scope root"
check "revoke a key" "$DEV" --config dj.conf apikey revoke gone
"$DEV" --config dj.conf apikey list >keys.txt 2>&1
has keys.txt "^gone +read .*revoked"
has keys.txt "^ops +operate .*active"
check "the store holds no token" bash -c "! grep -aq '${OK#djk_}' js.db"

check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"
check "... and its admin listener" dj_wait_port "$APORT" "$DJ_JSD_PID"

# api NAME METHOD PATH KEY [CURL-ARGS...] - one request; body in r/NAME.body, headers in
# r/NAME.hdr, the status in $CODE
mkdir -p r
BASE="https://js.test:$APORT"
CURL=(curl -s --cacert root.crt --resolve "js.test:$APORT:127.0.0.1")
api() {
	local name=$1 m=$2 path=$3 k=$4
	shift 4
	local auth=()
	[ -z "$k" ] || auth=(-H "Authorization: Bearer $k")
	CODE=$("${CURL[@]}" -X "$m" "${auth[@]}" -D "r/$name.hdr" -o "r/$name.body" \
		-w '%{http_code}' "$@" "$BASE$path")
}
# want NAME STATUS - one check: the last api call answered STATUS
want() { eq "$CODE" "$2" "$1"; }

# ---- authentication --------------------------------------------------------------------------
api noauth GET /api/v1/devices ""; want "no credential: 401" 401
api wrongkey GET /api/v1/devices "djk_$(openssl rand -hex 24)"; want "a wrong key: 401" 401
api revoked GET /api/v1/devices "$XK"; want "a revoked key: 401" 401
api basic GET /api/v1/devices "" -H "Authorization: Basic eDp5"; want "Basic auth: 401" 401
api who_r GET /api/v1/whoami "$RK"; want "whoami (read)" 200
has r/who_r.body '"actor":"apikey:viewer","scope":"read"'
api who_o GET /api/v1/whoami "$OK"; want "whoami (operate)" 200
has r/who_o.body '"scope":"operate"'
api who_a GET /api/v1/whoami "$AK"; want "whoami (admin)" 200
has r/who_a.body '"scope":"admin"'
CODE=$("${CURL[@]}" --cert op1.crt --key op1.key -o r/who_m.body -w '%{http_code}' "$BASE/api/v1/whoami")
want "mTLS client certificate of the root: 200" 200
has r/who_m.body '"actor":"mtls:op1.test","scope":"read"'
CODE=$("${CURL[@]}" --cert op1.crt --key op1.key -X DELETE -o r/mtls_del.body -w '%{http_code}' \
	"$BASE/api/v1/devices/0000000000000111")
want "mTLS client (scope read) may not delete: 403" 403
CODE=$("${CURL[@]}" --cert evil.crt --key evil.key -o /dev/null -w '%{http_code}' "$BASE/api/v1/whoami")
check "a certificate of another root fails the handshake" test "$CODE" = 000

# ---- routes and methods ----------------------------------------------------------------------
api nope GET /api/v1/nope "$RK"; want "unknown route: 404" 404
api badm DELETE /api/v1/audit "$AK"; want "wrong method: 405" 405
api badeui GET /api/v1/devices/xyz "$RK"; want "a bad DevEUI: 400" 400

# ---- read ----------------------------------------------------------------------------------
api list GET /api/v1/devices "$RK"; want "devices list" 200
has r/list.body '"total":3'
has r/list.body '"dev_eui":"0000000000000110","join_eui":"70b3d57ed0000001","mac_version":"1.1"'
api page GET "/api/v1/devices?offset=1&limit=1" "$RK"; want "devices page" 200
has r/page.body '"total":3,"offset":1,"limit":1,"devices":\[\{"dev_eui":"0000000000000110"'
api filt GET "/api/v1/devices?join_eui=70b3d57ed0000002" "$RK"; want "devices by JoinEUI" 200
has r/filt.body '"total":1,.*0000000000000111'
api q GET "/api/v1/devices?q=00000000000001" "$RK"; want "devices by DevEUI prefix" 200
has r/q.body '"total":3'
api badlimit GET "/api/v1/devices?limit=x" "$RK"; want "a bad limit: 400" 400
api show GET /api/v1/devices/0000000000000103 "$RK"; want "device show" 200
has r/show.body '"mac_version":"1.0.3"'
api show404 GET /api/v1/devices/00000000000009ff "$RK"; want "unknown device: 404" 404
api own GET /api/v1/devices/0000000000000103/ownership "$RK"; want "ownership of a device without owner: 404" 404
api xfers GET /api/v1/transfers "$RK"; want "transfers" 200
has r/xfers.body '"transfers":\[\]'
api peers GET /api/v1/peers "$RK"; want "peers" 200
has r/peers.body '"name":"ns1","identity":"ns1.test","role":"ns","sender_ids":\["000013"\]'
has r/peers.body '"tlsa":\{"verdict":"not used \(auth = pkix\)"'
has r/peers.body '"certificate":null'
api self GET /api/v1/self "$RK"; want "self" 200
has r/self.body '"spki_sha256":"'"$(dj_spki_dgst js.key sha256)"'"'
has r/self.body '"days_left":[0-9]+'

# ---- joins, metrics and the event stream -----------------------------------------------------
"${CURL[@]}" -N -H "Authorization: Bearer $RK" "$BASE/api/v1/events" >r/events.body 2>/dev/null &
EVPID=$!
dj_wait_for 5 grep -qs "join events" r/events.body
NS=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt --key ns1.key
	--sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek --kek-file ns1.kek)
"$CLI" join "${NS[@]}" --sim devices.csv --dev-eui 0000000000000110 --count 3 >join.json 2>join.err
check "three joins by danejoin-client" test $? -eq 0
check "the joins arrive on GET /events" dj_wait_for 5 grep -q '"dev_eui":"0000000000000110","peer":"ns1","result":"Success","accepted":true' r/events.body
kill "$EVPID" 2>/dev/null; wait "$EVPID" 2>/dev/null
api metrics GET /api/v1/metrics "$RK"; want "metrics" 200
has r/metrics.body '"joins_total":3,"joins_refused":0'
has r/metrics.body '"answers_by_peer":\{"ns1":\{"requests":3'
api peers2 GET /api/v1/peers "$RK"; want "peers after joins" 200
has r/peers2.body '"requests":3,"refusals":0,"last_seen":[1-9]'
has r/peers2.body '"certificate":\{"subject":"/CN=ns1","spki_sha256":"'"$(dj_spki_dgst ns1.key sha256)"'","not_after":"20[0-9-]+T'
api show2 GET /api/v1/devices/0000000000000110 "$RK"; want "device after joins" 200
has r/show2.body '"has_session":true'
# a join with a wrong key: refused (MICFailed), counted by reason, in the second it was refused
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000110,70b3d57ed0000001,1.1,$(key),$(key)"
} >wrongkey.csv
"$CLI" join "${NS[@]}" --sim wrongkey.csv --dev-eui 0000000000000110 --count 1 >join_bad.json 2>&1
has join_bad.json 'MICFailed'
api metrics2 GET /api/v1/metrics "$RK"; want "metrics after a refused join" 200
has r/metrics2.body '"joins_total":4,"joins_refused":1,"refused_by_reason":\{"MICFailed":1\}'
has r/metrics2.body '"refused":1,"refused_by_reason":\{"MICFailed":1\}\}'
check "one second holds the refusal, none other a reason" test "$(grep -o '"refused_by_reason":{[^}]' r/metrics2.body | wc -l)" -eq 2

# ---- read may not change anything ------------------------------------------------------------
api r_imp POST /api/v1/devices "$RK" --data-binary @devices.csv; want "read: import 403" 403
api r_del DELETE /api/v1/devices/0000000000000111 "$RK"; want "read: delete 403" 403
api r_rst POST /api/v1/devices/0000000000000111/reset-nonces "$RK"; want "read: reset 403" 403
api r_keys GET /api/v1/apikeys "$RK"; want "read: list keys 403" 403
api r_mk POST /api/v1/apikeys "$RK" -d '{"name":"x","scope":"admin"}'; want "read: make a key 403" 403
api r_rv DELETE /api/v1/apikeys/ops "$RK"; want "read: revoke 403" 403

# ---- operate ---------------------------------------------------------------------------------
dj_import_csvs
api imp_bad POST /api/v1/devices "$OK" -H "Content-Type: text/csv" --data-binary @bad.csv
want "import with a bad line: 422" 422
has r/imp_bad.body '"error":"upload.csv:3: field app_key.*"line":3,"imported":0'
api after_bad GET /api/v1/devices "$RK"; has r/after_bad.body '"total":3,'
api imp POST /api/v1/devices "$OK" -H "Content-Type: text/csv" --data-binary @good.csv
want "import fixed: 200" 200
has r/imp.body '"imported":3'
api imp_dup POST /api/v1/devices "$OK" --data-binary @good.csv; want "import again: 409" 409
has r/imp_dup.body 'upload.csv:2: field dev_eui: device 0000000000000201 is already enrolled; nothing was imported'
api after GET /api/v1/devices "$RK"; has r/after.body '"total":6,'
api rst POST /api/v1/devices/0000000000000110/reset-nonces "$OK"; want "operate: reset" 200
api rst404 POST /api/v1/devices/00000000000009ff/reset-nonces "$OK"; want "reset unknown: 404" 404
api del DELETE /api/v1/devices/0000000000000203 "$OK"; want "operate: delete" 200
api del404 DELETE /api/v1/devices/0000000000000203 "$OK"; want "delete again: 404" 404
api o_keys GET /api/v1/apikeys "$OK"; want "operate: list keys 403" 403
api o_mk POST /api/v1/apikeys "$OK" -d '{"name":"x","scope":"admin"}'; want "operate: make a key 403" 403

# ---- audit -----------------------------------------------------------------------------------
api aud GET "/api/v1/audit?dev_eui=0000000000000203" "$RK"; want "audit by device" 200
has r/aud.body '"event":"device-import","actor":"apikey:ops"'
has r/aud.body '"event":"device-delete","actor":"apikey:ops"'
api aud_ev GET "/api/v1/audit?event=nonce-reset" "$RK"; want "audit by event" 200
has r/aud_ev.body '"dev_eui":"0000000000000110","event":"nonce-reset","actor":"apikey:ops"'
lacks r/aud_ev.body 'device-import'
api aud_t GET "/api/v1/audit?since=4102444800" "$RK"; want "audit by time" 200
has r/aud_t.body '^\{"entries":\[\]\}$'

# ---- admin -----------------------------------------------------------------------------------
api keys GET /api/v1/apikeys "$AK"; want "admin: list keys" 200
has r/keys.body '"name":"gone","scope":"read","created_at":[0-9]+,"revoked_at":[1-9]'
lacks r/keys.body "${OK#djk_}|hash|salt"
api mk POST /api/v1/apikeys "$AK" -d '{"name":"robot","scope":"operate"}'; want "admin: make a key" 201
NK=$(sed -n 's/.*"key":"\(djk_[0-9a-f]*\)".*/\1/p' r/mk.body)
api who_n GET /api/v1/whoami "$NK"; want "the new key works" 200
api mkdup POST /api/v1/apikeys "$AK" -d '{"name":"robot","scope":"read"}'; want "a taken name: 409" 409
api mkbad POST /api/v1/apikeys "$AK" -d '{"name":"r b","scope":"read"}'; want "a bad name: 400" 400
api rv DELETE /api/v1/apikeys/robot "$AK"; want "admin: revoke" 200
api who_n2 GET /api/v1/whoami "$NK"; want "the revoked key is refused" 401
api aud_k GET "/api/v1/audit?event=apikey-create" "$RK"
has r/aud_k.body '"actor":"apikey:boss","detail":"name=robot scope=operate"'

# ---- console session, CSRF, CORS -------------------------------------------------------------
api login POST /api/v1/session "" -d "{\"key\":\"$OK\"}"; want "console login" 200
has r/login.hdr 'Set-Cookie: dj_session=[0-9a-f]{64}; Path=/; HttpOnly; Secure; SameSite=Strict'
SESS=$(sed -n 's/.*dj_session=\([0-9a-f]*\);.*/\1/p' r/login.hdr)
CSRF=$(sed -n 's/.*"csrf":"\([0-9a-f]*\)".*/\1/p' r/login.body)
api c_who GET /api/v1/whoami "" -b "dj_session=$SESS"; want "cookie session" 200
has r/c_who.body '"actor":"apikey:ops","scope":"operate","cookie":true'
api c_nocsrf POST /api/v1/devices/0000000000000110/reset-nonces "" -b "dj_session=$SESS"
want "a change by cookie without CSRF token: 403" 403
api c_badcsrf POST /api/v1/devices/0000000000000110/reset-nonces "" -b "dj_session=$SESS" \
	-H "X-CSRF-Token: $(openssl rand -hex 32)"
want "... with a wrong one: 403" 403
api c_csrf POST /api/v1/devices/0000000000000110/reset-nonces "" -b "dj_session=$SESS" \
	-H "X-CSRF-Token: $CSRF"
want "... with the session's: 200" 200
api login_bad POST /api/v1/session "" -d '{"key":"djk_nope"}'; want "console login with a wrong key: 401" 401
api logout DELETE /api/v1/session "" -b "dj_session=$SESS"; want "logout" 200
api c_gone GET /api/v1/whoami "" -b "dj_session=$SESS"; want "the session is gone" 401
api cors OPTIONS /api/v1/devices "" -H "Origin: https://evil.example" \
	-H "Access-Control-Request-Method: DELETE"
want "CORS preflight: 405" 405
api origin DELETE /api/v1/devices/0000000000000111 "$OK" -H "Origin: https://evil.example"
want "a foreign Origin: 403" 403
api origin_ok GET /api/v1/whoami "$RK" -H "Origin: https://js.test:$APORT"; want "our own Origin" 200
check "no Access-Control header in any answer" bash -c "! grep -qi '^Access-Control' r/*.hdr"
check "every API answer carries the CSP" bash -c "for f in r/*.hdr; do grep -q \"^Content-Security-Policy: default-src 'self'; script-src 'self'\" \$f || { echo \$f; exit 1; }; done"

# ---- no key anywhere -------------------------------------------------------------------------
KEYS=$(cut -d, -f4,5 devices.csv good.csv | tail -n +2 | tr ',' '\n' | grep -v '^$' | grep -v app_key)
check "device keys known to the test" test "$(echo "$KEYS" | wc -l)" -ge 8
LEAK=0
for k in $KEYS; do
	grep -rqi -- "$k" r/ && { echo "  key $k in $(grep -rli -- "$k" r/)"; LEAK=1; }
done
check "no device key in any response of the run" test $LEAK -eq 0
check "no device key in the daemon log" bash -c "! grep -qiF -f <(echo '$KEYS') jsd.log"

# ---- the rate limit on failed authentications (last: it locks this address out) -------------
for i in $(seq 1 20); do
	api rl GET /api/v1/whoami "djk_$(openssl rand -hex 24)"
	[ "$CODE" = 429 ] && break
done
want "failures up to auth_fail_max = 20 in a minute, then 429" 429
api rl_good GET /api/v1/whoami "$RK"; want "... then even a good key gets 429" 429
api rl_login POST /api/v1/session "" -d "{\"key\":\"$RK\"}"; want "... and a console login" 429
check "the refusals are logged" grep -q "authentication refused from 127.0.0.1" jsd.log

dj_jsd_stop; RC=$?
check "danejoind stops cleanly (exit $RC)" test $RC -eq 0
dj_end jsd.log
