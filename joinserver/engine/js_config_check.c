/*
 * js_config_check.c - the files and addresses a configuration names, checked as danejoind will
 * use them.
 *
 * config/danejoind.service runs `danejoind --check-config` as ExecStartPre and trusts it: a
 * configuration it passes must start. So the check is one function, js_config_check_files(),
 * which --check-config, every start and every reload (SIGHUP) run before anything else; and the
 * KEK files have one reader, js_config_read_kek(), used by the check and by the peer table.
 *
 * Secret files (the master key, private keys, KEKs) follow one rule: opened with O_NOFOLLOW (a
 * symbolic link could be re-pointed by whoever owns the directory it lives in), a regular file,
 * and no access for group or others (DESIGN.md trust rule 5). Each refusal names the file and the
 * reason (a symbolic link is called one, not a bad mode).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "engine/js_config.h"
#include "store/js_keystore.h"

#define SECRET_MODE_MASK 077	/* group and other permission bits */
#define KEK_LEN_MIN 16		/* an AES-128 KEK (RFC 3394) */
#define KEK_FILE_MAX 130	/* 64 hex digits, a newline, slack */
#define PORT_MIN 1
#define PORT_MAX 65535

int js_config_hostport(const char *s, char *host, size_t hostlen, unsigned *port)
{
	const char *colon, *hs, *he;
	unsigned long p = 0;
	size_t n;

	if (s == NULL)
		return DJ_EMALFORMED;
	if (s[0] == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (he == NULL || he[1] != ':')
			return DJ_EMALFORMED;
		colon = he + 1;
	} else {
		hs = s;
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return DJ_EMALFORMED;	/* no port, or a bare IPv6 address */
		he = colon;
	}
	n = (size_t)(he - hs);
	if (n == 0 || n >= JS_CONFIG_HOST_MAX || strcspn(hs, " \t") < n)
		return DJ_EMALFORMED;
	/* digits only (no sign, no spaces), and stop counting before any overflow */
	if (colon[1] == '\0')
		return DJ_EMALFORMED;
	for (const char *d = colon + 1; *d != '\0'; d++) {
		if (*d < '0' || *d > '9')
			return DJ_EMALFORMED;
		p = p * 10 + (unsigned long)(*d - '0');
		if (p > PORT_MAX)
			return DJ_EMALFORMED;
	}
	if (p < PORT_MIN)
		return DJ_EMALFORMED;
	if (host != NULL) {
		if (n >= hostlen)
			return DJ_EMALFORMED;
		memcpy(host, hs, n);
		host[n] = '\0';
	}
	if (port != NULL)
		*port = (unsigned)p;
	return DJ_EOK;
}

/* errno_rc - the code of a file that cannot be opened */
static int errno_rc(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return DJ_ENOENT;
	case EACCES:
	case EPERM:
		return DJ_EACCES;
	case ENOMEM:
		return DJ_ENOMEM;
	default:
		return DJ_EIO;
	}
}

/* secret_open - open a secret file as its users do (O_NOFOLLOW) and refuse it unless it is a
 * regular file that group and others cannot read; \p what names it in the message */
static int secret_open(const char *what, const char *path, int *out, char *err, size_t errlen)
{
	struct stat st;
	int fd, e;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP || (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))) {
			snprintf(err, errlen, "%s %s: is a symbolic link; refused (secret files are "
				 "opened with O_NOFOLLOW: name the file itself)", what, path);
			return DJ_EFILEMODE;
		}
		snprintf(err, errlen, "%s %s: %s", what, path,
			 e == ENOENT ? "does not exist" : strerror(e));
		return errno_rc(e);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a regular file", what, path);
		close(fd);
		return DJ_EFILEMODE;
	}
	if ((st.st_mode & SECRET_MODE_MASK) != 0) {
		snprintf(err, errlen, "%s %s: has mode %04o, which gives group or others access; "
			 "refused (chmod 600 %s)", what, path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return DJ_EFILEMODE;
	}
	*out = fd;
	return DJ_EOK;
}

/* secret_fopen - secret_open() as a stdio stream */
static int secret_fopen(const char *what, const char *path, FILE **out, char *err, size_t errlen)
{
	int fd, ret;

	ret = secret_open(what, path, &fd, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	*out = fdopen(fd, "r");
	if (*out == NULL) {
		close(fd);
		return DJ_ENOMEM;
	}
	return DJ_EOK;
}

/* read_cert - the first PEM certificate of \p path (the leaf of a chain file) */
static int read_cert(const char *what, const char *path, X509 **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	X509 *x;
	int e;

	if (f == NULL) {
		e = errno;
		snprintf(err, errlen, "%s %s: %s", what, path,
			 e == ENOENT ? "does not exist" : strerror(e));
		return errno_rc(e);
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL) {
		ERR_clear_error();
		snprintf(err, errlen, "%s %s: no PEM certificate in it", what, path);
		return DJ_ECONFIG;
	}
	*out = x;
	return DJ_EOK;
}

/* no_passphrase - a daemon cannot type one: an encrypted key is refused, never prompted for */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* check_pair - a certificate and its private key: both readable, parsed, and matching */
static int check_pair(const char *sect, const char *cert_key, const char *cert,
		      const char *key_key, const char *key, char *err, size_t errlen)
{
	char what[64];
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	FILE *f = NULL;
	int fd = -1, ret;

	snprintf(what, sizeof(what), "[%s] %s", sect, cert_key);
	ret = read_cert(what, cert, &x, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	snprintf(what, sizeof(what), "[%s] %s", sect, key_key);
	ret = secret_open(what, key, &fd, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	ret = DJ_ENOMEM;
	f = fdopen(fd, "r");
	if (f == NULL)
		goto out;
	fd = -1;
	ret = DJ_ECONFIG;
	pk = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	if (pk == NULL) {
		snprintf(err, errlen, "%s %s: no unencrypted PEM private key in it", what, key);
		goto out;
	}
	if (X509_check_private_key(x, pk) != 1) {
		snprintf(err, errlen, "%s %s: does not match [%s] %s %s", what, key, sect, cert_key,
			 cert);
		goto out;
	}
	ret = DJ_EOK;
out:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	X509_free(x);
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* check_sni_names - each name of a [listen.sni.NAME] is a SAN dNSName of its certificate (a
 * "*.DOMAIN" name needs the certificate to cover any label under DOMAIN): serving a
 * certificate for a name it does not carry would fail every client's PKIX check */
static int check_sni_names(const struct js_sni_config *sc, char *err, size_t errlen)
{
	char what[96], probe[300];
	X509 *x = NULL;
	int ret;

	snprintf(what, sizeof(what), "[listen.sni.%s] cert_file", sc->name);
	ret = read_cert(what, sc->cert_file, &x, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	for (unsigned i = 0; i < sc->names.n && ret == DJ_EOK; i++) {
		const char *n = sc->names.v[i];

		if (strncmp(n, "*.", 2) == 0)
			snprintf(probe, sizeof(probe), "sni-probe.%s", n + 2);
		else
			snprintf(probe, sizeof(probe), "%s", n);
		if (X509_check_host(x, probe, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) != 1) {
			snprintf(err, errlen, "%s %s: '%s' (from names) is not among its subject "
				 "alternative names", what, sc->cert_file, n);
			ret = DJ_ECONFIG;
		}
	}
	ERR_clear_error();
	X509_free(x);
	return ret;
}

/* check_cafile - a file of trusted roots: readable, with at least one PEM certificate */
static int check_cafile(const char *what, const char *path, char *err, size_t errlen)
{
	X509 *x = NULL;
	int ret = read_cert(what, path, &x, err, errlen);

	X509_free(x);
	return ret;
}

/* check_master - the master key file: a secret file holding a master key */
static int check_master(const char *path, char *err, size_t errlen)
{
	uint8_t key[JS_MASTER_KEY_LEN];
	int fd = -1, ret;

	ret = secret_open("[keys] master_key_file", path, &fd, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	close(fd);
	ret = js_keystore_read_master(path, key);
	OPENSSL_cleanse(key, sizeof(key));
	if (ret == DJ_EMALFORMED) {
		snprintf(err, errlen, "[keys] master_key_file %s: does not hold a master key (32 raw "
			 "bytes or 64 hex digits)", path);
		return DJ_ECONFIG;
	}
	if (ret != DJ_EOK)
		snprintf(err, errlen, "[keys] master_key_file %s: %s", path, dj_strerror(ret));
	return ret;
}

int js_config_read_kek(const struct js_peer_config *pc, uint8_t key[JS_CONFIG_KEK_MAX],
		       size_t *len, char *err, size_t errlen)
{
	char buf[KEK_FILE_MAX + 1], what[JS_CONFIG_NAME_MAX + 32];
	ssize_t n;
	size_t klen = 0;
	int fd = -1, ret;

	snprintf(what, sizeof(what), "[peer.%s] kek_file", pc->name);
	ret = secret_open(what, pc->kek_file, &fd, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	ret = DJ_ECONFIG;
	n = read(fd, buf, KEK_FILE_MAX);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		if (dj_hex_parse_var(buf, key, JS_CONFIG_KEK_MAX, &klen) == DJ_EOK &&
		    (klen == KEK_LEN_MIN || klen == JS_CONFIG_KEK_MAX))
			ret = DJ_EOK;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (ret != DJ_EOK) {
		OPENSSL_cleanse(key, JS_CONFIG_KEK_MAX);
		snprintf(err, errlen, "%s %s: expected 32 or 64 hex digits", what, pc->kek_file);
		return ret;
	}
	*len = klen;
	return DJ_EOK;
}

/* check_registry_files - [registry] key_file: an unencrypted EC P-256 or Ed25519 private key
 * (the registry signs ownership links with it); tsig_file: ALG:NAME:SECRET or NAME:SECRET; both
 * regular files of mode 0600 */
static int check_registry_files(const struct js_config *cfg, char *err, size_t errlen)
{
	char line[512];
	EVP_PKEY *pk = NULL;
	FILE *f = NULL;
	int ret, type;

	ret = secret_fopen("[registry] key_file", cfg->registry_key_file, &f, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	pk = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	ERR_clear_error();
	type = pk != NULL ? EVP_PKEY_get_base_id(pk) : 0;
	if (type == EVP_PKEY_EC) {
		char group[32] = "";

		if (EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), NULL) != 1 ||
		    strcmp(group, "prime256v1") != 0)
			type = 0;
	}
	EVP_PKEY_free(pk);
	if (type != EVP_PKEY_EC && type != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "[registry] key_file %s: not an unencrypted PEM private key "
			 "of type EC P-256 or Ed25519", cfg->registry_key_file);
		return DJ_ECONFIG;
	}
	ret = secret_fopen("[registry] tsig_file", cfg->registry_tsig_file, &f, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	ret = fgets(line, sizeof(line), f) != NULL && strchr(line, ':') != NULL ? DJ_EOK
										: DJ_ECONFIG;
	fclose(f);
	OPENSSL_cleanse(line, sizeof(line));
	if (ret != DJ_EOK)
		snprintf(err, errlen, "[registry] tsig_file %s: expected ALGORITHM:NAME:SECRET "
			 "(the knsupdate -y form)", cfg->registry_tsig_file);
	return ret;
}

/* check_all - every file, in the order danejoind opens them; the message without the prefix */
/* check_admin_files - [admin]'s own certificate and key (both or neither: [listen]'s are used
 * otherwise) and the roots of PKIX admin clients */
static int check_admin_files(const struct js_config *cfg, char *err, size_t errlen)
{
	int ret;

	if (cfg->admin_address == NULL)
		return DJ_EOK;
	if ((cfg->admin_cert_file == NULL) != (cfg->admin_key_file == NULL)) {
		snprintf(err, errlen, "[admin] cert_file and key_file: set both or neither");
		return DJ_ECONFIG;
	}
	if (cfg->admin_cert_file != NULL) {
		ret = check_pair("admin", "cert_file", cfg->admin_cert_file, "key_file",
				 cfg->admin_key_file, err, errlen);
		if (ret != DJ_EOK)
			return ret;
	}
	if (cfg->admin_client_ca_file != NULL)
		return check_cafile("[admin] client_ca_file", cfg->admin_client_ca_file, err,
				    errlen);
	return DJ_EOK;
}

static int check_all(const struct js_config *cfg, char *err, size_t errlen)
{
	uint8_t kek[JS_CONFIG_KEK_MAX];
	size_t klen;
	int ret;

	ret = check_master(cfg->master_key_file, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	if (cfg->cert_file != NULL || cfg->key_file != NULL) {
		if (cfg->cert_file == NULL || cfg->key_file == NULL) {
			snprintf(err, errlen, "[listen] cert_file and key_file: set both or neither");
			return DJ_ECONFIG;
		}
		ret = check_pair("listen", "cert_file", cfg->cert_file, "key_file", cfg->key_file,
				 err, errlen);
		if (ret != DJ_EOK)
			return ret;
	}
	for (unsigned i = 0; i < cfg->n_sni; i++) {
		char sect[JS_CONFIG_NAME_MAX + 16];

		snprintf(sect, sizeof(sect), "listen.sni.%s", cfg->sni[i].name);
		ret = check_pair(sect, "cert_file", cfg->sni[i].cert_file, "key_file",
				 cfg->sni[i].key_file, err, errlen);
		if (ret != DJ_EOK)
			return ret;
		ret = check_sni_names(&cfg->sni[i], err, errlen);
		if (ret != DJ_EOK)
			return ret;
	}
	if (cfg->client_ca_file != NULL) {
		ret = check_cafile("[listen] client_ca_file", cfg->client_ca_file, err, errlen);
		if (ret != DJ_EOK)
			return ret;
	}
	ret = check_admin_files(cfg, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	if (cfg->mqtt && cfg->mqtt_cafile != NULL) {
		ret = check_cafile("[mqtt] cafile", cfg->mqtt_cafile, err, errlen);
		if (ret != DJ_EOK)
			return ret;
	}
	if (cfg->mqtt && cfg->mqtt_cert != NULL) {
		ret = check_pair("mqtt", "cert", cfg->mqtt_cert, "key", cfg->mqtt_key, err, errlen);
		if (ret != DJ_EOK)
			return ret;
	}
	if (cfg->registry_key_file != NULL) {
		ret = check_registry_files(cfg, err, errlen);
		if (ret != DJ_EOK)
			return ret;
	}
	for (unsigned i = 0; i < cfg->n_peers; i++) {
		if (cfg->peers[i].kek_file == NULL)
			continue;
		ret = js_config_read_kek(&cfg->peers[i], kek, &klen, err, errlen);
		OPENSSL_cleanse(kek, sizeof(kek));
		if (ret != DJ_EOK)
			return ret;
	}
	return DJ_EOK;
}

int js_config_check_files(const char *path, const struct js_config *cfg, char *err,
			  size_t errlen)
{
	char why[JS_CONFIG_ERR_MAX] = "";
	int ret = check_all(cfg, why, sizeof(why));

	if (ret != DJ_EOK && err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", path, why);
	return ret;
}
