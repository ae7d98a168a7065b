# tests/lib/harness.sh - shell helpers shared by integration tests and benchmarks: a throwaway
# private PKI made with the openssl CLI, free loopback ports, and waiting for a listener.
# Source it; it defines functions only.

# dj_mkroot NAME - a self-signed EC P-256 root: NAME.crt, NAME.key
dj_mkroot() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
		-subj "/CN=$1" -days 30 -out "$1.crt" 2>/dev/null && chmod 600 "$1.key"
}

# dj_mkcert NAME SAN CA - a leaf signed by CA (serverAuth and clientAuth): NAME.crt, NAME.key
dj_mkcert() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
		-subj "/CN=$1" -out "$1.csr" 2>/dev/null || return 1
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days 30 \
		-extfile "$1.ext" -out "$1.crt" 2>/dev/null && chmod 600 "$1.key"
}

# dj_free_port - a loopback TCP port nobody listens on now, below the kernel's ephemeral range
# (ip_local_port_range, 32768-60999 on Debian): a port from that range may meanwhile become the
# local end of some client's connection, and a server restarted on it then fails to bind.
dj_free_port() {
	local p lo
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	[ "$lo" -gt 12000 ] 2>/dev/null || lo=32768
	while :; do
		p=$((10000 + RANDOM % (lo - 10000)))
		(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
	done
}

# dj_wait_port PORT PID - wait (bounded) until PORT accepts or PID died; status 0 if listening
dj_wait_port() {
	for _ in $(seq 1 400); do
		(exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# dj_devices_csv N VERSION - N devices with random keys under JoinEUI 70b3d57ed0000001
dj_devices_csv() {
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	openssl rand -hex $((32 * $1)) | fold -w 64 | awk -v v="$2" '{
		nk = (v == "1.1") ? substr($0, 33, 32) : ""
		printf "%016x,70b3d57ed0000001,%s,%s,%s\n", NR + 4096, v, substr($0, 1, 32), nk }'
}
