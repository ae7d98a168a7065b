#!/bin/bash
# test_ca_certs.sh - danejoin-ca certificates and TLSA data, checked with independent tools:
# chains root -> intermediate -> leaf for every key type accepted by `openssl verify`; the
# extensions of every role read back with `openssl x509 -ext`; TLSA data for every usage x
# selector x matching type equal to `openssl ... | openssl dgst`, `ldns-dane create` and
# `danetool --tlsa-rr`; owner-name helpers; keys 0600, never overwritten without --force,
# passphrase-encrypted PKCS#8; CSR signing where the role, not the CSR, decides; bulk issuing
# from CSV in every layout (files, pem, bundle); and bad input refused with its exit code and nothing written.
#
# Usage: bash test_ca_certs.sh BUILD_DIR SOURCE_DIR   (run by ctest)
set -u
. "$(dirname "$0")/../lib/harness.sh"
dj_begin ca-certs "$@"
BIN=$CA
dj_need "$BIN"
mode_of() { stat -c %a "$1"; }

# --- Chains for every key type, verified by openssl.
for kt in ec-p256 ed25519 rsa2048 rsa3072; do
	run 0 root --key-type $kt --subject "Root $kt" --key-out r-$kt.key --cert-out r-$kt.crt --pathlen 1
	run 0 intermediate --key-type $kt --subject "Int $kt" --ca-cert r-$kt.crt --ca-key r-$kt.key \
		--key-out i-$kt.key --cert-out i-$kt.crt --pathlen 0
	run 0 issue --key-type $kt --role js --name js.lorawan.test --ca-cert i-$kt.crt \
		--ca-key i-$kt.key --key-out l-$kt.key --cert-out l-$kt.crt
	CHECKS=$((CHECKS + 1))
	openssl verify -x509_strict -CAfile r-$kt.crt -untrusted i-$kt.crt l-$kt.crt >"$OUT" 2>&1 ||
		fail "openssl verify rejects the $kt chain"
	eq "$(mode_of r-$kt.key) $(mode_of i-$kt.key) $(mode_of l-$kt.key)" "600 600 600" "$kt key modes"
	run 0 inspect --cert l-$kt.crt
	case $kt in
	ec-p256) has "$OUT" "^Key: +EC P-256" ;;
	ed25519) has "$OUT" "^Key: +Ed25519" ;;
	rsa2048) has "$OUT" "^Key: +RSA 2048" ;;
	rsa3072) has "$OUT" "^Key: +RSA 3072" ;;
	esac
done
openssl x509 -in r-ec-p256.crt -noout -ext basicConstraints,keyUsage >"$OUT"
has "$OUT" "critical" && has "$OUT" "CA:TRUE, pathlen:1" && has "$OUT" "Certificate Sign, CRL Sign"
# An intermediate under a pathlen:0 CA, a leaf used as a CA, a key that is not the CA's.
run 2 intermediate --subject X --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key --key-out x.key \
	--cert-out x.crt && has "$ERR" "pathlen 0"
run 2 issue --role js --name a.test --ca-cert l-ec-p256.crt --ca-key l-ec-p256.key --key-out x.key \
	--cert-out x.crt && has "$ERR" "not a CA"
run 2 issue --role js --name a.test --ca-cert r-ec-p256.crt --ca-key r-rsa2048.key --key-out x.key \
	--cert-out x.crt && has "$ERR" "does not belong"
run 2 issue --role js --name a.test --ca-cert r-ec-p256.crt --ca-key r-ec-p256.crt --key-out x.key \
	--cert-out x.crt && has "$ERR" "not a PEM private key"
run 2 issue --role js --name a.test --ca-cert missing.crt --ca-key r-ec-p256.key --key-out x.key \
	--cert-out x.crt && has "$ERR" "missing.crt: No such file"
run 1 root --key-type dsa --subject X --key-out x.key --cert-out x.crt
CHECKS=$((CHECKS + 1))
[ ! -e x.key ] && [ ! -e x.crt ] || fail "a refused command wrote a file"

# --- Role profiles.
JOINEUI=0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.7.joineuis.lorawan.test	# 18 labels
for role in js ns as device; do
	case $role in
	js) names=(--name js.lorawan.test --name "$JOINEUI"); eku="TLS Web Server Authentication, TLS Web Client Authentication" ;;
	ns) names=(--name ns1.example.net --name _ns-client.ns1.example.net); eku="TLS Web Client Authentication, TLS Web Server Authentication" ;;
	as) names=(--name as1.example.net --name _as-client.as1.example.net); eku="TLS Web Client Authentication, TLS Web Server Authentication" ;;
	device) names=(--name 70b3d57ed0001234._device.lorawan.test); eku="TLS Web Client Authentication" ;;
	esac
	run 0 issue --role $role "${names[@]}" --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
		--key-out $role.key --cert-out $role.crt --bundle
	openssl x509 -in $role.crt -noout -ext basicConstraints,keyUsage,extendedKeyUsage,subjectAltName,subjectKeyIdentifier,authorityKeyIdentifier >"$OUT" 2>&1
	has "$OUT" "X509v3 Basic Constraints: critical"
	has "$OUT" "CA:FALSE"
	has "$OUT" "X509v3 Key Usage: critical"
	has "$OUT" "^ +Digital Signature$"
	has "$OUT" "^ +$eku$"
	has "$OUT" "Subject Key Identifier"
	has "$OUT" "Authority Key Identifier"
	for n in "${names[@]}"; do [ "$n" = --name ] || has "$OUT" "DNS:$n(,|$)"; done
	CHECKS=$((CHECKS + 1))
	openssl verify -CAfile r-ec-p256.crt -untrusted i-ec-p256.crt $role.crt >/dev/null 2>&1 ||
		fail "openssl verify rejects the $role certificate"
	CHECKS=$((CHECKS + 1))
	[ "$(grep -c BEGIN $role.crt)" -eq 2 ] || fail "--bundle did not append the issuer"
done
openssl verify -purpose sslclient -CAfile r-ec-p256.crt -untrusted i-ec-p256.crt device.crt >/dev/null 2>&1 ||
	fail "device certificate is not a TLS client certificate"
CHECKS=$((CHECKS + 1))
if openssl verify -purpose sslserver -CAfile r-ec-p256.crt -untrusted i-ec-p256.crt device.crt >/dev/null 2>&1; then
	fail "device certificate is accepted as a TLS server"
fi
# Names: a label over 63, a name over 253, a bad character; and a self-signed leaf.
run 2 self-signed --role js --name "$(printf 'a%.0s' $(seq 1 64)).test" --key-out x.key --cert-out x.crt &&
	has "$ERR" "label 1 is 64 characters"
run 2 self-signed --role js --name "bad name.test" --key-out x.key --cert-out x.crt && has "$ERR" "not allowed"
run 0 self-signed --role js --name js.lorawan.test --key-out ss.key --cert-out ss.crt
run 0 inspect --cert ss.crt && has "$OUT" "Self-signed: +yes" && has "$OUT" "TLSA 3 1 1: +[0-9a-f]{64}$"

# --- TLSA data against openssl, ldns-dane and danetool.
cat l-ec-p256.crt i-ec-p256.crt r-ec-p256.crt >chain.pem
for kt in ec-p256 ed25519 rsa2048; do
	c=l-$kt.crt
	spki=$(openssl x509 -in $c -pubkey -noout | openssl pkey -pubin -outform DER | od -An -tx1 | tr -d ' \n')
	full=$(openssl x509 -in $c -outform DER | od -An -tx1 | tr -d ' \n')
	s256=$(openssl x509 -in $c -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 | awk '{print $NF}')
	s512=$(openssl x509 -in $c -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha512 | awk '{print $NF}')
	c256=$(openssl x509 -in $c -outform DER | openssl dgst -sha256 | awk '{print $NF}')
	c512=$(openssl x509 -in $c -outform DER | openssl dgst -sha512 | awk '{print $NF}')
	for u in 0 1 2 3; do
		eq "$("$BIN" tlsa --cert $c --usage $u --selector 1 --mtype 0)" "$u 1 0 $spki" "$kt $u 1 0"
		eq "$("$BIN" tlsa --cert $c --usage $u --selector 1 --mtype 1)" "$u 1 1 $s256" "$kt $u 1 1"
		eq "$("$BIN" tlsa --cert $c --usage $u --selector 1 --mtype 2)" "$u 1 2 $s512" "$kt $u 1 2"
		eq "$("$BIN" tlsa --cert $c --usage $u --selector 0 --mtype 0)" "$u 0 0 $full" "$kt $u 0 0"
		eq "$("$BIN" tlsa --cert $c --usage $u --selector 0 --mtype 1)" "$u 0 1 $c256" "$kt $u 0 1"
		eq "$("$BIN" tlsa --cert $c --usage $u --selector 0 --mtype 2)" "$u 0 2 $c512" "$kt $u 0 2"
	done
	for s in 0 1; do for m in 0 1 2; do
		ours=$("$BIN" tlsa --cert $c --usage 3 --selector $s --mtype $m --server js.lorawan.test --port 443)
		theirs=$(ldns-dane -c $c create js.lorawan.test 443 3 $s $m 2>&1 | tr -s ' \t' ' ')
		eq "$ours" "$theirs" "ldns-dane 3 $s $m ($kt)"
	done; done
	for h in sha256 sha512; do
		m=1; [ $h = sha512 ] && m=2
		eq "$("$BIN" tlsa --cert $c --usage 3 --selector 1 --mtype $m | awk '{print $4}')" \
			"$(danetool --tlsa-rr --host js.lorawan.test --load-certificate $c --hash $h | awk '{print $8}')" \
			"danetool 3 1 $m ($kt)"
		eq "$("$BIN" tlsa --cert $c --usage 3 --selector 0 --mtype $m | awk '{print $4}')" \
			"$(danetool --tlsa-rr --host js.lorawan.test --load-certificate $c --hash $h --x509 | awk '{print $8}')" \
			"danetool 3 0 $m ($kt)"
	done
	# --key and --pubkey give the SPKI data of the certificate.
	openssl pkey -in l-$kt.key -pubout -out l-$kt.pub 2>/dev/null
	eq "$("$BIN" tlsa --key l-$kt.key --usage 3 --selector 1 --mtype 1)" "3 1 1 $s256" "--key ($kt)"
	eq "$("$BIN" tlsa --pubkey l-$kt.pub --usage 3 --selector 1 --mtype 1)" "3 1 1 $s256" "--pubkey ($kt)"
done
# --chain: the TA (last) for usage 2, --depth picks; ldns-dane picks the same TA.
eq "$("$BIN" tlsa --chain chain.pem --usage 2 --selector 0 --mtype 1 --server js.lorawan.test --port 443)" \
	"$(ldns-dane -c chain.pem create js.lorawan.test 443 2 0 1 2>&1 | tr -s ' \t' ' ')" "ldns-dane 2 0 1 chain"
eq "$("$BIN" tlsa --chain chain.pem --usage 2 --selector 0 --mtype 1)" \
	"$("$BIN" tlsa --cert r-ec-p256.crt --usage 2 --selector 0 --mtype 1)" "--chain TA"
eq "$("$BIN" tlsa --chain chain.pem --depth 1 --usage 2 --selector 1 --mtype 1)" \
	"$("$BIN" tlsa --cert i-ec-p256.crt --usage 2 --selector 1 --mtype 1)" "--chain --depth 1"
run 2 tlsa --chain chain.pem --depth 3 --usage 2 --selector 1 --mtype 1 && has "$ERR" "no depth 3"
run 1 tlsa --key l-ec-p256.key --usage 3 --selector 0 --mtype 1
run 1 tlsa --cert l-ec-p256.crt --usage 4 --selector 1 --mtype 1
# Owner-name helpers and the zone-file form.
H=$("$BIN" tlsa --cert ns.crt --usage 3 --selector 1 --mtype 1 | awk '{print $4}')
eq "$("$BIN" tlsa --cert ns.crt --usage 3 --selector 1 --mtype 1 --client-role ns --host ns1.example.net)" \
	"_ns-client.ns1.example.net. 3600 IN TLSA 3 1 1 $H" "--client-role ns"
eq "$("$BIN" tlsa --cert as.crt --usage 3 --selector 1 --mtype 1 --client-role as --host as1.example.net --ttl 60 | cut -d' ' -f1-4)" \
	"_as-client.as1.example.net. 60 IN TLSA" "--client-role as"
eq "$("$BIN" tlsa --cert r-ec-p256.crt --usage 2 --selector 0 --mtype 1 --rootcert example.net | cut -d' ' -f1)" \
	"_rootcert.example.net." "--rootcert"
eq "$("$BIN" tlsa --cert js.crt --usage 3 --selector 1 --mtype 1 --server js.lorawan.test --port 8443 | cut -d' ' -f1)" \
	"_8443._tcp.js.lorawan.test." "--server --port"
run 1 tlsa --cert js.crt --usage 3 --selector 1 --mtype 1 --client-role js --host h.test

# --- Key files: 0600 whatever the umask, no overwrite, --force, passphrases.
sum0=$(sha256sum ss.key ss.crt)
run 3 self-signed --role js --name js.lorawan.test --key-out ss.key --cert-out ss.crt && has "$ERR" "exists"
eq "$(sha256sum ss.key ss.crt)" "$sum0" "a refused overwrite changed the files"
(umask 000; "$BIN" self-signed --role js --name js.lorawan.test --key-out ss.key --cert-out ss.crt --force >/dev/null)
eq "$(mode_of ss.key)" 600 "--force key mode under umask 000"
CHECKS=$((CHECKS + 1))
[ "$(sha256sum ss.key ss.crt)" != "$sum0" ] || fail "--force did not replace"
printf 'correct horse battery staple\n' >pass; chmod 600 pass
printf 'wrong\n' >wrong
run 0 root --subject "Enc Root" --key-out enc.key --cert-out enc.crt --passphrase-file pass
has enc.key "BEGIN ENCRYPTED PRIVATE KEY"
eq "$(mode_of enc.key)" 600 "encrypted key mode"
CHECKS=$((CHECKS + 1))
openssl asn1parse -in enc.key 2>/dev/null | grep -q "aes-256-cbc" || fail "the key is not AES-256 encrypted"
CHECKS=$((CHECKS + 1))
openssl pkey -in enc.key -passin file:pass -noout 2>/dev/null || fail "openssl cannot open the encrypted key"
run 2 issue --role js --name a.test --ca-cert enc.crt --ca-key enc.key --key-out x.key --cert-out x.crt &&
	has "$ERR" "encrypted; give its --passphrase-file"
run 2 issue --role js --name a.test --ca-cert enc.crt --ca-key enc.key --ca-passphrase-file wrong \
	--key-out x.key --cert-out x.crt && has "$ERR" "wrong passphrase"
run 0 issue --role js --name a.test --ca-cert enc.crt --ca-key enc.key --ca-passphrase-file pass \
	--key-out x.key --cert-out x.crt
CHECKS=$((CHECKS + 1))
grep -rq "correct horse" "$OUT" "$ERR" && fail "the passphrase was printed"

# --- sign --csr: the role decides; the CSR's requests are ignored; the signature is checked.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout csr.key -subj "/CN=evil" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "subjectAltName=DNS:evil.test" -out req.csr 2>/dev/null
run 0 sign --csr req.csr --role device --name 70b3d57ed0009999._device.lorawan.test \
	--ca-cert i-ec-p256.crt --ca-key i-ec-p256.key --cert-out signed.crt
openssl x509 -in signed.crt -noout -text >"$OUT"
has "$OUT" "CA:FALSE" && has "$OUT" "DNS:70b3d57ed0009999._device.lorawan.test"
CHECKS=$((CHECKS + 1))
grep -q "evil" "$OUT" && fail "the CSR's names or subject were copied"
eq "$(openssl x509 -in signed.crt -noout -pubkey)" "$(openssl pkey -in csr.key -pubout)" "signed key = CSR key"
rm -f x.key x.crt
# A CSR whose signature does not verify (one byte of the signature flipped).
openssl req -in req.csr -outform DER -out req.der
python3 -c "import sys; b=bytearray(open('req.der','rb').read()); b[-5]^=1; open('bad.der','wb').write(b)"
openssl req -inform DER -in bad.der -out bad.csr 2>/dev/null
run 2 sign --csr bad.csr --role js --name a.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--cert-out x.crt && has "$ERR" "self-signature does not verify"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-521 -nodes -keyout p521.key -subj "/CN=x" -out p521.csr 2>/dev/null
run 2 sign --csr p521.csr --role js --name a.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--cert-out x.crt && has "$ERR" "not supported"
run 2 sign --csr ss.crt --role js --name a.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--cert-out x.crt && has "$ERR" "not a PEM certificate request"

# --- Bulk: issue --csv.
{ echo "dev_eui,name,model"; for i in $(seq 1 40); do printf '70B3D57ED00%05X,,m1\n' $i; done
  echo "70b3d57ed0099999,special.devices.lorawan.test,m2"; } >devs.csv
run 0 issue --csv devs.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--out-dir bulk --ttl 300 && has "$OUT" "issued 41 device certificates"
eq "$(ls bulk/*.key | wc -l) $(ls bulk/*.crt | wc -l) $(wc -l <bulk/tlsa.zone)" "41 41 41" "bulk outputs"
eq "$(stat -c %a bulk/*.key | sort -u)" 600 "bulk key modes"
has bulk/tlsa.zone "^70b3d57ed0000001\._device\.lorawan\.test\. 300 IN TLSA 3 1 1 [0-9a-f]{64}$"
has bulk/tlsa.zone "^special\.devices\.lorawan\.test\. 300 IN TLSA"
eq "$(grep ^70b3d57ed0000007 bulk/tlsa.zone | awk '{print $8}')" \
	"$("$BIN" tlsa --cert bulk/70b3d57ed0000007.crt --usage 3 --selector 1 --mtype 1 | awk '{print $4}')" "bulk TLSA line"
CHECKS=$((CHECKS + 1))
openssl verify -CAfile r-ec-p256.crt -untrusted i-ec-p256.crt bulk/70b3d57ed0000028.crt >/dev/null 2>&1 ||
	fail "openssl verify rejects a bulk certificate"
openssl x509 -in bulk/70b3d57ed0000028.crt -noout -subject -ext subjectAltName,extendedKeyUsage >"$OUT"
has "$OUT" "CN = 70b3d57ed0000028" && has "$OUT" "DNS:70b3d57ed0000028._device.lorawan.test" &&
	has "$OUT" "TLS Web Client Authentication"
CHECKS=$((CHECKS + 1))
openssl pkey -in bulk/70b3d57ed0000028.key -pubout 2>/dev/null | cmp -s - <(openssl x509 -in bulk/70b3d57ed0000028.crt -noout -pubkey) ||
	fail "bulk key and certificate differ"
CHECKS=$((CHECKS + 1))	# the P-256 key template is byte for byte OpenSSL's PKCS#8
openssl pkey -in bulk/70b3d57ed0000028.key 2>/dev/null | cmp -s - bulk/70b3d57ed0000028.key ||
	fail "bulk key differs from OpenSSL's PKCS#8 encoding"
# --layout bundle: one 0600 file, every device in CSV order, key then certificate.
run 0 issue --csv devs.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--out-dir bund --ttl 300 --layout bundle && has "$OUT" "issued 41 device certificates .* into bund/devices.pem"
eq "$(ls bund | tr '\n' ' ')" "devices.pem tlsa.zone " "bundle outputs"
eq "$(mode_of bund/devices.pem)" 600 "bundle mode"
eq "$(grep -c 'BEGIN PRIVATE KEY' bund/devices.pem) $(grep -c 'BEGIN CERTIFICATE' bund/devices.pem)" "41 41" "bundle blocks"
eq "$(sed -n 's/^# \([0-9a-f]*\) .*/\1/p' bund/devices.pem | tr '\n' ' ')" \
	"$(tail -n +2 devs.csv | cut -d, -f1 | tr 'A-F' 'a-f' | tr '\n' ' ')" "bundle in CSV order"
has bund/devices.pem "^# 70b3d57ed0099999 special\.devices\.lorawan\.test$"
mkdir -p split && awk '/^# /{ f = "split/" $2 ".pem" } f { print > f }' bund/devices.pem
eq "$(ls split | wc -l)" 41 "bundle split"
for d in 70b3d57ed0000001 70b3d57ed0000014 70b3d57ed0099999; do
	CHECKS=$((CHECKS + 1))
	openssl verify -x509_strict -CAfile r-ec-p256.crt -untrusted i-ec-p256.crt split/$d.pem >/dev/null 2>&1 ||
		fail "openssl verify rejects bundled certificate $d"
	CHECKS=$((CHECKS + 1))
	openssl pkey -in split/$d.pem -pubout 2>/dev/null | cmp -s - <(openssl x509 -in split/$d.pem -noout -pubkey) ||
		fail "bundled key and certificate of $d differ"
	CHECKS=$((CHECKS + 1))
	openssl pkey -in split/$d.pem 2>/dev/null | cmp -s - <(sed -n '/BEGIN PRIVATE/,/END PRIVATE/p' split/$d.pem) ||
		fail "bundled key of $d differs from OpenSSL's PKCS#8 encoding"
done
eq "$(grep ^70b3d57ed0000014 bund/tlsa.zone | awk '{print $8}')" \
	"$("$BIN" tlsa --cert split/70b3d57ed0000014.pem --usage 3 --selector 1 --mtype 1 | awk '{print $4}')" "bundle TLSA line"
sum0=$(cat bund/* | sha256sum)
run 3 issue --csv devs.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--out-dir bund --layout bundle && has "$ERR" "exists; nothing was issued"
eq "$(cat bund/* | sha256sum)" "$sum0" "a refused bundle run changed files"
run 0 issue --csv devs.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--out-dir bund --layout bundle --force
eq "$(mode_of bund/devices.pem) $(grep -c 'BEGIN CERTIFICATE' bund/devices.pem)" "600 41" "bundle replaced"
# --layout pem: DIR/<dev_eui>.pem (0600) holding key and certificate.
run 0 issue --csv devs.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--out-dir pems --layout pem
eq "$(ls pems/*.pem | wc -l) $(stat -c %a pems/*.pem | sort -u)" "41 600" "pem layout files and modes"
CHECKS=$((CHECKS + 1))
openssl verify -CAfile r-ec-p256.crt -untrusted i-ec-p256.crt pems/70b3d57ed0000028.pem >/dev/null 2>&1 ||
	fail "openssl verify rejects a pem-layout certificate"
# Other key types in a bundle (Ed25519 SPKI written directly, RSA through OpenSSL).
head -4 devs.csv >devs3.csv	# 3 devices: RSA key generation is slow, one is checked
for kt in ed25519 rsa2048; do
	run 0 issue --csv devs3.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
		--out-dir bund-$kt --layout bundle --key-type $kt --threads 3
	awk '/^# 70b3d57ed0000002/{ f = 1 } /^# 70b3d57ed0000003/{ f = 0 } f' bund-$kt/devices.pem >one-$kt.pem
	CHECKS=$((CHECKS + 1))
	openssl verify -CAfile r-ec-p256.crt -untrusted i-ec-p256.crt one-$kt.pem >/dev/null 2>&1 ||
		fail "openssl verify rejects a $kt bundle certificate"
	CHECKS=$((CHECKS + 1))
	openssl pkey -in one-$kt.pem -pubout 2>/dev/null | cmp -s - <(openssl x509 -in one-$kt.pem -noout -pubkey) ||
		fail "$kt bundle key and certificate differ"
done
run 1 issue --csv devs.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--out-dir bad1 --layout zip && has "$ERR" "files, pem or bundle"
run 1 issue --role js --name a.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key --key-out x.key \
	--cert-out x.crt --layout bundle
# Bad CSV input writes nothing.
{ echo "dev_eui,name"; echo "70b3d57ed0100001,"; echo "70B3D57ED0100001,"; } >dup.csv
run 2 issue --csv dup.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--out-dir bad1 && has "$ERR" "appears twice"
{ echo "dev_eui,name"; echo "70b3d57ed0100001,"; echo "70b3d57ed01000,"; } >short.csv
run 2 issue --csv short.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key \
	--out-dir bad1 && has "$ERR" "short.csv:3: dev_eui must be 16 hex digits"
{ echo "dev_eui,name"; echo "70b3d57ed0100001,"; } >noname.csv
run 2 issue --csv noname.csv --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key --out-dir bad1 &&
	has "$ERR" "no --zone"
CHECKS=$((CHECKS + 1))
[ ! -e bad1 ] || fail "bad CSV input created $(ls bad1)"
sum0=$(cat bulk/* | sha256sum)
run 3 issue --csv devs.csv --zone lorawan.test --ca-cert i-ec-p256.crt --ca-key i-ec-p256.key --out-dir bulk
eq "$(cat bulk/* | sha256sum)" "$sum0" "a refused bulk run changed files"

# --- Usage errors.
run 1 frobnicate
run 1 root --subject X --key-out x.key
run 1 tlsa --cert ss.crt --usage 3 --selector 1
run 1 inspect --cert ss.crt --role js
run 0 --help && has "$OUT" "Exit codes"

dj_end
