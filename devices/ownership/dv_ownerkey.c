/*
 * dv_ownerkey.c - `_owner` TLSA 3 1 0 records into owner keys, for the daemon's asynchronous
 *		   check (js_owner.c) and the CLI's synchronous one (the keyring).
 *
 * SECURITY
 *	Trust rule 1: the key counts only from a DNSSEC-secure answer; the status of the answer
 *	is judged before any record is read (dv_ownerkey_status, and the keyring checks
 *	ca_lookup's verdict first). Only usage DANE-EE, selector SPKI, matching type Full records
 *	carry a key; a digest (3 1 1) names a key but cannot check a signature. The SPKI must be
 *	EC P-256 or Ed25519 (dv_key_from_spki), the only types links are signed with.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "ca-tools/ca_lookup.h"
#include "common/dj_err.h"
#include "ownership/dv_ownerkey.h"
#include "ownership/dv_records.h"

#define STUB_ADDR_MAX 80	/* "IPv6@PORT" */

struct dv_keyring {
	char *ta_file;
	char stub_addr[STUB_ADDR_MAX];
	bool has_stub;
	size_t n;
	struct {
		char zone[DV_ZONE_MAX];
		enum dv_key_status st;
		EVP_PKEY *key;
	} keys[DV_KEYRING_MAX];
};

int dv_ownerkey_from_tlsa(const struct da_tlsa *rr, size_t n, const struct dv_link *signed_link,
			  EVP_PKEY **out)
{
	EVP_PKEY *first = NULL, *k;
	size_t i;

	*out = NULL;
	for (i = 0; i < n; i++) {
		k = NULL;
		if (rr[i].usage != DJ_TLSA_USAGE_DANE_EE || rr[i].selector != DJ_TLSA_SEL_SPKI ||
		    rr[i].mtype != DJ_TLSA_MT_FULL ||
		    dv_key_from_spki(rr[i].data, rr[i].len, &k) != DJ_EOK)
			continue;
		if (signed_link != NULL && dv_link_verify(signed_link, k) == DJ_EOK) {
			EVP_PKEY_free(first);
			*out = k;
			return DJ_EOK;
		}
		if (first == NULL)
			first = k;
		else
			EVP_PKEY_free(k);
	}
	ERR_clear_error();
	if (first == NULL)
		return DJ_ENOENT;
	*out = first;
	return DJ_EOK;
}

int dv_ownerkey_from_rdata(const uint8_t *const *rd, const size_t *len, size_t n,
			   const struct dv_link *signed_link, EVP_PKEY **out)
{
	struct da_tlsa *rr;
	size_t i, m = 0;
	int rc;

	*out = NULL;
	if (n == 0)
		return DJ_ENOENT;
	rr = calloc(n, sizeof(*rr));
	if (rr == NULL)
		return DJ_ENOMEM;
	for (i = 0; i < n; i++)
		if (da_tlsa_parse(rd[i], len[i], &rr[m]) == DJ_EOK)
			m++;
	rc = dv_ownerkey_from_tlsa(rr, m, signed_link, out);
	free(rr);
	return rc;
}

enum dv_key_status dv_ownerkey_status(enum da_status st)
{
	switch (st) {
	case DA_SECURE:
		return DV_KEY_OK;
	case DA_TEMPFAIL:
		return DV_KEY_TEMPFAIL;
	case DA_INSECURE:
	case DA_BOGUS:
		return DV_KEY_INSECURE;
	case DA_NXDOMAIN:
	case DA_NODATA:
	case DA_UNUSABLE:
		break;
	}
	return DV_KEY_ABSENT;
}

const char *dv_key_status_text(enum dv_key_status st)
{
	switch (st) {
	case DV_KEY_ABSENT:
		return "has no usable _owner TLSA 3 1 0 record (EC P-256 or Ed25519 SPKI)";
	case DV_KEY_INSECURE:
		return "_owner record is not DNSSEC-secure (insecure or bogus)";
	case DV_KEY_TEMPFAIL:
		return "_owner record cannot be looked up now (resolver failure)";
	case DV_KEY_OK:
		break;
	}
	return "_owner key is fine";
}

int dv_ownerkey_matches(dv_key_fn key_fn, void *arg, const char *zone, EVP_PKEY *priv,
			enum dv_key_status *st, bool *same)
{
	EVP_PKEY *pub = NULL;

	*same = false;
	*st = key_fn(zone, arg, &pub);
	if (*st != DV_KEY_OK)
		return DJ_EOK;
	*same = EVP_PKEY_eq(pub, priv) == 1;
	ERR_clear_error();
	EVP_PKEY_free(pub);
	return DJ_EOK;
}

int dv_keyring_new(const struct dv_keyring_props *p, struct dv_keyring **out)
{
	struct dv_keyring *k;

	*out = NULL;
	if (p == NULL || (p->stub_addr != NULL && strlen(p->stub_addr) >= STUB_ADDR_MAX))
		return DJ_EINVAL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return DJ_ENOMEM;
	if (p->ta_file != NULL && (k->ta_file = strdup(p->ta_file)) == NULL) {
		free(k);
		return DJ_ENOMEM;
	}
	if (p->stub_addr != NULL) {
		strcpy(k->stub_addr, p->stub_addr);
		k->has_stub = true;
	}
	*out = k;
	return DJ_EOK;
}

void dv_keyring_free(struct dv_keyring *k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < k->n; i++)
		EVP_PKEY_free(k->keys[i].key);
	free(k->ta_file);
	free(k);
}

/* lookup - one validated lookup of _owner.<zone> TLSA */
static enum dv_key_status lookup(struct dv_keyring *k, const char *zone, EVP_PKEY **key)
{
	struct ca_lookup_props lk = {
		.ta_file = k->ta_file,
		.stub_zone = k->has_stub ? zone : NULL,
		.stub_addr = k->has_stub ? k->stub_addr : NULL,
	};
	struct ca_verdict v;
	char name[DV_NAME_MAX];
	enum dv_key_status st;

	*key = NULL;
	if (dv_owner_name(zone, name) != DJ_EOK)
		return DV_KEY_ABSENT;
	if (ca_lookup(&lk, name, DJ_DNS_T_TLSA, NULL, &v) != DJ_EOK) {
		ca_verdict_clear(&v);
		return DV_KEY_TEMPFAIL;
	}
	st = dv_ownerkey_status(v.status);
	if (st == DV_KEY_OK && dv_ownerkey_from_rdata((const uint8_t *const *)v.rd.data, v.rd.len,
						      v.rd.n, NULL, key) != DJ_EOK)
		st = DV_KEY_ABSENT;
	ca_verdict_clear(&v);
	return st;
}

enum dv_key_status dv_keyring_get(const char *zone, void *keyring, EVP_PKEY **out)
{
	struct dv_keyring *k = keyring;
	enum dv_key_status st;
	EVP_PKEY *key = NULL;
	size_t i;

	*out = NULL;
	for (i = 0; i < k->n; i++) {
		if (strcmp(k->keys[i].zone, zone) != 0)
			continue;
		if (k->keys[i].st != DV_KEY_OK)
			return k->keys[i].st;
		if (EVP_PKEY_up_ref(k->keys[i].key) != 1)
			return DV_KEY_TEMPFAIL;
		*out = k->keys[i].key;
		return DV_KEY_OK;
	}
	st = lookup(k, zone, &key);
	if (st != DV_KEY_TEMPFAIL && k->n < DV_KEYRING_MAX && strlen(zone) < DV_ZONE_MAX) {
		if (key != NULL && EVP_PKEY_up_ref(key) != 1) {
			EVP_PKEY_free(key);
			return DV_KEY_TEMPFAIL;
		}
		strcpy(k->keys[k->n].zone, zone);
		k->keys[k->n].st = st;
		k->keys[k->n].key = key;	/* the ring's reference */
		k->n++;
	}
	*out = key;
	return st;
}
