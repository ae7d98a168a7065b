/*
 * ca_bulk.c - issue device certificates in bulk on worker threads.
 *
 * Each worker fetches its algorithms once (a key generator, the digest) and then takes chunks of
 * rows by an atomic counter, so the CPUs share the work without a lock on the hot path (STYLE.md
 * rule 9: fetch once, reuse). A worker renders its chunk (keys, certificates) into one buffer and
 * then writes it when the chunk's turn comes: the chunks go out in CSV order, one writer at a
 * time, while the other workers go on signing. The calling thread only reports progress. The CA
 * key is used for signing by every worker at once; OpenSSL 3 allows concurrent use of a const
 * EVP_PKEY.
 *
 * Speed: OpenSSL 3.0 looks its PEM/DER encoders up by name on every PEM_write_*PrivateKey and
 * i2d_PUBKEY call, which cost more than generating and signing. So the P-256 key is written from
 * a DER template (checked byte for byte against OpenSSL's PKCS#8 by test_ca_certs.sh), the TLSA
 * digest is taken from the SPKI the certificate already holds, and PEM is base64 done here.
 *
 * Secrets: the buffers that held private keys are wiped (OPENSSL_cleanse) after every chunk and
 * on every growth; key files and the bundle are created 0600 with O_EXCL.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "ca-tools/ca_bulk.h"
#include "ca-tools/ca_cert.h"
#include "ca-tools/ca_tlsa.h"
#include "common/dj_err.h"
#include "common/dj_lines.h"

#define CA_CSV_LINE_MAX 4096
#define CA_PROGRESS_MS 100
#define CA_ROLL_PATH_MAX_BULK 4096	/* output file paths */

/* csv_field - the idx-th comma-separated field of line into out (trimmed); false if absent */
static bool csv_field(const char *line, int idx, char *out, size_t cap)
{
	const char *p = line, *end;
	size_t n;
	int i;

	for (i = 0; i < idx; i++) {
		p = strchr(p, ',');
		if (p == NULL)
			return false;
		p++;
	}
	end = strchr(p, ',');
	n = end != NULL ? (size_t)(end - p) : strlen(p);
	while (n > 0 && isspace((unsigned char)*p)) {
		p++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	if (n >= cap)
		n = cap - 1;	/* the caller's length check catches this */
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* cmp_item - order by DevEUI, to find duplicates */
static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct ca_bulk_item *)a)->dev_eui,
		      ((const struct ca_bulk_item *)b)->dev_eui);
}

int ca_bulk_read_csv(const char *path, const char *zone, struct ca_bulk_item **items, size_t *n,
		     char *err, size_t errlen)
{
	char line[CA_CSV_LINE_MAX], field[CA_NAME_BUF + 8], name[CA_NAME_BUF + 64];
	struct ca_bulk_item *v = NULL, *sorted = NULL, *nv;
	size_t count = 0, cap = 0, i, zl = 0;
	int col_eui = -1, col_name = -1, col, lineno = 0, rc = DJ_EMALFORMED;
	FILE *f;

	*items = NULL;
	*n = 0;
	f = fopen(path, "r");
	if (f == NULL) {
		dj_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? DJ_ENOENT : DJ_EIO;
	}
	if (zone != NULL) {
		zl = strlen(zone);
		if (zl > 0 && zone[zl - 1] == '.')
			zl--;
	}
	while ((rc = dj_lines_next(f, line, sizeof(line), path, &lineno, err, errlen)) == 1) {
		rc = DJ_EMALFORMED;
		if (col_eui < 0) {	/* the header */
			for (col = 0; csv_field(line, col, field, sizeof(field)); col++) {
				if (strcasecmp(field, "dev_eui") == 0 || strcasecmp(field, "deveui") == 0)
					col_eui = col;
				else if (strcasecmp(field, "name") == 0)
					col_name = col;
			}
			if (col_eui < 0) {
				dj_errbuf(err, errlen, "%s:%d: the header has no dev_eui column", path,
					  lineno);
				goto out;
			}
			continue;
		}
		if (count == cap) {
			cap = cap == 0 ? 1024 : cap * 2;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				rc = DJ_ENOMEM;
				goto out;
			}
			v = nv;
		}
		if (!csv_field(line, col_eui, field, sizeof(field)) ||
		    strlen(field) != CA_DEVEUI_HEX ||
		    strspn(field, "0123456789abcdefABCDEF") != CA_DEVEUI_HEX) {
			dj_errbuf(err, errlen, "%s:%d: dev_eui must be 16 hex digits", path, lineno);
			goto out;
		}
		for (i = 0; i < CA_DEVEUI_HEX; i++)
			v[count].dev_eui[i] = (char)tolower((unsigned char)field[i]);
		v[count].dev_eui[CA_DEVEUI_HEX] = '\0';
		field[0] = '\0';
		if (col_name >= 0)
			(void)csv_field(line, col_name, field, sizeof(field));
		if (field[0] != '\0') {
			snprintf(name, sizeof(name), "%s", field);
		} else if (zone != NULL) {
			snprintf(name, sizeof(name), "%s._device.%.*s", v[count].dev_eui, (int)zl,
				 zone);
		} else {
			dj_errbuf(err, errlen, "%s:%d: no name, and no --zone to make one", path,
				  lineno);
			goto out;
		}
		if (ca_name_check(name, field, sizeof(field)) != DJ_EOK) {
			dj_errbuf(err, errlen, "%s:%d: %s", path, lineno, field);
			goto out;
		}
		i = strlen(name);
		if (name[i - 1] == '.')
			name[i - 1] = '\0';
		memcpy(v[count].name, name, strlen(name) + 1);
		count++;
	}
	if (rc != 0)
		goto out;	/* a line too long */
	rc = DJ_EMALFORMED;
	if (col_eui < 0 || count == 0) {
		dj_errbuf(err, errlen, "%s: no devices in the file", path);
		goto out;
	}
	sorted = malloc(count * sizeof(*sorted));
	if (sorted == NULL) {
		rc = DJ_ENOMEM;
		goto out;
	}
	memcpy(sorted, v, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), cmp_item);
	for (i = 1; i < count; i++)
		if (strcmp(sorted[i - 1].dev_eui, sorted[i].dev_eui) == 0) {
			dj_errbuf(err, errlen, "%s: dev_eui %s appears twice", path, sorted[i].dev_eui);
			rc = DJ_EMALFORMED;
			goto out;
		}
	*items = v;
	*n = count;
	v = NULL;
	rc = DJ_EOK;
out:
	free(sorted);
	free(v);
	fclose(f);
	return rc;
}

/*
 * The P-256 private key as PKCS#8 DER (RFC 5208 PrivateKeyInfo holding an RFC 5915
 * ECPrivateKey, algorithm id-ecPublicKey with the named curve secp256r1, RFC 5480 §2.1.1),
 * byte for byte what OpenSSL's PKCS#8 encoder writes: the parameters sit in the algorithm
 * identifier only, the public key is uncompressed. Built from this template because OpenSSL 3.0
 * looks its encoders up by name on every call, which cost more than the signature (STYLE.md
 * rule 9: fetch once, reuse).
 */
static const unsigned char p256_pkcs8_head[] = {
	0x30, 0x81, 0x87,				/* PrivateKeyInfo, 135 bytes */
	0x02, 0x01, 0x00,				/* version 0 */
	0x30, 0x13,					/* AlgorithmIdentifier */
	0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,	/* id-ecPublicKey */
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,	/* secp256r1 */
	0x04, 0x6d,					/* privateKey OCTET STRING, 109 bytes */
	0x30, 0x6b,					/* ECPrivateKey, 107 bytes */
	0x02, 0x01, 0x01,				/* ecPrivkeyVer1 */
	0x04, 0x20,					/* privateKey, 32 bytes follow */
};
static const unsigned char p256_pkcs8_mid[] = {
	0xa1, 0x44, 0x03, 0x42, 0x00,			/* [1] publicKey BIT STRING, 65 bytes follow */
};
#define P256_SCALAR_LEN 32				/* SEC 1 §2.3.7 */
#define P256_POINT_LEN 65				/* 0x04 || X || Y, SEC 1 §2.3.3 */
#define P256_PKCS8_LEN (sizeof(p256_pkcs8_head) + P256_SCALAR_LEN + sizeof(p256_pkcs8_mid) + \
			P256_POINT_LEN)

#define CA_BULK_CHUNK 32	/* devices a worker renders before it writes them out */
#define CA_BULK_BUF_INIT (CA_BULK_CHUNK * 2048)	/* a P-256 device takes about 1,100 bytes */
#define PEM_LINE_BYTES 48	/* 64 base64 characters a line, RFC 7468 §2 */
#define SHA256_LEN 32

static const char *const layout_names[] = {
	[CA_BULK_FILES] = "files", [CA_BULK_PEM] = "pem", [CA_BULK_BUNDLE] = "bundle",
};

int ca_bulk_layout_parse(const char *text, enum ca_bulk_layout *out)
{
	size_t i;

	for (i = 0; i < DJ_ARRAY_LEN(layout_names); i++)
		if (strcmp(text, layout_names[i]) == 0) {
			*out = (enum ca_bulk_layout)i;
			return DJ_EOK;
		}
	return DJ_EINVAL;
}

/* A growing output buffer that holds private keys: every old copy is wiped. */
struct obuf {
	unsigned char *p;
	size_t len, cap;
};

/* obuf_reserve - room for \p more bytes */
static int obuf_reserve(struct obuf *b, size_t more)
{
	unsigned char *np;
	size_t cap;

	if (b->cap - b->len >= more)
		return DJ_EOK;
	cap = b->cap == 0 ? CA_BULK_BUF_INIT : b->cap;
	while (cap - b->len < more)
		cap *= 2;
	np = malloc(cap);
	if (np == NULL)
		return DJ_ENOMEM;
	if (b->len > 0)
		memcpy(np, b->p, b->len);
	if (b->p != NULL)
		OPENSSL_cleanse(b->p, b->cap);
	free(b->p);
	b->p = np;
	b->cap = cap;
	return DJ_EOK;
}

/* obuf_put - append bytes */
static int obuf_put(struct obuf *b, const void *data, size_t len)
{
	if (obuf_reserve(b, len) != DJ_EOK)
		return DJ_ENOMEM;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return DJ_EOK;
}

/* obuf_free - wipe and free */
static void obuf_free(struct obuf *b)
{
	if (b->p != NULL)
		OPENSSL_cleanse(b->p, b->cap);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* pem_put - DER as a PEM block with \p label (RFC 7468 §2), encoded in place */
static int pem_put(struct obuf *b, const char *label, const unsigned char *der, size_t len)
{
	char line[80];
	size_t off, n;
	int ll;

	ll = snprintf(line, sizeof(line), "-----BEGIN %s-----\n", label);
	if (obuf_put(b, line, (size_t)ll) != DJ_EOK)
		return DJ_ENOMEM;
	/* every line: 64 characters, a newline, and the NUL EVP_EncodeBlock adds */
	if (obuf_reserve(b, (len / PEM_LINE_BYTES + 1) * 66) != DJ_EOK)
		return DJ_ENOMEM;
	for (off = 0; off < len; off += n) {
		n = len - off < PEM_LINE_BYTES ? len - off : PEM_LINE_BYTES;
		b->len += (size_t)EVP_EncodeBlock(b->p + b->len, der + off, (int)n);
		b->p[b->len++] = '\n';
	}
	ll = snprintf(line, sizeof(line), "-----END %s-----\n", label);
	return obuf_put(b, line, (size_t)ll);
}

/* key_put - the private key as PKCS#8 PEM: from the template for P-256, else by OpenSSL */
static int key_put(struct obuf *b, EVP_PKEY *key, enum ca_key_type type)
{
	unsigned char der[P256_PKCS8_LEN], *p = der;
	BIGNUM *priv = NULL;
	BIO *mem = NULL;
	char *data = NULL;
	size_t plen = 0;
	long len;
	int rc = DJ_ECRYPTO;

	if (type != CA_KEY_EC_P256) {
		mem = BIO_new(BIO_s_secmem());
		if (mem == NULL || PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0, NULL,
								 NULL) != 1)
			goto out;
		len = BIO_get_mem_data(mem, &data);
		rc = obuf_put(b, data, (size_t)len);
		goto out;
	}
	memcpy(p, p256_pkcs8_head, sizeof(p256_pkcs8_head));
	p += sizeof(p256_pkcs8_head);
	if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1 ||
	    BN_bn2binpad(priv, p, P256_SCALAR_LEN) != P256_SCALAR_LEN)
		goto out;
	p += P256_SCALAR_LEN;
	memcpy(p, p256_pkcs8_mid, sizeof(p256_pkcs8_mid));
	p += sizeof(p256_pkcs8_mid);
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, p, P256_POINT_LEN,
					    &plen) != 1 || plen != P256_POINT_LEN || p[0] != 0x04)
		goto out;
	rc = pem_put(b, "PRIVATE KEY", der, sizeof(der));
out:
	OPENSSL_cleanse(der, sizeof(der));
	BN_clear_free(priv);
	BIO_free(mem);		/* a secmem BIO wipes its buffer */
	return rc;
}

/* Where one device sits in a chunk's buffer: [start, mid) key, [mid, end) certificate. */
struct mark {
	size_t start, mid, end;
};

/* Shared by the workers of one run. */
struct bulk_run {
	const struct ca_bulk_props *p;
	const struct ca_bulk_item *items;
	size_t n;
	char **lines;			/* tlsa.zone line per item */
	int bundle_fd;			/* CA_BULK_BUNDLE: DIR/devices.pem, else -1 */
	atomic_size_t next;		/* the next row to take */
	atomic_size_t done;
	atomic_int failed;
	pthread_mutex_t turn_lock;	/* chunks are written in CSV order ... */
	pthread_cond_t turn_cv;
	size_t turn;			/* ... this one next */
	pthread_mutex_t err_lock;
	int rc;
	char err[256];
};

/* What one worker fetched once and reuses. */
struct bulk_worker {
	EVP_PKEY_CTX *gen;
	EVP_MD *md;
	struct obuf out;
	struct mark marks[CA_BULK_CHUNK];
};

/* fail_run - record the first error and stop every worker */
static void fail_run(struct bulk_run *r, int rc, const char *msg)
{
	pthread_mutex_lock(&r->err_lock);
	if (r->rc == DJ_EOK) {
		r->rc = rc;
		snprintf(r->err, sizeof(r->err), "%s", msg);
	}
	pthread_mutex_unlock(&r->err_lock);
	atomic_store(&r->failed, 1);
	pthread_mutex_lock(&r->turn_lock);
	pthread_cond_broadcast(&r->turn_cv);
	pthread_mutex_unlock(&r->turn_lock);
}

/* tlsa_line - "<name>. TTL IN TLSA 3 1 1 <sha256(spki)>" from the SPKI already in the
 *             certificate (no encoder: the key was encoded once, by ca_cert_build) */
static char *tlsa_line(const struct bulk_run *r, const struct bulk_worker *w, X509 *x,
		       const char *name)
{
	unsigned char *der = NULL, digest[SHA256_LEN];
	char owner[CA_NAME_BUF + 1];
	struct ca_tlsa t = { 3, 1, 1, digest, sizeof(digest) };	/* DANE-EE SPKI SHA-256 */
	char *line = NULL;
	int len;

	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (len <= 0 || EVP_Digest(der, (size_t)len, digest, NULL, w->md, NULL) != 1)
		goto out;
	snprintf(owner, sizeof(owner), "%s.", name);
	line = ca_tlsa_line(owner, r->p->ttl, &t);
out:
	OPENSSL_free(der);
	return line;
}

/* issue_one - key, certificate and TLSA line for one item, rendered into w->out */
static int issue_one(struct bulk_run *r, struct bulk_worker *w, size_t idx, struct mark *m,
		     char *err, size_t errlen)
{
	const struct ca_bulk_item *it = &r->items[idx];
	const char *names[1] = { it->name };
	struct ca_cert_props cp;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	unsigned char *der = NULL;
	char head[CA_NAME_BUF + CA_DEVEUI_HEX + 8];
	int rc, len;

	err[0] = '\0';
	rc = ca_key_generate_with(w->gen, &key);
	if (rc != DJ_EOK) {
		dj_errbuf(err, errlen, "key generation failed");
		goto out;
	}
	memset(&cp, 0, sizeof(cp));
	cp.role = CA_ROLE_DEVICE;
	cp.subject_cn = it->dev_eui;
	cp.names = names;
	cp.nnames = 1;
	cp.days = r->p->days;
	cp.pathlen = -1;
	cp.subject_key = key;
	cp.issuer_cert = r->p->ca_cert;
	cp.issuer_key = r->p->ca_key;
	cp.md = w->md;
	cp.raw_spki = true;
	rc = ca_cert_build(&cp, &x, err, errlen);
	if (rc != DJ_EOK)
		goto out;
	rc = DJ_ENOMEM;
	m->start = w->out.len;
	if (r->p->layout != CA_BULK_FILES) {
		len = snprintf(head, sizeof(head), "# %s %s\n", it->dev_eui, it->name);
		if (obuf_put(&w->out, head, (size_t)len) != DJ_EOK)
			goto out;
	}
	rc = key_put(&w->out, key, r->p->key_type);
	if (rc != DJ_EOK) {
		dj_errbuf(err, errlen, "cannot encode the private key: %s", dj_openssl_reason());
		goto out;
	}
	m->mid = w->out.len;
	len = i2d_X509(x, &der);
	rc = len > 0 ? pem_put(&w->out, "CERTIFICATE", der, (size_t)len) : DJ_ECRYPTO;
	if (rc != DJ_EOK)
		goto out;
	m->end = w->out.len;
	r->lines[idx] = tlsa_line(r, w, x, it->name);
	if (r->lines[idx] == NULL)
		rc = DJ_ECRYPTO;
out:
	if (rc == DJ_ECRYPTO && err[0] == '\0')
		dj_errbuf(err, errlen, "cannot encode device %s: %s", it->dev_eui,
			  dj_openssl_reason());
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* write_all - all of a buffer to a file descriptor */
static int write_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return DJ_EIO;
		p += n;
		len -= (size_t)n;
	}
	return DJ_EOK;
}

/* write_chunk - the files of count devices from first on, or their part of the bundle */
static int write_chunk(struct bulk_run *r, struct bulk_worker *w, size_t first, size_t count,
		       char *err, size_t errlen)
{
	const struct ca_bulk_props *p = r->p;
	char path[CA_ROLL_PATH_MAX_BULK];
	const char *eui;
	const struct mark *m;
	size_t i;
	int rc = DJ_EOK;

	if (p->layout == CA_BULK_BUNDLE) {
		rc = write_all(r->bundle_fd, w->out.p, w->out.len);
		if (rc != DJ_EOK)
			dj_errbuf(err, errlen, "%s/%s: write: %s", p->out_dir, CA_BULK_BUNDLE_FILE,
				  strerror(errno));
		return rc;
	}
	for (i = 0; i < count && rc == DJ_EOK; i++) {
		eui = r->items[first + i].dev_eui;
		m = &w->marks[i];
		if (p->layout == CA_BULK_PEM) {
			snprintf(path, sizeof(path), "%s/%s.pem", p->out_dir, eui);
			rc = ca_file_write_new(path, w->out.p + m->start, m->end - m->start, 0600,
					       p->force, err, errlen);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s.key", p->out_dir, eui);
		rc = ca_file_write_new(path, w->out.p + m->start, m->mid - m->start, 0600, p->force,
				       err, errlen);
		if (rc != DJ_EOK)
			break;
		snprintf(path, sizeof(path), "%s/%s.crt", p->out_dir, eui);
		rc = ca_file_write_new(path, w->out.p + m->mid, m->end - m->mid, 0644, p->force,
				       err, errlen);
	}
	return rc;
}

/* emit_chunk - wait for chunk k's turn, write it, pass the turn on. One writer at a time keeps
 *              the bundle in CSV order and keeps the workers from contending for the folder
 *              lock of the kernel, while the other workers go on signing. */
static int emit_chunk(struct bulk_run *r, struct bulk_worker *w, size_t k, size_t first,
		      size_t count, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&r->turn_lock);
	while (r->turn != k && !atomic_load(&r->failed))
		pthread_cond_wait(&r->turn_cv, &r->turn_lock);
	pthread_mutex_unlock(&r->turn_lock);
	if (atomic_load(&r->failed))
		return DJ_ESHUTDOWN;
	rc = write_chunk(r, w, first, count, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	pthread_mutex_lock(&r->turn_lock);
	r->turn++;
	pthread_cond_broadcast(&r->turn_cv);
	pthread_mutex_unlock(&r->turn_lock);
	return DJ_EOK;
}

/* worker - take chunks of rows until none is left or a worker failed */
static void *worker(void *arg)
{
	struct bulk_run *r = arg;
	struct bulk_worker *w;
	char err[256];
	size_t first, count, i;
	int rc;

	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		fail_run(r, DJ_ENOMEM, "out of memory");
		return NULL;
	}
	rc = ca_key_generator(r->p->key_type, &w->gen);
	w->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (rc != DJ_EOK || w->md == NULL) {
		fail_run(r, DJ_ECRYPTO, "cannot set up key generation");
		goto out;
	}
	while (!atomic_load(&r->failed)) {
		first = atomic_fetch_add(&r->next, CA_BULK_CHUNK);
		if (first >= r->n)
			break;
		count = r->n - first < CA_BULK_CHUNK ? r->n - first : CA_BULK_CHUNK;
		w->out.len = 0;
		for (i = 0, rc = DJ_EOK; i < count && rc == DJ_EOK; i++)
			rc = issue_one(r, w, first + i, &w->marks[i], err, sizeof(err));
		if (rc == DJ_EOK)
			rc = emit_chunk(r, w, first / CA_BULK_CHUNK, first, count, err, sizeof(err));
		OPENSSL_cleanse(w->out.p, w->out.len);
		if (rc == DJ_ESHUTDOWN)
			break;
		if (rc != DJ_EOK) {
			fail_run(r, rc, err);
			break;
		}
		atomic_fetch_add(&r->done, count);
	}
out:
	obuf_free(&w->out);
	EVP_MD_free(w->md);
	EVP_PKEY_CTX_free(w->gen);
	free(w);
	return NULL;
}

/* precheck - refuse before writing anything if an output file exists */
static int precheck(const struct ca_bulk_props *p, const struct ca_bulk_item *items, size_t n,
		    char *err, size_t errlen)
{
	static const char *const exts[][2] = {
		[CA_BULK_FILES] = { "key", "crt" }, [CA_BULK_PEM] = { "pem", NULL },
		[CA_BULK_BUNDLE] = { NULL, NULL },
	};
	char path[CA_ROLL_PATH_MAX_BULK];
	size_t i, e;

	if (p->force)
		return DJ_EOK;
	snprintf(path, sizeof(path), "%s/tlsa.zone", p->out_dir);
	if (ca_file_exists(path))
		goto exists;
	snprintf(path, sizeof(path), "%s/%s", p->out_dir, CA_BULK_BUNDLE_FILE);
	if (p->layout == CA_BULK_BUNDLE && ca_file_exists(path))
		goto exists;
	for (i = 0; i < n; i++)
		for (e = 0; e < 2 && exts[p->layout][e] != NULL; e++) {
			snprintf(path, sizeof(path), "%s/%s.%s", p->out_dir, items[i].dev_eui,
				 exts[p->layout][e]);
			if (ca_file_exists(path))
				goto exists;
		}
	return DJ_EOK;
exists:
	dj_errbuf(err, errlen, "%s exists; nothing was issued (use --force to replace)", path);
	return DJ_EEXIST;
}

/* open_bundle - DIR/devices.pem, new, 0600 whatever the umask */
static int open_bundle(const struct ca_bulk_props *p, int *fd, char *err, size_t errlen)
{
	char path[CA_ROLL_PATH_MAX_BULK];

	snprintf(path, sizeof(path), "%s/%s", p->out_dir, CA_BULK_BUNDLE_FILE);
	if (p->force && unlink(path) != 0 && errno != ENOENT) {
		dj_errbuf(err, errlen, "%s: cannot replace: %s", path, strerror(errno));
		return DJ_EIO;
	}
	*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		dj_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == EEXIST ? DJ_EEXIST : DJ_EIO;
	}
	if (fchmod(*fd, 0600) != 0) {
		dj_errbuf(err, errlen, "%s: chmod: %s", path, strerror(errno));
		close(*fd);
		*fd = -1;
		(void)unlink(path);
		return DJ_EIO;
	}
	return DJ_EOK;
}

/* close_bundle - flush the bundle to disk; remove it if the run failed */
static int close_bundle(const struct ca_bulk_props *p, int fd, int rc, char *err, size_t errlen)
{
	char path[CA_ROLL_PATH_MAX_BULK];

	if (fd < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", p->out_dir, CA_BULK_BUNDLE_FILE);
	if (rc == DJ_EOK && (fsync(fd) != 0 || close(fd) != 0)) {
		dj_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		rc = DJ_EIO;
	} else if (rc != DJ_EOK) {
		close(fd);
	}
	if (rc != DJ_EOK)
		(void)unlink(path);
	return rc;
}

int ca_bulk_issue(const struct ca_bulk_props *p, const struct ca_bulk_item *items, size_t n,
		  size_t *issued, char *err, size_t errlen)
{
	struct bulk_run r;
	pthread_t tids[CA_BULK_THREADS_MAX];
	struct timespec pause = { 0, CA_PROGRESS_MS * 1000000L };
	unsigned nthreads, started = 0, i;
	char path[CA_ROLL_PATH_MAX_BULK];
	size_t k, total = 0, off = 0, nchunks;
	char *zone = NULL;
	long ncpu;
	int rc;

	*issued = 0;
	if (strlen(p->out_dir) > CA_ROLL_PATH_MAX_BULK - 64) {
		dj_errbuf(err, errlen, "output folder path too long");
		return DJ_EINVAL;
	}
	if ((unsigned)p->layout >= DJ_ARRAY_LEN(layout_names))
		return DJ_EINVAL;
	rc = precheck(p, items, n, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	memset(&r, 0, sizeof(r));
	r.p = p;
	r.items = items;
	r.n = n;
	r.bundle_fd = -1;
	r.lines = calloc(n, sizeof(char *));
	if (r.lines == NULL)
		return DJ_ENOMEM;
	pthread_mutex_init(&r.err_lock, NULL);
	pthread_mutex_init(&r.turn_lock, NULL);
	pthread_cond_init(&r.turn_cv, NULL);
	atomic_init(&r.next, 0);
	atomic_init(&r.done, 0);
	atomic_init(&r.failed, 0);
	if (p->layout == CA_BULK_BUNDLE) {
		rc = open_bundle(p, &r.bundle_fd, err, errlen);
		if (rc != DJ_EOK)
			goto out;
	}
	nthreads = p->threads;
	if (nthreads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu > 0 ? (unsigned)ncpu : 1;
	}
	nchunks = (n + CA_BULK_CHUNK - 1) / CA_BULK_CHUNK;
	if (nthreads > CA_BULK_THREADS_MAX)
		nthreads = CA_BULK_THREADS_MAX;
	if (nthreads > nchunks)
		nthreads = (unsigned)nchunks;
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&tids[i], NULL, worker, &r) != 0) {
			fail_run(&r, DJ_ENOMEM, "cannot start a worker thread");
			break;
		}
		started++;
	}
	while (p->progress != NULL && atomic_load(&r.done) < n && !atomic_load(&r.failed)) {
		p->progress(atomic_load(&r.done), n, p->progress_arg);
		nanosleep(&pause, NULL);
	}
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (p->progress != NULL)
		p->progress(atomic_load(&r.done), n, p->progress_arg);
	*issued = atomic_load(&r.done);
	rc = close_bundle(p, r.bundle_fd, r.rc, err, errlen);
	r.bundle_fd = -1;
	if (r.rc != DJ_EOK) {
		dj_errbuf(err, errlen, "%s", r.err);
		*issued = p->layout == CA_BULK_BUNDLE ? 0 : *issued;
		goto out;
	}
	if (rc != DJ_EOK)
		goto out;
	for (k = 0; k < n; k++)
		total += strlen(r.lines[k]) + 1;
	zone = malloc(total + 1);
	if (zone == NULL) {
		rc = DJ_ENOMEM;
		goto out;
	}
	for (k = 0; k < n; k++)
		off += (size_t)sprintf(zone + off, "%s\n", r.lines[k]);
	snprintf(path, sizeof(path), "%s/tlsa.zone", p->out_dir);
	rc = ca_file_write_new(path, zone, off, 0644, p->force, err, errlen);
out:
	free(zone);
	for (k = 0; k < n; k++)
		free(r.lines[k]);
	free(r.lines);
	pthread_cond_destroy(&r.turn_cv);
	pthread_mutex_destroy(&r.turn_lock);
	pthread_mutex_destroy(&r.err_lock);
	return rc;
}
