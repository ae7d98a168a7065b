#!/bin/bash
# test_console.sh - the operator console in a real browser: Debian's chromium driven by
# puppeteer-core (tests/console/console.test.js) against a real danejoind serving console/.
#
# Checks (in console.test.js): a wrong key refused at login; a read key sees the devices and no
# change button; a peer identity holding an <img onerror> probe is shown as text and never runs;
# joins made by danejoin-client appear on the Joins page within 2 s; joins with a wrong key
# appear in the chart's legend as MICFailed and are drawn in that reason's colour; audit and ownership pages;
# an operate key imports a CSV with a bad line (the line named, nothing imported), then the fixed
# file, and deletes a device after confirming; no page error and no CSP violation. Screenshots
# of every page at 1280x800 and 390x844 go to the test's output (screens/), and with
# DJ_CONSOLE_DOCS=DIR also to DIR (docs/console/).
#
# Needs chromium and puppeteer-core (config/install-deps: npm ci in $DJ_NODE_DIR, default
# ~/.cache/danejoin-console).
#
# Usage: bash test_console.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin console "$@"
dj_need "$JSD" "$CLI" "$DEV"
for need in /usr/bin/chromium /usr/bin/node "$(dj_console_modules)/puppeteer-core"; do
	[ -e "$need" ] || { echo "FAIL: $need is missing: run config/install-deps"; exit 1; }
done

dj_mkroot root
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test
dj_kek ns1
chmod 600 ./*.key ./*.kek
PORT=$(dj_free_port)
APORT=$(dj_free_port)
{
	dj_conf_pkix "$PORT" off
	dj_conf_peer probe "<img src=x onerror=__djXss()>" as as-9 join_euis=70b3d57ed0000000/48 \
		plain_keys=yes
	dj_conf_section admin address=127.0.0.1:"$APORT" console_dir="$SOURCE_DIR/console"
} >dj.conf
key() { openssl rand -hex 16; }
dj_devices3_csv >devices.csv
dj_import_csvs
chmod 600 ./*.csv
check "store initialised and devices imported" dj_store_init dj.conf devices.csv
RK=$("$DEV" --config dj.conf apikey create --name viewer --scope read 2>/dev/null)
OK=$("$DEV" --config dj.conf apikey create --name ops --scope operate 2>/dev/null)
check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"
check "... and serves the console" dj_wait_port "$APORT" "$DJ_JSD_PID"
code=$(curl -s --cacert root.crt --resolve "js.test:$APORT:127.0.0.1" -D index.hdr -o index.html \
	-w '%{http_code}' "https://js.test:$APORT/")
eq "$code" 200 "GET / serves the console"
has index.hdr "^Content-Security-Policy: default-src 'self'; script-src 'self'"
lacks index.html "<script>|onclick=|style="

mkdir -p screens
JOIN="'$CLI' join --url https://127.0.0.1:$PORT/ --server-name js.test --ca root.crt --cert ns1.crt \
--key ns1.key --sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek --kek-file ns1.kek \
--sim devices.csv --dev-eui 0000000000000110 --count 3"
# a join whose MIC is made with another key: refused as MICFailed
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000110,70b3d57ed0000001,1.1,$(key),$(key)"
} >wrongkey.csv
BADJOIN="${JOIN/--sim devices.csv/--sim wrongkey.csv}; true"
BADJOIN="${BADJOIN/--count 3/--count 1}"
dj_console_checks console 120 DJ_URL="https://js.test:$APORT" DJ_RESOLVE="js.test:$APORT" \
	DJ_READ_KEY="$RK" DJ_OPS_KEY="$OK" DJ_OUT="$PWD/screens" DJ_JOIN_CMD="$JOIN" \
	DJ_BAD_JOIN_CMD="$BADJOIN" DJ_BAD_CSV="$PWD/bad.csv" DJ_GOOD_CSV="$PWD/good.csv"
RC=$?
eq "$RC" 0 "the browser checks passed"
check "a screenshot of each page at both sizes" test "$(ls screens/*.png 2>/dev/null | wc -l)" -eq 12
echo "screenshots: $PWD/screens"
if [ -n "${DJ_CONSOLE_DOCS:-}" ]; then
	mkdir -p "$DJ_CONSOLE_DOCS" && cp screens/*.png "$DJ_CONSOLE_DOCS"/
fi
mkdir -p "$BUILD_DIR/console-screens" && cp screens/*.png "$BUILD_DIR/console-screens/"
dj_jsd_stop
dj_end jsd.log
