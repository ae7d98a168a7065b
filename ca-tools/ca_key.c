/*
 * ca_key.c - key generation, key files, passphrases.
 *
 * Security: private keys are created 0600 with O_EXCL (no window in which the file is readable
 * by others, no overwrite of an existing key by accident, no following of a planted symlink).
 * Encrypted keys are PKCS#8 with AES-256-CBC and the PBKDF2 defaults of OpenSSL 3. A key that is
 * encrypted is never prompted for: without --passphrase-file the read fails with a clear error.
 * PEM buffers that held a private key and the passphrases are wiped with OPENSSL_cleanse.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca-tools/ca_key.h"
#include "common/dj_err.h"

int ca_key_type_parse(const char *text, enum ca_key_type *out)
{
	if (strcmp(text, "ec-p256") == 0 || strcmp(text, "p256") == 0 ||
	    strcmp(text, "ecdsa") == 0 || strcmp(text, "ec") == 0)
		*out = CA_KEY_EC_P256;
	else if (strcmp(text, "ed25519") == 0)
		*out = CA_KEY_ED25519;
	else if (strcmp(text, "rsa2048") == 0 || strcmp(text, "rsa-2048") == 0)
		*out = CA_KEY_RSA2048;
	else if (strcmp(text, "rsa3072") == 0 || strcmp(text, "rsa-3072") == 0)
		*out = CA_KEY_RSA3072;
	else
		return DJ_EINVAL;
	return DJ_EOK;
}

int ca_key_generator(enum ca_key_type type, EVP_PKEY_CTX **out)
{
	EVP_PKEY_CTX *ctx = NULL;
	int rc = DJ_ECRYPTO;

	*out = NULL;
	switch (type) {
	case CA_KEY_EC_P256:
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
		    EVP_PKEY_CTX_set_group_name(ctx, "P-256") <= 0)
			goto out;
		break;
	case CA_KEY_ED25519:
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
		if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0)
			goto out;
		break;
	case CA_KEY_RSA2048:
	case CA_KEY_RSA3072:
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, type == CA_KEY_RSA2048 ? 2048 : 3072) <= 0)
			goto out;
		break;
	default:
		rc = DJ_EINVAL;
		goto out;
	}
	*out = ctx;
	ctx = NULL;
	rc = DJ_EOK;
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int ca_key_generate_with(EVP_PKEY_CTX *gen, EVP_PKEY **out)
{
	EVP_PKEY *key = NULL;

	*out = NULL;
	if (EVP_PKEY_generate(gen, &key) <= 0)
		return DJ_ECRYPTO;
	*out = key;
	return DJ_EOK;
}

int ca_key_generate(enum ca_key_type type, EVP_PKEY **out)
{
	EVP_PKEY_CTX *gen = NULL;
	int rc;

	*out = NULL;
	rc = ca_key_generator(type, &gen);
	if (rc == DJ_EOK)
		rc = ca_key_generate_with(gen, out);
	EVP_PKEY_CTX_free(gen);
	return rc;
}

const char *ca_key_describe(const EVP_PKEY *key, char *buf, size_t len)
{
	char group[64];

	if (key == NULL) {
		snprintf(buf, len, "none");
	} else if (EVP_PKEY_is_a(key, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), NULL) != 1)
			snprintf(group, sizeof(group), "unknown curve");
		snprintf(buf, len, "EC %s", strcmp(group, "prime256v1") == 0 ? "P-256" :
			 strcmp(group, "secp384r1") == 0 ? "P-384" : group);
	} else if (EVP_PKEY_is_a(key, "ED25519")) {
		snprintf(buf, len, "Ed25519");
	} else if (EVP_PKEY_is_a(key, "RSA")) {
		snprintf(buf, len, "RSA %d", EVP_PKEY_get_bits(key));
	} else {
		snprintf(buf, len, "%s", EVP_PKEY_get0_type_name(key) != NULL ?
			 EVP_PKEY_get0_type_name(key) : "unknown");
	}
	return buf;
}

bool ca_key_usable(const EVP_PKEY *key, char *err, size_t errlen)
{
	char desc[64];

	if (EVP_PKEY_is_a(key, "ED25519"))
		return true;
	if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) >= 2048)
		return true;
	ca_key_describe(key, desc, sizeof(desc));
	if (strcmp(desc, "EC P-256") == 0 || strcmp(desc, "EC P-384") == 0)
		return true;
	dj_errbuf(err, errlen, "key type %s is not supported (EC P-256/P-384, Ed25519, RSA >= 2048)",
		  desc);
	return false;
}

/* read_all - the whole of a small file into a NUL-terminated heap buffer */
static int read_all(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t cap = 0, len = 0, n;
	int rc = DJ_EIO;

	*out = NULL;
	f = fopen(path, "rb");
	if (f == NULL) {
		dj_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? DJ_ENOENT : DJ_EIO;
	}
	for (;;) {
		if (cap - len < 4097) {
			char *nb;

			if (cap > (64u << 20)) {
				dj_errbuf(err, errlen, "%s: file too large", path);
				rc = DJ_EMALFORMED;
				goto out;
			}
			nb = OPENSSL_clear_realloc(buf, cap, cap * 2 + 8192);
			if (nb == NULL) {
				buf = NULL;
				rc = DJ_ENOMEM;
				goto out;
			}
			buf = nb;
			cap = cap * 2 + 8192;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		dj_errbuf(err, errlen, "%s: read error", path);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
	rc = DJ_EOK;
out:
	if (buf != NULL)
		OPENSSL_clear_free(buf, cap);
	fclose(f);
	return rc;
}

int ca_key_read_passphrase(const char *path, char *out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0, n;
	int rc;

	rc = read_all(path, &buf, &len, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	n = strcspn(buf, "\r\n");
	if (n == 0 || n > CA_PASS_MAX) {
		dj_errbuf(err, errlen, "%s: the passphrase is %s", path, n == 0 ? "empty" :
			  "too long");
		rc = DJ_EMALFORMED;
	} else {
		memcpy(out, buf, n);
		out[n] = '\0';
	}
	OPENSSL_clear_free(buf, len + 1);
	return rc;
}

/* pass_cb - hand OpenSSL the passphrase we were given; never prompt */
static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	const char *pass = u;
	size_t n;

	(void)rwflag;
	if (pass == NULL)
		return -1;
	n = strlen(pass);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, pass, n);
	return (int)n;
}

int ca_key_read_private(const char *path, const char *pass, EVP_PKEY **out, char *err,
			size_t errlen)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	int rc;

	*out = NULL;
	rc = read_all(path, &pem, &len, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	rc = DJ_EMALFORMED;
	if (strstr(pem, "PRIVATE KEY-----") == NULL) {
		dj_errbuf(err, errlen, "%s: not a PEM private key", path);
		goto out;
	}
	if (strstr(pem, "ENCRYPTED") != NULL && pass == NULL) {
		dj_errbuf(err, errlen, "%s: the key is encrypted; give its --passphrase-file", path);
		goto out;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		rc = DJ_ENOMEM;
		goto out;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, (void *)pass);
	if (key == NULL) {
		dj_errbuf(err, errlen, "%s: cannot read the private key (%s)", path,
			  strstr(pem, "ENCRYPTED") != NULL ? "wrong passphrase?" :
			  dj_openssl_reason());
		ERR_clear_error();
		goto out;
	}
	*out = key;
	rc = DJ_EOK;
out:
	BIO_free(bio);
	OPENSSL_clear_free(pem, len + 1);
	return rc;
}

int ca_key_read_public(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int rc;

	*out = NULL;
	rc = read_all(path, &pem, &len, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	rc = DJ_EMALFORMED;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		rc = DJ_ENOMEM;
		goto out;
	}
	if (strstr(pem, "-----BEGIN PUBLIC KEY-----") != NULL) {
		key = PEM_read_bio_PUBKEY(bio, NULL, pass_cb, NULL);
	} else if (strstr(pem, "-----BEGIN CERTIFICATE-----") != NULL) {
		x = PEM_read_bio_X509(bio, NULL, pass_cb, NULL);
		if (x != NULL)
			key = X509_get_pubkey(x);
	} else if (strstr(pem, "PRIVATE KEY-----") != NULL && strstr(pem, "ENCRYPTED") == NULL) {
		key = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, NULL);
	}
	if (key == NULL) {
		dj_errbuf(err, errlen, "%s: no PEM public key, certificate or unencrypted private key",
			  path);
		ERR_clear_error();
		goto out;
	}
	*out = key;
	rc = DJ_EOK;
out:
	X509_free(x);
	BIO_free(bio);
	OPENSSL_clear_free(pem, len + 1);
	return rc;
}

bool ca_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int ca_file_write_new(const char *path, const void *data, size_t len, unsigned mode, bool force,
		      char *err, size_t errlen)
{
	const unsigned char *p = data;
	ssize_t n;
	int fd, rc = DJ_EIO;

	if (force && unlink(path) != 0 && errno != ENOENT) {
		dj_errbuf(err, errlen, "%s: cannot replace: %s", path, strerror(errno));
		return DJ_EIO;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
	if (fd < 0) {
		if (errno == EEXIST) {
			dj_errbuf(err, errlen, "%s exists; refusing to overwrite it (use --force)",
				  path);
			return DJ_EEXIST;
		}
		dj_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		return DJ_EIO;
	}
	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			dj_errbuf(err, errlen, "%s: write: %s", path, strerror(errno));
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, (mode_t)mode) != 0) {	/* the umask may have cut bits we want */
		dj_errbuf(err, errlen, "%s: chmod: %s", path, strerror(errno));
		goto out;
	}
	rc = DJ_EOK;
out:
	if (close(fd) != 0 && rc == DJ_EOK) {
		dj_errbuf(err, errlen, "%s: close: %s", path, strerror(errno));
		rc = DJ_EIO;
	}
	if (rc != DJ_EOK)
		(void)unlink(path);
	return rc;
}

int ca_key_write_private(const char *path, EVP_PKEY *key, const char *pass, bool force,
			 char *err, size_t errlen)
{
	BIO *mem = NULL;
	char *data = NULL;
	long len;
	int rc = DJ_ECRYPTO, ok;

	mem = BIO_new(BIO_s_secmem());
	if (mem == NULL)
		mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		return DJ_ENOMEM;
	if (pass != NULL)
		ok = PEM_write_bio_PKCS8PrivateKey(mem, key, EVP_aes_256_cbc(), NULL, 0, pass_cb,
						   (void *)pass);
	else
		ok = PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL);
	if (ok != 1) {
		dj_errbuf(err, errlen, "cannot encode the private key: %s", dj_openssl_reason());
		goto out;
	}
	len = BIO_get_mem_data(mem, &data);
	rc = ca_file_write_new(path, data, (size_t)len, 0600, force, err, errlen);
	OPENSSL_cleanse(data, (size_t)len);
out:
	BIO_free(mem);
	return rc;
}
