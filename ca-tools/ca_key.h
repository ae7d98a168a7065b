/*
 * ca_key.h - private keys and files that hold secrets.
 *
 * DESCRIPTION
 *	Generates the key types danejoin-ca offers, reads keys (optionally PKCS#8-encrypted), and
 *	writes them: a private key file is created with O_CREAT|O_EXCL and mode 0600, so it is never
 *	readable by others, not even for an instant, and an existing file is never overwritten unless
 *	the caller asked for it (--force: the old file is unlinked first, the new one again created
 *	exclusively). Passphrases are wiped with OPENSSL_cleanse after use.
 */
#ifndef DJ_CA_TOOLS_CA_KEY_H
#define DJ_CA_TOOLS_CA_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "common/dj_compiler.h"

enum ca_key_type {
	CA_KEY_EC_P256 = 0,	/* the default */
	CA_KEY_ED25519,
	CA_KEY_RSA2048,
	CA_KEY_RSA3072,
};

#define CA_PASS_MAX 1024	/* longest passphrase read from a file */

/*! \brief Parse "ec-p256" (or "p256", "ecdsa"), "ed25519", "rsa2048", "rsa3072". \retval DJ_EOK, DJ_EINVAL */
int ca_key_type_parse(const char *text, enum ca_key_type *out) DJ_MUSTCHECK;

/*! \brief Generate a new key of \p type; *\p out is the caller's. \retval DJ_EOK, DJ_ECRYPTO */
int ca_key_generate(enum ca_key_type type, EVP_PKEY **out) DJ_MUSTCHECK;

/*!
 * \brief A reusable generator (one per thread): fetches the algorithm once, then makes keys.
 *        Free with EVP_PKEY_CTX_free(). \retval DJ_EOK, DJ_ECRYPTO
 */
int ca_key_generator(enum ca_key_type type, EVP_PKEY_CTX **out) DJ_MUSTCHECK;

/*! \brief One key from a generator of ca_key_generator(). \retval DJ_EOK, DJ_ECRYPTO */
int ca_key_generate_with(EVP_PKEY_CTX *gen, EVP_PKEY **out) DJ_MUSTCHECK;

/*! \brief A short description: "EC P-256", "Ed25519", "RSA 2048". Never NULL. */
const char *ca_key_describe(const EVP_PKEY *key, char *buf, size_t len);

/*! \brief Whether danejoin-ca signs with this key type (EC P-256/P-384, Ed25519, RSA >= 2048). */
bool ca_key_usable(const EVP_PKEY *key, char *err, size_t errlen);

/*!
 * \brief Read a passphrase: the first line of \p path (newline stripped), which must not be
 *        empty. \p out has CA_PASS_MAX + 1 bytes; wipe it with OPENSSL_cleanse after use.
 * \retval DJ_EOK, DJ_ENOENT, DJ_EIO, DJ_EMALFORMED (empty or too long)
 */
int ca_key_read_passphrase(const char *path, char *out, char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Read a PEM private key. \p pass may be NULL (an encrypted key is then refused, never
 *        prompted for). *\p out is the caller's.
 * \retval DJ_EOK, DJ_ENOENT, DJ_EMALFORMED (not a private key, wrong passphrase)
 */
int ca_key_read_private(const char *path, const char *pass, EVP_PKEY **out, char *err,
			size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Read a public key: a PEM "PUBLIC KEY", or the public half of a certificate or of a
 *        private key (unencrypted). \retval DJ_EOK, DJ_ENOENT, DJ_EMALFORMED
 */
int ca_key_read_public(const char *path, EVP_PKEY **out, char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Write \p key as PKCS#8 PEM, AES-256-CBC encrypted under \p pass if not NULL, to a new
 *        file of mode 0600. \p force replaces an existing file.
 * \retval DJ_EOK, DJ_EEXIST (file exists, no force), DJ_EIO, DJ_ECRYPTO
 */
int ca_key_write_private(const char *path, EVP_PKEY *key, const char *pass, bool force,
			 char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Write \p len bytes to a new file of \p mode (O_EXCL; \p force unlinks first), fsync.
 * \retval DJ_EOK, DJ_EEXIST, DJ_EIO
 */
int ca_file_write_new(const char *path, const void *data, size_t len, unsigned mode, bool force,
		      char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Whether a file already exists at \p path (for checks before a batch). */
bool ca_file_exists(const char *path);

#endif /* DJ_CA_TOOLS_CA_KEY_H */
