#!/bin/bash
# test_check_config.sh - `danejoind --check-config` refuses what the start refuses, with the same
# exit code and a message naming the file and the fault (issue 12, item 6).
#
# config/danejoind.service runs --check-config as ExecStartPre and trusts it. Each bad
# configuration below is refused by --check-config with exit 2 and its message, and the real
# start refuses it too (exit 2, never listening): a certificate that does not exist, a key that
# does not match its certificate, an address without a port or with port 99999 (or 0), a
# key_file or a KEK readable by others, a configuration writable by others (or by its group), a
# missing [mqtt] CA file, a symbolic link as the master key (also in danejoin-devices), a
# 150-character kek_label, a NUL byte, and two peers whose identities differ only in case. The
# valid configuration passes both, and a client whose certificate names its identity in capitals
# is still its [peer].
#
# Usage: bash test_check_config.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin checkconf "$@"
dj_need "$JSD" "$DEV" "$CLI"

dj_mkroot root
dj_mkcerts root js:DNS:js.test ns1:DNS:NS1.TEST
dj_genkey other
dj_kek ns1
PORT=$(dj_free_port)
dj_conf_pkix "$PORT" off >dj.conf
(umask 077 && dj_devices_csv 1 1.1 >devices.csv)
check "store initialised" dj_store_init dj.conf devices.csv

# start_refuses CONF ERE - the real start exits 2, saying ERE (bounded: a start that does not
# refuse is listening, and is stopped by timeout)
start_refuses() {
	timeout 10 "$JSD" --config "$1" >start.out 2>&1
	local rc=$?
	[ $rc -eq 2 ] && grep -Eq -- "$2" start.out && return 0
	echo "  start exit $rc: $(head -3 start.out)"
	return 1
}

# refused DESC CONF ERE - --check-config and the start both exit 2 with ERE
refused() {
	check "--check-config refuses $1" dj_check_config 2 "$2" "$3"
	check "... and so does the start" start_refuses "$2" "$3"
}

# variant NAME SED - dj.conf edited by SED, written to NAME.conf
variant() { sed "$2" dj.conf >"$1.conf"; }

# ---- the valid configuration passes both -----------------------------------------------------
check "--check-config accepts the valid configuration" dj_check_config 0 dj.conf "valid"

# ---- the certificate and its key -------------------------------------------------------------
variant nocert 's|^cert_file = .*|cert_file = missing.crt|'
refused "a missing cert_file" nocert.conf "cert_file .*missing\.crt: does not exist"
variant mismatch 's|^key_file = .*|key_file = other.key|'
refused "a key that does not match its certificate" mismatch.conf \
	"key_file .*other\.key: does not match \[listen\] cert_file .*js\.crt"
cp js.key loose.key && chmod 644 loose.key
variant loosekey 's|^key_file = .*|key_file = loose.key|'
refused "a key_file of mode 0644" loosekey.conf \
	"key_file .*loose\.key: has mode 0644, which gives group or others access"

# ---- addresses -------------------------------------------------------------------------------
variant noport 's|^address = .*|address = 127.0.0.1|'
refused "an address without a port" noport.conf \
	"\[listen\] address: '127\.0\.0\.1': expected HOST:PORT"
variant bigport 's|^address = .*|address = 127.0.0.1:99999|'
refused "port 99999" bigport.conf "\[listen\] address: '127\.0\.0\.1:99999': expected HOST:PORT"
variant zeroport 's|^address = .*|address = 127.0.0.1:0|'
refused "port 0" zeroport.conf "PORT from 1 to 65535"
variant badmetrics 's|^metrics_address = .*|metrics_address = localhost|'
refused "a metrics address without a port" badmetrics.conf "metrics_address: 'localhost'"

# ---- KEKs, labels, peers ---------------------------------------------------------------------
cp ns1.kek loose.kek && chmod 644 loose.kek
variant loosekek 's|^kek_file = .*|kek_file = loose.kek|'
refused "a KEK of mode 0644" loosekek.conf \
	"\[peer\.ns1\] kek_file .*loose\.kek: has mode 0644, which gives group or others access"
variant longlabel "s|^kek_label = .*|kek_label = $(printf 'L%.0s' $(seq 150))|"
refused "a 150-character kek_label" longlabel.conf \
	"\[peer\.ns1\] kek_label: 150 characters, at most 63"
{ cat dj.conf; dj_conf_peer ns1b NS1.TEST ns 000014 plain_keys=yes; } >dup.conf
refused "two peers whose identities differ only in case" dup.conf \
	"\[peer\.ns1b\] identity: 'NS1\.TEST' is already the identity of \[peer\.ns1\]"

# ---- the configuration file itself -----------------------------------------------------------
cp dj.conf world.conf && chmod 666 world.conf
refused "a world-writable configuration" world.conf \
	"world\.conf: has mode 0666, which lets group or others change it"
cp dj.conf group.conf && chmod 664 group.conf
refused "a group-writable configuration" group.conf "group\.conf: has mode 0664"
{ head -3 dj.conf; printf '; a comment\0 with a NUL\n'; tail -n +4 dj.conf; } >nul.conf
refused "a NUL byte" nul.conf "nul\.conf:4: NUL byte at line 4"

# ---- [mqtt] TLS files ------------------------------------------------------------------------
{ cat dj.conf; dj_conf_section mqtt host=127.0.0.1 port=1 cafile=noca.crt; } >nomqttca.conf
refused "a missing [mqtt] cafile" nomqttca.conf "\[mqtt\] cafile .*noca\.crt: does not exist"
{ cat dj.conf; dj_conf_section mqtt host=127.0.0.1 port=1 cafile=root.crt cert=js.crt \
	key=other.key; } >mqttkey.conf
refused "an [mqtt] key that does not match its cert" mqttkey.conf \
	"\[mqtt\] key .*other\.key: does not match \[mqtt\] cert"

# ---- the master key --------------------------------------------------------------------------
ln -s master.key link.key
variant linkmaster 's|^master_key_file = .*|master_key_file = link.key|'
refused "a symbolic link as the master key" linkmaster.conf \
	"master_key_file .*link\.key: is a symbolic link; refused"
check "... not reported as a mode" bash -c "! grep -q 'mode 0600' check.out start.out"
"$DEV" --config linkmaster.conf list >dev.out 2>&1
check "danejoin-devices refuses it too (exit 4)" test $? -eq 4
check "... calling it a symbolic link" grep -q "link.key is a symbolic link" dev.out
check "... not a mode" bash -c "! grep -q 'mode 0600' dev.out"
cp master.key loose.master && chmod 640 loose.master
variant loosemaster 's|^master_key_file = .*|master_key_file = loose.master|'
refused "a master key of mode 0640" loosemaster.conf "loose\.master: has mode 0640"

# ---- the valid configuration starts; an identity in capitals is its [peer] ---------------------
check "danejoind starts on the configuration --check-config passed" dj_jsd_start dj.conf jsd.log "$PORT"
"$CLI" join --url "https://127.0.0.1:$PORT/" --server-name js.test --ca root.crt --cert ns1.crt \
	--key ns1.key --sender-id 000013 --sender-ns-id ns1.test --kek-label ns1-kek --kek-file ns1.kek \
	--sim devices.csv --dev-eui 0000000000001001 >join.json 2>join.err
check "a client certified as NS1.TEST is [peer.ns1] (identity ns1.test): join accepted" \
	grep -q "session keys match" join.err
check "danejoind stops cleanly" dj_jsd_stop
dj_end jsd.log join.err
