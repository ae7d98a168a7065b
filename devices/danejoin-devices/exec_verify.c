/*
 * exec_verify.c - danejoin-devices verify: check a message signed by a device's own key against
 * the device's identity TLSA (issue 6 item 4; docs/danejoin-devices.md, docs/dns-records.md).
 *
 * Security reasoning.
 *  - The key comes from the DNS only through a DNSSEC-validated lookup of
 *    <deveui>._device.<zone> TLSA (ca_lookup, anchors of --ta-file): an insecure or bogus
 *    answer is refused whatever it holds (DESIGN.md trust rule 1), and so is a secure denial.
 *  - Only usage 3 (DANE-EE) selector 1 (SPKI) records count, matching type 0, 1 or 2
 *    (RFC 6698 §2.1.1-2.1.3). A 3 1 0 record carries the key itself; a 3 1 1 / 3 1 2 record
 *    only its digest, so the verifier brings the key (--device-key) and it must match one
 *    record bytewise (CRYPTO_memcmp) before its signature means anything.
 *  - Each way of failing has its own exit code and message, and a verdict (bad signature,
 *    no record, insecure, key mismatch) is never confused with a fault of ours (DNS
 *    unreachable: exit 8; OpenSSL failure: exit 5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca-tools/ca_lookup.h"
#include "ca-tools/ca_update.h"
#include "common/dj_cli.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_records.h"
#include "exec.h"

#define TLSA_TYPE 52			/* RFC 6698 §7.1 */
#define TLSA_DANE_EE 3			/* usage DANE-EE, RFC 6698 §2.1.1 */
#define TLSA_SPKI 1			/* selector SubjectPublicKeyInfo, RFC 6698 §2.1.2 */
#define TLSA_HDR 3			/* usage, selector, matching type */
#define SHA256_LEN 32
#define SHA512_LEN 64
#define MSG_MAX (16u << 20)		/* --message: at most 16 MiB */
#define SIG_FILE_MAX 1024		/* --signature: DER ECDSA <= 72 bytes, Ed25519 64 */
#define KEY_FILE_MAX 16384		/* --device-key: a PEM public key or certificate */
#define RCODE_NXDOMAIN 3		/* RFC 1035 §4.1.1 */
#define RCODE_NOERROR 0

/* errmsg - print "danejoin-devices: verify: message" on stderr */
#define errmsg(...) dj_cli_err(DV_PROGRAM ": verify", __VA_ARGS__)

/* read_file - a whole file of at most \p max bytes (malloc'd, *len set) */
static int read_file(const char *flag, const char *path, size_t max, uint8_t **out, size_t *len)
{
	int rc;

	*out = NULL;
	rc = dj_cli_read_file(DV_PROGRAM ": verify", flag, path, max, out, len);
	if (rc == DJ_EOK)
		return DV_EXIT_OK;
	return rc == DJ_ENOMEM ? DV_EXIT_INTERNAL : DV_EXIT_DATA;
}

/* read_device_key - --device-key: a PEM public key (or certificate) of type P-256 or Ed25519 */
static int read_device_key(const char *path, EVP_PKEY **out)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int ex;

	*out = NULL;
	ex = read_file("--device-key", path, KEY_FILE_MAX, &pem, &len);
	if (ex != DV_EXIT_OK)
		return ex;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		ex = DV_EXIT_INTERNAL;
		goto out;
	}
	key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (key == NULL && BIO_reset(bio) == 1) {
		cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		key = cert != NULL ? X509_get_pubkey(cert) : NULL;
	}
	ERR_clear_error();
	if (!dv_key_usable(key)) {
		errmsg("--device-key %s: not a PEM public key (or certificate) of type EC P-256 "
		       "or Ed25519", path);
		ex = DV_EXIT_DATA;
		goto out;
	}
	*out = key;
	key = NULL;
	ex = DV_EXIT_OK;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	BIO_free(bio);
	free(pem);
	return ex;
}

/* tlsa_usable - a 3 1 0/1/2 record with the length its matching type needs */
static bool tlsa_usable(const uint8_t *d, size_t len)
{
	if (len <= TLSA_HDR || d[0] != TLSA_DANE_EE || d[1] != TLSA_SPKI)
		return false;
	switch (d[2]) {
	case DV_TLSA_MTYPE_FULL:
		return true;
	case DV_TLSA_MTYPE_SHA256:
		return len - TLSA_HDR == SHA256_LEN;
	case DV_TLSA_MTYPE_SHA512:
		return len - TLSA_HDR == SHA512_LEN;
	default:
		return false;
	}
}

/* lookup_props - trust anchors, and the stub: --lookup-via, else --ns, else full recursion */
static int lookup_props(const struct dv_owner_args *o, const char *zone, char *stub,
			size_t stublen, struct ca_lookup_props *lk)
{
	const char *via = o->lookup_via != NULL ? o->lookup_via : o->ns;
	struct ca_server srv;
	char err[256];

	memset(lk, 0, sizeof(*lk));
	if (access(o->ta_file, R_OK) != 0) {
		errmsg("--ta-file %s: cannot be read", o->ta_file);
		return DV_EXIT_CONFIG;
	}
	lk->ta_file = o->ta_file;
	if (via != NULL) {
		if (ca_server_parse(via, &srv, err, sizeof(err)) != DJ_EOK) {
			errmsg("%s: %s", o->lookup_via != NULL ? "--lookup-via" : "--ns", err);
			return DV_EXIT_USAGE;
		}
		snprintf(stub, stublen, "%s@%u", srv.addr, srv.port);
		lk->stub_zone = zone;
		lk->stub_addr = stub;
	}
	return DV_EXIT_OK;
}

int exec_verify(const struct dv_params *p)
{
	const struct dv_owner_args *o = &p->own;
	struct ca_lookup_props lk;
	struct ca_verdict v;
	uint8_t eui[LW_EUI_LEN], *msg = NULL, *sig = NULL;
	size_t msglen = 0, siglen = 0, i, usable = 0;
	char zone[DV_ZONE_MAX], name[DV_NAME_MAX], stub[80];
	EVP_PKEY *dkey = NULL, *key = NULL;
	bool match, have_full = false, found = false;
	int ex, rc, used_mtype = -1;

	memset(&v, 0, sizeof(v));
	if (dj_hex_parse(o->dev_eui, eui, LW_EUI_LEN) != DJ_EOK) {
		errmsg("--dev-eui %.40s: expected %d hex digits", o->dev_eui, 2 * LW_EUI_LEN);
		return DV_EXIT_DATA;
	}
	if (dv_zone_normalize(o->zone, zone) != DJ_EOK) {
		errmsg("--zone %.80s: not a DNS zone name", o->zone);
		return DV_EXIT_DATA;
	}
	if (dv_device_name(eui, zone, name) != DJ_EOK) {
		errmsg("--zone %.80s: the device name would be too long", o->zone);
		return DV_EXIT_DATA;
	}
	ex = lookup_props(o, zone, stub, sizeof(stub), &lk);
	if (ex == DV_EXIT_OK)
		ex = read_file("--message", o->message, MSG_MAX, &msg, &msglen);
	if (ex == DV_EXIT_OK)
		ex = read_file("--signature", o->signature, SIG_FILE_MAX, &sig, &siglen);
	if (ex == DV_EXIT_OK && o->device_key != NULL)
		ex = read_device_key(o->device_key, &dkey);
	if (ex != DV_EXIT_OK)
		goto out;

	rc = ca_lookup(&lk, name, TLSA_TYPE, NULL, &v);
	if (rc == DJ_ECONFIG) {
		errmsg("resolver: %s", v.why);
		ex = DV_EXIT_CONFIG;
		goto out;
	}
	if (rc != DJ_EOK) {
		errmsg("%s TLSA: cannot be looked up now (%s)", name,
		       rc == DJ_EAGAIN ? v.why : dj_strerror(rc));
		ex = rc == DJ_EAGAIN ? DV_EXIT_DNS : DV_EXIT_INTERNAL;
		goto out;
	}
	if (v.state != CA_DNSSEC_SECURE) {
		errmsg("%s TLSA: the answer is not DNSSEC-secure (%s%s%s); refused", name,
		       ca_dnssec_name(v.state), v.why[0] != '\0' ? ": " : "", v.why);
		ex = DV_EXIT_INSECURE;
		goto out;
	}
	if (v.rcode == RCODE_NXDOMAIN || (v.rcode == RCODE_NOERROR && v.rd.n == 0)) {
		errmsg("%s: no identity TLSA (secure %s); refused", name,
		       v.rcode == RCODE_NXDOMAIN ? "NXDOMAIN: no such device in this zone" :
		       "NODATA: the device has no key");
		ex = DV_EXIT_NOTLSA;
		goto out;
	}
	if (v.rcode != RCODE_NOERROR) {
		errmsg("%s TLSA: the server answered rcode %d", name, v.rcode);
		ex = DV_EXIT_DNS;
		goto out;
	}
	for (i = 0; i < v.rd.n; i++)
		if (tlsa_usable(v.rd.data[i], v.rd.len[i])) {
			usable++;
			have_full |= v.rd.data[i][2] == DV_TLSA_MTYPE_FULL;
		}
	if (usable == 0) {
		errmsg("%s: the secure TLSA RRset holds no usable 3 1 0/1/2 record; refused", name);
		ex = DV_EXIT_NOTLSA;
		goto out;
	}

	if (dkey != NULL) {
		/* the verifier's key must be the one the DNS names */
		for (i = 0; i < v.rd.n && !found; i++) {
			const uint8_t *d = v.rd.data[i];

			if (!tlsa_usable(d, v.rd.len[i]))
				continue;
			rc = dv_key_match_tlsa(dkey, d[2], d + TLSA_HDR, v.rd.len[i] - TLSA_HDR,
					       &match);
			if (rc != DJ_EOK) {
				errmsg("cannot compare the key: %s", dj_strerror(rc));
				ex = DV_EXIT_INTERNAL;
				goto out;
			}
			if (match) {
				found = true;
				used_mtype = d[2];
			}
		}
		if (!found) {
			errmsg("--device-key %s is not the key of %s (matches none of its %zu "
			       "identity TLSA records); refused", o->device_key, name, usable);
			ex = DV_EXIT_KEYMISMATCH;
			goto out;
		}
		rc = dv_key_verify_msg(dkey, msg, msglen, sig, siglen);
	} else {
		if (!have_full) {
			errmsg("%s publishes only digests of the key (TLSA 3 1 1/3 1 2): give the "
			       "device's public key with --device-key PUB.pem", name);
			ex = DV_EXIT_USAGE;
			goto out;
		}
		rc = DJ_EACCES;
		for (i = 0; i < v.rd.n && rc == DJ_EACCES; i++) {
			const uint8_t *d = v.rd.data[i];

			if (!tlsa_usable(d, v.rd.len[i]) || d[2] != DV_TLSA_MTYPE_FULL ||
			    dv_key_from_spki(d + TLSA_HDR, v.rd.len[i] - TLSA_HDR, &key) != DJ_EOK)
				continue;
			rc = dv_key_verify_msg(key, msg, msglen, sig, siglen);
			EVP_PKEY_free(key);
			key = NULL;
			used_mtype = DV_TLSA_MTYPE_FULL;
		}
	}
	if (rc == DJ_EACCES) {
		errmsg("bad signature: %s does not verify under the identity key of %s; refused",
		       o->signature, name);
		ex = DV_EXIT_BADSIG;
		goto out;
	}
	if (rc != DJ_EOK) {
		errmsg("cannot verify: %s", dj_strerror(rc));
		ex = DV_EXIT_INTERNAL;
		goto out;
	}
	printf("good signature: %s is signed by the identity key of %s (TLSA 3 1 %d, "
	       "DNSSEC-secure)\n", o->message, name, used_mtype);
	ex = DV_EXIT_OK;
out:
	ca_verdict_clear(&v);
	EVP_PKEY_free(dkey);
	free(msg);
	free(sig);
	return ex;
}
