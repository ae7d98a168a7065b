#!/bin/bash
# test_dane.sh - DANE mutual TLS end to end: danejoind (auth = dane, the default) and
# danejoin-client authenticate each other by TLSA records that each looks up with DNSSEC
# validation from a real knotd on loopback (ECDSA P-256 signing, the anchor from keymgr,
# records changed by TSIG-signed dynamic updates).
#
# Covers the trust rules of DESIGN.md rule 1 and 2 from both sides:
#   matches for 3 1 1, 3 0 0 and 2 0 1 (the TA sent in the chain); a mismatch; secure NXDOMAIN
#   and NODATA; an unsigned zone (insecure); a bogus answer (a wrong anchor, client and server);
#   a rollover with two records; the DNS server stopped (cache within TTL, then a temporary
#   failure, then recovery); an expired certificate under DANE-EE accepted; a missing TA
#   certificate under 2 0 1 rejected; a dane_clientid the client holds no key for; a SenderID
#   outside the identity's rights; asynchronous answers over DANE in both directions; and
#   independent checks with openssl s_client -dane_tlsa_rrdata and kdig +dnssec.
#
# Usage: bash test_dane.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin dane "$@"
dj_need "$JSD" "$CLI" "$DEV"
Z=lorawan.test

# ---- the DNS: a signed zone and an unsigned one ---------------------------------------------
dj_knot_start "$T/knot" "$Z" "plain.test" || { echo "FAIL: knotd did not start"; exit 1; }
STUBS="$Z@127.0.0.1@$DJ_KNOT_PORT plain.test@127.0.0.1@$DJ_KNOT_PORT"
sed 's/\(IN DS [0-9]* 13 2 \)\(.\)/\1f/' "$DJ_KNOT_TA" >bad-ta.ds
cmp -s bad-ta.ds "$DJ_KNOT_TA" && sed -i 's/\(IN DS [0-9]* 13 2 \)f/\10/' bad-ta.ds

# ---- certificates: self-signed (DANE-EE) and one private CA (DANE-TA) -----------------------
dj_selfsigned js DNS:js.$Z
dj_selfsigned ns1 DNS:_ns-client.ns1.$Z
dj_selfsigned ns1new DNS:_ns-client.ns1.$Z
dj_selfsigned ns3 DNS:_ns-client.ns3.$Z
dj_selfsigned ns5 DNS:_ns-client.ns5.$Z
dj_selfsigned ns6 DNS:_ns-client.ns6.$Z
dj_selfsigned ns7 DNS:_ns-client.ns7.$Z
dj_selfsigned ns8 DNS:_ns-client.ns8.plain.test
dj_selfsigned ns2 DNS:ns2.$Z
dj_selfsigned as1 DNS:_as-client.as1.$Z
dj_selfsigned ns10 DNS:_ns-client.ns10.$Z
dj_selfsigned other DNS:other.$Z
# an expired self-signed certificate (openssl ca can back-date)
mkdir -p ca-exp/newcerts && : >ca-exp/index.txt && echo 01 >ca-exp/serial
cat >ca-exp.cnf <<EOF
[ca]
default_ca = x
[x]
dir = ca-exp
database = ca-exp/index.txt
new_certs_dir = ca-exp/newcerts
serial = ca-exp/serial
default_md = sha256
policy = p
copy_extensions = copy
[p]
commonName = supplied
EOF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout nsx.key -subj /CN=nsx \
	-addext "subjectAltName=DNS:_ns-client.nsx.$Z" -out nsx.csr 2>/dev/null
openssl ca -batch -config ca-exp.cnf -selfsign -keyfile nsx.key -in nsx.csr -startdate 20200101000000Z \
	-enddate 20200201000000Z -out nsx.crt >/dev/null 2>&1
chmod 600 nsx.key
check "the expired certificate is expired" bash -c "! openssl x509 -in nsx.crt -checkend 0 >/dev/null"
# ns4: a leaf of a private CA; TLSA 2 0 1 names the CA
dj_mkroot org4
dj_mkcert ns4 "DNS:_ns-client.ns4.$Z" org4
cat ns4.crt org4.crt >ns4-chain.crt
dj_kek ns1 as1 ns2
chmod 600 ./*.key

# ---- TLSA records, published by TSIG-signed updates ----------------------------------------
PORT=$(dj_free_port)
MPORT=$(dj_free_port)
PORT2=$(dj_free_port)
PORT3=$(dj_free_port)
dj_knot_update "$Z" <<EOF
update add _$PORT._tcp.js.$Z. 60 TLSA 3 1 1 $(dj_spki256 js.crt)
update add _js-client.js.$Z. 60 TLSA 3 1 1 $(dj_spki256 js.crt)
update add _ns-client.ns1.$Z. 60 TLSA 3 1 1 $(dj_spki256 ns1.crt)
update add _ns-client.ns3.$Z. 60 TLSA 3 0 0 $(dj_certhex ns3.crt)
update add _ns-client.ns4.$Z. 60 TLSA 2 0 1 $(dj_cert256 org4.crt)
update add _ns-client.ns5.$Z. 60 TLSA 3 1 1 $(dj_spki256 other.crt)
update add _ns-client.ns7.$Z. 60 TXT "no TLSA here"
update add _ns-client.nsx.$Z. 60 TLSA 3 1 1 $(dj_spki256 nsx.crt)
update add _ns-client.ns9.$Z. 60 TLSA 1 1 1 $(dj_spki256 ns1.crt)
update add _as-client.as1.$Z. 60 TLSA 3 1 1 $(dj_spki256 as1.crt)
update add _$PORT2._tcp.ns2.$Z. 60 TLSA 3 1 1 $(dj_spki256 ns2.crt)
update add _ns-client.ns2.$Z. 60 TLSA 3 1 1 $(dj_spki256 ns2.crt)
update add _ns-client.ns10.$Z. 60 TLSA 3 1 1 $(dj_spki256 ns10.crt)
update add _$PORT3._tcp.ns2.$Z. 60 TLSA 3 1 1 $(dj_spki256 ns2.crt)
update add 000015.netids.$Z. 60 NAPTR 10 10 "S" "LWNS" "" _lwns3._tcp.ns2.$Z.
update add _lwns3._tcp.ns2.$Z. 60 SRV 10 10 $PORT3 ns2.$Z.
update add ns2.$Z. 60 A 127.0.0.1
EOF
check "TLSA records published by TSIG update" test $? -eq 0
dj_knot_update plain.test <<EOF
update add _ns-client.ns8.plain.test. 60 TLSA 3 1 1 $(dj_spki256 ns8.crt)
EOF
check "a TLSA record in the unsigned zone" test $? -eq 0
check "kdig sees the signed TLSA with its RRSIG" bash -c \
	"kdig @127.0.0.1 -p $DJ_KNOT_PORT +dnssec TLSA _ns-client.ns1.$Z. | grep -q 'RRSIG.*TLSA'"
dj_knot_delv_anchors anchors.conf
check "delv validates the published TLSA (fully validated)" bash -c \
	"delv @127.0.0.1 -p $DJ_KNOT_PORT -a anchors.conf +root=$Z TLSA _ns-client.ns1.$Z. 2>&1 | grep -q 'fully validated'"

# ---- danejoind: auth = dane by default -------------------------------------------------------
{
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:$PORT cert_file=js.crt key_file=js.key \
		metrics_address=127.0.0.1:$MPORT
	dj_conf_section dane trust_anchor_file="$DJ_KNOT_TA" stubs="$STUBS" ttl_cap=8 neg_ttl=2 \
		timeout_ms=2000 client_identity=_js-client.js.$Z discovery_suffix=$Z
	dj_conf_section js join_euis=70b3d57ed0000000/48 home_net_id=000013
	dj_conf_peer ns1 ns1.$Z ns 000013 kek_label=ns1-kek kek_file=ns1.kek
	for n in ns3 ns4 ns5 ns6 ns7 ns8 nsx ns9; do
		zone=$Z
		[ $n = ns8 ] && zone=plain.test
		dj_conf_peer $n $n.$zone ns 000013 plain_keys=yes
	done
	dj_conf_peer as1 as1.$Z as as-1 join_euis=70b3d57ed0000000/48 kek_label=as1-kek \
		kek_file=as1.kek
	dj_conf_peer ns2 ns2.$Z ns 000014 kek_label=ns2-kek kek_file=ns2.kek \
		async_url=https://127.0.0.1:$PORT2/ async_server_name=ns2.$Z
	dj_conf_peer ns10 ns10.$Z ns 000015 plain_keys=yes async_discover=yes
} >dj.conf
(umask 077 && dj_devices_csv 40 1.1 >devices.csv)
check "store initialised and devices imported" dj_store_init dj.conf devices.csv
check "--check-config accepts the DANE configuration" dj_check_config 0 dj.conf
sed '/^trust_anchor_file/d' dj.conf >noanchor.conf
check "--check-config refuses DANE without a trust anchor (exit 2)" dj_check_config 2 noanchor.conf
check "... saying what is missing" grep -q "trust_anchor_file" check.out
sed 's/^trust_anchor_file = .*/trust_anchor_file = \/nonexistent.ds/' dj.conf >badanchor.conf
"$JSD" --config badanchor.conf --check-config >check.out 2>&1
check "--check-config refuses a missing anchor file, naming it" grep -q "nonexistent.ds" check.out

dj_test_clock	# TTLs and ttl_cap pass by dj_clock_advance below, not by waiting
check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"

DANE=(--trust-anchor "$DJ_KNOT_TA" --stub "$STUBS")
URL=(--url "https://127.0.0.1:$PORT/" --server-name "js.$Z")
ns() { # CERT KEY [extra...]: a join of the next device as NS NetID 000013
	local c=$1 k=$2
	shift 2
	DEVN=$((DEVN + 1))
	"$CLI" join "${URL[@]}" "${DANE[@]}" --cert "$c" --key "$k" --sender-id 000013 \
		--sender-ns-id ns.test --allow-plain-keys --kek-label ns1-kek --kek-file ns1.kek \
		--sim devices.csv \
		--dev-eui "$(printf '%016x' $((4096 + DEVN)))" "$@"
}
DEVN=0

# ---- matches ---------------------------------------------------------------------------------
"$CLI" join "${URL[@]}" "${DANE[@]}" --cert ns1.crt --key ns1.key --sender-id 000013 \
	--sender-ns-id ns.test --kek-label ns1-kek --kek-file ns1.kek --sim devices.csv \
	--dev-eui 0000000000001001 >j1.json 2>j1.err
check "3 1 1: ns1 joins over DANE both ways (exit $?)" grep -q "session keys match" j1.err
check "... danejoind logged the DANE authentication of ns1" \
	grep -q "authenticated as _ns-client.ns1.$Z by DANE (TLSA 3 1 1 at depth 0)" jsd.log
DEVN=1
ns ns3.crt ns3.key >j3.json 2>j3.err
check "3 0 0: ns3 joins" test $? -eq 0
ns ns4-chain.crt ns4.key >j4.json 2>j4.err
check "2 0 1 with the CA in the chain sent: ns4 joins" test $? -eq 0
check "... matched at depth 1" grep -q "_ns-client.ns4.$Z by DANE (TLSA 2 0 1 at depth 1)" jsd.log
ns nsx.crt nsx.key >jx.json 2>jx.err
check "an expired certificate under DANE-EE is accepted" test $? -eq 0

# ---- refusals -------------------------------------------------------------------------------
refused() { # DESC LOGPATTERN CERT KEY [extra...]
	local desc=$1 pat=$2 rc
	shift 2
	ns "$@" >r.json 2>r.err
	rc=$?
	check "$desc: refused (exit $rc)" test $rc -eq 3
	check "... HTTP 403 to the client" grep -q "HTTP 403" r.err
	check "... logged: $pat" grep -q -- "$pat" jsd.log
}
refused "2 0 1 without the TA in the chain" "does not match TLSA _ns-client.ns4.$Z" ns4.crt ns4.key
refused "a TLSA that names another key (mismatch)" "does not match TLSA _ns-client.ns5.$Z" ns5.crt ns5.key
refused "secure NXDOMAIN" "TLSA _ns-client.ns6.$Z: nxdomain" ns6.crt ns6.key
refused "secure NODATA" "TLSA _ns-client.ns7.$Z: nodata" ns7.crt ns7.key
refused "an unsigned zone (insecure)" "TLSA _ns-client.ns8.plain.test: insecure" ns8.crt ns8.key
refused "only PKIX usages published" "TLSA _ns-client.ns9.$Z: unusable" ns1.crt ns1.key \
	--clientid "_ns-client.ns9.$Z"
refused "a dane_clientid the client holds no key for" "does not match TLSA _ns-client.ns3.$Z" \
	ns1.crt ns1.key --clientid "_ns-client.ns3.$Z"
ns ns1.crt ns1.key --clientid "_ns-client.ns1.$Z" >r.json 2>r.err
check "the right dane_clientid is accepted" test $? -eq 0
check "... and logged as such" grep -q "_ns-client.ns1.$Z by DANE (TLSA 3 1 1 at depth 0, dane_clientid)" jsd.log
ns ns1.crt ns1.key --sender-id 000099 >r.json 2>r.err
check "a SenderID outside ns1's rights gets UnknownSender" grep -q UnknownSender r.json
"$CLI" homens "${URL[@]}" "${DANE[@]}" --cert as1.crt --key as1.key --sender-id 000013 --sender-ns-id ns.test \
	--receiver-id 70b3d57ed0000001 --dev-eui 0000000000001001 >r.json 2>&1
check "an _as-client identity does not get an NS's rights (UnknownSender)" grep -q UnknownSender r.json

# ---- the client verifies the server -------------------------------------------------------
ns ns1.crt ns1.key --tlsa-name "_ns-client.ns5.$Z" >r.json 2>r.err
check "client: a server TLSA for another key fails the handshake (exit 3)" test $? -eq 3
check "... TLS: certificate verify failed" grep -q "certificate verify failed" r.err
ns ns1.crt ns1.key --trust-anchor bad-ta.ds >r.json 2>r.err
check "client: a wrong trust anchor makes the server's TLSA bogus (exit 3)" test $? -eq 3
check "... the error says bogus" grep -q "bogus" r.err
ns ns1.crt ns1.key --tlsa-name "_nothing.$Z" >r.json 2>r.err
check "client: no server TLSA (NXDOMAIN) means no connection" grep -q "nxdomain" r.err
# independent: openssl s_client with the published rrdata verifies our server
echo | openssl s_client -connect 127.0.0.1:$PORT -servername js.$Z -cert ns1.crt -key ns1.key \
	-dane_tlsa_domain js.$Z -dane_tlsa_rrdata "3 1 1 $(dj_spki256 js.crt)" >sc.out 2>&1
check "openssl s_client -dane_tlsa_rrdata verifies danejoind" grep -q "Verification: OK" sc.out
check "... DANE 3 1 1 matched the EE certificate" grep -q "DANE TLSA 3 1 1.*matched EE certificate" sc.out
echo | openssl s_client -connect 127.0.0.1:$PORT -servername js.$Z -cert ns1.crt -key ns1.key \
	-dane_tlsa_domain js.$Z -dane_tlsa_rrdata "3 1 1 $(dj_spki256 ns1.crt)" >sc2.out 2>&1
check "openssl s_client with a wrong rrdata fails verification" bash -c "! grep -q 'Verification: OK' sc2.out"

# ---- rollover: two records for ns1, both keys work; then the old one is retired -----------------
dj_knot_update "$Z" <<EOF
update add _ns-client.ns1.$Z. 60 TLSA 3 1 1 $(dj_spki256 ns1new.crt)
EOF
dj_knot_wait "_ns-client.ns1.$Z." TLSA "$(dj_spki256 ns1new.crt | cut -c1-20)"
# ttl_cap = 8: the cached single-record set expires, in our cache and in libunbound's (a test
# build starts libunbound afresh after a jump of the test clock; backend-auth/da_dns.c)
dj_clock_advance 9
ns ns1new.crt ns1new.key >r.json 2>r.err
check "rollover: the new key is accepted while both are published" test $? -eq 0
ns ns1.crt ns1.key >r.json 2>r.err
check "rollover: the old key still works while both are published" test $? -eq 0

# ---- the DNS stopped: the cache answers within its lifetime, then a temporary failure ------------
PKIX=(--url "https://127.0.0.1:$PORT/" --server-name "js.$Z" --ca js.crt)
pk() {
	DEVN=$((DEVN + 1))
	"$CLI" join "${PKIX[@]}" --cert ns1.crt --key ns1.key --sender-id 000013 --sender-ns-id ns.test \
		--kek-label ns1-kek --kek-file ns1.kek --sim devices.csv --dev-eui "$(printf '%016x' $((4096 + DEVN)))" "$@"
}
dj_clock_advance 9
pk >r.json 2>r.err
check "a fresh lookup (knotd up)" test $? -eq 0
dj_knot_stop
pk >r.json 2>r.err
check "knotd stopped: ns1 still served from the cache within its TTL" test $? -eq 0
dj_clock_advance 9
pk >r.json 2>r.err
check "knotd stopped, the cache expired: refused (exit 3)" test $? -eq 3
check "... as a temporary failure: HTTP 503" grep -q "HTTP 503" r.err
check "... logged as temporary" grep -q "temporary failure checking _ns-client.ns1.$Z" jsd.log
dj_knot_restart || echo "knotd did not come back (see below)"
pk >r.json 2>r.err
check "knotd back: ns1 joins again" test $? -eq 0

# ---- asynchronous answers: danejoind is the DANE client of ns2's listener ----------------------
# listener_done - the listener's exit status, once it exited by itself (killed after 10 s)
listener_done() {
	dj_wait_exit "$LPID" 10 || echo "listener still running: killed"
	dj_stop "$LPID"
}
dj_spawn listen.out listen.err "$CLI" listen --listen 127.0.0.1:$PORT2 --cert ns2.crt --key ns2.key \
	"${DANE[@]}" --count 1
LPID=$DJ_PID
check "async: the listener (DANE) listens" dj_wait_port "$PORT2" "$LPID"
DEVN=$((DEVN + 1))
"$CLI" join "${URL[@]}" "${DANE[@]}" --cert ns2.crt --key ns2.key --sender-id 000014 \
	--sender-ns-id ns.test --sim devices.csv --dev-eui "$(printf '%016x' $((4096 + DEVN)))" \
	--kek-label ns2-kek --kek-file ns2.kek --clientid "_ns-client.ns2.$Z" >a.json 2>a.err
check "async: the JoinReq is accepted with an empty 200" test $? -eq 0
listener_done
LRC=$?
check "async: the answer arrived over DANE (listener exit $LRC)" test $LRC -eq 0
check "... a JoinAns" grep -q '"MessageType":"JoinAns"' listen.out
# async_discover: the NS of NetID 000015 found by NAPTR -> SRV (port $PORT3), then DANE
dj_spawn listen3.out listen3.err "$CLI" listen --listen 127.0.0.1:$PORT3 --cert ns2.crt \
	--key ns2.key "${DANE[@]}" --count 1
LPID=$DJ_PID
check "async_discover: a listener at the SRV target's port" dj_wait_port "$PORT3" "$LPID"
DEVN=$((DEVN + 1))
"$CLI" join "${URL[@]}" "${DANE[@]}" --cert ns10.crt --key ns10.key --sender-id 000015 \
	--sender-ns-id ns.test --sim devices.csv --dev-eui "$(printf '%016x' $((4096 + DEVN)))" \
	--allow-plain-keys >a.json 2>a.err
check "async_discover: the JoinReq is accepted with an empty 200" test $? -eq 0
listener_done
LRC=$?
check "async_discover: the answer arrived at the discovered server (exit $LRC)" test $LRC -eq 0
check "... discovery logged" grep -q "async peer=ns10: 000015.netids.$Z is https://127.0.0.1:$PORT3/ (ns2.$Z)" jsd.log

# ---- discovery: JoinEUI -> NAPTR -> SRV -> A, every step DNSSEC-secure -------------------------
JN=1.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.joineuis.$Z.
dj_knot_update "$Z" <<EOF
update add $JN 60 NAPTR 10 10 "S" "LWNS" "" _lwns._tcp.js.$Z.
update add _lwns._tcp.js.$Z. 60 SRV 10 10 $PORT js.$Z.
update add js.$Z. 60 A 127.0.0.1
EOF
check "JoinEUI 70b3d57ed0000001 -> NAPTR -> SRV -> js published" test $? -eq 0
DEVN=$((DEVN + 1))
"$CLI" join --discover "$Z" --receiver-id 70b3d57ed0000001 "${DANE[@]}" --cert ns1.crt --key ns1.key \
	--sender-id 000013 --sender-ns-id ns.test --kek-label ns1-kek --kek-file ns1.kek --sim devices.csv \
	--dev-eui "$(printf '%016x' $((4096 + DEVN)))" -v >r.json 2>r.err
check "discovery: the join server found from the JoinEUI, then DANE: accepted" test $? -eq 0
check "... via the SRV target and port" grep -q "discovered .*https://127.0.0.1:$PORT/ (js.$Z)" r.err
"$CLI" join --discover "$Z" --receiver-id 70b3d57ed0000002 "${DANE[@]}" --cert ns1.crt --key ns1.key \
	--sender-id 000013 --sender-ns-id ns.test --sim devices.csv --dev-eui 0000000000001001 >r.json 2>r.err
check "discovery of a JoinEUI without records: exit 3" test $? -eq 3
check "... saying nxdomain" grep -q "discovery of .*joineuis.$Z: nxdomain" r.err

# ---- authorization bound by the DNS: the NetID's NAPTR -> SRV target must be the client's host --
dj_knot_update "$Z" <<EOF
update add 000013.netids.$Z. 60 NAPTR 10 10 "S" "LWNS" "" _lwns._tcp.ns1.$Z.
update add _lwns._tcp.ns1.$Z. 60 SRV 10 10 $PORT ns1.$Z.
update add ns1.$Z. 60 A 127.0.0.1
EOF
check "NetID 000013 -> NAPTR -> SRV -> ns1 published" test $? -eq 0
dj_conf_section dane netid_binding=yes >>dj.conf
check "SIGHUP: netid_binding switched on" dj_jsd_reload jsd.log
ns ns1.crt ns1.key >r.json 2>r.err
check "binding: ns1 is the SRV target of NetID 000013: accepted" test $? -eq 0
ns ns3.crt ns3.key >r.json 2>r.err
check "binding: ns3 (rights for 000013 in the configuration, not in the DNS): UnknownSender" \
	grep -q UnknownSender r.json
check "... logged with the reason" grep -q "NetID 000013 is not bound to ns3.$Z" jsd.log

# ---- metrics and a bogus server anchor --------------------------------------------------------
curl -s "http://127.0.0.1:$MPORT/metrics" >metrics
check "metrics count DANE verdicts" grep -q 'danejoin_peer_auth_total{result="rejected"} [1-9]' metrics
check "metrics count DNS answers" grep -q 'danejoin_dns_answers_total{status="secure"} [1-9]' metrics
dj_jsd_stop
sed "s|^trust_anchor_file = .*|trust_anchor_file = $T/bad-ta.ds|" dj.conf >bogus.conf
check "danejoind with a wrong anchor listens" dj_jsd_start bogus.conf jsd2.log "$PORT"
pk >r.json 2>r.err
check "server: a wrong anchor makes every client TLSA bogus: refused (exit 3)" test $? -eq 3
check "... logged as bogus" grep -q "TLSA _ns-client.ns1.$Z: bogus" jsd2.log
check "no key material in the logs" bash -c "! grep -qi -e '$(cut -c1-12 ns1.kek)' jsd.log jsd2.log"
dj_jsd_stop
dj_end jsd.log
