#!/bin/bash
# test_store_faults.sh - the store notices what it cannot survive (issue 12 item 4), with a real
# danejoind and danejoin-client.
#
# - js.db-wal unlinked under the running daemon: the next joins are refused (never Success), the
#   log says why once, the metric shows it; what was answered before survives a SIGKILL (the
#   lost log is copied into js.db), so a replay of an answered request is refused after restart.
# - js.db replaced by another file (same content, another inode) under the running daemon: the
#   next join is refused and the log says the file was replaced.
# - A store file the daemon cannot write: refused at start, non-zero exit, a clear message (run
#   as nobody when the test runs as root, since root writes a mode 0400 file anyway).
# - A corrupted devices page in a copy of the store: `danejoin-devices check` reports it and
#   exits non-zero, and danejoind refuses to start on it, naming the file.
# - A full disk (a small tmpfs in a mount namespace of danejoind's own; root only): joins are
#   refused, the state is logged once and shown in the metrics, the per-join error lines are
#   rate-limited, and joins succeed again once space is freed.
#
# Usage: bash test_store_faults.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin storefaults "$@"
dj_need "$JSD" "$CLI" "$DEV" sqlite3

dj_mkroot root
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test
dj_kek ns1
chmod 600 ./*.key ./*.kek

PORT=$(dj_free_port)
MPORT=$(dj_free_port)
dj_conf_pkix "$PORT" "$MPORT" >dj.conf
key() { openssl rand -hex 16; }
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000110,70b3d57ed0000001,1.1,$(key),$(key)"
	echo "0000000000000111,70b3d57ed0000001,1.1,$(key),$(key)"
} >devices.csv
chmod 600 devices.csv
check "store initialised and devices imported" dj_store_init dj.conf devices.csv

NS=(--url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt
	--key ns1.key --sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek
	--kek-file ns1.kek)
# join STATE EUI - one simulated join; the client's exit status
join() { "$CLI" join "${NS[@]}" --sim devices.csv --state "$1" --dev-eui "$2" >>join.out 2>>join.err; }

# ---- the write-ahead log unlinked under the running daemon ---------------------------------
check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"
E=0000000000000110
join dev.state $E
check "join 1 accepted" test $? -eq 0
join dev.state $E
check "join 2 accepted" test $? -eq 0
cp dev.state before3.state
join dev.state $E
check "join 3 accepted" test $? -eq 0
check "js.db-wal exists under the running daemon" test -f js.db-wal
rm -f js.db-wal
join dev.state $E
check "after the unlink, a join is refused (not Success)" test $? -ne 0
join dev.state 0000000000000111
check "... and so is another device's" test $? -ne 0
check "the log says why" dj_wait_log jsd.log "js.db-wal was unlinked while the store is open"
check "... once" test "$(grep -c 'was unlinked while the store is open' jsd.log)" -eq 1
check "the lost log's pages were copied into js.db" grep -q "lost write-ahead log were copied" jsd.log
eq "$(dj_metric "$MPORT" danejoin_store_files_replaced)" 1 "danejoin_store_files_replaced"
F=$(dj_metric "$MPORT" danejoin_store_faults_total)
check "danejoin_store_faults_total counts the refused commits ($F)" test "${F:-0}" -ge 2
check "no join was answered Success after the unlink" \
	test "$(grep -c 'result=Success' jsd.log)" -eq 3
dj_jsd_stop KILL
check "danejoind restarts" dj_jsd_start dj.conf jsd2.log "$PORT"
cp before3.state replay.state
join replay.state $E
check "after SIGKILL and restart, the third join's request replayed is refused" test $? -eq 4
join dev.state $E
check "the device joins again" test $? -eq 0
dj_jsd_stop

# ---- the database replaced (another inode at the same path) under the running daemon ------
cp js.db js.db.same		# the daemon is stopped: the same content, another inode
check "danejoind restarts on the store" dj_jsd_start dj.conf jsd3.log "$PORT"
mv -f js.db.same js.db
join dev.state $E
check "after js.db is replaced, a join is refused (not Success)" test $? -ne 0
check "the log says it was replaced" \
	dj_wait_log jsd3.log "js.db was replaced while the store is open"
check "no join was answered Success after the replacement" \
	bash -c "! grep -q 'result=Success' jsd3.log"
dj_jsd_stop KILL

# ---- a store the daemon cannot write ------------------------------------------------------
"$DEV" --config dj.conf check >check.out 2>&1
check "danejoin-devices check passes the sound store (exit 0)" test $? -eq 0
check "... printing ok" grep -qx ok check.out
RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
	# root writes a mode 0400 file anyway: run the daemon as nobody, who owns the files
	RUNAS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	chown -R 65534:65534 "$T"
fi
chmod 400 js.db
"${RUNAS[@]}" "$JSD" --config dj.conf -v >ro.log 2>&1 &
RO_PID=$!
DJ_PIDS+=("$RO_PID")
dj_wait_exit "$RO_PID" 20
check "danejoind on a read-only js.db exits" test $? -eq 0 || kill -9 "$RO_PID"
wait "$RO_PID"
RC=$?
check "... non-zero ($RC)" test "$RC" -ne 0
check "... naming the file and why" grep -q "js.db cannot be written" ro.log
check "... never ready" bash -c "! grep -qi 'ready' ro.log"
chmod 600 js.db
[ "$(id -u)" -ne 0 ] || chown -R 0:0 "$T"

# ---- a corrupted devices page ---------------------------------------------------------------
cp js.db copy.db
PS=$(sqlite3 copy.db "PRAGMA page_size")
ROOT=$(sqlite3 copy.db "SELECT rootpage FROM sqlite_master WHERE name='devices'")
check "the devices table's page found ($ROOT of $PS bytes)" test -n "$ROOT" -a -n "$PS"
# garbage over the page, past its first bytes (a b-tree page header that reads as valid)
head -c $((PS - 8)) /dev/urandom | dd of=copy.db bs=1 seek=$(((ROOT - 1) * PS + 8)) conv=notrunc 2>/dev/null
sed 's/^path = js.db$/path = copy.db/' dj.conf >copy.conf
"$DEV" --config copy.conf check >check.out 2>check.err
RC=$?
check "danejoin-devices check reports the corrupted page (exit $RC = 4)" test $RC -eq 4
check "... printing SQLite's findings" bash -c "test -s check.out && ! grep -qx ok check.out"
check "... and saying what to do" grep -q "fails its integrity check" check.err
"$JSD" --config copy.conf -v >bad.log 2>&1 &
BAD_PID=$!
DJ_PIDS+=("$BAD_PID")
dj_wait_exit "$BAD_PID" 20 || kill -9 "$BAD_PID"
wait "$BAD_PID"
RC=$?
check "danejoind refuses to start on it (exit $RC)" test "$RC" -ne 0
check "... naming the file" grep -q "copy.db fails its integrity check" bad.log

# ---- a full disk ---------------------------------------------------------------------------
# danejoind in a mount namespace of its own where small/ is a 2 MiB tmpfs holding a copy of the
# store; the test fills that file system through /proc/PID/root, then frees it again
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
	mkdir small
	sed 's|^path = js.db$|path = small/js.db|' dj.conf >small.conf
	unshare -m --propagation private sh -c 'mount -t tmpfs -o size=2m,mode=0700 tmpfs small &&
		cp js.db small/js.db && exec "$0" --config small.conf -v' "$JSD" >full.log 2>&1 &
	DJ_JSD_PID=$!
	check "danejoind listens on a store in a small file system" \
		dj_wait_port "$PORT" "$DJ_JSD_PID"
	SMALL=/proc/$DJ_JSD_PID/root$T/small
	join dev.state $E
	check "a join is accepted before the disk fills" test $? -eq 0
	dd if=/dev/zero of="$SMALL/fill" bs=4k 2>/dev/null
	check "the file system is full" bash -c "! dd if=/dev/zero of='$SMALL/more' bs=4k count=1 2>/dev/null"
	T0=$SECONDS
	for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do
		join dev.state $E && echo "a join was answered Success on a full disk" >>full.bad
	done
	check "on a full disk, 12 joins are refused, none answered Success" test ! -e full.bad
	check "the log says the disk is full, once" \
		test "$(grep -c 'is full: every change is refused' full.log)" -eq 1
	N=$(grep -c 'join for peer ns1 failed' full.log)
	# 5 lines per 10 s window (DJ_LOG_LIMIT_*): one window when the 12 joins take under 10 s,
	# as they do unless the machine is loaded, when a window more may begin
	W=$(((SECONDS - T0 + 1) / 10 + 1))
	check "the per-join error lines are rate-limited ($N of 12; at most 5 in each of $W window(s) of 10 s)" \
		test "$N" -le $((5 * W))
	eq "$(dj_metric "$MPORT" danejoin_store_disk_full)" 1 "danejoin_store_disk_full"
	F=$(dj_metric "$MPORT" danejoin_store_disk_full_total)
	check "danejoin_store_disk_full_total counts them ($F)" test "${F:-0}" -ge 12
	rm -f "$SMALL/fill" "$SMALL/more"
	join dev.state $E
	check "once space is freed, the device joins again" test $? -eq 0
	check "... and the log says writes succeed again" grep -q "succeed again" full.log
	eq "$(dj_metric "$MPORT" danejoin_store_disk_full)" 0 "danejoin_store_disk_full after"
	dj_jsd_stop
else
	echo "SKIP: the full-disk part needs root and mount namespaces"
fi

dj_end jsd.log jsd2.log ro.log bad.log full.log join.err
