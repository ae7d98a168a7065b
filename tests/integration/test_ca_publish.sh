#!/bin/bash
# test_ca_publish.sh - danejoin-ca publish against a real knotd (DNSSEC-signed zones, TSIG):
# add / replace / delete of TLSA records, each confirmed by danejoin-ca's own validated lookup
# and independently by kdig +dnssec and delv; prerequisites that detect concurrent changes;
# bad input and a refusing or absent server, each with its exit code and the zone unchanged;
# and the certificate-service-provider move of a device TLSA from the provider's zone to a
# customer's zone.
#
# Usage: bash test_ca_publish.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin ca-publish "$@"
BIN=$CA
dj_need "$BIN"
# tlsa_now NAME - the TLSA rdata the server holds, sorted (kdig, authoritative)
tlsa_now() {
	kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +short +norec TLSA "$1" | tr 'A-F' 'a-f' |
		sed 's/ //g' | sort
}
# snapshot FILE - every RRset of the zone that matters (TLSA at both owners, SOA serial)
snapshot() {
	{ tlsa_now "$OWNER"; echo --; tlsa_now "$DEV_P"; echo --; tlsa_now "$DEV_C"; } >"$1"
}
# delv_ok NAME ZONE WANT - delv validates NAME TLSA under ZONE's anchor and sees WANT
delv_ok() {
	CHECKS=$((CHECKS + 1))
	delv @127.0.0.1 -p "$DJ_KNOT_PORT" -a "$T/anchors.conf" +root="$2" TLSA "$1" \
		>"$T/delv.out" 2>&1
	grep -q "; fully validated" "$T/delv.out" &&
		tr 'A-F' 'a-f' <"$T/delv.out" | sed 's/ //g' | grep -q -- "$3" ||
		{ echo "FAIL: delv did not validate $1 ($3)"; cat "$T/delv.out"; FAILS=$((FAILS + 1)); }
}

dj_knot_start "$T/knot" "lorawan.test provider.test customer.test" || { echo "FAIL: knotd"; exit 1; }
dj_knot_delv_anchors "$T/anchors.conf"
NS="127.0.0.1@$DJ_KNOT_PORT"
Z=lorawan.test.
DNS=(--ns "$NS" --zone "$Z" --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA")
OWNER=_443._tcp.js.lorawan.test.
DEV_P=70b3d57ed0001234._device.provider.test.
DEV_C=70b3d57ed0001234._device.customer.test.

# Two self-signed JS certificates (DANE-EE 3 1 1).
run 0 self-signed --role js --name js.lorawan.test --key-out js1.key --cert-out js1.crt
run 0 self-signed --role js --name js.lorawan.test --key-out js2.key --cert-out js2.crt
R1=$("$BIN" tlsa --cert js1.crt --usage 3 --selector 1 --mtype 1)
R2=$("$BIN" tlsa --cert js2.crt --usage 3 --selector 1 --mtype 1)
L1=$("$BIN" tlsa --cert js1.crt --usage 3 --selector 1 --mtype 1 --server js.lorawan.test --port 443 --ttl 60)
L2=$("$BIN" tlsa --cert js2.crt --usage 3 --selector 1 --mtype 1 --server js.lorawan.test --port 443 --ttl 60)
H1=$(echo "$R1" | awk '{print $4}')
H2=$(echo "$R2" | awk '{print $4}')

# add: one UPDATE, confirmed secure by danejoin-ca, then kdig shows it signed and delv validates.
run 0 publish add "${DNS[@]}" --rr "$L1" && has "$OUT" "confirmed by a validated lookup.*1 record\(s\), secure"
CHECKS=$((CHECKS + 1))
kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +dnssec +norec TLSA "$OWNER" >"$T/kdig.out"
grep -q "RRSIG.*TLSA" "$T/kdig.out" && grep -qi "$H1" "$T/kdig.out" ||
	{ echo "FAIL: kdig +dnssec lacks the signed TLSA"; cat "$T/kdig.out"; FAILS=$((FAILS + 1)); }
delv_ok "$OWNER" lorawan.test "311$H1"
# The same add again changes nothing and still succeeds (idempotent).
run 0 publish add "${DNS[@]}" --rr "$L1" && has "$OUT" "nothing to change"

# add --expect-none where the RRset exists: YXRRSET, exit 5, zone unchanged.
snapshot s0
run 5 publish add "${DNS[@]}" --rr "$L2" --expect-none && has "$ERR" "YXRRSET"
snapshot s1; same s0 s1 "add --expect-none changed the zone"

# replace with a stale --expect (someone else's record): NXRRSET, exit 5, unchanged.
run 5 publish replace "${DNS[@]}" --rr "$L2" --expect "$L2" && has "$ERR" "NXRRSET"
snapshot s1; same s0 s1 "replace with a failed prerequisite changed the zone"

# A concurrent change between our read and our update is caught: simulate it by changing the
# RRset behind our back after telling us (--expect) what we "read" before.
dj_knot_update lorawan.test <<EOF || fail "knsupdate concurrent add"
update add $OWNER 60 TLSA 3 1 1 $(printf '%064d' 0)
EOF
snapshot s2
run 5 publish replace "${DNS[@]}" --rr "$L2" --expect "$L1"
snapshot s3; same s2 s3 "a concurrent change was overwritten"
dj_knot_update lorawan.test <<EOF || fail "knsupdate cleanup"
update delete $OWNER 60 TLSA 3 1 1 $(printf '%064d' 0)
EOF

# replace (as read): the RRset becomes exactly the new record.
run 0 publish replace "${DNS[@]}" --rr "$L2" && has "$OUT" "1 record\(s\) before, 1 after"
CHECKS=$((CHECKS + 1))
[ "$(tlsa_now "$OWNER")" = "311$H2" ] || fail "replace: kdig shows $(tlsa_now "$OWNER")"
delv_ok "$OWNER" lorawan.test "311$H2"

# Bad input: each refused with its code, the zone unchanged.
snapshot s0
LONG=$(printf 'a%.0s' $(seq 1 60)); LONG="$LONG.$LONG.$LONG.$LONG.lorawan.test."
run 2 publish add "${DNS[@]}" --rr "$LONG 60 IN TLSA $R1" && has "$ERR" "at most 253"
run 2 tlsa --cert js1.crt --usage 3 --selector 1 --mtype 1 --name "$LONG" && has "$ERR" "at most 253"
run 2 issue --role ns --name "${LONG%.}" --ca-cert js1.crt --ca-key js1.key --key-out x.key \
	--cert-out x.crt && has "$ERR" "at most 253"
run 2 publish add "${DNS[@]}" --rr "_443._tcp.js.other.test. 60 IN TLSA $R1" && has "$ERR" "not in zone"
run 2 publish add "${DNS[@]}" --rr "$OWNER 60 IN TLSA 3 1 1 zz" && has "$ERR" "record 1"
run 2 publish add --ns "$NS" --zone $Z --tsig-file "$T/missing.key" --ta-file "$DJ_KNOT_TA" --rr "$L1" &&
	has "$ERR" "missing.key: No such file"
(umask 077; echo "hmac-md5:upd:$(echo "$DJ_KNOT_TSIG" | cut -d: -f3)" >"$T/md5.key")
run 2 publish add --ns "$NS" --zone $Z --tsig-file "$T/md5.key" --ta-file "$DJ_KNOT_TA" --rr "$L1" &&
	has "$ERR" "not supported"
# A TSIG key the server refuses: a wrong secret (BADSIG) and an unknown key name (BADKEY).
(umask 077; echo "hmac-sha256:upd:$(openssl rand -base64 32)" >"$T/bad.key")
run 4 publish add --ns "$NS" --zone $Z --tsig-file "$T/bad.key" --ta-file "$DJ_KNOT_TA" --rr "$L1" &&
	has "$ERR" "refused our TSIG key.*NOTAUTH"
(umask 077; echo "hmac-sha256:nobody:$(openssl rand -base64 32)" >"$T/nokey.key")
run 4 publish add --ns "$NS" --zone $Z --tsig-file "$T/nokey.key" --ta-file "$DJ_KNOT_TA" --rr "$L1" &&
	has "$ERR" "NOTAUTH"
# A server that is down (nothing listens) and one that never answers (timeout).
DOWN=$(dj_free_port)
run 6 publish add --ns "127.0.0.1@$DOWN" --zone $Z --tsig-file "$DJ_KNOT_TSIG_FILE" \
	--ta-file "$DJ_KNOT_TA" --rr "$L1" && has "$ERR" "no answer from 127.0.0.1 port $DOWN"
HOLE=$(dj_free_port)
dj_spawn /dev/null /dev/null python3 -c "import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1',$HOLE)); s.listen(8); time.sleep(60)"
BLACKHOLE=$DJ_PID
dj_wait_port "$HOLE" "$BLACKHOLE" || fail "blackhole listener"
START=$(date +%s)
run 6 publish add --ns "127.0.0.1@$HOLE" --zone $Z --tsig-file "$DJ_KNOT_TSIG_FILE" \
	--ta-file "$DJ_KNOT_TA" --rr "$L1" --timeout 1 && has "$ERR" "no answer"
CHECKS=$((CHECKS + 1))
[ $(($(date +%s) - START)) -le 10 ] || fail "the timeout took $(($(date +%s) - START)) s"
dj_stop "$BLACKHOLE"
snapshot s1; same s0 s1 "bad input changed the zone"

# A change that cannot be validated (a wrong trust anchor) is a clear error, exit 7.
awk '{ d=$7; c=substr(d,1,1); c=(c=="0")?"1":"0"; $7=c substr(d,2); print }' "$DJ_KNOT_TA" >"$T/bad-ta.ds"
run 7 publish add --ns "$NS" --zone $Z --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$T/bad-ta.ds" \
	--rr "$L1" --timeout 1 && has "$ERR" "NOT confirmed.*bogus"

# delete: the records go, the RRset is empty, confirmed secure (NODATA/NXDOMAIN).
run 0 publish delete "${DNS[@]}" --rr "$L1" --rr "$L2" && has "$OUT" "0 after" &&
	has "$OUT" "confirmed by a validated lookup.*0 record\(s\), secure"
CHECKS=$((CHECKS + 1))
[ -z "$(tlsa_now "$OWNER")" ] || fail "delete: kdig still shows $(tlsa_now "$OWNER")"

# Certificate service provider: a device identity issued under the provider's root,
# pre-registered in the provider's zone, then moved to the customer's zone (the customer's
# key publishes it there; the provider's CA key never leaves the provider).
run 0 root --subject "Provider Root" --key-out prov.key --cert-out prov.crt
run 0 issue --role device --name "${DEV_P%.}" --subject 70b3d57ed0001234 --ca-cert prov.crt \
	--ca-key prov.key --key-out dev.key --cert-out dev.crt
LP=$("$BIN" tlsa --cert dev.crt --usage 3 --selector 1 --mtype 1 --name "$DEV_P" --ttl 60)
LC=$("$BIN" tlsa --cert dev.crt --usage 3 --selector 1 --mtype 1 --name "$DEV_C" --ttl 60)
HD=$("$BIN" tlsa --cert dev.crt --usage 3 --selector 1 --mtype 1 | awk '{print $4}')
run 0 publish add --ns "$NS" --zone provider.test --tsig-file "$DJ_KNOT_TSIG_FILE" \
	--ta-file "$DJ_KNOT_TA" --rr "$LP" --expect-none
delv_ok "$DEV_P" provider.test "311$HD"
run 0 publish add --ns "$NS" --zone customer.test --tsig-file "$DJ_KNOT_TSIG_FILE" \
	--ta-file "$DJ_KNOT_TA" --rr "$LC" --expect-none
delv_ok "$DEV_C" customer.test "311$HD"
run 0 publish delete --ns "$NS" --zone provider.test --tsig-file "$DJ_KNOT_TSIG_FILE" \
	--ta-file "$DJ_KNOT_TA" --rr "$LP"
CHECKS=$((CHECKS + 1))
[ -z "$(tlsa_now "$DEV_P")" ] && [ -n "$(tlsa_now "$DEV_C")" ] || fail "the move left the wrong records"
# The customer's record cannot go into the provider's zone by mistake.
run 2 publish add --ns "$NS" --zone provider.test --tsig-file "$DJ_KNOT_TSIG_FILE" \
	--ta-file "$DJ_KNOT_TA" --rr "$LC" && has "$ERR" "not in zone"

dj_end
