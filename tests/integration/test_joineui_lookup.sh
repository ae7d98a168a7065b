#!/bin/bash
# test_joineui_lookup.sh - danejoind found the way ChirpStack finds a Join Server by JoinEUI
# (issue 14 item 5).
#
# ChirpStack's JoinEUI resolution writes the JoinEUI's 16 hex digits least significant first,
# one label each, appends its resolve_domain_suffix, looks the name up (A/AAAA) and connects to
# https://<name>:443/, checking the certificate against that name with PKIX. Here:
#  - danejoin-ca issues a certificate for JoinEUI prefixes (a /60 as a wildcard, a /64 exact),
#    and refuses a prefix too wide for a certificate or with bits beyond its length;
#  - danejoin-ca publish-joineui puts A, AAAA and TLSA 3 1 1 at those names in a real knotd
#    zone (DNSSEC-signed, RFC 2136 + TSIG), and refuses a bad prefix and a name outside --zone
#    with the zone unchanged;
#  - kdig resolves a JoinEUI's name exactly as ChirpStack builds it;
#  - danejoind serves the JoinEUI certificate to that SNI ([listen.sni.NAME]) and the default
#    one otherwise: danejoin-client (PKIX, that name as SNI and as the verified host) gets a
#    correct JoinAns, openssl s_client verifies the name, a client sending another SNI gets the
#    default certificate and fails the JoinEUI name;
#  - the TLSA found at _443._tcp.<name> matches the certificate served (openssl, ldns-dane);
#  - client authentication is the same whichever certificate is served (no certificate, or one
#    from a foreign root, is refused under the JoinEUI name too);
#  - --check-config refuses an SNI certificate that does not carry its names or whose key does
#    not match; SIGHUP reloads the SNI certificate.
# The port is a free high port, not 443: ChirpStack's port does not change what is checked.
#
# Usage: bash test_joineui_lookup.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin joineui "$@"

dj_need "$JSD" "$CLI" "$DEV" "$CA"
for p in knotd kdig knsupdate keymgr openssl curl; do
	command -v "$p" >/dev/null || { echo "SKIP: $p not installed"; exit 77; }
done

SUF=joineuis.lorawan.test
# cs_name JOINEUI - the name ChirpStack looks up: nibbles reversed, dot-separated, + suffix
cs_name() { printf '%s' "$1" | tr 'A-F' 'a-f' | rev | sed 's/./&./g; s/$/'"$SUF"'/'; }
served_fp() {	# served_fp SNI - SHA-256 fingerprint of the certificate served to SNI
	openssl s_client -connect 127.0.0.1:"$PORT" -servername "$1" -cert ns1.crt -key ns1.key \
		</dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }

# ---- PKI -------------------------------------------------------------------------------------
dj_mkroot root && dj_mkroot rogue
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test
dj_mkcert evil DNS:ns1.test rogue
dj_kek ns1
chmod 600 ./*.key ./*.kek
BIN=$CA
run 0 issue --role js --subject "danejoind JoinEUIs" --joineui-prefix 70b3d57ed0000000/60 \
	--joineui-prefix 70b3d57ed0000123 --joineui-suffix "$SUF" --ca-cert root.crt \
	--ca-key root.key --key-out jeui.key --cert-out jeui.crt
W=$(cs_name 70b3d57ed0000000 | sed 's/^0\./*./')	# *.<15 nibbles>.SUF
X=$(cs_name 70b3d57ed0000123)
CHECKS=$((CHECKS + 1))
openssl x509 -in jeui.crt -noout -ext subjectAltName >san.txt
grep -qF "DNS:${W%.}" san.txt && grep -qF "DNS:${X%.}" san.txt ||
	fail "issue --joineui-prefix: SANs are not $W and $X: $(cat san.txt)"
run 2 issue --role js --subject x --joineui-prefix 70b3d57ed0000000/40 --joineui-suffix "$SUF" \
	--ca-cert root.crt --ca-key root.key --key-out w.key --cert-out w.crt &&
	has "$ERR" "/40 is too wide"
run 2 issue --role js --subject x --joineui-prefix 70b3d57ed0000001/60 --joineui-suffix "$SUF" \
	--ca-cert root.crt --ca-key root.key --key-out w.key --cert-out w.crt &&
	has "$ERR" "sets bits beyond its /60"
run 1 issue --role js --subject x --joineui-prefix 70b3d57ed0000000/60 \
	--ca-cert root.crt --ca-key root.key --key-out w.key --cert-out w.crt
# A second JoinEUI certificate, for the reload.
run 0 issue --role js --subject "danejoind JoinEUIs" --joineui-prefix 70b3d57ed0000000/60 \
	--joineui-prefix 70b3d57ed0000123 --joineui-suffix "$SUF" --ca-cert root.crt \
	--ca-key root.key --key-out jeui2.key --cert-out jeui2.crt

# ---- DNS: knotd, publish-joineui -------------------------------------------------------------
dj_knot_start "$T/knot" "lorawan.test other.test" || { echo "FAIL: knotd"; exit 1; }
DNS=(--ns "127.0.0.1@$DJ_KNOT_PORT" --zone lorawan.test --tsig-file "$DJ_KNOT_TSIG_FILE"
	--ta-file "$DJ_KNOT_TA")
q() { kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +short +norec "$@" | tr 'A-F' 'a-f' | sed 's/ //g' | sort; }
zone_state() { { q AXFR lorawan.test | grep -v -i "rrsig\|nsec\|soa"; } 2>/dev/null; }
run 0 publish-joineui replace "${DNS[@]}" --joineui-prefix 70b3d57ed0000000/60 \
	--joineui-prefix 70b3d57ed0000123 --joineui-suffix "$SUF" --address 127.0.0.1 \
	--address ::1 --cert jeui.crt --ttl 60 &&
	has "$OUT" "confirmed by a validated lookup.*secure"
cp "$OUT" publish.out
zone_state >zone.before
run 2 publish-joineui replace "${DNS[@]}" --joineui-prefix 70b3d57ed000000g/60 \
	--joineui-suffix "$SUF" --address 127.0.0.1 --cert jeui.crt && has "$ERR" "not a hex digit"
run 2 publish-joineui replace "${DNS[@]}" --joineui-prefix 70b3d57ed0000000/60 \
	--joineui-suffix joineuis.other.test --address 127.0.0.1 --cert jeui.crt &&
	has "$ERR" "outside --zone lorawan.test"
run 2 publish-joineui replace "${DNS[@]}" --joineui-prefix 70b3d57ed0000000/60 \
	--joineui-suffix "$SUF" --address 127.0.0.1.5 --cert jeui.crt && has "$ERR" "--address"
zone_state >zone.after
check "refused publish-joineui runs left the zone unchanged" cmp -s zone.before zone.after

# ---- resolve a JoinEUI as ChirpStack does ------------------------------------------------------
N=$(cs_name 70b3d57ed0000001)
check "ChirpStack's name for 70b3d57ed0000001 is $N" \
	test "$N" = "1.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.$SUF"
A=$(q A "$N")
AAAA=$(q AAAA "$N")
check "A of $N is 127.0.0.1 (DNS wildcard)" test "$A" = 127.0.0.1
check "AAAA of $N is ::1" test "$AAAA" = ::1
check "the exact name $X has an A too" test "$(q A "$X")" = 127.0.0.1
check "a JoinEUI outside the prefixes has no address" test -z "$(q A "$(cs_name 70b3d57ed0000201)")"

# ---- danejoind with an SNI certificate ---------------------------------------------------------
PORT=$(dj_free_port)
MPORT=$(dj_free_port)
sni() {	# sni CERT KEY NAMES - the [listen.sni.joineuis] section
	dj_conf_section listen.sni.joineuis names="$3" cert_file="$1" key_file="$2"
}
{ dj_conf_pkix "$PORT" "$MPORT"; sni jeui.crt jeui.key "${W%.}, ${X%.}"; } >dj.conf
{ dj_conf_pkix "$PORT" "$MPORT"; sni jeui.crt jeui.key "${W%.}, other.$SUF"; } >badname.conf
{ dj_conf_pkix "$PORT" "$MPORT"; sni jeui.crt js.key "${W%.}"; } >badkey.conf
{ dj_conf_pkix "$PORT" "$MPORT"; sni jeui.crt jeui.key "a..b"; } >badsyntax.conf
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000110,70b3d57ed0000001,1.1,$(openssl rand -hex 16),$(openssl rand -hex 16)"
} >devices.csv
chmod 600 devices.csv
check "store initialised" dj_store_init dj.conf devices.csv
check "--check-config accepts the SNI section" dj_check_config 0 dj.conf
check "--check-config refuses a name the SNI certificate lacks (exit 2)" \
	dj_check_config 2 badname.conf "listen.sni.joineuis\] cert_file .*'other\.$SUF' .*not among"
check "--check-config refuses a key that does not match (exit 2)" \
	dj_check_config 2 badkey.conf "listen.sni.joineuis\] key_file .*does not match"
check "--check-config refuses a malformed name (exit 2)" \
	dj_check_config 2 badsyntax.conf "names: 'a\.\.b'"
check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"

# PKIX with the JoinEUI name as SNI and host, to the address the DNS gave: a correct JoinAns.
"$CLI" join --url "https://$A:$PORT/" --server-name "${N%.}" --ca root.crt --cert ns1.crt \
	--key ns1.key --sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek \
	--kek-file ns1.kek --sim devices.csv --dev-eui 0000000000000110 >j.json 2>j.err
check "JoinReq to ${N%.} (PKIX, that SNI) answered, device keys match (exit $?)" test $? -eq 0
check "... keys compared by the simulator" grep -q "session keys match" j.err
check "... JoinAns Success" grep -q '"Result":{"ResultCode":"Success"' j.json
curl -s --cacert root.crt --cert ns1.crt --key ns1.key --resolve "${N%.}:$PORT:$A" \
	-o c.json -w '%{http_code}' -X POST --data '{}' "https://${N%.}:$PORT/" >c.code 2>c.err
check "curl (--resolve with the DNS answer) verifies ${N%.} and gets an answer" \
	grep -qE '^[2-4][0-9][0-9]$' c.code
check "the JoinEUI certificate is served to ${N%.}" test "$(served_fp "${N%.}")" = "$(fp jeui.crt)"
check "... and to the exact name ${X%.}" test "$(served_fp "${X%.}")" = "$(fp jeui.crt)"
openssl s_client -connect 127.0.0.1:"$PORT" -servername "${N%.}" -verify_hostname "${N%.}" \
	-CAfile root.crt -verify_return_error -cert ns1.crt -key ns1.key </dev/null >s1.out 2>&1
check "openssl s_client -servername/-verify_hostname ${N%.}: verified" \
	grep -q "Verify return code: 0 (ok)" s1.out
openssl s_client -connect 127.0.0.1:"$PORT" -servername js.test -verify_hostname "${N%.}" \
	-CAfile root.crt -verify_return_error -cert ns1.crt -key ns1.key </dev/null >s2.out 2>&1
check "another SNI (js.test) gets the default certificate" test "$(served_fp js.test)" = "$(fp js.crt)"
check "... which fails PKIX for ${N%.}" grep -q "hostname mismatch" s2.out
check "no SNI at all gets the default certificate" test "$(openssl s_client -connect \
	127.0.0.1:"$PORT" -noservername -cert ns1.crt -key ns1.key </dev/null 2>/dev/null |
	openssl x509 -noout -fingerprint -sha256)" = "$(fp js.crt)"
"$CLI" join --url "https://$A:$PORT/" --server-name "${N%.}" --ca root.crt --cert evil.crt \
	--key evil.key --sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek \
	--kek-file ns1.kek --sim devices.csv --dev-eui 0000000000000110 >/dev/null 2>&1
check "a client certificate from a foreign root is refused under the JoinEUI name" test $? -ne 0
curl -s --cacert root.crt --resolve "${N%.}:$PORT:$A" -X POST --data '{}' \
	"https://${N%.}:$PORT/" >/dev/null 2>&1
check "no client certificate is refused under the JoinEUI name" test $? -ne 0

# ---- TLSA at _443._tcp.<name> matches the served certificate -----------------------------------
openssl s_client -connect 127.0.0.1:"$PORT" -servername "${N%.}" -cert ns1.crt -key ns1.key \
	</dev/null 2>/dev/null | openssl x509 >served.crt
WANT="311$(dj_spki256 served.crt)"
check "TLSA _443._tcp.$N (from the wildcard) is 3 1 1 of the served certificate" \
	test "$(q TLSA "_443._tcp.$N")" = "$WANT"
check "TLSA _443._tcp.$X is 3 1 1 of the served certificate" \
	test "$(q TLSA "_443._tcp.$X")" = "$WANT"
if command -v ldns-dane >/dev/null; then
	kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +norec +noall +answer TLSA "_443._tcp.$N" >tlsa.rr
	openssl s_client -connect 127.0.0.1:"$PORT" -servername "${N%.}" -cert ns1.crt \
		-key ns1.key -showcerts </dev/null 2>/dev/null |
		sed -n '/BEGIN CERT/,/END CERT/p' >chain.pem
	ldns-dane -n -d -t tlsa.rr -c chain.pem verify "${N%.}" 443 >dane.out 2>&1
	check "ldns-dane: the served chain matches the published TLSA" \
		grep -q "dane-validated successfully" dane.out
	OTHER=$(printf other | openssl dgst -sha256 -r | cut -c1-64)	# negative: another key
	sed -E "s/(3 1 1 )[0-9A-Fa-f ]+\$/\1$OTHER/" tlsa.rr >tlsa-bad.rr
	check "... (the changed record differs)" bash -c "! cmp -s tlsa.rr tlsa-bad.rr"
	ldns-dane -n -d -t tlsa-bad.rr -c chain.pem verify "${N%.}" 443 >dane-bad.out 2>&1
	check "ldns-dane: a TLSA of another key does not match" \
		bash -c "! grep -q 'dane-validated successfully' dane-bad.out"
fi

# ---- SIGHUP reloads the SNI certificate ---------------------------------------------------------
cp jeui2.crt jeui.crt && cp jeui2.key jeui.key
check "SIGHUP reloads" dj_jsd_reload jsd.log
check "... and the new JoinEUI certificate is served" test "$(served_fp "${N%.}")" = "$(fp jeui2.crt)"
check "... the default is unchanged" test "$(served_fp js.test)" = "$(fp js.crt)"
cp badname.conf dj.conf.bad && cp dj.conf dj.conf.good && cp badname.conf dj.conf
kill -HUP "$DJ_JSD_PID"
dj_wait_log jsd.log "not among" 5
check "a reload with a bad SNI section is refused, the running certificate kept" \
	test "$(served_fp "${N%.}")" = "$(fp jeui2.crt)"
cp dj.conf.good dj.conf
check "danejoind stops cleanly" dj_jsd_stop

# ---- DANE client authentication under the JoinEUI certificate ----------------------------------
# danejoind with auth = dane: the network server's certificate is judged by its TLSA record at
# _ns-client.ns1.lorawan.test, whichever server certificate the SNI chose.
dj_selfsigned nsd DNS:_ns-client.ns1.lorawan.test && dj_selfsigned nsx DNS:_ns-client.ns1.lorawan.test
dj_tlsa_publish lorawan.test 60 _ns-client.ns1.lorawan.test=nsd.crt
check "TLSA of the DANE client published" test $? -eq 0
STUBS="lorawan.test@127.0.0.1@$DJ_KNOT_PORT"
{
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:"$PORT" cert_file=js.crt key_file=js.key \
		metrics_address=off
	sni jeui.crt jeui.key "${W%.}, ${X%.}"
	dj_conf_section dane trust_anchor_file="$DJ_KNOT_TA" stubs="$STUBS" timeout_ms=2000
	dj_conf_section js join_euis=70b3d57ed0000000/48
	dj_conf_peer ns1 ns1.lorawan.test ns 000013 kek_label=ns1-kek kek_file=ns1.kek
} >dane.conf
check "--check-config accepts DANE with an SNI section" dj_check_config 0 dane.conf
check "danejoind (auth = dane) listens" dj_jsd_start dane.conf jsd-dane.log "$PORT"
dane_join() {	# dane_join CERT KEY - a JoinReq under the JoinEUI name, server checked by PKIX
	"$CLI" join --url "https://$A:$PORT/" --server-name "${N%.}" --ca root.crt --cert "$1" \
		--key "$2" --sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek \
		--kek-file ns1.kek --sim devices.csv --dev-eui 0000000000000110
}
dane_join nsd.crt nsd.key >jd.json 2>jd.err
check "DANE client + JoinEUI SNI: JoinReq answered, keys match (exit $?)" \
	grep -q "session keys match" jd.err
check "... danejoind authenticated the client by DANE" \
	grep -q "authenticated as _ns-client.ns1.lorawan.test by DANE" jsd-dane.log
dane_join nsx.crt nsx.key >/dev/null 2>&1
check "a client certificate without its TLSA is refused under the JoinEUI name" test $? -ne 0
check "... by the DANE check" grep -q "refused.*_ns-client.ns1.lorawan.test" jsd-dane.log
check "danejoind (dane) stops cleanly" dj_jsd_stop
dj_end jsd.log jsd-dane.log dane.out
