#!/bin/bash
# test_interop.sh - danejoind as ChirpStack v4 and The Things Stack (TTS) see it (issue 14).
#
# The requests are raw JSON shaped exactly as each network server's Backend Interfaces client
# writes them (read from ChirpStack's `backend` crate and uplink/join.rs, and from TTS's
# pkg/interop), sent with curl over mutual TLS 1.3; each answer is checked field by field
# against what that client's decoder requires (interop_check.py). The Join-request frames are
# built here with the openssl CLI (AES-CMAC), so nothing of danejoin's own client is involved.
#
# ChirpStack: ProtocolVersion 1.0 (no NSIDs), lower-case hex, random 32-bit TransactionIDs,
#   MACVersion "1.1.0" for 1.1 devices, CFList omitted when empty; the AppSKey only in the
#   JoinAns (appskey_in_joinans), AES-128 KEK; asynchronous mode answered to its URL; the
#   backend crate's AppSKeyReq (hex SenderID) and HomeNSReq.
# TTS: ProtocolVersion 1.1, upper-case hex everywhere, TransactionID 0, MACVersion "1.0" for
#   1.0.0 devices, SenderNSID an upper-case EUI-64, a trailing newline after the body
#   (json.Encoder); AppSKeyReq from its application server.
# Negative: a wrong SenderNSID -> UnknownSender naming SenderNSID; a wrong SenderID and a wrong
#   role named likewise; appskey_in_joinans on an AS peer or without a KEK refused at
#   --check-config; an async peer's malformed request answered at its URL; the KEK-size warning.
#   A SIGHUP reload that would leave cs (appskey_in_joinans) without a usable KEK (plain_keys,
#   a KEK file invalid, mode 0644 or gone) is refused naming [peer.cs]; the old table keeps
#   wrapping the AppSKey.
#
# Usage: bash test_interop.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin interop "$@"
dj_need "$JSD" "$CLI" "$DEV" curl python3 openssl
CHK=(python3 "$SOURCE_DIR/tests/integration/interop_check.py")

# ---- PKI: one SAN dNSName per client certificate, as both servers use them ------------------
dj_mkroot root
dj_mkcerts root js:DNS:js.test ns1:DNS:ns1.test cs:DNS:cs.chirpstack.test \
	tts:DNS:ns.tts.test ttsas:DNS:as.tts.test csa:DNS:csa.chirpstack.test,IP:127.0.0.1 \
	csas:DNS:as.chirpstack.test
dj_kek ns1 cs ttsas csa csas
(umask 077 && openssl rand -hex 32 >tts.kek)	# TTS takes AES-256 KEKs; ChirpStack does not
chmod 600 ./*.key ./*.kek

PORT=$(dj_free_port)
APORT=$(dj_free_port)
{
	dj_conf_pkix "$PORT" off
	dj_conf_section join session_lifetime=7200
	dj_conf_section js home_net_id=000013 home_ns_id=70b3d57ed00000ff
	# ChirpStack v4: ProtocolVersion 1.0, no NSID; no AS of its own, so the AppSKey rides in
	# the JoinAns, wrapped under its AES-128 KEK
	dj_conf_peer cs cs.chirpstack.test ns 000024 kek_label=cs-kek kek_file=cs.kek \
		appskey_in_joinans=yes
	# TTS network server: NSIDs written lower-case here, sent upper-case by TTS
	dj_conf_peer tts ns.tts.test ns 000013 ns_ids=70b3d57ed0000001 kek_label=tts-kek \
		kek_file=tts.kek
	# TTS application server: its AS-ID is its host name
	dj_conf_peer ttsas as.tts.test as as.tts.test join_euis=70b3d57ed0000000/48 \
		kek_label=ttsas-kek kek_file=ttsas.kek
	# an application server speaking ChirpStack's backend crate: its SenderID is hex bytes
	dj_conf_peer csas as.chirpstack.test as 0a0b0c0d join_euis=70b3d57ed0000000/48 \
		kek_label=csas-kek kek_file=csas.kek
	# ChirpStack in asynchronous mode: answers POSTed to its backend API
	dj_conf_peer csa csa.chirpstack.test ns 000025 kek_label=csa-kek kek_file=csa.kek \
		async_url=https://127.0.0.1:$APORT/
} >dj.conf
key() { openssl rand -hex 16; }
AK_CS10=$(key) NK_CS11=$(key) AK_TTS10=$(key) NK_TTS11=$(key) AK_CSA=$(key)
{
	echo "dev_eui,join_eui,mac_version,app_key,nwk_key"
	echo "0000000000000a03,70b3d57ed0000001,1.0.3,$AK_CS10,"
	echo "0000000000000a11,70b3d57ed0000001,1.1,$(key),$NK_CS11"
	echo "0000000000000b00,70b3d57ed0000001,1.0.0,$AK_TTS10,"
	echo "0000000000000b11,70b3d57ed0000001,1.1,$(key),$NK_TTS11"
	echo "0000000000000c03,70b3d57ed0000001,1.0.3,$AK_CSA,"
} >devices.csv
chmod 600 devices.csv
check "store initialised and devices imported" dj_store_init dj.conf devices.csv

# ---- configuration checks -------------------------------------------------------------------
check "--check-config accepts the configuration" dj_check_config 0 dj.conf
check "... warns that tts's AES-256 KEK is past ChirpStack's AES-128 limit" \
	grep -q "\[peer.tts\] kek_file: an AES-256 KEK: ChirpStack v4 unwraps .* only with AES-128" check.out
check "... and not about cs's AES-128 KEK" bash -c "! grep -q 'peer.cs\]' check.out"
sed '/^\[peer.ttsas\]/a appskey_in_joinans = yes' dj.conf >bad1.conf
check "appskey_in_joinans on an application server is refused (exit 2)" \
	dj_check_config 2 bad1.conf "\[peer.ttsas\] appskey_in_joinans: only for a network server"
sed -e '/^\[peer.cs\]/,/^\[/{/^kek_/d}' -e '/^\[peer.cs\]/a plain_keys = yes' dj.conf >bad2.conf
check "appskey_in_joinans without a KEK is refused, plain_keys or not (exit 2)" \
	dj_check_config 2 bad2.conf "\[peer.cs\] appskey_in_joinans: needs kek_label and kek_file"

check "danejoind listens" dj_jsd_start dj.conf jsd.log "$PORT"
check "the start warns about the AES-256 KEK too" grep -q "\[peer.tts\] kek_file: an AES-256 KEK" jsd.log

# ---- helpers ----------------------------------------------------------------------------------
# hexbin - hex on stdin to bytes on stdout
hexbin() { python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))'; }
# le HEX - the bytes of HEX in reverse order (LoRaWAN frames are little-endian)
le() { echo "$1" | fold -w2 | tac | tr -d '\n'; }
# joinreq KEY JOINEUI DEVEUI DEVNONCE - a Join-request PHYPayload (TS001 §6.2.4), MIC under KEY
joinreq() {
	local m mic
	m="00$(le "$2")$(le "$3")$(le "$4")"
	mic=$(echo "$m" | hexbin | openssl mac -cipher AES-128-CBC -macopt "hexkey:$1" CMAC | cut -c1-8)
	echo "$m$mic" | tr 'A-F' 'a-f'
}
# kw -e|-d KEKFILE HEX - the RFC 3394 wrap (-e) or unwrap (-d) of HEX under KEKFILE's key, by
# openssl on its own, hex
kw() {
	local kek bits
	kek=$(cat "$2")
	bits=$((${#kek} * 4))
	echo "$3" | hexbin | openssl enc "$1" "-id-aes$bits-wrap" -K "$kek" -iv A6A6A6A6A6A6A6A6 |
		od -An -v -tx1 | tr -d ' \n'
}
# unwrap KEKFILE AESKEY-HEX, wrap KEKFILE KEY-HEX
unwrap() { kw -d "$@"; }
wrap() { kw -e "$@"; }
# post CERT FILE BODYFILE - POST BODYFILE as CERT's owner; the answer in FILE, "CODE SIZE" out
post() {
	curl -s --cacert root.crt --cert "$1.crt" --key "$1.key" --resolve "js.test:$PORT:127.0.0.1" \
		-H 'Content-Type: application/json' -o "$2" -w '%{http_code} %{size_download}' \
		-X POST --data-binary "@$3" "https://js.test:$PORT/"
}
# field FILE NAME[.SUB] - one field of a JSON answer
field() { python3 -c 'import json,sys
v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2" 2>/dev/null; }

# ---- ChirpStack: JoinReq, 1.0.3 device, CFList omitted, random TransactionID ------------------
TID=3735928559	# above 2^31: a u32 all the way
PHY=$(joinreq "$AK_CS10" 70b3d57ed0000001 0000000000000a03 3a91)
printf '%s' "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000024\",\"ReceiverID\":\"70b3d57ed0000001\",\"TransactionID\":$TID,\"MessageType\":\"JoinReq\",\"MACVersion\":\"1.0.3\",\"PHYPayload\":\"$PHY\",\"DevEUI\":\"0000000000000a03\",\"DevAddr\":\"01f2a3b4\",\"DLSettings\":\"00\",\"RxDelay\":1}" >cs1.req
check "ChirpStack JoinReq (1.0.3, no CFList) gets HTTP 200" matches "$(post cs cs1.ans cs1.req)" '^200 [1-9]'
check "... a JoinAns ChirpStack's decoder takes, Success, TransactionID echoed" \
	"${CHK[@]}" chirpstack JoinAns cs1.ans Result=Success TransactionID=$TID ProtocolVersion=1.0 \
	SenderID=70b3d57ed0000001 ReceiverID=000024 present=NwkSKey present=SessionKeyID \
	Lifetime=7200 absent=SenderNSID absent=ReceiverNSID
check "... NwkSKey under cs's AES-128 KEK (24 bytes wrapped)" \
	bash -c "[ '$(field cs1.ans NwkSKey.KEKLabel)' = cs-kek ] && [ \$(printf %s '$(field cs1.ans NwkSKey.AESKey)' | wc -c) -eq 48 ]"
check "... the AppSKey in the JoinAns (appskey_in_joinans), wrapped under cs's KEK, never plain" \
	bash -c "[ '$(field cs1.ans AppSKey.KEKLabel)' = cs-kek ] && [ \$(printf %s '$(field cs1.ans AppSKey.AESKey)' | wc -c) -eq 48 ]"
CS_APPS=$(unwrap cs.kek "$(field cs1.ans AppSKey.AESKey)")
check "... it unwraps with cs's KEK to a 128-bit key" matches "$CS_APPS" '^[0-9a-f]{32}$'
check "... the release is audited (appskey-release, via=joinans, kek=cs-kek)" \
	bash -c "'$DEV' --config dj.conf audit 0000000000000a03 | grep appskey-release | grep -q 'kek=cs-kek via=joinans'"
# the same AppSKey as the application server gets by AppSKeyReq (TTS-shaped, its own KEK)
SKID=$(field cs1.ans SessionKeyID)
# the release's audit row is written in the join's own commit, right after its join-accept:
# one per accepted join, naming its SessionKeyID; a replayed JoinReq (refused) adds none
joinans_rows() { "$DEV" --config dj.conf audit 0000000000000a03 | grep -c 'appskey-release.*via=joinans'; }
check "... exactly one release row, naming this join's SessionKeyID, right after its join-accept" \
	bash -c "[ \$('$DEV' --config dj.conf audit 0000000000000a03 | grep -c 'appskey-release.*session_key_id=$(echo "$SKID" | tr A-F a-f) kek=cs-kek via=joinans') -eq 1 ] &&
		[ $(joinans_rows) -eq 1 ] &&
		'$DEV' --config dj.conf audit 0000000000000a03 | grep -A1 join-accept | tail -1 | grep -q appskey-release"
post cs cs1r.ans cs1.req >/dev/null
check "... the same JoinReq replayed is refused, without the AppSKey" \
	bash -c "[ '$(field cs1r.ans Result.ResultCode)' != Success ] && [ -n '$(field cs1r.ans Result.ResultCode)' ] && ! grep -q AppSKey cs1r.ans"
check "... and adds no release row (still exactly one)" test "$(joinans_rows)" -eq 1
printf '%s\n' "{\"ProtocolVersion\":\"1.1\",\"TransactionID\":0,\"MessageType\":\"AppSKeyReq\",\"SenderID\":\"as.tts.test\",\"ReceiverID\":\"70B3D57ED0000001\",\"DevEUI\":\"0000000000000A03\",\"SessionKeyID\":\"$(echo "$SKID" | tr a-f A-F)\"}" >as1.req
post ttsas as1.ans as1.req >/dev/null
check "TTS AppSKeyReq (upper-case, TransactionID 0, trailing newline) gets an AppSKeyAns TTS takes" \
	"${CHK[@]}" tts AppSKeyAns as1.ans Result=Success TransactionID=0 ReceiverID=as.tts.test \
	present=DevEUI present=SessionKeyID present=AppSKey
check "... its AppSKey (ttsas's KEK) is the one cs got in the JoinAns (cs's KEK)" \
	test "$(unwrap ttsas.kek "$(field as1.ans AppSKey.AESKey)")" = "$CS_APPS"

# ChirpStack's backend crate AppSKeyReq: ProtocolVersion 1.0, hex SenderID, random TransactionID
printf '%s' "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"0a0b0c0d\",\"ReceiverID\":\"70b3d57ed0000001\",\"TransactionID\":3141592653,\"MessageType\":\"AppSKeyReq\",\"DevEUI\":\"0000000000000a03\",\"SessionKeyID\":\"$SKID\"}" >as2.req
post csas as2.ans as2.req >/dev/null
check "ChirpStack-shaped AppSKeyReq gets an AppSKeyAns ChirpStack's decoder takes" \
	"${CHK[@]}" chirpstack AppSKeyAns as2.ans Result=Success TransactionID=3141592653 \
	ReceiverID=0a0b0c0d present=AppSKey
check "... the same AppSKey, under csas's KEK" \
	test "$(unwrap csas.kek "$(field as2.ans AppSKey.AESKey)")" = "$CS_APPS"

# ---- ChirpStack: 1.1 device, MACVersion "1.1.0", CFList present -------------------------------
PHY=$(joinreq "$NK_CS11" 70b3d57ed0000001 0000000000000a11 0001)
printf '%s' "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000024\",\"ReceiverID\":\"70b3d57ed0000001\",\"TransactionID\":2864434397,\"MessageType\":\"JoinReq\",\"MACVersion\":\"1.1.0\",\"PHYPayload\":\"$PHY\",\"DevEUI\":\"0000000000000a11\",\"DevAddr\":\"01f2a3b5\",\"DLSettings\":\"80\",\"RxDelay\":1,\"CFList\":\"184f84e85684b85e84886684586e8400\"}" >cs2.req
post cs cs2.ans cs2.req >/dev/null
check "ChirpStack JoinReq (1.1 device as \"1.1.0\", CFList) gets a JoinAns ChirpStack takes" \
	"${CHK[@]}" chirpstack JoinAns cs2.ans Result=Success TransactionID=2864434397 \
	present=FNwkSIntKey present=SNwkSIntKey present=NwkSEncKey present=AppSKey absent=NwkSKey \
	Lifetime=7200
check "... its Join-accept carries the CFList (33 bytes)" \
	test "$(field cs2.ans PHYPayload | wc -c)" -eq 67
# the four keys were wrapped in one lockstep run (pipeline.c session_envelopes): each opens
# under cs's KEK, they differ, and the AppSKey is the application server's (AppSKeyReq), its
# envelope byte for byte the wrap of that key on its own
CS11_KEYS=""
for f in FNwkSIntKey SNwkSIntKey NwkSEncKey AppSKey; do
	CS11_KEYS="$CS11_KEYS $(unwrap cs.kek "$(field cs2.ans "$f.AESKey")")"
done
check "... its four keys open under cs's KEK, four different 128-bit keys" \
	test "$(printf '%s\n' $CS11_KEYS | grep -Ec '^[0-9a-f]{32}$')/$(printf '%s\n' $CS11_KEYS | sort -u | wc -l)" = 4/4
printf '%s' "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"0a0b0c0d\",\"ReceiverID\":\"70b3d57ed0000001\",\"TransactionID\":5,\"MessageType\":\"AppSKeyReq\",\"DevEUI\":\"0000000000000a11\",\"SessionKeyID\":\"$(field cs2.ans SessionKeyID)\"}" >as3.req
post csas as3.ans as3.req >/dev/null
CS11_APPS=$(unwrap csas.kek "$(field as3.ans AppSKey.AESKey)")
check "... its AppSKey is the one the application server gets by AppSKeyReq" \
	test -n "$CS11_APPS" -a "$(unwrap cs.kek "$(field cs2.ans AppSKey.AESKey)")" = "$CS11_APPS"
check "... its AppSKey envelope is, byte for byte, that key wrapped on its own under cs's KEK" \
	test -n "$CS11_APPS" -a "$(wrap cs.kek "$CS11_APPS")" = "$(field cs2.ans AppSKey.AESKey | tr A-F a-f)"

# ---- ChirpStack: HomeNSReq (1.0) -------------------------------------------------------------
printf '%s' '{"ProtocolVersion":"1.0","SenderID":"000024","ReceiverID":"70b3d57ed0000001","TransactionID":1122334455,"MessageType":"HomeNSReq","DevEUI":"0000000000000a11"}' >cs3.req
post cs cs3.ans cs3.req >/dev/null
check "ChirpStack HomeNSReq gets a HomeNSAns ChirpStack takes (HNetID, no 1.1 HNSID)" \
	"${CHK[@]}" chirpstack HomeNSAns cs3.ans Result=Success HNetID=000013 absent=HNSID \
	TransactionID=1122334455

# ---- TTS: JoinReq, 1.0.0 device as "1.0", upper-case hex, TransactionID 0, newline ------------
PHY=$(joinreq "$AK_TTS10" 70b3d57ed0000001 0000000000000b00 5eed | tr a-f A-F)
printf '%s\n' "{\"ProtocolVersion\":\"1.1\",\"TransactionID\":0,\"MessageType\":\"JoinReq\",\"SenderID\":\"000013\",\"SenderNSID\":\"70B3D57ED0000001\",\"ReceiverID\":\"70B3D57ED0000001\",\"MACVersion\":\"1.0\",\"PHYPayload\":\"$PHY\",\"DevEUI\":\"0000000000000B00\",\"DevAddr\":\"260B1C2D\",\"DLSettings\":\"00\",\"RxDelay\":5,\"CFList\":\"\"}" >tts1.req
check "TTS JoinReq gets HTTP 200" matches "$(post tts tts1.ans tts1.req)" '^200 [1-9]'
check "... a JoinAns TTS's decoder takes: Success, TransactionID 0, NSID echoed" \
	"${CHK[@]}" tts JoinAns tts1.ans Result=Success TransactionID=0 Lifetime=7200 \
	ReceiverNSID=70B3D57ED0000001 present=NwkSKey present=SessionKeyID absent=AppSKey
check "... NwkSKey under tts's AES-256 KEK (TTS unwraps AES-256)" \
	bash -c "[ '$(field tts1.ans NwkSKey.KEKLabel)' = tts-kek ] && [ \$(printf %s '$(field tts1.ans NwkSKey.AESKey)' | wc -c) -eq 48 ]"
check "... which unwraps to a 128-bit key" \
	matches "$(unwrap tts.kek "$(field tts1.ans NwkSKey.AESKey)")" '^[0-9a-f]{32}$'

# ---- TTS: 1.1 device, and a DNS-name NSID in another case with a trailing dot -----------------
PHY=$(joinreq "$NK_TTS11" 70b3d57ed0000001 0000000000000b11 0001 | tr a-f A-F)
printf '%s\n' "{\"ProtocolVersion\":\"1.1\",\"TransactionID\":0,\"MessageType\":\"JoinReq\",\"SenderID\":\"000013\",\"SenderNSID\":\"70B3D57ED0000001\",\"ReceiverID\":\"70B3D57ED0000001\",\"MACVersion\":\"1.1\",\"PHYPayload\":\"$PHY\",\"DevEUI\":\"0000000000000B11\",\"DevAddr\":\"260B1C2E\",\"DLSettings\":\"80\",\"RxDelay\":5,\"CFList\":\"\"}" >tts2.req
post tts tts2.ans tts2.req >/dev/null
check "TTS JoinReq for a 1.1 device gets a JoinAns TTS takes" \
	"${CHK[@]}" tts JoinAns tts2.ans Result=Success TransactionID=0 present=FNwkSIntKey \
	present=SNwkSIntKey present=NwkSEncKey
printf '%s\n' '{"ProtocolVersion":"1.1","TransactionID":0,"MessageType":"HomeNSReq","SenderID":"000013","SenderNSID":"70B3D57ED0000001","ReceiverID":"70B3D57ED0000001","DevEUI":"0000000000000B11"}' >tts3.req
post tts tts3.ans tts3.req >/dev/null
check "TTS-shaped HomeNSReq (1.1) gets a HomeNSAns with HNSID as an EUI-64 TTS decodes" \
	"${CHK[@]}" tts HomeNSAns tts3.ans Result=Success HNetID=000013 HNSID=70b3d57ed00000ff
printf '%s' '{"ProtocolVersion":"1.1","SenderID":"000013","ReceiverID":"70b3d57ed0000001","TransactionID":5,"MessageType":"HomeNSReq","SenderNSID":"NS1.TEST.","DevEUI":"0000000000000b11"}' >ns1.req
post ns1 ns1.ans ns1.req >/dev/null
# (not a TTS peer: TTS's decoder takes EUI-64 NSIDs only, so only the Result is checked)
check "a DNS-name NSID matches in any case and with a trailing dot (ns_ids = ns1.test)" \
	grep -q '"ResultCode":"Success"' ns1.ans

# ---- UnknownSender names its field ------------------------------------------------------------
sed 's/"SenderNSID":"70B3D57ED0000001"/"SenderNSID":"70B3D57ED0000002"/' tts3.req >bad-nsid.req
post tts bad-nsid.ans bad-nsid.req >/dev/null
check "a wrong SenderNSID gets UnknownSender naming SenderNSID" \
	bash -c "'${CHK[0]}' '${CHK[1]}' tts HomeNSAns bad-nsid.ans Result=UnknownSender >/dev/null &&
		grep -q '\"Description\":\"SenderNSID 70B3D57ED0000002: not among the ns_ids' bad-nsid.ans"
check "... and so does the log" grep -q "identity ns.tts.test: HomeNSReq refused, UnknownSender: SenderNSID 70B3D57ED0000002" jsd.log
sed 's/"SenderID":"000013"/"SenderID":"000099"/' tts3.req >bad-sid.req
post tts bad-sid.ans bad-sid.req >/dev/null
check "a wrong SenderID gets UnknownSender naming SenderID" \
	grep -q '"ResultCode":"UnknownSender","Description":"SenderID 000099: not among the sender_ids' bad-sid.ans
post ttsas bad-role.ans tts3.req >/dev/null
check "an application server sending HomeNSReq gets UnknownSender naming the role" \
	grep -q '"ResultCode":"UnknownSender","Description":"role: an application server may not send HomeNSReq' bad-role.ans

# ---- asynchronous mode (ChirpStack async): every answer goes to the URL -----------------------
dj_spawn async.out async.err "$CLI" listen --listen 127.0.0.1:$APORT --cert csa.crt --key csa.key \
	--ca root.crt --count 3
LPID=$DJ_PID
check "async: ChirpStack's backend API (danejoin-client listen) listens" dj_wait_port "$APORT" "$LPID"
PHY=$(joinreq "$AK_CSA" 70b3d57ed0000001 0000000000000c03 0c03)
printf '%s' "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000025\",\"ReceiverID\":\"70b3d57ed0000001\",\"TransactionID\":4000000001,\"MessageType\":\"JoinReq\",\"MACVersion\":\"1.0.3\",\"PHYPayload\":\"$PHY\",\"DevEUI\":\"0000000000000c03\",\"DevAddr\":\"01f2a3b6\",\"DLSettings\":\"00\",\"RxDelay\":1}" >csa1.req
check "async: a JoinReq gets HTTP 200 with an empty body" matches "$(post csa csa1.http csa1.req)" '^200 0$'
sed 's/"PHYPayload":"[0-9a-f]*"/"PHYPayload":"00zz"/; s/4000000001/4000000002/' csa1.req >csa2.req
check "async: a malformed JoinReq gets HTTP 200 with an empty body too" \
	matches "$(post csa csa2.http csa2.req)" '^200 0$'
sed 's/"SenderID":"000025"/"SenderID":"000099"/; s/4000000001/4000000003/' csa1.req >csa3.req
check "async: a JoinReq with a wrong SenderID gets HTTP 200 with an empty body" \
	matches "$(post csa csa3.http csa3.req)" '^200 0$'
dj_wait_exit "$LPID" 10
dj_stop "$LPID" KILL
grep '"TransactionID":4000000001' async.out >a1.json
grep '"TransactionID":4000000002' async.out >a2.json
grep '"TransactionID":4000000003' async.out >a3.json
check "async: the JoinAns arrives at the URL, as ChirpStack decodes it" \
	"${CHK[@]}" chirpstack JoinAns a1.json Result=Success present=NwkSKey Lifetime=7200
check "async: the MalformedRequest answer arrives at the URL" \
	"${CHK[@]}" chirpstack JoinAns a2.json Result=MalformedRequest
check "async: the UnknownSender answer arrives at the URL, naming SenderID" \
	bash -c "'${CHK[0]}' '${CHK[1]}' chirpstack JoinAns a3.json Result=UnknownSender >/dev/null && grep -q 'Description\":\"SenderID 000099' a3.json"
printf '{"ProtocolVersion":"1.0",' >csa4.req
check "async: a body that names no request is still answered inline (HTTP 400)" \
	matches "$(post csa csa4.http csa4.req)" '^400 '

# ---- appskey_in_joinans without a usable KEK: a SIGHUP reload is refused, naming the peer ---
# cs asks for the AppSKey in its JoinAns. A reload that would leave it without a KEK (removed
# with plain_keys, a KEK file invalid, too open or gone) is refused with a line naming
# [peer.cs], and the running table keeps serving: each join after it still gets the AppSKey
# wrapped under the KEK read at start, never in plain.
cp dj.conf good.conf
cp cs.kek cs.kek.orig
# cs_join DEVNONCE FILE - a ChirpStack JoinReq of device a03; the answer in FILE
cs_join() {
	sed "s/\"PHYPayload\":\"[0-9a-f]*\"/\"PHYPayload\":\"$(joinreq "$AK_CS10" 70b3d57ed0000001 0000000000000a03 "$1")\"/" \
		cs1.req >"$2.req"
	post cs "$2" "$2.req" >/dev/null
}
# joinans_wrapped FILE - Success, and the AppSKey under the start's cs-kek (never plain)
joinans_wrapped() {
	[ "$(field "$1" Result.ResultCode)" = Success ] &&
		[ "$(field "$1" AppSKey.KEKLabel)" = cs-kek ] &&
		matches "$(unwrap cs.kek.orig "$(field "$1" AppSKey.AESKey)")" '^[0-9a-f]{32}$'
}
# reload_refused ERE - SIGHUP; status 0 once jsd.log has one more "reload refused" line, it
# matches ERE, and no reload was applied
reload_refused() {
	local n ok
	n=$(grep -c "reload refused" jsd.log)
	ok=$(grep -c "configuration reloaded" jsd.log)
	kill -HUP "$DJ_JSD_PID"
	dj_wait_for 5 bash -c "[ \$(grep -c 'reload refused' jsd.log) -gt $n ]" || return 1
	grep "reload refused" jsd.log | tail -1 | grep -Eq -- "$1" &&
		[ "$(grep -c "configuration reloaded" jsd.log)" -eq "$ok" ]
}
cp bad2.conf dj.conf
check "reload: appskey_in_joinans left without a KEK (plain_keys) is refused, naming [peer.cs]" \
	reload_refused "the running configuration stays: .*\[peer.cs\] appskey_in_joinans: needs kek_label and kek_file"
cs_join 3a92 rl1.ans
check "... the old table serves: the JoinAns carries the AppSKey under cs-kek" joinans_wrapped rl1.ans
cp good.conf dj.conf
(umask 077 && echo "not a key" >cs.kek)
check "reload: cs's KEK file no longer a key is refused, naming [peer.cs] kek_file" \
	reload_refused "\[peer.cs\] kek_file cs.kek: expected 32 or 64 hex digits"
cs_join 3a93 rl2.ans
check "... the AppSKey still leaves wrapped under the KEK read at start" joinans_wrapped rl2.ans
cp cs.kek.orig cs.kek
chmod 644 cs.kek
check "reload: cs's KEK file readable by others is refused, naming [peer.cs] kek_file" \
	reload_refused "\[peer.cs\] kek_file cs.kek: has mode 0644"
rm cs.kek
check "reload: cs's KEK file gone is refused, naming [peer.cs] kek_file" \
	reload_refused "\[peer.cs\] kek_file cs.kek: does not exist"
cs_join 3a94 rl3.ans
check "... the AppSKey still leaves wrapped under the KEK read at start" joinans_wrapped rl3.ans
(umask 077 && cp cs.kek.orig cs.kek)
check "reload with cs's KEK back is applied" dj_jsd_reload jsd.log
cs_join 3a95 rl4.ans
check "... and cs's joins get the wrapped AppSKey" joinans_wrapped rl4.ans

dj_jsd_stop
check "SIGTERM: danejoind drains and exits 0" test $? -eq 0
check "no device key in the log" bash -c "! grep -qiE '$AK_CS10|$NK_CS11|$AK_TTS10|$NK_TTS11|$AK_CSA|$CS_APPS' jsd.log"
dj_end jsd.log
