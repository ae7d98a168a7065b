# tests/lib/pgload.sh - join load and its audit for the PostgreSQL fault tests (issue 13): several
# danejoind instances on one database, simulated LoRaWAN 1.1 devices (danejoin-client join --sim
# --state: the device side checks every Join-accept and refuses a JoinNonce not above its last),
# each device's state saved before every JoinReq so that the very same Join-request can be
# replayed afterwards. Source after harness.sh; needs CLI and the PKI of dj_conf_pkix (root.crt,
# ns1.crt/key, ns1.kek) in the current directory.
#
#   pl_devices N                 pl.csv: N LoRaWAN 1.1 devices (0600); state directory pl/
#   pl_join PORT DEV STATE OUT   one JoinReq of DEV with STATE to 127.0.0.1:PORT; status 0 when
#                                answered Success and the device accepted it (keys match)
#   pl_worker ID PORTS DEVS...   until the file pl.stop exists: join each DEV in turn, through the
#                                PORTS (space-separated) in turn; every JoinReq saves the state it
#                                was made from as pl/pre.DEV.K and appends "DEV K PORT ok|no JN" to
#                                pl/log.ID (JN: the device's JoinNonce after an accepted join)
#   pl_audit PORTS               replay every accepted JoinReq of pl/log.* (through PORTS in turn)
#                                and count: PL_SENT, PL_OK (Successes), PL_REPLAYS,
#                                PL_REPLAYS_OK (must be 0), PL_JN_REPEATED (must be 0), then one
#                                fresh join of every device that must be accepted (PL_FRESH_BAD)

pl_devices() {
	local i
	(umask 077
	 {
		echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
		for i in $(seq 1 "$1"); do
			printf '%016x,70b3d57ed0000001,1.1,%s,%s\n' $((0x5000 + i)) \
				"$(openssl rand -hex 16)" "$(openssl rand -hex 16)"
		done
	 } >pl.csv)
	mkdir -p pl
	rm -f pl.stop pl/log.*
}

pl_join() {
	"$CLI" join --url "https://127.0.0.1:$1/" --server-name js.test --ca root.crt --cert ns1.crt \
		--key ns1.key --sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek \
		--kek-file ns1.kek --sim pl.csv --dev-eui "$2" --state "$3" >"$4" 2>"$4.err" &&
		grep -q "session keys match" "$4.err"
}

# pl_jn STATE DEV - the device's last accepted JoinNonce in STATE ("-": none)
pl_jn() {
	awk -v d="${2^^}" '$1 == d { print $3 }' "$1" 2>/dev/null
}

pl_worker() {
	local id=$1 ports=($2) k=0 n=0 d port
	shift 2
	while [ ! -e pl.stop ]; do
		for d in "$@"; do
			port=${ports[$((n % ${#ports[@]}))]}
			n=$((n + 1))
			k=$((k + 1))
			[ -f "pl/st.$d" ] && cp "pl/st.$d" "pl/pre.$d.$k"
			if pl_join "$port" "$d" "pl/st.$d" "pl/ans.$id"; then
				echo "$d $k $port ok $(pl_jn "pl/st.$d" "$d")" >>"pl/log.$id"
			else
				echo "$d $k $port no -" >>"pl/log.$id"
			fi
		done
	done
}

# pl__replay PORTS CHUNK - replay the accepted requests listed in CHUNK; "sent accepted" on stdout
pl__replay() {
	local ports=($1) d k p r jn n=0 sent=0 acc=0
	while read -r d k p r jn; do
		if [ -f "pl/pre.$d.$k" ]; then
			cp "pl/pre.$d.$k" "$2.st"
		else
			rm -f "$2.st"	# the device's first JoinReq: no state before it
		fi
		sent=$((sent + 1))
		if pl_join "${ports[$((n % ${#ports[@]}))]}" "$d" "$2.st" "$2.out"; then
			acc=$((acc + 1))
			echo "  REPLAY ACCEPTED: $d request $k (first answered through $p)" >&2
		fi
		n=$((n + 1))
	done <"$2"
	echo "$sent $acc" >"$2.res"
}

pl_audit() {
	local c dev ports=($1) jobs=()
	PL_SENT=$(cat pl/log.* | wc -l)
	PL_OK=$(cat pl/log.* | awk '$4 == "ok"' | wc -l)
	# replayed by 3 clients at a time, each through the instances in turn
	cat pl/log.* | awk '$4 == "ok"' | split -n r/3 - pl/chunk.
	for c in pl/chunk.??; do
		pl__replay "$1" "$c" &
		jobs+=($!)
	done
	wait "${jobs[@]}"
	PL_REPLAYS=$(cat pl/chunk.??.res | awk '{ s += $1 } END { print s + 0 }')
	PL_REPLAYS_OK=$(cat pl/chunk.??.res | awk '{ s += $2 } END { print s + 0 }')
	# every accepted JoinNonce of a device, over all instances: none twice
	PL_JN_REPEATED=$(cat pl/log.* | awk '$4 == "ok" { print $1, $5 }' | sort | uniq -d | wc -l)
	PL_FRESH_BAD=0
	for dev in $(tail -n +2 pl.csv | cut -d, -f1); do
		pl_join "${ports[0]}" "$dev" "pl/st.$dev" pl/fresh.out && continue
		PL_FRESH_BAD=$((PL_FRESH_BAD + 1))
		echo "  fresh join of $dev refused: $(tail -c 300 pl/fresh.out) $(tail -2 pl/fresh.out.err)"
	done
}

# pl_figures NAME KILLS - the figures line the lead quotes
pl_figures() {
	echo "figures ($1): requests sent $PL_SENT, kills $2, Successes $PL_OK, replays sent" \
		"$PL_REPLAYS, replays accepted $PL_REPLAYS_OK, JoinNonces repeated $PL_JN_REPEATED," \
		"fresh joins refused afterwards $PL_FRESH_BAD"
}
