/*
 * exec_verify.c - danejoin-devices verify: check a message signed by a device's own key against
 * the device's identity TLSA (issue 6 item 4; docs/danejoin-devices.md, docs/dns-records.md).
 *
 * Flags, files and messages only: the lookup and every rule (which records count, the key of
 * the verifier against the records, the signature) are dv_identity's (libdj_ownership).
 * Each way of failing has its own exit code and message, and a verdict (bad signature, no
 * record, insecure, key mismatch) is never confused with a fault of ours (DNS unreachable:
 * exit 8; OpenSSL failure: exit 5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca-tools/ca_update.h"
#include "common/dj_cli.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_identity.h"
#include "exec.h"

#define MSG_MAX (16u << 20)		/* --message: at most 16 MiB */
#define SIG_FILE_MAX 1024		/* --signature: DER ECDSA <= 72 bytes, Ed25519 64 */
#define KEY_FILE_MAX 16384		/* --device-key: a PEM public key or certificate */
#define STUB_MAX 80			/* "IPv6@PORT" */

/* errmsg - print "danejoin-devices: verify: message" on stderr */
#undef errmsg	/* params.h's, without the command name */
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

/* lookup_via - the stub: --lookup-via, else --ns, else none (full recursion) */
static int lookup_via(const struct dv_owner_args *o, char *stub, size_t stublen,
		      const char **out)
{
	const char *via = o->lookup_via != NULL ? o->lookup_via : o->ns;
	struct ca_server srv;
	char err[256];

	*out = NULL;
	if (access(o->ta_file, R_OK) != 0) {
		errmsg("--ta-file %s: cannot be read", o->ta_file);
		return DV_EXIT_CONFIG;
	}
	if (via != NULL) {
		if (ca_server_parse(via, &srv, err, sizeof(err)) != DJ_EOK) {
			errmsg("%s: %s", o->lookup_via != NULL ? "--lookup-via" : "--ns", err);
			return DV_EXIT_USAGE;
		}
		snprintf(stub, stublen, "%s@%u", srv.addr, srv.port);
		*out = stub;
	}
	return DV_EXIT_OK;
}

/* verdict_exit - the message and exit code of a verdict other than a good signature */
static int verdict_exit(const struct dv_owner_args *o, const struct dv_identity_verdict *v)
{
	switch (v->status) {
	case DV_ID_GOOD:
		return DV_EXIT_OK;
	case DV_ID_BADSIG:
		errmsg("bad signature: %s does not verify under the identity key of %s; refused",
		       o->signature, v->name);
		return DV_EXIT_BADSIG;
	case DV_ID_NOTLSA:
		errmsg("%s; refused", v->why);
		return DV_EXIT_NOTLSA;
	case DV_ID_INSECURE:
		errmsg("%s; refused", v->why);
		return DV_EXIT_INSECURE;
	case DV_ID_KEYMISMATCH:
		errmsg("--device-key %s is not the key of %s (matches none of its %zu identity "
		       "TLSA records); refused", o->device_key, v->name, v->usable);
		return DV_EXIT_KEYMISMATCH;
	case DV_ID_NEEDKEY:
		errmsg("%s: give the device's public key with --device-key PUB.pem", v->why);
		return DV_EXIT_USAGE;
	}
	return DV_EXIT_INTERNAL;
}

int exec_verify(const struct dv_params *p)
{
	const struct dv_owner_args *o = &p->own;
	struct dv_identity_props ip;
	struct dv_identity_verdict v;
	uint8_t *msg = NULL, *sig = NULL;
	size_t msglen = 0, siglen = 0;
	char zone[DV_ZONE_MAX], stub[STUB_MAX];
	EVP_PKEY *dkey = NULL;
	int ex, rc;

	memset(&ip, 0, sizeof(ip));
	if (dj_hex_parse(o->dev_eui, ip.dev_eui, LW_EUI_LEN) != DJ_EOK) {
		errmsg("--dev-eui %.40s: expected %d hex digits", o->dev_eui, 2 * LW_EUI_LEN);
		return DV_EXIT_DATA;
	}
	if (dv_zone_normalize(o->zone, zone) != DJ_EOK) {
		errmsg("--zone %.80s: not a DNS zone name", o->zone);
		return DV_EXIT_DATA;
	}
	ip.ta_file = o->ta_file;
	ip.zone = zone;
	ex = lookup_via(o, stub, sizeof(stub), &ip.stub_addr);
	if (ex == DV_EXIT_OK)
		ex = read_file("--message", o->message, MSG_MAX, &msg, &msglen);
	if (ex == DV_EXIT_OK)
		ex = read_file("--signature", o->signature, SIG_FILE_MAX, &sig, &siglen);
	if (ex == DV_EXIT_OK && o->device_key != NULL)
		ex = read_device_key(o->device_key, &dkey);
	if (ex != DV_EXIT_OK)
		goto out;
	ip.device_key = dkey;
	ip.msg = msg;
	ip.msglen = msglen;
	ip.sig = sig;
	ip.siglen = siglen;
	rc = dv_identity_verify(&ip, &v);
	switch (rc) {
	case DJ_EOK:
		ex = verdict_exit(o, &v);
		break;
	case DJ_ERANGE:
		errmsg("--zone %.80s: the device name would be too long", o->zone);
		ex = DV_EXIT_DATA;
		break;
	case DJ_ECONFIG:
		errmsg("%s", v.why);
		ex = DV_EXIT_CONFIG;
		break;
	case DJ_EAGAIN:
		errmsg("%s", v.why);
		ex = DV_EXIT_DNS;
		break;
	default:
		errmsg("%s", v.why[0] != '\0' ? v.why : dj_strerror(rc));
		ex = DV_EXIT_INTERNAL;
		break;
	}
	if (ex == DV_EXIT_OK)
		printf("good signature: %s is signed by the identity key of %s (TLSA 3 1 %d, "
		       "DNSSEC-secure)\n", o->message, v.name, v.mtype);
out:
	EVP_PKEY_free(dkey);
	free(msg);
	free(sig);
	return ex;
}
