#!/bin/bash
# bench_calls.sh - what danejoind does per JoinReq, in figures that do not depend on how busy
# the machine is (issue 15): system calls (strace -c), user-space instructions (callgrind), or block
# requests and fdatasync calls (perf stat).
# Prints figures only; asserts nothing.
#
#   bash tests/bench/bench_calls.sh BUILD_DIR syscalls [REQUESTS]
#	bench_bi.sh BUILD_DIR 20000 64 REQUESTS (default 20000) with strace -c -f attached to
#	danejoind over the timed phase: each system call's count per JoinReq
#   bash tests/bench/bench_calls.sh BUILD_DIR instructions [REQUESTS]
#	bench_bi.sh over a copy of BUILD_DIR whose danejoind runs under valgrind --tool=callgrind,
#	2000 devices, 64 connections, REQUESTS (default 4000) JoinReqs: instructions (Ir) per
#	JoinReq, inclusive, of the whole daemon and of the main parts, over the timed phase (the
#	counters are zeroed as the client's clock starts: start-up and handshakes left out)
#
#   bash tests/bench/bench_calls.sh BUILD_DIR blockio [REQUESTS]
#	bench_bi.sh BUILD_DIR 20000 64 REQUESTS (default 20000) with perf stat counting, over the
#	timed phase, the block-layer requests danejoind's threads issue and their fdatasync calls:
#	each per JoinReq, and requests per fdatasync (RATE=N is passed on: the open loop)
#
# KEEP=DIR (instructions): keep the callgrind profile and its inclusive listing in DIR.
# Needs strace, or valgrind (callgrind_annotate). Under callgrind the load generator may time
# out a few requests on a loaded machine: the request count used is the one that succeeded.
set -u
BUILD=$(cd "${1:?usage: bench_calls.sh BUILD_DIR syscalls|instructions|blockio [REQUESTS]}" && pwd) || exit 2
MODE=${2:?usage: bench_calls.sh BUILD_DIR syscalls|instructions|blockio [REQUESTS]}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dj-bench_calls.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

case $MODE in
syscalls)
	command -v strace >/dev/null || { echo "bench_calls: strace is not installed"; exit 1; }
	REQS=${3:-20000}
	ATTACH="strace -c -f -o $T/strace.txt -p" bash "$HERE/bench_bi.sh" "$BUILD" 20000 64 "$REQS" \
		>"$T/bench.txt" 2>&1
	grep -E "^(success|elapsed)" "$T/bench.txt"
	[ -s "$T/strace.txt" ] || { echo "bench_calls: no strace summary"; cat "$T/bench.txt"; exit 1; }
	echo "danejoind system calls per JoinReq ($REQS JoinReqs, 64 connections; strace -c -f):"
	awk -v n="$REQS" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
		calls = $4; name = $NF
		printf "  %-16s %8.3f\n", name, calls / n; tot += calls }
		END { printf "  %-16s %8.3f\n", "total", tot / n }' "$T/strace.txt"
	;;
instructions)
	command -v valgrind >/dev/null || { echo "bench_calls: valgrind is not installed"; exit 1; }
	REQS=${3:-4000}
	W=$T/build
	(cd "$BUILD" && find . -type d) | while read -r d; do mkdir -p "$W/$d"; done
	(cd "$BUILD" && find . -type f) | while read -r f; do ln -s "$BUILD/$f" "$W/$f"; done
	rm "$W/joinserver/danejoind/danejoind"
	printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/cg.%%p %s "$@"\n' \
		"$T" "$BUILD/joinserver/danejoind/danejoind" >"$W/joinserver/danejoind/danejoind"
	chmod +x "$W/joinserver/danejoind/danejoind"
	ON_CLOCK="callgrind_control -z" bash "$HERE/bench_bi.sh" "$W" 2000 64 "$REQS" >"$T/bench.txt" 2>&1
	grep -E "^(success|elapsed)" "$T/bench.txt"
	# the counters were zeroed as the client's clock started: the timed requests only
	OK=$(awk '/^success/ { ok = $2 } /^warm-up/ { w = $2 } END { print ok - w }' "$T/bench.txt")
	CG=$(ls "$T"/cg.* 2>/dev/null | head -1)
	[ -n "$CG" ] && [ "${OK:-0}" -gt 0 ] || { echo "bench_calls: no profile"; cat "$T/bench.txt"; exit 1; }
	callgrind_annotate --inclusive=yes --threshold=100 "$CG" >"$T/incl.txt" 2>/dev/null
	echo "danejoind instructions (callgrind Ir, inclusive) per JoinReq ($OK JoinReqs, 64 connections;" \
		"the timed phase: start-up, handshakes and warm-up left out):"
	awk -v n="$OK" '
		function ir(s) { gsub(",", "", s); return s + 0 }
		/PROGRAM TOTALS/ { total = ir($1) }
		/:SSL_do_handshake / && !hs { hs = ir($1) }
		{
			split("main.c:main bi_msg_parse yajl_parse bi_msg_encode yajl_gen_string " \
			      "js_store__sq_apply_batch sq_device_get prepare_many evhttp_send_reply " \
			      "malloc.c:malloc malloc.c:free", want, " ")
			for (i in want)
				if (index($0, want[i] " ") && !(want[i] in seen)) { seen[want[i]] = ir($1) }
		}
		END {
			printf "  %-28s %9.1fk\n", "whole daemon", total / n / 1e3
			printf "  %-28s %9.1fk\n", "  without TLS handshakes", (total - hs) / n / 1e3
			printf "  %-28s %9.1fk\n", "  (TLS handshakes: reconnections after a time-out)", hs / n / 1e3
			split("bi_msg_parse yajl_parse bi_msg_encode yajl_gen_string js_store__sq_apply_batch " \
			      "sq_device_get prepare_many evhttp_send_reply malloc.c:malloc malloc.c:free", \
			      order, " ")
			for (i = 1; i in order; i++)
				printf "  %-28s %9.1fk\n", order[i], seen[order[i]] / n / 1e3
		}' "$T/incl.txt"
	if [ -n "${KEEP:-}" ]; then
		mkdir -p "$KEEP" && cp "$T/incl.txt" "$CG" "$KEEP/" &&
			echo "callgrind profile and inclusive listing kept in $KEEP"
	fi
	;;
blockio)
	command -v perf >/dev/null || { echo "bench_calls: perf (linux-perf) is not installed"; exit 1; }
	REQS=${3:-20000}
	EV=block:block_rq_issue,syscalls:sys_enter_fdatasync
	ATTACH="perf stat -x, -e $EV -o $T/perf.txt -p" bash "$HERE/bench_bi.sh" "$BUILD" 20000 64 \
		"$REQS" >"$T/bench.txt" 2>&1
	grep -E "^(success|elapsed)" "$T/bench.txt"
	grep -q block_rq_issue "$T/perf.txt" 2>/dev/null ||
		{ echo "bench_calls: no perf counts (tracepoints readable?)"; cat "$T/perf.txt"; exit 1; }
	echo "danejoind block I/O per JoinReq ($REQS JoinReqs, 64 connections${RATE:+, $RATE/s offered}):"
	awk -F, -v n="$REQS" '$3 ~ /block_rq_issue/ { rq = $1 } $3 ~ /fdatasync/ { fs = $1 }
		END { printf "  %-24s %8.3f\n  %-24s %8.3f\n  %-24s %8.2f\n", "block requests", rq / n,
			"fdatasync", fs / n, "requests per fdatasync", (fs > 0 ? rq / fs : 0) }' "$T/perf.txt"
	;;
*)
	echo "usage: bench_calls.sh BUILD_DIR syscalls|instructions|blockio [REQUESTS]" >&2
	exit 2
	;;
esac
