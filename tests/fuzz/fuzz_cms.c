/*
 * fuzz_cms.c - libFuzzer target: a CMS enrollment file (danejoin-devices enroll, dv_enroll) as
 * a manufacturer sends it: DER EnvelopedData encrypted to the join server's certificate, whose
 * plaintext is an enrollment CSV. Invariants: no crash, leak or sanitizer report; an accepted
 * file yields rows with valid versions.
 *
 * The recipient is fixed so that the corpus can hold files that really decrypt (and so reach
 * the CSV parser behind the decryption): an EC P-256 key whose scalar is SHA-256 of a fixed
 * text, made at the first call, and a self-signed certificate with a fixed name and serial.
 * No key is stored in the tree. The seeds (tests/fuzz/regress/fuzz_cms) were made with the
 * openssl CLI for that recipient:
 *   key:  the ECPrivateKey DER (RFC 5915) built below, then `openssl ec -inform DER -out k.pem`
 *   cert: openssl req -x509 -new -key k.pem -subj /CN=danejoin-fuzz -set_serial 1 -out c.pem
 *   openssl cms -encrypt -binary -outform DER -recip c.pem -aes-256-cbc (and -aes-128-cbc)
 *   openssl cms -sign -binary -outform DER -signer c.pem -inkey k.pem (signed, not enveloped)
 *   openssl cms -encrypt ... -aes-128-cbc -wrap id-aes128-wrap-pad (kari-aes128-wrap-pad), and
 *   the same with the first byte of its encryptedKey inverted (kari-aes128-wrap-pad-bad-key)
 * over a one-device enrollment CSV.
 *
 * The two wrap-pad seeds are the reproducer of fuzz_cms's ASan allocator CHECKs ("old_chunk_state
 * == CHUNK_QUARANTINE"): OpenSSL 3.0's failed RFC 5649 unwrap wiped 8 bytes past a heap buffer
 * (CRYPTO_128_unwrap_pad), which an uninstrumented libcrypto does unseen; the CHECK came later,
 * in whatever call recycled the overwritten chunk from the quarantine, so the input saved with
 * it never reproduced it. Against an ASan build of libcrypto the bad-key seed is reported at once
 * as a heap-buffer-overflow; dv_enroll now refuses every key wrap but AES key wrap before
 * decrypting.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/dj_err.h"
#include "ownership/dv_enroll.h"

#define RECIPIENT_SEED "danejoin fuzz_cms recipient"
#define RECIPIENT_CN "danejoin-fuzz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *cert;
static EVP_PKEY *key;

/* recipient - the fixed key (ECPrivateKey DER around the derived scalar) and its certificate */
static void recipient(void)
{
	/* RFC 5915: SEQUENCE { version 1, privateKey OCTET STRING (32), [0] prime256v1 } */
	static const uint8_t head[] = { 0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20 };
	static const uint8_t tail[] = { 0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
					0x3d, 0x03, 0x01, 0x07 };
	uint8_t der[sizeof(head) + SHA256_DIGEST_LENGTH + sizeof(tail)];
	const uint8_t *p = der;
	X509_NAME *name;

	memcpy(der, head, sizeof(head));
	SHA256((const uint8_t *)RECIPIENT_SEED, strlen(RECIPIENT_SEED), der + sizeof(head));
	memcpy(der + sizeof(head) + SHA256_DIGEST_LENGTH, tail, sizeof(tail));
	key = d2i_AutoPrivateKey(NULL, &p, (long)sizeof(der));
	cert = X509_new();
	name = X509_NAME_new();
	if (key == NULL || cert == NULL || name == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)RECIPIENT_CN, -1, -1, 0) != 1 ||
	    X509_set_version(cert, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) != 1 ||
	    X509_set_subject_name(cert, name) != 1 || X509_set_issuer_name(cert, name) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(cert), 86400) == NULL ||
	    X509_set_pubkey(cert, key) != 1 || X509_sign(cert, key, EVP_sha256()) == 0)
		abort();
	X509_NAME_free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dv_csv *csv = NULL;
	char why[DV_ENROLL_WHY_MAX];

	if (cert == NULL)
		recipient();
	if (dv_enroll_cms_mem(data, size, "fuzz.cms", cert, key, &csv, why, sizeof(why)) == DJ_EOK) {
		for (size_t i = 0; i < csv->n; i++)
			if (csv->rows[i].mac_version > LW_V1_1)
				abort();
	}
	dv_csv_free(csv);
	return 0;
}
