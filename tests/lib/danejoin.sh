# tests/lib/danejoin.sh - danejoin's own pieces for the tests and benchmarks: configuration
# templates, the store, danejoind started and stopped, ownership keys published, metrics read.
# Sourced by harness.sh (which sets JSD, DEV and the other program paths in dj_begin).

# dj_conf_section NAME KEY=VALUE... - one configuration section: [NAME], then "KEY = VALUE" for
# each argument (a value may hold spaces: quote the argument)
dj_conf_section() {
	local a
	echo "[$1]"
	shift
	for a in "$@"; do printf '%s = %s\n' "${a%%=*}" "${a#*=}"; done
}

# dj_conf_store - [store] and [keys]: js.db and master.key in the test's directory; with
# DJ_STORE_CONNINFO set, the PostgreSQL store it names (tests/lib/postgres.sh: $PG_CONNINFO)
dj_conf_store() {
	if [ -n "${DJ_STORE_CONNINFO:-}" ]; then
		dj_conf_section store backend=postgresql conninfo="$DJ_STORE_CONNINFO"
	else
		dj_conf_section store path=js.db
	fi
	dj_conf_section keys master_key_file=master.key
}

# dj_conf_peer NAME IDENTITY ROLE SENDER_IDS [KEY=VALUE...] - one [peer.NAME] section
dj_conf_peer() {
	local n=$1 id=$2 role=$3 sids=$4
	shift 4
	dj_conf_section "peer.$n" identity="$id" role="$role" sender_ids="$sids" "$@"
}

# dj_conf_pkix PORT MPORT [LISTEN-KEY=VALUE...] - the common PKIX configuration: the store;
# [listen] on 127.0.0.1:PORT with js.crt, client certificates checked against root.crt, the
# metrics on 127.0.0.1:MPORT ("off": none); [js] for JoinEUIs 70b3d57ed0000000/48; the network
# server ns1 (ns1.test, SenderID 000013, NSID ns1.test, KEK ns1.kek labelled ns1-kek)
dj_conf_pkix() {
	local port=$1 m=$2
	shift 2
	[ "$m" = off ] || m=127.0.0.1:$m
	dj_conf_store
	dj_conf_section listen address=127.0.0.1:"$port" cert_file=js.crt key_file=js.key \
		auth=pkix client_ca_file=root.crt metrics_address="$m" "$@"
	dj_conf_section js join_euis=70b3d57ed0000000/48
	dj_conf_peer ns1 ns1.test ns 000013 ns_ids=ns1.test kek_label=ns1-kek kek_file=ns1.kek
}

# dj_conf_mqtt PORT CLIENT_ID [KEY=VALUE...] - [mqtt]: the broker on 127.0.0.1:PORT, its CA
# root.crt, our client certificate jsmq.crt
dj_conf_mqtt() {
	local port=$1 id=$2
	shift 2
	dj_conf_section mqtt host=127.0.0.1 port="$port" cafile=root.crt cert=jsmq.crt \
		key=jsmq.key client_id="$id" "$@"
}

# dj_store_sql SQL - one query on the test's store, one row per line ('|' between columns):
# psql on DJ_STORE_CONNINFO when set, else sqlite3 on js.db. For checks that read the tables
# directly and should hold on either backend (bytea literals differ: keep to counts and text).
dj_store_sql() {
	if [ -n "${DJ_STORE_CONNINFO:-}" ]; then
		psql -X -q -At -v ON_ERROR_STOP=1 "$DJ_STORE_CONNINFO" -c "$1"
	else
		sqlite3 js.db "$1"
	fi
}

# dj_store_init CONF [CSV] - danejoin-devices init, and import CSV; status 0 when both worked
dj_store_init() {
	"$DEV" --config "$1" init >/dev/null 2>&1 || return 1
	[ -z "${2:-}" ] || "$DEV" --config "$1" import "$2" >/dev/null 2>&1
}

# dj_jsd_start CONF LOG PORT - danejoind in the foreground (cleanup kills it), logging to LOG
# (-v unless DJ_JSD_QUIET is set); its pid in DJ_JSD_PID; status 0 once PORT accepts
dj_jsd_start() {
	local v=-v
	[ -z "${DJ_JSD_QUIET:-}" ] || v=
	"$JSD" --config "$1" $v >"$2" 2>&1 &
	DJ_JSD_PID=$!
	dj_wait_port "$3" "$DJ_JSD_PID"
}

# dj_jsd_stop [SIGNAL] - stop danejoind (default TERM) and wait; its exit status
dj_jsd_stop() {
	local rc
	kill -"${1:-TERM}" "$DJ_JSD_PID" 2>/dev/null
	wait "$DJ_JSD_PID" 2>/dev/null
	rc=$?
	DJ_JSD_PID=""
	return $rc
}

# dj_jsd_reload LOG - SIGHUP danejoind; status 0 once LOG says the configuration was reloaded
dj_jsd_reload() {
	kill -HUP "$DJ_JSD_PID"
	dj_wait_log "$1" "configuration reloaded" 5
}

# dj_check_config WANT CONF [ERE] - danejoind --check-config CONF exits WANT (and says ERE); its
# output in check.out
dj_check_config() {
	"$JSD" --config "$2" --check-config >check.out 2>&1
	local rc=$?
	[ $rc -eq "$1" ] && { [ -z "${3:-}" ] || grep -Eq -- "$3" check.out; } && return 0
	echo "  exit $rc: $(cat check.out)"
	return 1
}

# dj_metric MPORT NAME - the value of one metric of danejoind's endpoint on MPORT
dj_metric() {
	curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}

# dj_owner_dns - the DNS of an ownership test: knotd in $T/knot serving the signed zones
# maker.test (the manufacturer), opa.test and opb.test (operators A and B); sets NSADDR, STUBS
# (ZONE@NSADDR for each) and DNS (danejoin-devices' DNS options, chains published with TTL 4);
# makes the ownership keys maker, opa, opb and the self-signed certificates js (js.maker.test),
# nsa and nsb (_ns-client.ns1.opa.test, _ns-client.ns1.opb.test). Status 1 when knotd failed.
dj_owner_dns() {
	dj_knot_start "$T/knot" "maker.test opa.test opb.test" "" || { echo "FAIL: knotd"; return 1; }
	NSADDR="127.0.0.1@$DJ_KNOT_PORT"
	STUBS="maker.test@$NSADDR opa.test@$NSADDR opb.test@$NSADDR"
	DNS=(--ns "$NSADDR" --tsig-file "$DJ_KNOT_TSIG_FILE" --ta-file "$DJ_KNOT_TA" --ttl 4)
	dj_genkey maker opa opb
	dj_selfsigned js DNS:js.maker.test
	dj_selfsigned nsa DNS:_ns-client.ns1.opa.test
	dj_selfsigned nsb DNS:_ns-client.ns1.opb.test
	return 0
}

# dj_owner_publish TTL ZONE... - publish each zone's ownership key (_owner.ZONE TLSA 3 1 0 of
# ZONE-without-.test.key, e.g. opa.key for opa.test) by TSIG update; wait until the last is seen
dj_owner_publish() {
	local ttl=$1 z
	shift
	for z in "$@"; do
		dj_knot_update "$z" <<EOF || { echo "FAIL: _owner.$z"; return 1; }
update add _owner.$z. $ttl IN TLSA 3 1 0 $(dj_spki_hex "${z%.test}.key")
EOF
	done
	dj_knot_wait "_owner.$z." TLSA "3 1 0"
}

# dj_tlsa_publish ZONE TTL NAME=CERT... - publish TLSA 3 1 1 of each CERT at NAME (in ZONE)
dj_tlsa_publish() {
	local zone=$1 ttl=$2 a
	shift 2
	for a in "$@"; do
		echo "update add ${a%%=*}. $ttl TLSA 3 1 1 $(dj_spki256 "${a#*=}")"
	done | dj_knot_update "$zone"
}

# dj_authcode_transfer DEVEUI - operator A (opa.test, opa.key) sets an auth code for DEVEUI and
# danejoin-devices moves it to B (opb.test: NetID 00001a, AS as.opb.test), signed as the
# registry (maker.key); two checks. Uses the caller's dj.conf, NSADDR and DNS (the --ns,
# --tsig-file and --ta-file flags) as the ownership scripts set them.
dj_authcode_transfer() {
	"$DEV" --config dj.conf authcode set "$1" --zone opa.test --key opa.key \
		--ta-file "$DJ_KNOT_TA" --lookup-via "$NSADDR" --out codes.csv >ac.out 2>&1
	check "A sets an auth code" test $? -eq 0
	"$DEV" --config dj.conf transfer --auth-codes codes.csv --to-zone opb.test --netids 00001a \
		--as-ids as.opb.test --key maker.key "${DNS[@]}" >tr.out 2>&1
	check "transfer to B by auth code" grep -q "transferred 1 devices" tr.out
}
