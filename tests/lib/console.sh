# tests/lib/console.sh - the console's browser tests (tests/console/*.test.js: Debian's chromium
# driven by puppeteer-core, npm ci'd by config/install-deps into DJ_NODE_DIR, default
# ~/.cache/danejoin-console) run from the integration tests. harness.sh sources it.
#
#   dj_console_modules
#       prints the node_modules directory the tests take puppeteer-core from.
#   dj_console_ready
#       status 0 when /usr/bin/chromium and puppeteer-core are there.
#   dj_console_js TEST SECONDS [VAR=VALUE...]
#       runs tests/console/TEST.test.js in node (at most SECONDS) with the VARs in its
#       environment, HOME the test's directory (chromium's profile stays there); its status.
#   dj_console_checks TEST SECONDS [VAR=VALUE...]
#       the same with the output in browser.out, shown; each of its "ok - " / "not ok - " lines
#       counts as one check of the script (CHECKS, FAILS). Status: node's.

dj_console_modules() { echo "${DJ_NODE_DIR:-$HOME/.cache/danejoin-console}/node_modules"; }

dj_console_ready() {
	[ -e /usr/bin/chromium ] && [ -e "$(dj_console_modules)/puppeteer-core" ]
}

dj_console_js() {
	local js=$1 secs=$2
	shift 2
	env "$@" NODE_PATH="$(dj_console_modules)" HOME="$PWD" \
		timeout "$secs" node "$SOURCE_DIR/tests/console/$js.test.js"
}

dj_console_checks() {
	local rc line
	dj_console_js "$@" >browser.out 2>&1
	rc=$?
	cat browser.out
	while read -r line; do
		CHECKS=$((CHECKS + 1))
		case $line in "not ok"*) FAILS=$((FAILS + 1)) ;; esac
	done < <(grep -E '^(ok|not ok) - ' browser.out)
	return $rc
}
