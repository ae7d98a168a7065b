#!/bin/bash
# test_admin_mtls_dane.sh - mutual TLS on the management API by a DANE identity ([admin] auth =
# dane, docs/admin-api.md) against real DNSSEC: knotd serves a signed zone and an unsigned one.
#
# Covers: --check-config refusing each bad [admin] combination (a bad auth, client_identities
# with auth = pkix, auth = dane without identities, with a client_ca_file, with [listen] auth =
# pkix, an identity not named _admin-client.HOST, one that is no DNS name, a bad mtls_scope)
# and accepting the good one; curl with the certificate of _admin-client.ops1 whose TLSA 3 1 1
# is published: 200, actor mtls:_admin-client.ops1.lorawan.test with [admin] mtls_scope, a
# change audited with that actor; refused (401, a log line saying why): a certificate of the
# same name with another key (mismatch), an identity whose TLSA is published but that is not in
# client_identities, an identity in the unsigned zone (insecure), one whose matching record
# was changed after signing (bogus), one without records
# (nxdomain), a certificate with two SAN dNSNames; no certificate and no key: 401; an API key
# still works beside it; and once ops1's record is withdrawn, ops1 is refused after ttl_cap.
#
# Usage: bash test_admin_mtls_dane.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin admin-mtls-dane "$@"
dj_need "$JSD" "$DEV" ldns-keygen ldns-signzone
Z=lorawan.test

# tamper.test: signed here; ops7's TLSA record is put in after signing (its RRSIG stays), so
# the record matches ops7's certificate but validates as bogus
dj_selfsigned ops7 DNS:_admin-client.ops7.tamper.test
H1=$(openssl rand -hex 32)
mkdir -p "$T/knot/zones" keys
cat >keys/tamper.test.zone <<EOF
\$ORIGIN tamper.test.
\$TTL 60
@  SOA ns.tamper.test. hostmaster.tamper.test. 1 3600 600 86400 60
@  NS  ns
ns A   127.0.0.1
_admin-client.ops7 TLSA 3 1 1 $H1
EOF
(cd keys && ldns-keygen -a ECDSAP256SHA256 -k tamper.test >tamper.test.keyname) || exit 1
(cd keys && ldns-signzone -o tamper.test tamper.test.zone "$(cat tamper.test.keyname)") || exit 1
sed "s/$H1/$(dj_spki256 ops7.crt)/I" keys/tamper.test.zone.signed >"$T/knot/zones/tamper.test.zone"
grep -qi "$(dj_spki256 ops7.crt)" "$T/knot/zones/tamper.test.zone" || { echo "FAIL: no tampering"; exit 1; }

dj_knot_start "$T/knot" "$Z" "plain.test tamper.test" || { echo "FAIL: knotd did not start"; exit 1; }
STUBS="$Z@127.0.0.1@$DJ_KNOT_PORT plain.test@127.0.0.1@$DJ_KNOT_PORT tamper.test@127.0.0.1@$DJ_KNOT_PORT"
cat "$DJ_KNOT_TA" keys/*.ds >ta.ds
dj_selfsigned js DNS:js.$Z
dj_selfsigned ops1 DNS:_admin-client.ops1.$Z
dj_selfsigned ops1b DNS:_admin-client.ops1.$Z		# the same name, another key
dj_selfsigned ops2 DNS:_admin-client.ops2.$Z		# published, not configured
dj_selfsigned ops8 DNS:_admin-client.ops8.plain.test	# the unsigned zone
dj_selfsigned ops9 DNS:_admin-client.ops9.$Z		# no TLSA record
dj_selfsigned two DNS:_admin-client.ops1.$Z,DNS:_admin-client.ops2.$Z
chmod 600 ./*.key
PORT=$(dj_free_port)
APORT=$(dj_free_port)
printf 'update add _admin-client.ops1.%s. 2 TLSA 3 1 1 %s\nupdate add _admin-client.ops2.%s. 2 TLSA 3 1 1 %s\n' \
	"$Z" "$(dj_spki256 ops1.crt)" "$Z" "$(dj_spki256 ops2.crt)" | dj_knot_update "$Z"
check "TLSA records of ops1 and ops2 published" test $? -eq 0
printf 'update add _admin-client.ops8.plain.test. 2 TLSA 3 1 1 %s\n' "$(dj_spki256 ops8.crt)" |
	dj_knot_update plain.test
check "TLSA of ops8 published in the unsigned zone" test $? -eq 0

IDS="_admin-client.ops1.$Z,_admin-client.ops8.plain.test,_admin-client.ops9.$Z"
IDS="$IDS,_admin-client.ops7.tamper.test"
# conf LISTEN-AUTH [ADMIN KEY=VALUE...] - a configuration with those [admin] keys
conf() {
	local la=$1
	shift
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:$PORT cert_file=js.crt key_file=js.key \
		metrics_address=off auth="$la" client_ca_file=js.crt
	dj_conf_section dane trust_anchor_file=ta.ds stubs="$STUBS" ttl_cap=3 neg_ttl=2 \
		timeout_ms=2000 client_identity=_js-client.js.$Z
	dj_conf_section js join_euis=70b3d57ed0000000/48
	dj_conf_peer ns1 ns1.$Z ns 000013 plain_keys=yes
	dj_conf_section admin address=127.0.0.1:"$APORT" auth_fail_max=1000 "$@"
}
# ---- --check-config ---------------------------------------------------------------------------
refused() {	# refused NAME ERE LISTEN-AUTH [ADMIN KEY=VALUE...]
	local name=$1 ere=$2
	shift 2
	conf "$@" >"$name.conf"
	check "--check-config refuses $name" dj_check_config 2 "$name.conf" "$ere"
}
refused bad-auth "\[admin\] auth: expected pkix or dane, got 'tofu'" dane auth=tofu \
	client_identities="$IDS"
refused ids-with-pkix "\[admin\] client_identities: only used with auth = dane" dane auth=pkix \
	client_ca_file=js.crt client_identities="$IDS"
refused dane-no-ids "\[admin\] client_identities: required with auth = dane" dane auth=dane
refused dane-with-ca "\[admin\] client_ca_file: not used with auth = dane .*no fallback" dane \
	auth=dane client_identities="$IDS" client_ca_file=js.crt
refused dane-listen-pkix "\[admin\] auth = dane needs \[listen\] auth = dane" pkix auth=dane \
	client_identities="$IDS"
refused not-admin-client "'ops1.$Z': expected _admin-client.HOST" dane auth=dane \
	client_identities="ops1.$Z"
refused bad-name "\[admin\] client_identities: '_admin-client.a..b'" dane auth=dane \
	client_identities="_admin-client.a..b"
refused bad-scope "\[admin\] mtls_scope: expected read, operate or admin, got 'root'" dane \
	auth=dane client_identities="$IDS" mtls_scope=root
conf dane auth=dane client_identities="$IDS" mtls_scope=operate >dj.conf

key() { openssl rand -hex 16; }
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000110,70b3d57ed0000001,1.1,$(key),$(key)"
} >devices.csv
chmod 600 devices.csv
check "store initialised" dj_store_init dj.conf devices.csv
check "--check-config accepts auth = dane with client_identities" dj_check_config 0 dj.conf
RK=$("$DEV" --config dj.conf apikey create --name viewer --scope read 2>/dev/null)
check "danejoind (auth = dane) listens" dj_jsd_start dj.conf jsd.log "$PORT"
check "... and its admin listener" dj_wait_port "$APORT" "$DJ_JSD_PID"

mkdir -p r
BASE="https://js.$Z:$APORT"
# as NAME CERT METHOD PATH [CURL-ARGS...] - a request with CERT's certificate and key ("" for
# none); body in r/NAME.body, status in $CODE
as() {
	local name=$1 c=$2 m=$3 path=$4
	shift 4
	local cert=()
	[ -z "$c" ] || cert=(--cert "$c.crt" --key "$c.key")
	CODE=$(curl -s --cacert js.crt --resolve "js.$Z:$APORT:127.0.0.1" "${cert[@]}" -X "$m" \
		-o "r/$name.body" -w '%{http_code}' "$@" "$BASE$path")
}
want() { eq "$CODE" "$2" "$1"; }

as who1 ops1 GET /api/v1/whoami; want "ops1 (TLSA published, listed): 200" 200
has r/who1.body '"actor":"mtls:_admin-client.ops1.lorawan.test","scope":"operate"'
check "... logged as authenticated by DANE" dj_wait_log jsd.log \
	"admin: client 127.0.0.1 authenticated as _admin-client.ops1.$Z by DANE \(TLSA 3 1 1" 5
as rst ops1 POST /api/v1/devices/0000000000000110/reset-nonces; want "ops1 (operate) resets nonces" 200
as aud ops1 GET "/api/v1/audit?event=nonce-reset"; want "ops1 reads the audit" 200
has r/aud.body '"dev_eui":"0000000000000110","event":"nonce-reset","actor":"mtls:_admin-client.ops1.lorawan.test"'
as keys ops1 GET /api/v1/apikeys; want "ops1 (operate) may not list keys: 403" 403

as wrong ops1b GET /api/v1/whoami; want "another key under ops1's name: 401" 401
has r/wrong.body '"error":"DANE identity _admin-client.ops1.lorawan.test: the client certificate does not match its TLSA records'
check "... logged" dj_wait_log jsd.log \
	"authentication refused from 127.0.0.1: DANE identity _admin-client.ops1.$Z: the client certificate does not match" 5
as unlisted ops2 GET /api/v1/whoami; want "ops2 (published, not listed): 401" 401
has r/unlisted.body '"error":"DANE identity _admin-client.ops2.lorawan.test is not in \[admin\] client_identities"'
as insecure ops8 GET /api/v1/whoami; want "ops8 (unsigned zone): 401" 401
has r/insecure.body '"error":"DANE identity _admin-client.ops8.plain.test: TLSA insecure'
as bogus ops7 GET /api/v1/whoami; want "ops7 (a matching record with a bad signature): 401" 401
has r/bogus.body '"error":"DANE identity _admin-client.ops7.tamper.test: TLSA bogus'
as nx ops9 GET /api/v1/whoami; want "ops9 (no record): 401" 401
has r/nx.body '"error":"DANE identity _admin-client.ops9.lorawan.test: TLSA nxdomain'
as two two GET /api/v1/whoami; want "a certificate with two SAN dNSNames: 401" 401
has r/two.body 'has 2 SAN dNSNames, not one'
as none "" GET /api/v1/whoami; want "no certificate, no key: 401" 401
as key "" GET /api/v1/whoami -H "Authorization: Bearer $RK"; want "an API key still works" 200
has r/key.body '"actor":"apikey:viewer"'
as wrongdel ops1b DELETE /api/v1/devices/0000000000000110; want "a refused client changes nothing" 401
as still ops1 GET /api/v1/devices/0000000000000110; want "... the device is still there" 200

printf 'update delete _admin-client.ops1.%s. TLSA\n' "$Z" | dj_knot_update "$Z"
check "ops1's TLSA record withdrawn" test $? -eq 0
# until_code CODE TRIES NAME - poll GET /api/v1/whoami as ops1 (request NAME, every 0.2 s, TRIES
# times) until it answers CODE; else show the last answer
until_code() {
	for _ in $(seq 1 "$2"); do
		as "$3" ops1 GET /api/v1/whoami
		[ "$CODE" = "$1" ] && return 0
		sleep 0.2
	done
	echo "  still $CODE: $(cat "r/$3.body")"
	return 1
}
# refused within 10 s: the cached answer lives ttl_cap (3 s)
check "ops1 refused once the withdrawal is seen" until_code 401 50 gone
has r/gone.body '"error":"DANE identity _admin-client.ops1.lorawan.test: TLSA (nxdomain|nodata)'

# The resolver cannot answer (knotd stopped): 503, never a fallback. A client leaving while its
# lookup is pending does no harm (ASan runs check that its request is freed once).
kill -STOP "$DJ_KNOT_PID"
check "knotd stopped: ops1 gets 503 (the resolver failed)" until_code 503 20 temp
has r/temp.body '"error":"DANE identity _admin-client.ops1.lorawan.test: TLSA tempfail'
curl -s --cacert js.crt --resolve "js.$Z:$APORT:127.0.0.1" --cert ops1.crt --key ops1.key \
	--max-time 0.3 -o /dev/null "$BASE/api/v1/whoami"
# its lookup ends (timeout_ms 2 s) and is answered into the closed connection
tempfails() { grep -c "admin: client 127.0.0.1 (_admin-client.ops1.$Z): DANE identity .*TLSA tempfail" jsd.log; }
N0=$(tempfails)
check "a client that leaves during its lookup: the lookup still ends" dj_wait_for 10 \
	bash -c "test \$(grep -c 'admin: client 127.0.0.1 (_admin-client.ops1.$Z): DANE identity .*TLSA tempfail' jsd.log) -gt $N0"
as key2 "" GET /api/v1/whoami -H "Authorization: Bearer $RK"; want "... and the API still answers" 200
kill -CONT "$DJ_KNOT_PID"

dj_jsd_stop; RC=$?
check "danejoind stops cleanly (exit $RC)" test $RC -eq 0
dj_end jsd.log
