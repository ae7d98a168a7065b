/*
 * test_dv_chain.c - ownership chains (devices/dv_chain.h) and auth codes (dv_authcode.h):
 * encode/decode round trips and strictness, signatures (P-256 and Ed25519), the continuity
 * rules (wrong key, bogus signature, reordered links, replayed serial, wrong auth signer), key
 * verdicts from the callback, base64, zone names; PBKDF2 auth codes, wrong and expired codes;
 * device-signed messages and identity TLSA matching (verify); per-link verdicts
 * (dv_chain_verify_link: one bad link among good ones, structure only, key verdicts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "common/dj_err.h"
#include "ownership/dv_authcode.h"
#include "ownership/dv_chain.h"
#include "dj_test.h"

#define NKEYS 4

/* Keys by zone: maker (P-256), opa (P-256), opb (Ed25519), mallory (P-256, in no zone). */
static EVP_PKEY *keys[NKEYS];
static const char *const zones[NKEYS] = { "maker.test.", "opa.test.", "opb.test.", "mallory." };

struct keyctx {
	enum dv_key_status force;	/* DV_KEY_OK: look up normally */
	int calls;
};

/* key_fn - the _owner key of a zone from the table (the DNS in the real program) */
static enum dv_key_status key_fn(const char *zone, void *arg, EVP_PKEY **out)
{
	struct keyctx *k = arg;

	k->calls++;
	if (k->force != DV_KEY_OK)
		return k->force;
	for (int i = 0; i < 3; i++)
		if (strcmp(zone, zones[i]) == 0) {
			assert_int_equal(EVP_PKEY_up_ref(keys[i]), 1);
			*out = keys[i];
			return DV_KEY_OK;
		}
	return DV_KEY_ABSENT;
}

static int group_setup(void **state)
{
	(void)state;
	keys[0] = EVP_EC_gen("P-256");
	keys[1] = EVP_EC_gen("P-256");
	keys[2] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	keys[3] = EVP_EC_gen("P-256");
	for (int i = 0; i < NKEYS; i++)
		if (keys[i] == NULL)
			return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NKEYS; i++)
		EVP_PKEY_free(keys[i]);
	return 0;
}

/* mklink - a link of the test device from \p from to \p to, signed by \p signer_key */
static void mklink(struct dv_link *l, const char *from, const char *to, uint64_t serial,
		   enum dv_auth auth, const char *signer, EVP_PKEY *signer_key)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->dev_eui, "\x70\xb3\xd5\x7e\xd0\x00\x01\x01", 8);
	memcpy(l->join_eui, "\x70\xb3\xd5\x7e\xd0\x00\x00\x01", 8);
	strcpy(l->from_zone, from);
	strcpy(l->to_zone, to);
	strcpy(l->signer_zone, signer);
	l->n_net_ids = 1;
	memcpy(l->net_ids[0], "\x00\x00\x13", 3);
	l->n_as_ids = 1;
	strcpy(l->as_ids[0], "as.example");
	l->serial = serial;
	l->not_before = 1700000000 + (int64_t)serial;
	memset(l->nonce, (int)serial, DV_NONCE_LEN);
	l->auth = auth;
	assert_int_equal(dv_link_sign(l, signer_key), DJ_EOK);
}

/* good_chain - maker -> opa (manufacturer), opa -> opb (signed), opb -> opa (auth code) */
static void good_chain(struct dv_chain *c)
{
	memset(c, 0, sizeof(*c));
	mklink(&c->links[0], "maker.test.", "opa.test.", 1, DV_AUTH_MANUFACTURER, "maker.test.",
	       keys[0]);
	mklink(&c->links[1], "opa.test.", "opb.test.", 2, DV_AUTH_SIGNED, "opa.test.", keys[1]);
	mklink(&c->links[2], "opb.test.", "opa.test.", 3, DV_AUTH_CODE, "maker.test.", keys[0]);
	c->n = 3;
}

/* verdict_of - verify \p c and return the status */
static enum dv_chain_status verdict_of(const struct dv_chain *c, struct dv_chain_verdict *v)
{
	struct keyctx k = { DV_KEY_OK, 0 };

	assert_int_equal(dv_chain_verify(c, key_fn, &k, v), DJ_EOK);
	return v->status;
}

static void test_roundtrip_and_verify(void **state)
{
	struct dv_chain *c = calloc(2, sizeof(*c));
	struct dv_chain_verdict v;
	struct keyctx k = { DV_KEY_OK, 0 };
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(c);
	good_chain(&c[0]);
	assert_int_equal(dv_chain_encode(&c[0], &buf, &len), DJ_EOK);
	assert_int_equal(dv_chain_decode(buf, len, &c[1]), DJ_EOK);
	assert_int_equal(c[1].n, 3);
	assert_memory_equal(&c[0].links[1], &c[1].links[1], sizeof(c[0].links[1]));
	assert_int_equal(dv_chain_verify(&c[1], key_fn, &k, &v), DJ_EOK);
	assert_int_equal(v.status, DV_CHAIN_OK);
	assert_int_equal(k.calls, 2);	/* maker and opa: one lookup per zone */
	/* one encoding per chain: a trailing byte, a truncation, an unknown field are refused */
	buf = realloc(buf, len + 2);
	assert_non_null(buf);
	buf[len] = 0x78;	/* field 15, varint */
	buf[len + 1] = 0x01;
	assert_int_equal(dv_chain_decode(buf, len + 2, &c[1]), DJ_EMALFORMED);
	assert_int_equal(dv_chain_decode(buf, len - 1, &c[1]), DJ_EMALFORMED);
	assert_int_equal(dv_chain_decode(buf, 0, &c[1]), DJ_EMALFORMED);
	free(buf);
	free(c);
}

static void test_link_encode_decode_strict(void **state)
{
	struct dv_link l, m;
	uint8_t *buf = NULL, *canon = NULL;
	size_t len = 0, clen = 0;

	(void)state;
	mklink(&l, "opa.test.", "opb.test.", 2, DV_AUTH_SIGNED, "opa.test.", keys[2]);
	assert_int_equal(dv_link_encode(&l, &buf, &len), DJ_EOK);
	assert_int_equal(dv_link_decode(buf, len, &m), DJ_EOK);
	assert_int_equal(dv_link_verify(&m, keys[2]), DJ_EOK);
	/* the canonical encoding is the serialization without the signature field */
	assert_int_equal(dv_link_canonical(&l, &canon, &clen), DJ_EOK);
	assert_true(clen < len);
	assert_memory_equal(canon, buf, clen);
	assert_int_equal(buf[clen], 0x7a);	/* field 15, length-delimited: the signature */
	free(canon);
	/* a zone that is not in normalized form is refused (so one link has one encoding) */
	strcpy(l.to_zone, "OPB.test.");
	assert_int_equal(dv_link_encode(&l, &canon, &clen), DJ_EINVAL);
	free(buf);
}

static void test_wrong_key_and_bogus_signature(void **state)
{
	struct dv_chain *c = calloc(1, sizeof(*c));
	struct dv_chain_verdict v;

	(void)state;
	assert_non_null(c);
	/* link 2 signed by mallory's key while claiming opa */
	good_chain(c);
	mklink(&c->links[1], "opa.test.", "opb.test.", 2, DV_AUTH_SIGNED, "opa.test.", keys[3]);
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BADSIG);
	assert_int_equal(v.link, 1);
	/* a flipped bit in the signature */
	good_chain(c);
	c->links[2].sig[c->links[2].sig_len / 2] ^= 0x01;
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BADSIG);
	assert_int_equal(v.link, 2);
	/* a changed field after signing (the rights) */
	good_chain(c);
	c->links[1].net_ids[0][2] = 0x14;
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BADSIG);
	/* an Ed25519 signature checked under a P-256 key, and a missing signature */
	assert_int_equal(dv_link_verify(&c->links[0], keys[2]), DJ_EACCES);
	c->links[0].sig_len = 0;
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_MALFORMED);
	free(c);
}

static void test_continuity(void **state)
{
	struct dv_chain *c = calloc(1, sizeof(*c));
	struct dv_chain_verdict v;
	struct dv_link tmp;

	(void)state;
	assert_non_null(c);
	/* reordered links */
	good_chain(c);
	tmp = c->links[1];
	c->links[1] = c->links[2];
	c->links[2] = tmp;
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BROKEN);
	assert_int_equal(v.link, 1);
	/* a replayed serial: link 2 appended again */
	good_chain(c);
	c->links[2] = c->links[1];
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BROKEN);
	/* a gap in the serials */
	good_chain(c);
	mklink(&c->links[2], "opb.test.", "opa.test.", 4, DV_AUTH_SIGNED, "opb.test.", keys[2]);
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BROKEN);
	/* a link from someone who is not the owner (opa gives away what opb owns) */
	good_chain(c);
	mklink(&c->links[2], "opa.test.", "maker.test.", 3, DV_AUTH_SIGNED, "opa.test.", keys[1]);
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BROKEN);
	/* an auth-code link signed by anyone but the registry (link 1's signer) */
	good_chain(c);
	mklink(&c->links[2], "opb.test.", "opa.test.", 3, DV_AUTH_CODE, "opa.test.", keys[1]);
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BROKEN);
	/* a signed link whose signer is not the giver */
	good_chain(c);
	mklink(&c->links[1], "opa.test.", "opb.test.", 2, DV_AUTH_SIGNED, "maker.test.", keys[0]);
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BROKEN);
	/* another device's link */
	good_chain(c);
	c->links[1].dev_eui[7] ^= 1;
	assert_int_equal(dv_link_sign(&c->links[1], keys[1]), DJ_EOK);
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BROKEN);
	/* a first link that is not the manufacturer's */
	good_chain(c);
	c->links[0].auth = DV_AUTH_SIGNED;
	assert_int_equal(dv_link_sign(&c->links[0], keys[0]), DJ_EOK);
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BROKEN);
	/* may_append: the replay of an old request is refused */
	good_chain(c);
	assert_false(dv_chain_may_append(c, &c->links[1], NULL, 0));
	free(c);
}

static void test_key_verdicts(void **state)
{
	struct dv_chain *c = calloc(1, sizeof(*c));
	struct dv_chain_verdict v;
	struct keyctx k = { DV_KEY_INSECURE, 0 };

	(void)state;
	assert_non_null(c);
	good_chain(c);
	assert_int_equal(dv_chain_verify(c, key_fn, &k, &v), DJ_EOK);
	assert_int_equal(v.status, DV_CHAIN_NOKEY);
	k.force = DV_KEY_ABSENT;
	assert_int_equal(dv_chain_verify(c, key_fn, &k, &v), DJ_EOK);
	assert_int_equal(v.status, DV_CHAIN_NOKEY);
	k.force = DV_KEY_TEMPFAIL;
	assert_int_equal(dv_chain_verify(c, key_fn, &k, &v), DJ_EOK);
	assert_int_equal(v.status, DV_CHAIN_TEMPFAIL);
	/* a signer whose zone has no key */
	mklink(&c->links[1], "opa.test.", "opb.test.", 2, DV_AUTH_SIGNED, "opa.test.", keys[1]);
	strcpy(c->links[0].to_zone, "other.test.");
	strcpy(c->links[1].from_zone, "other.test.");
	strcpy(c->links[1].signer_zone, "other.test.");
	assert_int_equal(dv_link_sign(&c->links[0], keys[0]), DJ_EOK);
	assert_int_equal(dv_link_sign(&c->links[1], keys[1]), DJ_EOK);
	c->n = 2;
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_NOKEY);
	free(c);
}

/* link_status - dv_chain_verify_link of link \p i of \p c, keys from the table (or none) */
static enum dv_chain_status link_status(const struct dv_chain *c, size_t i, bool keys_too,
					enum dv_key_status force, struct dv_chain_verdict *v)
{
	struct keyctx k = { force, 0 };

	assert_int_equal(dv_chain_verify_link(c, i, keys_too ? key_fn : NULL, &k, v), DJ_EOK);
	assert_int_equal(k.calls, keys_too ? 1 : 0);
	return v->status;
}

static void test_verify_link(void **state)
{
	struct dv_chain *c = calloc(1, sizeof(*c));
	struct dv_chain_verdict v;

	(void)state;
	assert_non_null(c);
	good_chain(c);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(link_status(c, i, true, DV_KEY_OK, &v), DV_CHAIN_OK);
		assert_int_equal(v.link, (int)i);
	}
	/* link 2 signed by mallory's key: only link 2 is at fault, the others still verify */
	assert_int_equal(dv_link_sign(&c->links[1], keys[3]), DJ_EOK);
	assert_int_equal(link_status(c, 0, true, DV_KEY_OK, &v), DV_CHAIN_OK);
	assert_int_equal(link_status(c, 1, true, DV_KEY_OK, &v), DV_CHAIN_BADSIG);
	assert_non_null(strstr(v.why, "opa.test."));
	assert_int_equal(link_status(c, 2, true, DV_KEY_OK, &v), DV_CHAIN_OK);
	assert_int_equal(verdict_of(c, &v), DV_CHAIN_BADSIG);	/* the whole chain: refused */
	/* the structure alone says nothing of the signature */
	assert_int_equal(link_status(c, 1, false, DV_KEY_OK, &v), DV_CHAIN_OK);
	/* key verdicts */
	assert_int_equal(link_status(c, 0, true, DV_KEY_ABSENT, &v), DV_CHAIN_NOKEY);
	assert_int_equal(link_status(c, 0, true, DV_KEY_INSECURE, &v), DV_CHAIN_NOKEY);
	assert_int_equal(link_status(c, 0, true, DV_KEY_TEMPFAIL, &v), DV_CHAIN_TEMPFAIL);
	/* a signed transfer whose signer is not the previous owner: broken, keys not asked */
	good_chain(c);
	strcpy(c->links[1].signer_zone, "maker.test.");
	assert_int_equal(dv_link_sign(&c->links[1], keys[0]), DJ_EOK);
	assert_int_equal(link_status(c, 1, false, DV_KEY_OK, &v), DV_CHAIN_BROKEN);
	assert_non_null(strstr(v.why, "must be signed by opa.test."));
	assert_int_equal(link_status(c, 0, true, DV_KEY_OK, &v), DV_CHAIN_OK);
	/* unsigned, and out of range */
	good_chain(c);
	c->links[2].sig_len = 0;
	assert_int_equal(link_status(c, 2, false, DV_KEY_OK, &v), DV_CHAIN_MALFORMED);
	assert_int_equal(dv_chain_verify_link(c, 3, key_fn, NULL, &v), DJ_EOK);
	assert_int_equal(v.status, DV_CHAIN_MALFORMED);
	free(c);
}

static void test_keys_spki_b64_zones(void **state)
{
	uint8_t *der = NULL, *back = NULL;
	size_t len = 0, blen = 0;
	EVP_PKEY *pub = NULL;
	char *b64 = NULL, z[DV_ZONE_MAX];

	(void)state;
	assert_int_equal(dv_key_spki(keys[2], &der, &len), DJ_EOK);
	assert_int_equal(dv_key_from_spki(der, len, &pub), DJ_EOK);
	assert_int_equal(EVP_PKEY_eq(pub, keys[2]), 1);
	EVP_PKEY_free(pub);
	assert_int_equal(dv_key_from_spki(der, len - 1, &pub), DJ_EMALFORMED);
	assert_null(pub);
	assert_int_equal(dv_b64_encode(der, len, &b64), DJ_EOK);
	assert_int_equal(dv_b64_decode(b64, strlen(b64), &back, &blen), DJ_EOK);
	assert_int_equal(blen, len);
	assert_memory_equal(back, der, len);
	free(back);
	assert_int_equal(dv_b64_decode("abc", 3, &back, &blen), DJ_EMALFORMED);
	assert_null(back);
	free(b64);
	free(der);
	assert_int_equal(dv_zone_normalize("Op-A.Example", z), DJ_EOK);
	assert_string_equal(z, "op-a.example.");
	assert_int_equal(dv_zone_normalize("a..b", z), DJ_EMALFORMED);
	assert_int_equal(dv_zone_normalize("", z), DJ_EMALFORMED);
	assert_int_equal(dv_zone_normalize("a b.test", z), DJ_EMALFORMED);
	assert_int_equal(dv_zone_normalize("\"a.test", z), DJ_EMALFORMED);
	assert_false(dv_asid_valid("a,b"));
	assert_false(dv_asid_valid(""));
	assert_true(dv_asid_valid("as.example"));
}

/* sign_msg - a device's signature over \p msg, the way a device (or openssl dgst) makes it */
static size_t sign_msg(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[DV_SIG_MAX])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t slen = DV_SIG_MAX;

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, EVP_PKEY_is_a(key, "ED25519") ? NULL :
					       "SHA256", NULL, NULL, key, NULL), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &slen, msg, len), 1);
	EVP_MD_CTX_free(md);
	return slen;
}

static void test_device_messages(void **state)
{
	static const uint8_t msg[] = "meter 70b3d57ed0000201 reading 1234.5 kWh";
	uint8_t sig[DV_SIG_MAX], *der = NULL, dig[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	size_t slen, len = 0;
	bool match = true;

	(void)state;
	for (int k = 1; k <= 2; k++) {	/* P-256, Ed25519 */
		slen = sign_msg(keys[k], msg, sizeof(msg), sig);
		assert_int_equal(dv_key_verify_msg(keys[k], msg, sizeof(msg), sig, slen), DJ_EOK);
		assert_int_equal(dv_key_verify_msg(keys[k], msg, sizeof(msg) - 1, sig, slen),
				 DJ_EACCES);
		assert_int_equal(dv_key_verify_msg(keys[3], msg, sizeof(msg), sig, slen),
				 DJ_EACCES);
		sig[slen / 2] ^= 0x01;
		assert_int_equal(dv_key_verify_msg(keys[k], msg, sizeof(msg), sig, slen),
				 DJ_EACCES);
		assert_int_equal(dv_key_verify_msg(keys[k], msg, sizeof(msg), sig, 0), DJ_EACCES);
	}
	/* 3 1 0, 3 1 1, 3 1 2 of key 1 match key 1 and not key 3 */
	assert_int_equal(dv_key_spki(keys[1], &der, &len), DJ_EOK);
	assert_int_equal(dv_key_match_tlsa(keys[1], DJ_TLSA_MT_FULL, der, len, &match), DJ_EOK);
	assert_true(match);
	assert_int_equal(dv_key_match_tlsa(keys[3], DJ_TLSA_MT_FULL, der, len, &match), DJ_EOK);
	assert_false(match);
	assert_int_equal(dv_key_match_tlsa(keys[1], DJ_TLSA_MT_FULL, der, len - 1, &match),
			 DJ_EOK);
	assert_false(match);
	assert_int_equal(EVP_Digest(der, len, dig, &dlen, EVP_sha256(), NULL), 1);
	assert_int_equal(dv_key_match_tlsa(keys[1], DJ_TLSA_MT_SHA256, dig, dlen, &match),
			 DJ_EOK);
	assert_true(match);
	assert_int_equal(dv_key_match_tlsa(keys[1], DJ_TLSA_MT_SHA512, dig, dlen, &match),
			 DJ_EOK);
	assert_false(match);
	assert_int_equal(EVP_Digest(der, len, dig, &dlen, EVP_sha512(), NULL), 1);
	assert_int_equal(dv_key_match_tlsa(keys[1], DJ_TLSA_MT_SHA512, dig, dlen, &match),
			 DJ_EOK);
	assert_true(match);
	assert_int_equal(dv_key_match_tlsa(keys[3], DJ_TLSA_MT_SHA512, dig, dlen, &match),
			 DJ_EOK);
	assert_false(match);
	assert_int_equal(dv_key_match_tlsa(keys[1], 3, dig, dlen, &match), DJ_EINVAL);
	free(der);
}

static void test_authcode(void **state)
{
	struct js_authcode rec, rec2;
	enum dv_authcode_verdict v;
	char code[DV_AUTHCODE_LEN + 1], code2[DV_AUTHCODE_LEN + 1];

	(void)state;
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(dv_authcode_generate(code), DJ_EOK);
	assert_int_equal(dv_authcode_generate(code2), DJ_EOK);
	assert_int_equal(strlen(code), DV_AUTHCODE_LEN);
	assert_true(dv_authcode_wellformed(code));
	assert_string_not_equal(code, code2);
	assert_int_equal(dv_authcode_seal(code, 1000, &rec), DJ_EOK);
	assert_int_equal(rec.iter, DV_AUTHCODE_ITER);
	/* the record holds no trace of the code */
	for (size_t i = 0; i + DV_AUTHCODE_LEN <= sizeof(rec); i++)
		assert_memory_not_equal((const uint8_t *)&rec + i, code, DV_AUTHCODE_LEN);
	assert_int_equal(dv_authcode_check(&rec, code, 999, &v), DJ_EOK);
	assert_int_equal(v, DV_AUTHCODE_OK);
	assert_int_equal(dv_authcode_check(&rec, code2, 999, &v), DJ_EOK);
	assert_int_equal(v, DV_AUTHCODE_WRONG);
	assert_int_equal(dv_authcode_check(&rec, code, 1000, &v), DJ_EOK);
	assert_int_equal(v, DV_AUTHCODE_EXPIRED);
	assert_int_equal(dv_authcode_check(&rec, code2, 5000, &v), DJ_EOK);
	assert_int_equal(v, DV_AUTHCODE_WRONG);	/* a wrong code is wrong, expired or not */
	assert_int_equal(dv_authcode_check(&rec, "short", 999, &v), DJ_EOK);
	assert_int_equal(v, DV_AUTHCODE_WRONG);
	/* salted: the same code sealed twice gives two hashes */
	assert_int_equal(dv_authcode_seal(code, 1000, &rec2), DJ_EOK);
	assert_memory_not_equal(rec.hash, rec2.hash, sizeof(rec.hash));
	/* a corrupt row (iterations 0) never matches */
	rec2.iter = 0;
	assert_int_equal(dv_authcode_check(&rec2, code, 999, &v), DJ_EOK);
	assert_int_equal(v, DV_AUTHCODE_WRONG);
	assert_int_equal(dv_authcode_seal("lowercase-is-not-a-code!", 1, &rec2), DJ_EINVAL);
}

DJ_TEST_MAIN_GROUP(group_setup, group_teardown,
	cmocka_unit_test(test_roundtrip_and_verify),
	cmocka_unit_test(test_link_encode_decode_strict),
	cmocka_unit_test(test_wrong_key_and_bogus_signature),
	cmocka_unit_test(test_continuity),
	cmocka_unit_test(test_key_verdicts),
	cmocka_unit_test(test_verify_link),
	cmocka_unit_test(test_keys_spki_b64_zones),
	cmocka_unit_test(test_authcode),
	cmocka_unit_test(test_device_messages))
