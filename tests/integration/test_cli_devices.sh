#!/bin/bash
# test_cli_devices.sh - drive the real danejoin-devices binary through every command, and check
# that bad input of every kind is refused with its exit code and message and changes nothing.
#
# Usage: bash test_cli_devices.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin cli-devices "$@"
BIN=$DEV
dj_need "$BIN"

APPKEY1=2b7e151628aed2a6abf7158809cf4f3c
APPKEY2=5a1f0c6e2d9b4a3f8e7d6c5b4a392817
APPKEY3=0f1e2d3c4b5a69788796a5b4c3d2e1f0
APPKEY4=c0ffee00c0ffee00c0ffee00c0ffee01
NWKKEY4=000102030405060708090a0b0c0d0e0f
KEYRE="$APPKEY1|$APPKEY2|$APPKEY3|$APPKEY4|$NWKKEY4"

cat >dj.conf <<EOF
[store]
path = js.db
devnonce_history = 64
[keys]
master_key_file = master.key
[join]
net_id = 000000
EOF

cat >good.csv <<EOF
dev_eui,join_eui,mac_version,app_key,nwk_key
0102030405060708,70b3d57ed0000001,1.0.2,$APPKEY1,
0102030405060709,70B3D57ED0000001,1.0.3,0x$APPKEY2,
010203040506070a,70b3d57ed0000001,1.0.4,$APPKEY3,
010203040506070b,70b3d57ed0000001,1.1,$APPKEY4,$NWKKEY4
EOF

# --- usage, help and exit code 1
run 0 --help && has "$OUT" "Exit codes" && has "$OUT" "reset-nonces DEVEUI \| --all"
run 1 --bogus-flag && has "$ERR" "bogus-flag"
run 1 --config dj.conf list --bogus-flag && has "$ERR" "bogus-flag"
run 1 --config dj.conf frobnicate && has "$ERR" "unknown command 'frobnicate'"
run 1 list && has "$ERR" "--config FILE is required"
run 1 --config dj.conf show && has "$ERR" "show: missing argument"
run 1 --config dj.conf reset-nonces && has "$ERR" "either one DevEUI or --all"
run 1 --config dj.conf rewrap && has "$ERR" "--new-master-key FILE is required"
run 1 --config dj.conf list --all && has "$ERR" "--all is only for reset-nonces"

# --- a missing master key: exit 4 with a hint to run init, and nothing created
run 4 --config dj.conf list && has "$ERR" "master key file .*master.key does not exist; run .*init"
CHECKS=$((CHECKS + 1))
[ ! -e master.key ] && [ ! -e js.db ] || fail "list without a key created files"

# --- init
run 0 --config dj.conf init && has "$OUT" "created \(mode 0600\)"
CHECKS=$((CHECKS + 1))
[ "$(stat -c %a master.key)" = 600 ] || fail "master.key mode is $(stat -c %a master.key)"
run 0 --config dj.conf init && has "$OUT" "exists, kept"

# --- import the good file
run 0 --config dj.conf import good.csv && has "$OUT" "^imported 4 devices$"
run 0 --config dj.conf list
cp "$OUT" list.before
has list.before "^0102030405060708 +70b3d57ed0000001 +1\.0\.2 "
has list.before "^0102030405060709 +70b3d57ed0000001 +1\.0\.3 "
has list.before "^010203040506070a +70b3d57ed0000001 +1\.0\.4 "
has list.before "^010203040506070b +70b3d57ed0000001 +1\.1 "
CHECKS=$((CHECKS + 1))
[ "$(grep -c '^01020304050607' list.before)" -eq 4 ] || fail "list does not show 4 devices"
lacks list.before "$KEYRE"

# --- show: attributes and nonce state, never keys
run 0 --config dj.conf show 010203040506070B && has "$OUT" "^mac_version: +1\.1$" \
	&& has "$OUT" "^root_keys: +AppKey, NwkKey" && has "$OUT" "^dev_nonce_rule: +counter"
lacks "$OUT" "$KEYRE"
run 0 --config dj.conf show 0x0102030405060708 && has "$OUT" "^dev_nonce_rule: +random"
lacks "$OUT" "$KEYRE"
run 3 --config dj.conf show 01020304 && has "$ERR" "DevEUI argument: expected 16 hex digits"
run 3 --config dj.conf show ffffffffffffffff && has "$ERR" "no device ffffffffffffffff"

# --- a CSV with an error on line 3: exit 3, line and field named, store unchanged
cat >bad.csv <<EOF
dev_eui,join_eui,mac_version,app_key,nwk_key
1111111111111111,70b3d57ed0000001,1.0.3,$APPKEY1,
2222222222222222,70b3d57ed0000001,1.0.3,2b7e151628aed2a6abf7158809cf4f,
EOF
run 3 --config dj.conf import bad.csv && has "$ERR" "bad\.csv:3: field app_key: expected 32 hex digits"
lacks "$ERR" "$KEYRE|2b7e151628aed2a6abf7158809cf4f"
run 0 --config dj.conf list && same list.before "$OUT" "a failed import changed the store"

cat >bad-nwk.csv <<EOF
dev_eui,join_eui,mac_version,app_key,nwk_key
1111111111111111,70b3d57ed0000001,1.0.3,$APPKEY1,$NWKKEY4
EOF
run 3 --config dj.conf import bad-nwk.csv && has "$ERR" "bad-nwk\.csv:2: field nwk_key: must be empty"

cat >dup-in-file.csv <<EOF
dev_eui,join_eui,mac_version,app_key,nwk_key
3333333333333333,70b3d57ed0000001,1.0.3,$APPKEY1,
3333333333333333,70b3d57ed0000001,1.0.4,$APPKEY2,
EOF
run 3 --config dj.conf import dup-in-file.csv \
	&& has "$ERR" "dup-in-file\.csv:3: field dev_eui: 3333333333333333 is already on line 2"
run 3 --config dj.conf import no-such.csv && has "$ERR" "no-such\.csv: cannot open"

# --- a device already in the store: exit 3 naming the CSV line, nothing imported
cat >dup.csv <<EOF
dev_eui,join_eui,mac_version,app_key,nwk_key
4444444444444444,70b3d57ed0000001,1.0.4,$APPKEY1,
010203040506070a,70b3d57ed0000001,1.0.4,$APPKEY3,
EOF
run 3 --config dj.conf import dup.csv \
	&& has "$ERR" "dup\.csv:3: field dev_eui: device 010203040506070a is already enrolled; nothing was imported"
run 0 --config dj.conf list && same list.before "$OUT" "a duplicate import changed the store"

# --- master key file readable by others: exit 4, clear message, then restored
chmod 0644 master.key
run 4 --config dj.conf list && has "$ERR" "master key file .*master\.key has mode 0644.*chmod 600"
lacks "$OUT" "01020304"
chmod 0600 master.key

# --- configuration errors: exit 2 naming file, line, section and key
sed 's/^devnonce_history = 64$/devnonce_histroy = 64/' dj.conf >typo.conf
run 2 --config typo.conf list && has "$ERR" "typo\.conf:3: \[store\] devnonce_histroy: unknown key"
printf '[store]\npath = js.db\n[keys]\nmaster_key_file = master.key\n[jion]\n' >sect.conf
run 2 --config sect.conf list && has "$ERR" "sect\.conf:5: \[jion\]: unknown section"
printf '[store]\npath = js.db\n[keys]\nmaster_key_file = master.key\n[join]\nnet_id = 12345\n' >netid.conf
run 2 --config netid.conf list && has "$ERR" "netid\.conf:6: \[join\] net_id: expected 6 hex digits"
printf '[store]\npath = js.db\n' >nokey.conf
run 2 --config nokey.conf list && has "$ERR" "nokey\.conf: \[keys\] master_key_file: required key is missing"
run 2 --config no-such.conf list && has "$ERR" "no-such\.conf: cannot open"

# --- reset-nonces and delete are audited
run 0 --config dj.conf reset-nonces 0102030405060709 && has "$OUT" "of 1 devices"
run 3 --config dj.conf reset-nonces 5555555555555555 && has "$ERR" "no device 5555555555555555"
run 0 --config dj.conf reset-nonces --all && has "$OUT" "of 4 devices"
run 0 --config dj.conf delete 0102030405060708 && has "$OUT" "deleted device 0102030405060708"
run 3 --config dj.conf delete 0102030405060708 && has "$ERR" "no device 0102030405060708"
run 0 --config dj.conf audit
has "$OUT" " 0102030405060709 +nonce-reset +cli:"
has "$OUT" " 0102030405060708 +device-delete +cli:"
has "$OUT" " 010203040506070b +device-import +cli:"
lacks "$OUT" "$KEYRE"
run 0 --config dj.conf audit 0102030405060708
has "$OUT" "device-delete"
CHECKS=$((CHECKS + 1))
if grep -q 0102030405060709 "$OUT"; then fail "audit DEVEUI shows another device"; fi
run 0 --config dj.conf list
cp "$OUT" list.three
CHECKS=$((CHECKS + 1))
[ "$(grep -c '^01020304050607' list.three)" -eq 3 ] || fail "list after delete is not 3 devices"

# --- rewrap: the old key is refused afterwards, the new one works
head -c 32 /dev/urandom >new.key
chmod 0644 new.key
run 4 --config dj.conf rewrap --new-master-key new.key && has "$ERR" "new\.key has mode 0644"
chmod 0600 new.key
run 4 --config dj.conf rewrap --new-master-key master.key && has "$ERR" "holds the current master key"
run 4 --config dj.conf rewrap --new-master-key no-such.key && has "$ERR" "no-such\.key does not exist"
run 0 --config dj.conf rewrap --new-master-key new.key && has "$OUT" "master_key_file = new\.key"
run 4 --config dj.conf list && has "$ERR" "is not the key of store"
sed 's/^master_key_file = master.key$/master_key_file = new.key/' dj.conf >new.conf
run 0 --config new.conf list && same list.three "$OUT" "the store differs after rewrap"
run 0 --config new.conf show 010203040506070b && has "$OUT" "^mac_version: +1\.1$"
run 0 --config new.conf audit && has "$OUT" " rewrap +cli:"
run 4 --config dj.conf rewrap --new-master-key new.key && has "$ERR" "is not the key of store"

dj_end
