# tests/lib/harness.sh - the test harness of the integration tests and benchmarks (STYLE.md rule
# 11): begin, check, wait, spawn with cleanup, end; a throwaway private PKI made with the openssl
# CLI; free loopback ports; the test clock. It sources the other helpers of tests/lib (knot.sh,
# mosquitto.sh, danejoin.sh, postgres.sh, console.sh). Source it, then call dj_begin; it
# defines functions only.
#
#   . "$(dirname "$0")/../lib/harness.sh"
#   dj_begin NAME "$@"          BUILD_DIR [SOURCE_DIR]: a private directory, one cleanup trap
#   check "what" CMD...          one check: CMD must succeed
#   dj_spawn OUT ERR CMD...      a background process that cleanup kills; its pid in DJ_PID
#   dj_end [LOG...]              "N passed, N failed"; exit status 1 if any failed
#
# Every process started through dj_spawn (and knotd, mosquitto, danejoind by their helpers) is
# killed by the one EXIT trap, even when the script fails half-way. DJ_KEEP=1 keeps the
# directory for a post-mortem.

DJ_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$DJ_LIB/knot.sh"
. "$DJ_LIB/mosquitto.sh"
. "$DJ_LIB/danejoin.sh"
. "$DJ_LIB/postgres.sh"
. "$DJ_LIB/console.sh"

DJ_PIDS=()
FAILS=0
CHECKS=0

# dj_begin NAME BUILD_DIR [SOURCE_DIR] - resolve the directories and the programs, make the
# private directory T and cd into it, set the one EXIT trap
dj_begin() {
	local name=$1
	BUILD_DIR=$(cd "${2:?usage: $name BUILD_DIR [SOURCE_DIR]}" && pwd) || exit 1
	SOURCE_DIR=$(cd "${3:-$DJ_LIB/../..}" && pwd) || exit 1
	SRC=$SOURCE_DIR
	JSD="$BUILD_DIR/joinserver/danejoind/danejoind"
	CLI="$BUILD_DIR/client/danejoin-client"
	DEV="$BUILD_DIR/devices/danejoin-devices"
	CA="$BUILD_DIR/ca-tools/danejoin-ca"
	T=$(mktemp -d "${TMPDIR:-/tmp}/dj-$name.XXXXXX") || exit 1
	OUT="$T/out"
	ERR="$T/err"
	RUN_PRE=()
	trap dj__cleanup EXIT
	cd "$T" || exit 1
}

# dj_bench_begin NAME USAGE ARGS... - a benchmark's start: dj_begin NAME with the first of ARGS
# as BUILD_DIR (else the usage line "NAME.sh USAGE" and exit 2), danejoind started quiet. The
# benchmark then reads its own parameters from ARGS ($2, $3, ...) with their defaults.
dj_bench_begin() {
	local name=$1 usage=$2
	shift 2
	[ $# -ge 1 ] || { echo "usage: $name.sh $usage" >&2; exit 2; }
	dj_begin "$name" "$1"
	DJ_JSD_QUIET=1
}

# dj_need PROGRAM... - every program is built (or installed); else FAIL and exit
dj_need() {
	local b
	for b in "$@"; do
		case $b in
		/*) [ -x "$b" ] || { echo "FAIL: $b is not built"; exit 1; } ;;
		*) command -v "$b" >/dev/null || { echo "FAIL: $b is not installed"; exit 1; } ;;
		esac
	done
}

# dj__cleanup - the EXIT trap: kill what was spawned, stop the servers, remove T
dj__cleanup() {
	local p
	for p in "${DJ_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	[ -n "${DJ_JSD_PID:-}" ] && kill -9 "$DJ_JSD_PID" 2>/dev/null
	dj_mosq_stop KILL
	dj_knot_stop
	pg_stop_all
	if [ -n "${DJ_KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}

# dj_spawn OUT ERR CMD... - start CMD in the background (stdout to OUT, stderr to ERR); cleanup
# kills it. Its pid in DJ_PID.
dj_spawn() {
	local o=$1 e=$2
	shift 2
	"$@" >"$o" 2>"$e" &
	DJ_PID=$!
	DJ_PIDS+=("$DJ_PID")
}

# dj_reap PID - wait for a spawned process; its exit status (cleanup forgets it)
dj_reap() {
	local rc p keep=()
	wait "$1"
	rc=$?
	for p in "${DJ_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	DJ_PIDS=("${keep[@]}")
	return $rc
}

# dj_stop PID [SIGNAL] - end a spawned process (default TERM) and reap it; its exit status
dj_stop() {
	kill -"${2:-TERM}" "$1" 2>/dev/null
	dj_reap "$1"
}

# check DESC CMD... - one check: CMD must succeed
check() {
	local desc=$1
	shift
	CHECKS=$((CHECKS + 1))
	"$@" && return 0
	echo "FAIL: $desc"
	FAILS=$((FAILS + 1))
	return 1
}

# fail MSG - one failed check, with the last run's output ($OUT, $ERR) when there is one
fail() {
	echo "FAIL: $*"
	[ -s "$OUT" ] && { echo "--- stdout"; cat "$OUT"; }
	[ -s "$ERR" ] && { echo "--- stderr"; cat "$ERR"; }
	FAILS=$((FAILS + 1))
	return 1
}

# run CODE ARGS... - one check: "$BIN" "${RUN_PRE[@]}" ARGS exits CODE; output in $OUT, $ERR
run() {
	local want=$1 got
	shift
	CHECKS=$((CHECKS + 1))
	"$BIN" "${RUN_PRE[@]}" "$@" >"$OUT" 2>"$ERR"
	got=$?
	[ "$got" -eq "$want" ] || { fail "$(basename "$BIN") $* exited $got, expected $want"; return 1; }
}

# has FILE ERE / lacks FILE ERE - one check: the file matches (does not match, any case)
has() {
	CHECKS=$((CHECKS + 1))
	grep -Eq -- "$2" "$1" || fail "$(basename "$1") lacks /$2/"
}
lacks() {
	CHECKS=$((CHECKS + 1))
	! grep -Eqi -- "$2" "$1" || fail "$(basename "$1") contains /$2/"
}

# same A B DESC - one check: two files (snapshots) are identical
same() {
	CHECKS=$((CHECKS + 1))
	cmp -s "$1" "$2" || { fail "$3"; diff "$1" "$2" | head -20; return 1; }
}

# eq GOT WANT DESC - one check: two strings are equal
eq() {
	CHECKS=$((CHECKS + 1))
	[ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

# ok CMD... - one check: CMD succeeds (the command line is the message)
ok() {
	CHECKS=$((CHECKS + 1))
	"$@" || fail "$*"
}

# matches TEXT ERE - TEXT matches (a check command; prints TEXT when it does not)
matches() {
	grep -qE -- "$2" <<<"$1" && return 0
	echo "  got: $1"
	return 1
}

# dj_end [LOG...] - the closing summary; on failure the tail of each LOG; exit 1 if any failed
dj_end() {
	local l
	if [ "$FAILS" -ne 0 ]; then
		for l in "$@"; do [ -f "$l" ] && { echo "--- $l (tail)"; tail -20 "$l"; }; done
	fi
	echo "$((CHECKS - FAILS)) passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
	exit
}

# ---- waiting, bounded ------------------------------------------------------------------------

# dj_wait_for SECONDS CMD... - poll until CMD succeeds; status 1 after SECONDS
dj_wait_for() {
	local n=$(($1 * 20))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}

# dj_wait_log FILE ERE [SECONDS] - until FILE has a line matching ERE (default 10 s)
dj_wait_log() {
	dj_wait_for "${3:-10}" grep -Eq -- "$2" "$1"
}

# dj_wait_exit PID [SECONDS] - until PID has exited (default 10 s)
dj_wait_exit() {
	dj_wait_for "${2:-10}" eval "! kill -0 $1 2>/dev/null"
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

# ---- the test clock (common/dj_clock.h) ---------------------------------------------------------

# dj_test_clock - give the processes started from now on the test clock, when the build has it
# (DJ_TEST_HOOKS=ON); else dj_clock_advance sleeps
dj_test_clock() {
	grep -q '^DJ_TEST_HOOKS:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || return 0
	export DJ_TEST_CLOCK_FILE="$T/test-clock"
	echo 0 >"$DJ_TEST_CLOCK_FILE"
}

# dj_clock_advance SECONDS - let SECONDS pass for the daemons: the test clock jumps ahead (a new
# file moved into place, never half-written), or, without one, a real sleep
dj_clock_advance() {
	local now
	if [ -z "${DJ_TEST_CLOCK_FILE:-}" ]; then
		sleep "$1"
		return
	fi
	now=$(cat "$DJ_TEST_CLOCK_FILE")
	echo $((now + $1 * 1000)) >"$DJ_TEST_CLOCK_FILE.new" && mv "$DJ_TEST_CLOCK_FILE.new" "$DJ_TEST_CLOCK_FILE"
}

# ---- a throwaway PKI -------------------------------------------------------------------------

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

# dj_mkcerts CA NAME:SAN... - dj_mkcert for each NAME:SAN under CA
dj_mkcerts() {
	local ca=$1 a
	shift
	for a in "$@"; do dj_mkcert "${a%%:*}" "${a#*:}" "$ca" || return 1; done
}

# dj_selfsigned NAME SAN [openssl-req options...] - a self-signed EC P-256 leaf (DANE-EE)
dj_selfsigned() {
	local n=$1 san=$2
	shift 2
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$n.key" \
		-subj "/CN=$n" -days 30 -addext "subjectAltName=$san" \
		-addext "extendedKeyUsage=serverAuth,clientAuth" "$@" -out "$n.crt" 2>/dev/null &&
		chmod 600 "$n.key"
}

# dj_genkey NAME... - EC P-256 private keys NAME.key (0600)
dj_genkey() {
	local k
	for k in "$@"; do
		(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
			-out "$k.key" 2>/dev/null) || return 1
	done
}

# dj_kek NAME... - a random 128-bit KEK in NAME.kek (0600)
dj_kek() {
	local k
	for k in "$@"; do (umask 077 && openssl rand -hex 16 >"$k.kek") || return 1; done
}

# TLSA association data (RFC 6698 §2.1): of a certificate (spki256: 3 1 1, cert256: x 0 1,
# certhex: x 0 0) or of a private key (spki_hex: 3 1 0, spki_dgst KEY sha256|sha512: 3 1 1/2)
dj_spki256() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1; }
dj_cert256() { openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1; }
dj_certhex() { openssl x509 -in "$1" -outform DER | od -An -v -tx1 | tr -d ' \n'; }
dj_spki_hex() { openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | od -An -v -tx1 | tr -d ' \n'; }
dj_spki_dgst() { openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | openssl dgst -"$2" -r | cut -d' ' -f1; }

# dj_devices_csv N VERSION - N devices with random keys under JoinEUI 70b3d57ed0000001
dj_devices_csv() {
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	openssl rand -hex $((32 * $1)) | fold -w 64 | awk -v v="$2" '{
		nk = (v == "1.1") ? substr($0, 33, 32) : ""
		printf "%016x,70b3d57ed0000001,%s,%s,%s\n", NR + 4096, v, substr($0, 1, 32), nk }'
}

# dj_devices3_csv - the three devices of the admin API and console tests, random keys:
# 0000000000000103 (1.0.3) and 0000000000000110 (1.1) under JoinEUI 70b3d57ed0000001,
# 0000000000000111 (1.1) under 70b3d57ed0000002
dj_devices3_csv() {
	local k=($(openssl rand -hex 80 | fold -w 32))

	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000103,70b3d57ed0000001,1.0.3,${k[0]},"
	echo "0000000000000110,70b3d57ed0000001,1.1,${k[1]},${k[2]}"
	echo "0000000000000111,70b3d57ed0000002,1.1,${k[3]},${k[4]}"
}

# dj_import_csvs - the import files of the admin API and console tests: bad.csv, three new
# devices (0000000000000201..203) whose line 3 has an app_key two characters too long ("ZZ");
# good.csv, the same with that line fixed
dj_import_csvs() {
	local k=($(openssl rand -hex 64 | fold -w 32))

	{
		echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
		echo "0000000000000201,70b3d57ed0000001,1.0.3,${k[0]},"
		echo "0000000000000202,70b3d57ed0000001,1.0.3,${k[1]}ZZ,"
		echo "0000000000000203,70b3d57ed0000001,1.1,${k[2]},${k[3]}"
	} >bad.csv
	sed 's/ZZ,$/,/' bad.csv >good.csv
}
