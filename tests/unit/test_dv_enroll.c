/*
 * test_dv_enroll.c - enrollment input (devices/ownership/dv_enroll.h): CMS envelopes made here
 * with throwaway certificates, decrypted into CSV rows or refused (another recipient, the
 * wrong key, not CMS, not EnvelopedData, a plaintext that is not a CSV, a key wrap other than
 * AES key wrap); the JS certificate and key files; and the store rows built from a CSV (sealed
 * keys, a signed first link).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/dj_err.h"
#include "ownership/dv_enroll.h"
#include "ownership/dv_records.h"
#include "store/js_keystore.h"
#include "dj_test.h"

#define CSV_TEXT DV_CSV_HEADER_ATTRS "\n" \
	"0102030405060708,70b3d57ed0000001,1.0.4,2b7e151628aed2a6abf7158809cf4f3c,," \
	"meter,1.2,ACME,2024-03-01,\n" \
	"0102030405060709,70b3d57ed0000001,1.1,2b7e151628aed2a6abf7158809cf4f3c," \
	"000102030405060708090a0b0c0d0e0f,,,,,\n"
#define CERT_DAYS_S 3600
#define PATH_MAX_LEN 256

static const uint8_t master[JS_MASTER_KEY_LEN] = { 5 };

struct fx {
	EVP_PKEY *key[2];	/* the JS's, and someone else's */
	X509 *cert[2];
};

static struct fx F;

/* make_cert - a self-signed certificate of \p key */
static X509 *make_cert(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), CERT_DAYS_S));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	n = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static int group_setup(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
		F.key[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		if (F.key[i] == NULL)
			return -1;
		F.cert[i] = make_cert(F.key[i], i == 0 ? "js.test" : "other.test");
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
		EVP_PKEY_free(F.key[i]);
		X509_free(F.cert[i]);
	}
	return 0;
}

/* cms_der - \p cms as DER in a malloc'd copy (its length in \p len); frees \p cms */
static uint8_t *cms_der(CMS_ContentInfo *cms, size_t *len)
{
	unsigned char *der = NULL, *copy;
	int n = i2d_CMS_ContentInfo(cms, &der);

	assert_true(n > 0);
	copy = malloc((size_t)n);
	assert_non_null(copy);
	memcpy(copy, der, (size_t)n);
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	*len = (size_t)n;
	return copy;
}

/* envelope - \p text encrypted to \p cert (DER, malloc'd); signed instead when \p sign */
static uint8_t *envelope(const char *text, X509 *cert, EVP_PKEY *key, bool sign, size_t *len)
{
	STACK_OF(X509) *rcpt = sk_X509_new_null();
	BIO *in = BIO_new_mem_buf(text, (int)strlen(text));
	CMS_ContentInfo *cms;
	uint8_t *der;

	assert_non_null(rcpt);
	assert_non_null(in);
	assert_true(sk_X509_push(rcpt, cert) > 0);
	cms = sign ? CMS_sign(cert, key, NULL, in, CMS_BINARY) :
	      CMS_encrypt(rcpt, in, EVP_aes_256_cbc(), CMS_BINARY);
	assert_non_null(cms);
	der = cms_der(cms, len);
	BIO_free(in);
	sk_X509_free(rcpt);
	return der;
}

/* tmp_path - a file name in DJ_TEST_TMPDIR */
static void tmp_path(char *out, const char *name)
{
	const char *dir = getenv("DJ_TEST_TMPDIR");

	snprintf(out, PATH_MAX_LEN, "%s/enroll-%d-%s", dir != NULL ? dir : "/tmp", (int)getpid(),
		 name);
	unlink(out);
}

static void test_cms_decrypts(void **state)
{
	struct dv_csv *csv = NULL;
	char why[DV_ENROLL_WHY_MAX], path[PATH_MAX_LEN];
	size_t len = 0;
	uint8_t *der = envelope(CSV_TEXT, F.cert[0], NULL, false, &len);
	FILE *f;

	(void)state;
	assert_int_equal(dv_enroll_cms_mem(der, len, "in.cms", F.cert[0], F.key[0], &csv, why,
					   sizeof(why)), DJ_EOK);
	assert_non_null(csv);
	assert_int_equal(csv->n, 2);
	assert_int_equal(csv->rows[0].dev_eui[7], 0x08);
	assert_int_equal(csv->rows[0].app_key[0], 0x2b);
	assert_string_equal(csv->rows[0].model, "meter");
	assert_true(csv->rows[1].has_nwk_key);
	dv_csv_free(csv);
	csv = NULL;
	/* the same from a file, which is recognised as DER */
	tmp_path(path, "in.cms");
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(der, 1, len, f), len);
	fclose(f);
	assert_true(dv_enroll_is_der(path));
	assert_int_equal(dv_enroll_cms_file(path, F.cert[0], F.key[0], &csv, why, sizeof(why)),
			 DJ_EOK);
	assert_int_equal(csv->n, 2);
	dv_csv_free(csv);
	unlink(path);
	free(der);
}

static void test_cms_refused(void **state)
{
	struct dv_csv *csv = NULL;
	char why[DV_ENROLL_WHY_MAX];
	size_t len = 0;
	uint8_t *der;

	(void)state;
	/* encrypted to someone else */
	der = envelope(CSV_TEXT, F.cert[1], NULL, false, &len);
	assert_int_equal(dv_enroll_cms_mem(der, len, "x.cms", F.cert[0], F.key[0], &csv, why,
					   sizeof(why)), DJ_EACCES);
	assert_non_null(strstr(why, "x.cms is encrypted to another recipient: none of its 1"));
	assert_null(csv);
	/* to our certificate, but the key is not its key */
	assert_int_equal(dv_enroll_cms_mem(der, len, "x.cms", F.cert[1], F.key[0], &csv, why,
					   sizeof(why)), DJ_EACCES);
	assert_non_null(strstr(why, "cannot decrypt"));
	assert_null(csv);
	/* truncated: not CMS at all */
	assert_int_equal(dv_enroll_cms_mem(der, len / 2, "x.cms", F.cert[0], F.key[0], &csv, why,
					   sizeof(why)), DJ_EMALFORMED);
	assert_non_null(strstr(why, "neither an enrollment CSV nor a DER CMS file"));
	free(der);
	/* CMS, but signed, not enveloped */
	der = envelope(CSV_TEXT, F.cert[0], F.key[0], true, &len);
	assert_int_equal(dv_enroll_cms_mem(der, len, "x.cms", F.cert[0], F.key[0], &csv, why,
					   sizeof(why)), DJ_EMALFORMED);
	assert_non_null(strstr(why, "not EnvelopedData"));
	free(der);
	/* enveloped for us, but the plaintext is no enrollment CSV */
	der = envelope("dev_eui\n0102030405060708\n", F.cert[0], NULL, false, &len);
	assert_int_equal(dv_enroll_cms_mem(der, len, "x.cms", F.cert[0], F.key[0], &csv, why,
					   sizeof(why)), DJ_EMALFORMED);
	assert_non_null(strstr(why, "x.cms (decrypted): x.cms:1"));
	assert_null(csv);
	free(der);
}

/* envelope_wrap - \p text encrypted to the EC certificate \p cert, its key wrapped with
 * \p wrap (a key agreement recipient, as "openssl cms -encrypt -wrap" makes it) */
static uint8_t *envelope_wrap(const char *text, X509 *cert, const EVP_CIPHER *wrap, size_t *len)
{
	BIO *in = BIO_new_mem_buf(text, (int)strlen(text));
	CMS_ContentInfo *cms = CMS_encrypt(NULL, NULL, EVP_aes_128_cbc(),
					   CMS_BINARY | CMS_PARTIAL);
	CMS_RecipientInfo *ri;
	uint8_t *der;

	assert_non_null(in);
	assert_non_null(cms);
	ri = CMS_add1_recipient_cert(cms, cert, 0);
	assert_non_null(ri);
	assert_int_equal(CMS_RecipientInfo_type(ri), CMS_RECIPINFO_AGREE);
	assert_int_equal(EVP_EncryptInit_ex(CMS_RecipientInfo_kari_get0_ctx(ri), wrap, NULL, NULL,
					    NULL), 1);
	assert_int_equal(CMS_final(cms, in, NULL, CMS_BINARY), 1);
	der = cms_der(cms, len);
	BIO_free(in);
	return der;
}

/*
 * The key wrap of a key agreement recipient: AES key wrap is decrypted; RFC 5649 padded AES
 * wrap is refused before decryption, with either key (OpenSSL 3.0 wipes 8 bytes past its
 * output when such an unwrap fails, e.g. with the wrong key: a heap overwrite that fuzz_cms
 * met as ASan allocator CHECKs); so is 3DES wrap.
 */
static void test_cms_key_wrap(void **state)
{
	struct dv_csv *csv = NULL;
	char why[DV_ENROLL_WHY_MAX];
	size_t len = 0;
	uint8_t *der;

	(void)state;
	der = envelope_wrap(CSV_TEXT, F.cert[0], EVP_aes_192_wrap(), &len);
	assert_int_equal(dv_enroll_cms_mem(der, len, "w.cms", F.cert[0], F.key[0], &csv, why,
					   sizeof(why)), DJ_EOK);
	assert_int_equal(csv->n, 2);
	dv_csv_free(csv);
	csv = NULL;
	free(der);
	der = envelope_wrap(CSV_TEXT, F.cert[0], EVP_aes_128_wrap_pad(), &len);
	for (int k = 0; k < 2; k++) {	/* the right key, and one that makes the unwrap fail */
		assert_int_equal(dv_enroll_cms_mem(der, len, "w.cms", F.cert[0], F.key[k], &csv,
						   why, sizeof(why)), DJ_EMALFORMED);
		assert_non_null(strstr(why, "w.cms: key wrap algorithm id-aes128-wrap-pad is not "
					    "accepted"));
		assert_null(csv);
	}
	free(der);
	der = envelope_wrap(CSV_TEXT, F.cert[0], EVP_des_ede3_wrap(), &len);
	assert_int_equal(dv_enroll_cms_mem(der, len, "w.cms", F.cert[0], F.key[0], &csv, why,
					   sizeof(why)), DJ_EMALFORMED);
	assert_non_null(strstr(why, "key wrap algorithm id-smime-alg-CMS3DESwrap is not"));
	assert_null(csv);
	free(der);
}

/* write_pem - \p cert or \p key into \p path with mode \p mode */
static void write_pem(const char *path, X509 *cert, EVP_PKEY *key, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (cert != NULL)
		assert_int_equal(PEM_write_X509(f, cert), 1);
	else
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_recipient_files(void **state)
{
	char crt[PATH_MAX_LEN], key[PATH_MAX_LEN], other[PATH_MAX_LEN], why[DV_ENROLL_WHY_MAX];
	X509 *cert = NULL;
	EVP_PKEY *pkey = NULL;

	(void)state;
	tmp_path(crt, "js.crt");
	tmp_path(key, "js.key");
	tmp_path(other, "other.key");
	write_pem(crt, F.cert[0], NULL, 0644);
	write_pem(key, NULL, F.key[0], 0600);
	write_pem(other, NULL, F.key[1], 0600);
	assert_int_equal(dv_enroll_recipient_read(crt, key, &cert, &pkey, why, sizeof(why)),
			 DJ_EOK);
	assert_int_equal(X509_cmp(cert, F.cert[0]), 0);
	assert_int_equal(EVP_PKEY_eq(pkey, F.key[0]), 1);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	/* the key of another certificate */
	assert_int_equal(dv_enroll_recipient_read(crt, other, &cert, &pkey, why, sizeof(why)),
			 DJ_ECONFIG);
	assert_non_null(strstr(why, "is not the key of the certificate"));
	assert_null(cert);
	assert_null(pkey);
	/* a key that group or others may read */
	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(dv_enroll_recipient_read(crt, key, &cert, &pkey, why, sizeof(why)),
			 DJ_ECONFIG);
	assert_non_null(strstr(why, "readable by group or others"));
	/* a certificate that is not one */
	assert_int_equal(dv_enroll_recipient_read(other, key, &cert, &pkey, why, sizeof(why)),
			 DJ_ECONFIG);
	assert_non_null(strstr(why, "not a PEM certificate"));
	assert_false(dv_enroll_is_der(crt));
	assert_false(dv_enroll_is_der("/nonexistent/file"));
	unlink(crt);
	unlink(key);
	unlink(other);
}

static void test_build_rows(void **state)
{
	struct js_keystore *ks = NULL;
	struct dv_csv *csv = NULL;
	struct js_device devs[2];
	struct js_owner owners[2];
	struct js_root_keys rk;
	struct dv_chain *chain = calloc(1, sizeof(*chain));
	struct dv_link rights;
	struct dv_attrs a;
	char why[DV_ENROLL_WHY_MAX];
	struct dv_enroll_props p = { .from_zone = "maker.test.", .zone = "opa.test.",
				     .rights = &rights, .key = F.key[0], .now = 1700000000 };
	size_t i;

	(void)state;
	assert_non_null(chain);
	memset(devs, 0, sizeof(devs));
	memset(owners, 0, sizeof(owners));
	memset(&rights, 0, sizeof(rights));
	rights.n_net_ids = 1;
	memcpy(rights.net_ids[0], "\x00\x00\x1a", DV_NETID_LEN);
	assert_int_equal(js_keystore_new(master, &ks), DJ_EOK);
	assert_int_equal(dv_csv_parse("d.csv", CSV_TEXT, strlen(CSV_TEXT), &csv, why,
				      sizeof(why)), DJ_EOK);
	assert_int_equal(dv_enroll_build(ks, csv, &p, devs, owners, why, sizeof(why)), DJ_EOK);
	for (i = 0; i < 2; i++) {
		const struct dv_link *l = &chain->links[0];

		assert_memory_equal(devs[i].dev_eui, csv->rows[i].dev_eui, LW_EUI_LEN);
		assert_int_equal(devs[i].created_at, 1700000000);
		assert_int_equal(js_keystore_open_root(ks, devs[i].dev_eui, devs[i].root_token,
						       devs[i].root_token_len, &rk), DJ_EOK);
		assert_int_equal(rk.has_nwk_key, csv->rows[i].has_nwk_key);
		js_root_keys_wipe(&rk);
		assert_string_equal(owners[i].zone, "opa.test.");
		assert_int_equal(owners[i].serial, 1);
		assert_int_equal(dv_chain_decode(owners[i].chain, owners[i].chain_len, chain),
				 DJ_EOK);
		assert_int_equal(chain->n, 1);
		assert_int_equal(l->serial, 1);
		assert_int_equal(l->auth, DV_AUTH_MANUFACTURER);
		assert_string_equal(l->from_zone, "maker.test.");
		assert_string_equal(l->to_zone, "opa.test.");
		assert_string_equal(l->signer_zone, "maker.test.");
		assert_int_equal(l->n_net_ids, 1);
		assert_int_equal(l->not_before, 1700000000);
		assert_int_equal(dv_link_verify(l, F.key[0]), DJ_EOK);
		assert_int_equal(dv_link_verify(l, F.key[1]), DJ_EACCES);
		assert_int_equal(dv_attrs_parse(owners[i].attrs, &a), DJ_EOK);
		assert_string_equal(a.model, i == 0 ? "meter" : "");
		free(owners[i].chain);
		owners[i].chain = NULL;
	}
	/* a row whose attributes cannot be published: refused with its line */
	strcpy(csv->rows[1].model, "a \"quoted\" model");
	memset(owners, 0, sizeof(owners));
	assert_int_equal(dv_enroll_build(ks, csv, &p, devs, owners, why, sizeof(why)),
			 DJ_EMALFORMED);
	assert_string_equal(why, "line 3: bad attributes");
	for (i = 0; i < 2; i++)
		free(owners[i].chain);
	OPENSSL_cleanse(devs, sizeof(devs));
	dv_csv_free(csv);
	js_keystore_free(ks);
	free(chain);
}

DJ_TEST_MAIN_GROUP(group_setup, group_teardown,
	cmocka_unit_test(test_cms_decrypts),
	cmocka_unit_test(test_cms_refused),
	cmocka_unit_test(test_cms_key_wrap),
	cmocka_unit_test(test_recipient_files),
	cmocka_unit_test(test_build_rows))
