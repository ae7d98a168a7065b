# tests/lib/knot.sh - a real authoritative DNS server on loopback for integration tests and the
# quick start: knotd serving DNSSEC-signed zones (ECDSA P-256, automatic signing) that accept
# TSIG-signed dynamic updates, plus optional unsigned zones. harness.sh sources it.
#
#   dj_knot_start DIR "signed zones" ["unsigned zones"]
#       starts knotd in DIR and waits until every signed zone answers with RRSIGs. Sets
#       DJ_KNOT_PORT (UDP/TCP on 127.0.0.1), DJ_KNOT_PID, DJ_KNOT_TSIG ("hmac-sha256:upd:<secret>",
#       the knsupdate -y form), DJ_KNOT_TSIG_FILE (a 0600 file holding that line), DJ_KNOT_TA
#       (a trust-anchor file with the DS of every signed zone, for ub_ctx_add_ta_file) and
#       DJ_KNOT_CONF. Zones are names without the trailing dot, e.g. "lorawan.test".
#   dj_knot_update ZONE <<EOF ... EOF
#       feeds knsupdate "update ..." lines (from stdin) for ZONE, TSIG-signed; status 0 on success.
#   dj_knot_wait NAME TYPE [want]
#       waits (bounded) until kdig sees NAME TYPE (with "want" in the answer, if given).
#   dj_knot_q NAME TYPE
#       what knotd holds (authoritative, +short).
#   dj_knot_txt_tamper NAME ZONE
#       NAME's TXT record (base64 in 255-character strings) published again with its last byte
#       changed (a forged signature), by a TSIG update of ZONE; status 0 on success.
#   dj_knot_stop / dj_knot_restart
#       stop knotd (state kept in DIR), start it again with the same zones, keys and port.
#
# The zone files hold SOA, NS and ns A only; tests add everything else by dynamic update.

# _dj_knot_zonefile ZONE FILE
_dj_knot_zonefile() {
	cat >"$2" <<EOF
\$ORIGIN $1.
\$TTL 60
@  SOA ns.$1. hostmaster.$1. 1 3600 600 86400 60
@  NS  ns
ns A   127.0.0.1
EOF
}

dj_knot_start() {
	local dir=$1 signed=$2 unsigned=${3:-} z secret
	DJ_KNOT_DIR=$dir
	DJ_KNOT_SIGNED=$signed
	mkdir -p "$dir/run" "$dir/db" "$dir/zones" || return 1
	DJ_KNOT_PORT=${DJ_KNOT_PORT:-$(dj_free_port)}
	secret=$(keymgr -t upd hmac-sha256 | awk '/secret:/ {print $2}')
	[ -n "$secret" ] || { echo "knot.sh: keymgr gave no TSIG secret" >&2; return 1; }
	DJ_KNOT_TSIG="hmac-sha256:upd:$secret"
	DJ_KNOT_TSIG_FILE=$dir/tsig.key
	(umask 077 && echo "$DJ_KNOT_TSIG" >"$DJ_KNOT_TSIG_FILE")
	DJ_KNOT_CONF=$dir/knot.conf
	{
		cat <<EOF
server:
    rundir: "$dir/run"
    listen: 127.0.0.1@$DJ_KNOT_PORT
database:
    storage: "$dir/db"
log:
  - target: "$dir/knot.log"
    any: info
key:
  - id: upd
    algorithm: hmac-sha256
    secret: $secret
acl:
  - id: upd_acl
    address: 127.0.0.1
    key: upd
    action: update
policy:
  - id: t
    algorithm: ecdsap256sha256
    single-type-signing: on
zone:
EOF
		for z in $signed; do
			printf '  - domain: %s\n    storage: "%s/zones"\n    file: "%s.zone"\n' \
				"$z" "$dir" "$z"
			printf '    dnssec-signing: on\n    dnssec-policy: t\n    acl: upd_acl\n'
			printf '    zonefile-sync: 0\n'
		done
		for z in $unsigned; do
			printf '  - domain: %s\n    storage: "%s/zones"\n    file: "%s.zone"\n' \
				"$z" "$dir" "$z"
			printf '    acl: upd_acl\n    zonefile-sync: 0\n'
		done
	} >"$DJ_KNOT_CONF"
	(umask 077 && chmod 600 "$DJ_KNOT_CONF")
	for z in $signed $unsigned; do
		[ -f "$dir/zones/$z.zone" ] || _dj_knot_zonefile "$z" "$dir/zones/$z.zone"
	done
	_dj_knot_launch || return 1
	DJ_KNOT_TA=$dir/ta.ds
	: >"$DJ_KNOT_TA"
	for z in $signed; do
		keymgr -c "$DJ_KNOT_CONF" "$z." ds 2>/dev/null | head -1 | sed 's/ DS / IN DS /' \
			>>"$DJ_KNOT_TA"
		grep -q "^$z\. IN DS " "$DJ_KNOT_TA" || {
			echo "knot.sh: no DS for $z" >&2
			return 1
		}
	done
}

# _dj_knot_launch - start knotd on the existing configuration; wait for signed answers
_dj_knot_launch() {
	local z i
	knotd -c "$DJ_KNOT_CONF" -d || { echo "knot.sh: knotd did not start" >&2; return 1; }
	# bounded, but generous: on a loaded machine knotd may take many seconds to come up
	for i in $(seq 1 400); do
		[ -s "$DJ_KNOT_DIR/run/knot.pid" ] && break
		sleep 0.05
	done
	DJ_KNOT_PID=$(cat "$DJ_KNOT_DIR/run/knot.pid" 2>/dev/null)
	for z in $DJ_KNOT_SIGNED; do
		for i in $(seq 1 600); do
			kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +dnssec +norec +time=1 +retry=0 SOA "$z." \
				2>/dev/null | grep -q "RRSIG" && break
			sleep 0.05
		done
		[ "$i" -lt 600 ] || { echo "knot.sh: zone $z not signed in time" >&2; return 1; }
	done
}

dj_knot_update() {
	{
		echo "server 127.0.0.1 $DJ_KNOT_PORT"
		echo "zone $1."
		cat
		echo "send"
		echo "answer"
	} | knsupdate -y "$DJ_KNOT_TSIG" >"$DJ_KNOT_DIR/last-update.out" 2>&1 &&
		grep -q "status: NOERROR" "$DJ_KNOT_DIR/last-update.out"
}

dj_knot_wait() {
	local i
	for i in $(seq 1 100); do
		kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +short +norec +time=1 +retry=0 "$2" "$1" 2>/dev/null |
			grep -q -- "${3:-.}" && return 0
		sleep 0.05
	done
	return 1
}

dj_knot_q() {
	kdig @127.0.0.1 -p "$DJ_KNOT_PORT" +short +norec "$2" "$1" 2>/dev/null
}

# dj_knot_txt_tamper NAME ZONE - NAME's TXT (a base64 blob split in 255-character strings, e.g.
# an ownership chain) decoded into chain.bin, its last byte plus one into bad.bin, published again
# in place of the old record (TTL 4) by a TSIG update of ZONE. Status: the update's.
dj_knot_txt_tamper() {
	local name=$1 zone=$2 last txt
	dj_knot_q "$name" TXT | tr -d '" \n' | base64 -d >chain.bin
	last=$(tail -c 1 chain.bin | od -An -tu1 | tr -d ' ')
	{ head -c -1 chain.bin; printf "\\$(printf '%03o' $(((last + 1) % 256)))"; } >bad.bin
	txt=$(base64 -w0 bad.bin | fold -w 255 | sed 's/.*/"&"/' | tr '\n' ' ')
	dj_knot_update "$zone" <<EOF
update delete $name TXT
update add $name 4 TXT $txt
EOF
}

dj_knot_stop() {
	[ -n "${DJ_KNOT_PID:-}" ] || return 0
	kill "$DJ_KNOT_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$DJ_KNOT_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$DJ_KNOT_PID" 2>/dev/null || true
	DJ_KNOT_PID=
}

dj_knot_restart() {
	dj_knot_stop
	_dj_knot_launch
}

# dj_knot_delv_anchors FILE - DJ_KNOT_TA rewritten as a delv/named trust-anchors clause
dj_knot_delv_anchors() {
	awk '{ printf "trust-anchors { \"%s\" static-ds %s %s %s \"%s\"; };\n", $1, $4, $5, $6, $7 }' \
		"$DJ_KNOT_TA" >"$1"
}
