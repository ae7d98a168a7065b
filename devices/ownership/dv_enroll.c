/*
 * dv_enroll.c - enrollment input: CMS envelopes to the JS, and the store rows of a CSV.
 *
 * SECURITY
 *	The decrypted CSV holds root keys: it is written only into a secure-memory BIO
 *	(BIO_s_secmem, cleared when freed) and parsed from there; dv_csv_parse wipes nothing of
 *	the caller's, and the BIO is freed on every path. The recipient check comes before the
 *	decryption so that a file for someone else gets its own reason, and the key file's mode
 *	is checked before it is read (a group-readable JS key is a configuration error).
 *	A key agreement recipient must use AES key wrap (wrap_ok): OpenSSL 3.0 writes past a heap
 *	buffer when an RFC 5649 (padded) unwrap fails, so that wrap never reaches CMS_decrypt.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "ca-tools/ca_cert.h"
#include "ca-tools/ca_key.h"
#include "common/dj_err.h"
#include "ownership/dv_enroll.h"
#include "ownership/dv_records.h"

#define KEY_MODE_OTHERS 077	/* group and others bits */
#define PUBLISH_GROW 1024	/* first capacity of the list of published devices */

/* say - a reason into \p why (may be NULL), and return \p rc */
static int DJ_PRINTF(4, 5) say(int rc, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

bool dv_enroll_is_der(const char *path)
{
	unsigned char c = 0;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return false;
	if (fread(&c, 1, 1, f) != 1)
		c = 0;
	fclose(f);
	return c == DV_DER_SEQUENCE;
}

int dv_enroll_recipient_read(const char *cert_path, const char *key_path, X509 **cert,
			     EVP_PKEY **key, char *why, size_t whylen)
{
	X509 *c = NULL;
	EVP_PKEY *k = NULL;
	struct stat st;
	int rc = DJ_ECONFIG;

	*cert = NULL;
	*key = NULL;
	if (ca_cert_read(cert_path, &c, NULL, 0) != DJ_EOK) {
		say(rc, why, whylen, "JS certificate %s: not a PEM certificate", cert_path);
		goto out;
	}
	if (stat(key_path, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & KEY_MODE_OTHERS) != 0) {
		say(rc, why, whylen, "JS key %s: missing, or readable by group or others "
		    "(chmod 600)", key_path);
		goto out;
	}
	/* no passphrase: an encrypted key is refused, never asked for on a terminal */
	if (ca_key_read_private(key_path, NULL, &k, NULL, 0) != DJ_EOK) {
		say(rc, why, whylen, "JS key %s: not a PEM private key", key_path);
		goto out;
	}
	if (X509_check_private_key(c, k) != 1) {
		say(rc, why, whylen, "JS key %s is not the key of the certificate %s", key_path,
		    cert_path);
		goto out;
	}
	*cert = c;
	*key = k;
	c = NULL;
	k = NULL;
	rc = DJ_EOK;
out:
	ERR_clear_error();
	X509_free(c);
	EVP_PKEY_free(k);
	return rc;
}

/*
 * wrap_nid - the key wrap algorithm of the KeyAgreeRecipientInfo \p ri: the AlgorithmIdentifier
 * that is the parameter of its keyEncryptionAlgorithm (RFC 5753 §7.1, RFC 5652 §6.2.2);
 * NID_undef when there is none or it does not parse.
 */
static int wrap_nid(CMS_RecipientInfo *ri)
{
	X509_ALGOR *alg = NULL, *wrap;
	ASN1_OCTET_STRING *ukm = NULL;
	const ASN1_STRING *seq;
	const unsigned char *p;
	const void *pval = NULL;
	int ptype = V_ASN1_UNDEF, nid = NID_undef;

	if (CMS_RecipientInfo_kari_get0_alg(ri, &alg, &ukm) != 1 || alg == NULL)
		return NID_undef;
	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if (ptype != V_ASN1_SEQUENCE || pval == NULL)
		return NID_undef;
	seq = pval;
	p = ASN1_STRING_get0_data(seq);
	wrap = d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(seq));
	if (wrap != NULL)
		nid = OBJ_obj2nid(wrap->algorithm);
	X509_ALGOR_free(wrap);
	return nid;
}

/*
 * wrap_ok - whether CMS_decrypt may unwrap with \p nid: AES key wrap (RFC 3394, RFC 3565), what
 * "openssl cms -encrypt" uses for an EC recipient. Anything else is refused before decryption:
 * 3DES wrap is weak, and OpenSSL 3.0's RFC 5649 unwrap (id-aes*-wrap-pad) wipes 8 bytes past
 * its output buffer when the unwrap fails (CRYPTO_128_unwrap_pad: OPENSSL_cleanse(out, inlen)
 * into an inlen - 8 byte buffer from cms_kek_cipher), so any sender could write to our heap.
 */
static bool wrap_ok(int nid)
{
	return nid == NID_id_aes128_wrap || nid == NID_id_aes192_wrap || nid == NID_id_aes256_wrap;
}

/*
 * recipient_match - whether one of the RecipientInfos of \p cms names \p cert; \p bad_wrap is
 * set to the key wrap (a NID, NID_undef if unreadable) of a key agreement recipient naming
 * \p cert whose wrap is not wrap_ok(), and to -1 if there is none such.
 */
static bool recipient_match(CMS_ContentInfo *cms, X509 *cert, int *count, int *bad_wrap)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	bool match = false;
	int i, j, nid;

	*bad_wrap = -1;
	*count = ris != NULL ? sk_CMS_RecipientInfo_num(ris) : 0;
	for (i = 0; i < *count; i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		STACK_OF(CMS_RecipientEncryptedKey) *reks;

		switch (CMS_RecipientInfo_type(ri)) {
		case CMS_RECIPINFO_TRANS:
			if (CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
				match = true;
			break;
		case CMS_RECIPINFO_AGREE:
			/* every one naming us: CMS_decrypt tries each of them */
			reks = CMS_RecipientInfo_kari_get0_reks(ri);
			for (j = 0; reks != NULL && j < sk_CMS_RecipientEncryptedKey_num(reks); j++) {
				if (CMS_RecipientEncryptedKey_cert_cmp(
					    sk_CMS_RecipientEncryptedKey_value(reks, j), cert) != 0)
					continue;
				match = true;
				nid = wrap_nid(ri);
				if (!wrap_ok(nid) && *bad_wrap == -1)
					*bad_wrap = nid;
			}
			break;
		default:
			break;
		}
	}
	return match;
}

/* cms_bio - decrypt the DER CMS in \p in and parse the plaintext (dv_enroll_cms_file) */
static int cms_bio(BIO *in, const char *name, X509 *cert, EVP_PKEY *key, struct dv_csv **csv,
		   char *why, size_t whylen)
{
	CMS_ContentInfo *cms = NULL;
	BIO *plain = NULL;
	char err[DV_CSV_ERR_MAX];
	char *data;
	long dlen;
	int nrecip = 0, bad_wrap = -1, nid, rc;

	*csv = NULL;
	if (in == NULL || (cms = d2i_CMS_bio(in, NULL)) == NULL) {
		rc = say(DJ_EMALFORMED, why, whylen, "%s: neither an enrollment CSV nor a DER CMS "
			 "file", name);
		goto out;
	}
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid != NID_pkcs7_enveloped && nid != NID_id_smime_ct_authEnvelopedData) {
		rc = say(DJ_EMALFORMED, why, whylen, "%s: a CMS file, but not EnvelopedData "
			 "(openssl cms -encrypt)", name);
		goto out;
	}
	if (!recipient_match(cms, cert, &nrecip, &bad_wrap)) {
		rc = say(DJ_EACCES, why, whylen, "%s is encrypted to another recipient: none of "
			 "its %d recipients is the JS certificate", name, nrecip);
		goto out;
	}
	if (bad_wrap != -1) {
		rc = say(DJ_EMALFORMED, why, whylen, "%s: key wrap algorithm %s is not accepted "
			 "(AES key wrap only: id-aes128-wrap, id-aes192-wrap or id-aes256-wrap, "
			 "the default of openssl cms -encrypt)", name,
			 bad_wrap != NID_undef ? OBJ_nid2sn(bad_wrap) : "(missing or unknown)");
		goto out;
	}
	plain = BIO_new(BIO_s_secmem());
	if (plain == NULL) {
		rc = say(DJ_ENOMEM, why, whylen, "out of memory");
		goto out;
	}
	if (CMS_decrypt(cms, key, cert, NULL, plain, CMS_BINARY) != 1) {
		rc = say(DJ_EACCES, why, whylen, "%s: cannot decrypt (%s)", name,
			 dj_openssl_reason());
		goto out;
	}
	dlen = BIO_get_mem_data(plain, &data);
	rc = dv_csv_parse(name, data, dlen > 0 ? (size_t)dlen : 0, csv, err, sizeof(err));
	if (rc == DJ_ENOMEM)
		say(rc, why, whylen, "out of memory");
	else if (rc != DJ_EOK)
		rc = say(DJ_EMALFORMED, why, whylen, "%s (decrypted): %s", name, err);
out:
	ERR_clear_error();
	BIO_free(plain);	/* secure memory: cleared when freed */
	CMS_ContentInfo_free(cms);
	return rc;
}

int dv_enroll_cms_file(const char *path, X509 *cert, EVP_PKEY *key, struct dv_csv **csv,
		       char *why, size_t whylen)
{
	BIO *in = BIO_new_file(path, "rb");
	int rc = cms_bio(in, path, cert, key, csv, why, whylen);

	BIO_free(in);
	return rc;
}

int dv_enroll_cms_mem(const uint8_t *der, size_t len, const char *name, X509 *cert,
		      EVP_PKEY *key, struct dv_csv **csv, char *why, size_t whylen)
{
	BIO *in = len <= INT32_MAX ? BIO_new_mem_buf(der, (int)len) : NULL;
	int rc = cms_bio(in, name, cert, key, csv, why, whylen);

	BIO_free(in);
	return rc;
}

/* first_link - link 1 of row \p row: manufacturer to owner, signed by the manufacturer */
static int first_link(const struct dv_csv_row *row, const struct dv_enroll_props *p,
		      struct js_owner *owner)
{
	struct dv_chain *chain;
	struct dv_link *l;
	int rc = DJ_ECRYPTO;

	chain = calloc(1, sizeof(*chain));
	if (chain == NULL)
		return DJ_ENOMEM;
	l = &chain->links[0];
	if (p->rights != NULL)
		*l = *p->rights;
	memcpy(l->dev_eui, row->dev_eui, LW_EUI_LEN);
	memcpy(l->join_eui, row->join_eui, LW_EUI_LEN);
	snprintf(l->from_zone, sizeof(l->from_zone), "%s", p->from_zone);
	snprintf(l->to_zone, sizeof(l->to_zone), "%s", p->zone);
	snprintf(l->signer_zone, sizeof(l->signer_zone), "%s", p->from_zone);
	l->serial = 1;
	l->not_before = p->now;
	l->auth = DV_AUTH_MANUFACTURER;
	l->sig_len = 0;
	chain->n = 1;
	if (RAND_bytes(l->nonce, DV_NONCE_LEN) != 1)
		goto out;
	rc = dv_link_sign(l, p->key);
	if (rc == DJ_EOK)
		rc = dv_chain_encode(chain, &owner->chain, &owner->chain_len);
out:
	free(chain);
	return rc;
}

int dv_enroll_seal_row(struct js_keystore *ks, const struct dv_csv_row *row, int64_t now,
		       struct js_device *d)
{
	size_t tlen = sizeof(d->root_token);
	int rc;

	memcpy(d->dev_eui, row->dev_eui, LW_EUI_LEN);
	memcpy(d->join_eui, row->join_eui, LW_EUI_LEN);
	d->mac_version = row->mac_version;
	d->created_at = now;
	rc = js_keystore_seal_root(ks, row->dev_eui, row->app_key,
				   row->has_nwk_key ? row->nwk_key : NULL, d->root_token, &tlen);
	d->root_token_len = rc == DJ_EOK ? (uint32_t)tlen : 0;
	return rc;
}

int dv_enroll_build(struct js_keystore *ks, const struct dv_csv *csv,
		    const struct dv_enroll_props *p, struct js_device *devs,
		    struct js_owner *owners, char *why, size_t whylen)
{
	struct dv_attrs a;
	size_t i;
	int rc;

	for (i = 0; i < csv->n; i++) {
		const struct dv_csv_row *row = &csv->rows[i];

		rc = dv_enroll_seal_row(ks, row, p->now, &devs[i]);
		if (rc != DJ_EOK)
			return say(rc, why, whylen, "line %u: cannot seal the root keys: %s",
				   row->line, dj_strerror(rc));
		rc = first_link(row, p, &owners[i]);
		if (rc != DJ_EOK)
			return say(rc, why, whylen, "line %u: cannot sign the first link: %s",
				   row->line, dj_strerror(rc));
		memset(&a, 0, sizeof(a));
		snprintf(a.model, sizeof(a.model), "%s", row->model);
		snprintf(a.firmware, sizeof(a.firmware), "%s", row->firmware);
		snprintf(a.manufacturer, sizeof(a.manufacturer), "%s", row->manufacturer);
		snprintf(a.date, sizeof(a.date), "%s", row->date);
		a.has_identity = row->has_identity;
		memcpy(a.identity, row->identity, sizeof(a.identity));
		memcpy(owners[i].dev_eui, row->dev_eui, LW_EUI_LEN);
		snprintf(owners[i].zone, sizeof(owners[i].zone), "%s", p->zone);
		owners[i].serial = 1;
		if (dv_attrs_format(&a, owners[i].attrs) != DJ_EOK)
			return say(DJ_EMALFORMED, why, whylen, "line %u: bad attributes",
				   row->line);
	}
	return DJ_EOK;
}

/* The devices queued by one dv_enroll_publish() walk. */
struct pub_walk {
	struct dv_pub *pub;
	uint8_t (*euis)[LW_EUI_LEN];
	size_t n, cap;
	char *err;
	size_t errlen;
};

/* publish_one - queue the records of one unpublished row (js_store_owner_foreach) */
static int publish_one(const struct js_owner *o, void *arg)
{
	struct pub_walk *w = arg;
	void *grown;

	if (w->n == w->cap) {
		w->cap = w->cap != 0 ? 2 * w->cap : PUBLISH_GROW;
		grown = realloc(w->euis, w->cap * sizeof(*w->euis));
		if (grown == NULL)
			return DJ_ENOMEM;
		w->euis = grown;
	}
	memcpy(w->euis[w->n++], o->dev_eui, LW_EUI_LEN);
	return dv_pub_device(w->pub, o->zone, o->dev_eui, o->attrs, o->chain, o->chain_len,
			     w->err, w->errlen);
}

int dv_enroll_publish(struct js_store *s, struct dv_pub *pub, size_t *count, char *err,
		      size_t errlen)
{
	struct pub_walk w = { .pub = pub, .err = err, .errlen = errlen };
	int rc;

	*count = 0;
	/* queue inside the walk; messages that fill up are sent on the way */
	rc = js_store_owner_foreach(s, true, publish_one, &w);
	if (rc == DJ_EOK)
		rc = dv_pub_flush(pub, err, errlen);
	if (rc == DJ_EOK && w.n > 0)
		rc = js_store_owner_set_published(s, (const uint8_t (*)[LW_EUI_LEN])w.euis, w.n);
	if (rc == DJ_EOK)
		*count = w.n;
	free(w.euis);
	return rc;
}
