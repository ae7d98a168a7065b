/*
 * dv_identity.c - a device's signed message against its identity TLSA (dv_identity.h).
 *
 * SECURITY
 *	The verdict of the lookup is judged before any record is read: only a secure answer
 *	counts (trust rule 1). Records are parsed by backend-auth's TLSA parser (explicit
 *	lengths), and only 3 1 0/1/2 are used. With a key of the verifier's own, that key must
 *	match a record (dv_key_match_tlsa: CRYPTO_memcmp) before its signature is checked, so a
 *	key the DNS does not name never verifies anything; without one, only a Full record's
 *	key can be used.
 */
#include <stdio.h>
#include <string.h>

#include "backend-auth/da_dns.h"
#include "ca-tools/ca_lookup.h"
#include "common/dj_err.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_identity.h"

#define RCODE_NOERROR 0		/* RFC 1035 §4.1.1 */
#define RCODE_NXDOMAIN 3

/* usable - parse rdata \p d into \p t when it is a DANE-EE SPKI record */
static bool usable(const uint8_t *d, size_t len, struct da_tlsa *t)
{
	return da_tlsa_parse(d, len, t) == DJ_EOK && t->usage == DJ_TLSA_USAGE_DANE_EE &&
	       t->selector == DJ_TLSA_SEL_SPKI;
}

/* verify_verdict - the verdict of dv_key_verify_msg()'s \p rc: a bad signature is a verdict
 * (BADSIG, DJ_EOK), any other failure an error with its reason in v->why */
static int verify_verdict(int rc, struct dv_identity_verdict *v)
{
	if (rc == DJ_EACCES) {
		v->status = DV_ID_BADSIG;
		dj_errbuf(v->why, sizeof(v->why), "the signature does not verify under the "
			  "identity key of %s", v->name);
		return DJ_EOK;
	}
	if (rc != DJ_EOK)
		dj_errbuf(v->why, sizeof(v->why), "cannot verify: %s", dj_strerror(rc));
	return rc;
}

/* with_key - the verifier's key must be one the records name; then its signature */
static int with_key(const struct dv_identity_props *p, const uint8_t *const *rd,
		    const size_t *len, size_t n, struct dv_identity_verdict *v)
{
	struct da_tlsa t;
	bool match = false;
	size_t i;
	int rc;

	for (i = 0; i < n && !match; i++) {
		if (!usable(rd[i], len[i], &t))
			continue;
		rc = dv_key_match_tlsa(p->device_key, t.mtype, t.data, t.len, &match);
		if (rc != DJ_EOK) {
			dj_errbuf(v->why, sizeof(v->why), "cannot compare the key: %s",
				  dj_strerror(rc));
			return rc;
		}
		if (match)
			v->mtype = t.mtype;
	}
	if (!match) {
		v->status = DV_ID_KEYMISMATCH;
		dj_errbuf(v->why, sizeof(v->why), "the key is not the key of %s (it matches none "
			  "of its %zu identity TLSA records)", v->name, v->usable);
		return DJ_EOK;
	}
	rc = dv_key_verify_msg(p->device_key, p->msg, p->msglen, p->sig, p->siglen);
	return verify_verdict(rc, v);
}

/* from_dns - no key of the verifier's: the key of a Full record verifies, or none does */
static int from_dns(const struct dv_identity_props *p, const uint8_t *const *rd,
		    const size_t *len, size_t n, bool have_full, struct dv_identity_verdict *v)
{
	struct da_tlsa t;
	EVP_PKEY *key = NULL;
	size_t i;
	int rc = DJ_EACCES;

	if (!have_full) {
		v->status = DV_ID_NEEDKEY;
		dj_errbuf(v->why, sizeof(v->why), "%s publishes only digests of the key (TLSA "
			  "3 1 1/3 1 2)", v->name);
		return DJ_EOK;
	}
	for (i = 0; i < n && rc == DJ_EACCES; i++) {
		if (!usable(rd[i], len[i], &t) || t.mtype != DJ_TLSA_MT_FULL ||
		    dv_key_from_spki(t.data, t.len, &key) != DJ_EOK)
			continue;
		rc = dv_key_verify_msg(key, p->msg, p->msglen, p->sig, p->siglen);
		EVP_PKEY_free(key);
		key = NULL;
		v->mtype = DJ_TLSA_MT_FULL;
	}
	return verify_verdict(rc, v);
}

int dv_identity_judge(const struct dv_identity_props *p, enum da_status status, int rcode,
		      const uint8_t *const *rd, const size_t *len, size_t n,
		      struct dv_identity_verdict *v)
{
	struct da_tlsa t;
	bool have_full = false;
	size_t i;

	v->status = DV_ID_GOOD;
	v->mtype = -1;
	v->usable = 0;
	v->why[0] = '\0';
	if (status != DA_SECURE) {
		v->status = DV_ID_INSECURE;
		dj_errbuf(v->why, sizeof(v->why), "%s TLSA: the answer is not DNSSEC-secure (%s)",
			  v->name, da_status_str(status));
		return DJ_EOK;
	}
	if (rcode == RCODE_NXDOMAIN || (rcode == RCODE_NOERROR && n == 0)) {
		v->status = DV_ID_NOTLSA;
		dj_errbuf(v->why, sizeof(v->why), "%s: no identity TLSA (secure %s)", v->name,
			  rcode == RCODE_NXDOMAIN ? "NXDOMAIN: no such device in this zone" :
			  "NODATA: the device has no key");
		return DJ_EOK;
	}
	if (rcode != RCODE_NOERROR) {
		dj_errbuf(v->why, sizeof(v->why), "%s TLSA: the server answered rcode %d", v->name,
			  rcode);
		return DJ_EAGAIN;
	}
	for (i = 0; i < n; i++)
		if (usable(rd[i], len[i], &t)) {
			v->usable++;
			have_full |= t.mtype == DJ_TLSA_MT_FULL;
		}
	if (v->usable == 0) {
		v->status = DV_ID_NOTLSA;
		dj_errbuf(v->why, sizeof(v->why), "%s: the secure TLSA RRset holds no usable "
			  "3 1 0/1/2 record", v->name);
		return DJ_EOK;
	}
	if (p->device_key != NULL)
		return with_key(p, rd, len, n, v);
	return from_dns(p, rd, len, n, have_full, v);
}

int dv_identity_verify(const struct dv_identity_props *p, struct dv_identity_verdict *v)
{
	struct ca_lookup_props lk = {
		.ta_file = p->ta_file,
		.stub_zone = p->stub_addr != NULL ? p->zone : NULL,
		.stub_addr = p->stub_addr,
	};
	struct ca_verdict cv;
	int rc;

	memset(v, 0, sizeof(*v));
	if (dv_device_name(p->dev_eui, p->zone, v->name) != DJ_EOK)
		return DJ_ERANGE;
	rc = ca_lookup(&lk, v->name, DJ_DNS_T_TLSA, NULL, &cv);
	if (rc == DJ_ECONFIG)
		dj_errbuf(v->why, sizeof(v->why), "resolver: %s", cv.why);
	else if (rc == DJ_EAGAIN)
		dj_errbuf(v->why, sizeof(v->why), "%s TLSA: cannot be looked up now (%s)",
			  v->name, cv.why);
	else if (rc != DJ_EOK)
		dj_errbuf(v->why, sizeof(v->why), "%s TLSA: cannot be looked up now (%s)",
			  v->name, dj_strerror(rc));
	else {
		rc = dv_identity_judge(p, cv.status, cv.rcode, (const uint8_t *const *)cv.rd.data,
				       cv.rd.len, cv.rd.n, v);
		/* a bogus answer says why */
		if (rc == DJ_EOK && v->status == DV_ID_INSECURE && cv.why[0] != '\0')
			dj_errbuf(v->why, sizeof(v->why), "%s TLSA: the answer is not "
				  "DNSSEC-secure (%s: %s)", v->name, da_status_str(cv.status),
				  cv.why);
	}
	ca_verdict_clear(&cv);
	return rc;
}
