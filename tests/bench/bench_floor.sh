#!/bin/bash
# bench_floor.sh - the floor under danejoind's CPU per JoinReq (issue 15): nginx (Debian
# nginx-light, installed here with apt-get when missing, never by ./tests/run) with TLS 1.3 and a
# verified client certificate, answering every POST on keep-alive with a fixed 700-byte JSON body:
# the cost of TLS, HTTP and the syscalls alone. The same load generator drives both servers
# (danejoin-client bench; --raw FILE for nginx: a fixed JoinReq body, only the status checked),
# with the same connections and requests, one after the other. Prints each server's CPU per
# request (user, sys; /proc of every server process over the timed phase) and danejoind's as a
# ratio to nginx's from the same run. Asserts nothing about time.
#
#   bash tests/bench/bench_floor.sh BUILD_DIR [CONNECTIONS] [REQUESTS] [DEVICES]
#   (defaults 64 connections, 60000 requests, 20000 devices)
#   THREADS=N (default 1): nginx's worker processes and danejoind's [listen] threads, the same
#   number for both, so that the ratio compares like with like; access log off.
set -u
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/bench_cpu.sh"
dj_bench_begin bench_floor "BUILD_DIR [CONNECTIONS] [REQUESTS] [DEVICES]" "$@"
CONNS=${2:-64} REQS=${3:-60000} NDEV=${4:-20000} THREADS=${THREADS:-1}

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	echo "bench_floor: installing nginx-light (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
		>apt.log 2>&1 || { echo "FAIL: cannot install nginx-light"; tail -5 apt.log; exit 1; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

dj_mkroot root && dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test && dj_kek ns1 || exit 1
PORT=$(dj_free_port)
NPORT=$(dj_free_port)
C=(--server-name js.test --ca root.crt --cert ns1.crt --key ns1.key --sender-id 000013
	--sender-ns-id ns1.test)
L=(--connections "$CONNS" --requests "$REQS")

# the answer nginx gives: a JoinAns-shaped JSON body of exactly 700 bytes
ANS='{"ProtocolVersion":"1.1","SenderID":"0000000000000001","ReceiverID":"000013","TransactionID":1,"MessageType":"JoinAns","Result":{"ResultCode":"Success"},"PHYPayload":"20aabbccddeeff00112233445566778899aabbccddeeff0011","Lifetime":0,"SNwkSIntKey":{"KEKLabel":"ns1","AESKey":"00112233445566778899aabbccddeeff0011223344556677"},"FNwkSIntKey":{"KEKLabel":"ns1","AESKey":"00112233445566778899aabbccddeeff0011223344556677"},"NwkSEncKey":{"KEKLabel":"ns1","AESKey":"00112233445566778899aabbccddeeff0011223344556677"},"AppSKey":{"KEKLabel":"","AESKey":"00112233445566778899aabbccddeeff"},"SessionKeyID":"00112233445566778899aabbccddeeff","VSExtension":{},"Pad":"'
ANS=$ANS$(head -c $((700 - ${#ANS} - 2)) /dev/zero | tr '\0' x)'"}'
# the request the client sends to nginx: a JoinReq-shaped body
printf '%s' '{"ProtocolVersion":"1.1","SenderID":"000013","ReceiverID":"0000000000000001","TransactionID":1,"MessageType":"JoinReq","SenderNSID":"ns1.test","MACVersion":"1.1.0","PHYPayload":"0001000000000000000200000000000000010039a3c1e2f3","DevEUI":"0200000000000001","DevAddr":"01020304","DLSettings":"00","RxDelay":1,"CFList":""}' >req.json
mkdir -p ngx/tmp && cat >ngx/nginx.conf <<CONF
daemon off;
worker_processes $THREADS;
pid $T/ngx/nginx.pid;
error_log $T/ngx/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $T/ngx/tmp;
	proxy_temp_path $T/ngx/tmp;
	keepalive_requests 100000000;
	keepalive_timeout 600s;
	server {
		listen 127.0.0.1:$NPORT ssl;
		ssl_certificate $T/js.crt;
		ssl_certificate_key $T/js.key;
		ssl_protocols TLSv1.3;
		ssl_verify_client on;
		ssl_client_certificate $T/root.crt;
		location /missing { return 404; }
		location / {
			default_type application/json;
			return 200 '$ANS';
		}
	}
}
CONF
check "nginx answer is 700 bytes" test ${#ANS} -eq 700

# nginx first (its workers: the children of its master)
dj_spawn ngx.out ngx.err "$NGINX" -p "$T/ngx" -e "$T/ngx/error.log" -c "$T/ngx/nginx.conf"
NG=$DJ_PID
check "nginx starts" dj_wait_port "$NPORT" "$NG" || dj_end ngx.err ngx/error.log
NGPIDS=("$NG" $(pgrep -P "$NG"))
echo "bench_floor: $REQS requests over $CONNS keep-alive mTLS (TLS 1.3) connections, each server in turn"
# --raw checks the status: an answer other than 200 is a failure (exit 3)
"$CLI" bench --url "https://127.0.0.1:$NPORT/missing" "${C[@]}" --connections 1 \
	--requests 4 --raw req.json >raw404.out 2>&1
check "bench --raw: HTTP 404 answers count as failed (exit 3)" test $? -eq 3
check "bench --raw: HTTP 404 answers count as failed (report)" grep -q "failed 4" raw404.out
cpu_mark "${NGPIDS[@]}"
check "nginx: every request answered 200" "$CLI" bench --url "https://127.0.0.1:$NPORT/" "${C[@]}" \
	"${L[@]}" --raw req.json --on-clock "$CPU_ON_CLOCK" >ngx-bench.out
sed 's/^/  [nginx] /' ngx-bench.out
cpu_report "  [nginx] nginx (master and $((${#NGPIDS[@]} - 1)) worker(s))" "$REQS"
NGX_US=$CPU_US
kill -QUIT "$NG" 2>/dev/null

# danejoind: durable SQLite store, the same load as bench_bi.sh
dj_conf_pkix "$PORT" off max_connections=4096 threads="$THREADS" >dj.conf
(umask 077; dj_devices_csv "$NDEV" 1.1 >devices.csv)
check "enrolment" dj_store_init dj.conf devices.csv || dj_end
check "danejoind starts" dj_jsd_start dj.conf jsd.log "$PORT" || dj_end jsd.log
cpu_mark "$DJ_JSD_PID"
check "danejoind: every JoinReq answered" "$CLI" bench --url "https://127.0.0.1:$PORT/" "${C[@]}" \
	"${L[@]}" --sim devices.csv --devices "$NDEV" --on-clock "$CPU_ON_CLOCK" >jsd-bench.out
sed 's/^/  [danejoind] /' jsd-bench.out
cpu_report "  [danejoind] danejoind ($THREADS loop(s); LoRaWAN 1.1 JoinReq, durable store)" "$REQS"
JSD_US=$CPU_US
check "danejoind stops cleanly" dj_jsd_stop
awk -v j="$JSD_US" -v n="$NGX_US" 'BEGIN {
	printf "danejoind / nginx CPU per request: %.2fx (%.1f us / %.1f us)\n", (n > 0 ? j / n : 0), j, n }'
dj_end jsd.log
