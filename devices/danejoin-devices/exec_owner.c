/*
 * exec_owner.c - danejoin-devices: the ownership commands (enroll, publish, authcode,
 * transfer-request, transfer, ownership). docs/danejoin-devices.md is the manual and
 * docs/dns-records.md the record formats.
 *
 * Security reasoning.
 *  - Whole input first: a CSV, a CMS file, a request file or an auth-code file is checked
 *    completely, and every signature, key and auth code verified, before the store or the
 *    DNS is touched; one bad item refuses the batch (DESIGN.md trust rule 6).
 *  - Keys come from the DNS only through a DNSSEC-validated lookup of _owner.<zone> TLSA 3 1 0
 *    (ca_lookup): insecure, bogus or absent means refused (trust rule 1). Our own signing key
 *    is checked against that record too, so we never publish a link the JS would reject.
 *  - A transfer is recorded (with its new chain) before the DNS is changed, and each DNS step
 *    is recorded after the server acknowledged it. Every DNS change is an idempotent replace,
 *    so a crash at any point is finished by a re-run (pending rows first), and no device is
 *    left half-transferred in the registry: its owner row changes only in the last step.
 *  - Replays: a request must carry the device's next serial, and (dev_eui, serial) and
 *    (dev_eui, nonce) are unique in the store; a request that is already done is reported as
 *    such and changes nothing.
 *  - Auth codes are printed once into a 0600 file created here, stored only as PBKDF2 hashes,
 *    never logged; root keys from a CSV or a CMS file are wiped after sealing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "ca-tools/ca_lookup.h"
#include "ca-tools/ca_update.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_authcode.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_csv.h"
#include "ownership/dv_records.h"
#include "exec.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "store/js_store_owner.h"

#define EUI_HEX (2 * LW_EUI_LEN + 1)
#define TLSA_TYPE 52			/* RFC 6698 §7.1 */
#define TLSA_DANE_EE 3			/* usage DANE-EE */
#define TLSA_SPKI 1			/* selector SubjectPublicKeyInfo */
#define TLSA_FULL 0			/* matching type: full data */
#define KEY_CACHE_MAX 16		/* zones whose _owner key one run keeps */
#define LINE_MAX_LEN 8192		/* one request line (base64 of a link) */
#define CRASH_ENV "DJ_DV_CRASH_AFTER_STEP"	/* tests: _exit after transfer step N */
#define CRASH_EXIT 70

/* One run of an ownership command. */
struct orun {
	const struct js_config *cfg;
	const struct dv_params *p;
	struct js_keystore *ks;
	struct js_store *store;
	char actor[JS_AUDIT_ACTOR_MAX];
	bool have_dns;
	struct ca_server srv;
	struct ca_tsig tsig;
	struct ca_lookup_props lk;
	char stub_addr[80];
	uint32_t ttl;
	size_t nkeys;
	struct {
		char zone[DV_ZONE_MAX];
		enum dv_key_status st;
		EVP_PKEY *key;
	} keys[KEY_CACHE_MAX];
};

/* errmsg - print "danejoin-devices: message" on stderr */
static void DJ_PRINTF(1, 2) errmsg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", DV_PROGRAM);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* oom - the message and exit code of an allocation failure */
static int oom(void)
{
	errmsg("out of memory");
	return DV_EXIT_INTERNAL;
}

/* parse_uint - a decimal in [min, max] */
static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* zone_arg - normalize a zone flag, with a message naming it */
static int zone_arg(const char *flag, const char *in, char out[DV_ZONE_MAX])
{
	if (dv_zone_normalize(in, out) == DJ_EOK)
		return DV_EXIT_OK;
	errmsg("%s %.80s: not a DNS zone name", flag, in);
	return DV_EXIT_DATA;
}

/* dns_setup - server, TSIG key, trust anchors and stub from the flags (those given) */
static int dns_setup(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	char err[256];
	unsigned long ttl;
	int rc;

	r->ttl = DV_TTL_DEFAULT;
	if (o->ttl != NULL) {
		if (!parse_uint(o->ttl, 1, 86400, &ttl)) {
			errmsg("--ttl %.40s: expected 1 to 86400 seconds", o->ttl);
			return DV_EXIT_USAGE;
		}
		r->ttl = (uint32_t)ttl;
	}
	if (o->ns != NULL) {
		rc = ca_server_parse(o->ns, &r->srv, err, sizeof(err));
		if (rc != DJ_EOK) {
			errmsg("--ns: %s", err);
			return DV_EXIT_USAGE;
		}
		snprintf(r->stub_addr, sizeof(r->stub_addr), "%s@%u", r->srv.addr, r->srv.port);
	}
	if (o->tsig_file != NULL) {
		rc = ca_tsig_read(o->tsig_file, &r->tsig, err, sizeof(err));
		if (rc != DJ_EOK) {
			errmsg("--tsig-file: %s", err);
			return DV_EXIT_CONFIG;
		}
		r->have_dns = true;
	}
	if (o->lookup_via != NULL) {
		struct ca_server via;

		if (ca_server_parse(o->lookup_via, &via, err, sizeof(err)) != DJ_EOK) {
			errmsg("--lookup-via: %s", err);
			return DV_EXIT_USAGE;
		}
		snprintf(r->stub_addr, sizeof(r->stub_addr), "%s@%u", via.addr, via.port);
	}
	if (o->ta_file != NULL && access(o->ta_file, R_OK) != 0) {
		errmsg("--ta-file %s: cannot be read", o->ta_file);
		return DV_EXIT_CONFIG;
	}
	r->lk.ta_file = o->ta_file;
	r->lk.stub_addr = r->stub_addr[0] != '\0' ? r->stub_addr : NULL;
	return DV_EXIT_OK;
}

/* key_lookup - the _owner key of \p zone from a DNSSEC-validated answer (dv_key_fn) */
static enum dv_key_status key_lookup(const char *zone, void *arg, EVP_PKEY **out)
{
	struct orun *r = arg;
	struct ca_verdict v;
	char name[DV_NAME_MAX];
	enum dv_key_status st = DV_KEY_ABSENT;
	EVP_PKEY *key = NULL;
	size_t i;
	int rc;

	*out = NULL;
	for (i = 0; i < r->nkeys; i++)
		if (strcmp(r->keys[i].zone, zone) == 0) {
			if (r->keys[i].st == DV_KEY_OK && EVP_PKEY_up_ref(r->keys[i].key) == 1)
				*out = r->keys[i].key;
			return *out != NULL || r->keys[i].st != DV_KEY_OK ? r->keys[i].st :
			       DV_KEY_TEMPFAIL;
		}
	if (dv_owner_name(zone, name) != DJ_EOK)
		return DV_KEY_ABSENT;
	memset(&v, 0, sizeof(v));
	r->lk.stub_zone = r->lk.stub_addr != NULL ? zone : NULL;
	rc = ca_lookup(&r->lk, name, TLSA_TYPE, NULL, &v);
	if (rc != DJ_EOK) {
		st = DV_KEY_TEMPFAIL;
		goto out;
	}
	if (v.state != CA_DNSSEC_SECURE) {
		st = DV_KEY_INSECURE;
		goto out;
	}
	for (i = 0; i < v.rd.n && key == NULL; i++) {
		const uint8_t *d = v.rd.data[i];

		if (v.rd.len[i] > 3 && d[0] == TLSA_DANE_EE && d[1] == TLSA_SPKI &&
		    d[2] == TLSA_FULL && dv_key_from_spki(d + 3, v.rd.len[i] - 3, &key) != DJ_EOK)
			key = NULL;
	}
	st = key != NULL ? DV_KEY_OK : DV_KEY_ABSENT;
out:
	ca_verdict_clear(&v);
	if (r->nkeys < KEY_CACHE_MAX && st != DV_KEY_TEMPFAIL) {
		strcpy(r->keys[r->nkeys].zone, zone);
		r->keys[r->nkeys].st = st;
		r->keys[r->nkeys].key = key;
		r->nkeys++;
		if (key != NULL && EVP_PKEY_up_ref(key) != 1)
			return DV_KEY_TEMPFAIL;
	}
	*out = key;
	return st;
}

/* key_status_text - why a zone's key cannot be used */
static const char *key_status_text(enum dv_key_status st)
{
	switch (st) {
	case DV_KEY_ABSENT:
		return "has no usable _owner TLSA 3 1 0 record (EC P-256 or Ed25519 SPKI)";
	case DV_KEY_INSECURE:
		return "_owner record is not DNSSEC-secure (insecure or bogus)";
	case DV_KEY_TEMPFAIL:
		return "_owner record cannot be looked up now (resolver failure)";
	default:
		return "_owner key is fine";
	}
}

/* check_own_key - our signing key \p priv must be the _owner key published for \p zone */
static int check_own_key(struct orun *r, const char *flag, EVP_PKEY *priv, const char *zone)
{
	EVP_PKEY *pub = NULL;
	enum dv_key_status st;
	int ex;

	st = key_lookup(zone, r, &pub);
	if (st != DV_KEY_OK) {
		errmsg("zone %s %s; refusing to sign with %s", zone, key_status_text(st), flag);
		return st == DV_KEY_TEMPFAIL ? DV_EXIT_DNS : DV_EXIT_DENIED;
	}
	ex = EVP_PKEY_eq(pub, priv) == 1 ? DV_EXIT_OK : DV_EXIT_DENIED;
	ERR_clear_error();
	if (ex != DV_EXIT_OK)
		errmsg("the key in %s is not the _owner key published for %s", flag, zone);
	EVP_PKEY_free(pub);
	return ex;
}

/* read_key - the signing key of --key, with a clear message */
static int read_key(const char *path, EVP_PKEY **out)
{
	int rc = dv_key_read(path, out);

	switch (rc) {
	case DJ_EOK:
		return DV_EXIT_OK;
	case DJ_ENOENT:
		errmsg("--key %s: no such file", path);
		return DV_EXIT_DATA;
	case DJ_EFILEMODE:
		errmsg("--key %s: not a regular file of mode 0600 or 0400 (group or others may "
		       "read it); refusing to use it", path);
		return DV_EXIT_DATA;
	default:
		errmsg("--key %s: not a PEM private key of type EC P-256 or Ed25519", path);
		return DV_EXIT_DATA;
	}
}

/* list_ok - a comma list without empty items */
static bool list_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[0] != ',' && s[n - 1] != ',' && strstr(s, ",,") == NULL;
}

/* parse_rights - "--netids 000013,00001a" and "--as-ids a.example,b.example" into \p l */
static int parse_rights(const char *netids, const char *as_ids, struct dv_link *l)
{
	char buf[DV_RIGHTS_MAX * DV_ASID_MAX], *tok, *save = NULL;

	l->n_net_ids = 0;
	l->n_as_ids = 0;
	if (netids != NULL) {
		if (strlen(netids) >= sizeof(buf) || !list_ok(netids))
			goto bad_net;
		strcpy(buf, netids);
		for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
			if (l->n_net_ids >= DV_RIGHTS_MAX ||
			    dj_hex_parse(tok, l->net_ids[l->n_net_ids], DV_NETID_LEN) != DJ_EOK)
				goto bad_net;
			l->n_net_ids++;
		}
	}
	if (as_ids != NULL) {
		if (strlen(as_ids) >= sizeof(buf) || !list_ok(as_ids))
			goto bad_as;
		strcpy(buf, as_ids);
		save = NULL;
		for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
			if (l->n_as_ids >= DV_RIGHTS_MAX || !dv_asid_valid(tok))
				goto bad_as;
			strcpy(l->as_ids[l->n_as_ids++], tok);
		}
	}
	return DV_EXIT_OK;
bad_net:
	errmsg("--netids: expected up to %d NetIDs of 6 hex digits, separated by commas",
	       DV_RIGHTS_MAX);
	return DV_EXIT_DATA;
bad_as:
	errmsg("--as-ids: expected up to %d AS-IDs (printable, no space, comma or quote), "
	       "separated by commas", DV_RIGHTS_MAX);
	return DV_EXIT_DATA;
}

/* crash_hook - tests: end the process right after transfer step \p step was recorded */
static void crash_hook(int step)
{
	const char *v = getenv(CRASH_ENV);

	if (v != NULL && atoi(v) == step) {
		fflush(stdout);
		_exit(CRASH_EXIT);
	}
}

/* open_store - master key and store */
static int open_store(struct orun *r)
{
	return exec__open(r->cfg, r->p->config_path, &r->ks, &r->store);
}

/* ---- input files ---------------------------------------------------------------------- */

/* read_small_file - a whole text file (at most \p max bytes) into a NUL-terminated buffer */
static int read_small_file(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	FILE *f;
	char *buf;

	*out = NULL;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		errmsg("%s: cannot read (no such regular file)", path);
		return DV_EXIT_DATA;
	}
	if ((uintmax_t)st.st_size > max) {
		errmsg("%s: larger than %zu bytes", path, max);
		return DV_EXIT_DATA;
	}
	f = fopen(path, "rb");
	if (f == NULL) {
		errmsg("%s: cannot open: %s", path, strerror(errno));
		return DV_EXIT_DATA;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		fclose(f);
		return oom();
	}
	*len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	buf[*len] = '\0';
	*out = buf;
	return DV_EXIT_OK;
}

/* Lines of a small text file, split in place. */
struct lines {
	char *buf;
	size_t n;
	char **line;
	unsigned *lineno;
};

static void lines_free(struct lines *l)
{
	if (l->buf != NULL) {
		OPENSSL_cleanse(l->buf, strlen(l->buf));	/* auth codes */
		free(l->buf);
	}
	free(l->line);
	free(l->lineno);
	memset(l, 0, sizeof(*l));
}

/* lines_read - the non-blank lines of \p path (CR stripped); \p header: skip an exact first line */
static int lines_read(const char *path, const char *header, struct lines *l)
{
	size_t len = 0, cap = 1, i;
	char *p, *nl;
	unsigned no = 0;
	int ex;

	memset(l, 0, sizeof(*l));
	ex = read_small_file(path, DV_CSV_MAX_BYTES, &l->buf, &len);
	if (ex != DV_EXIT_OK)
		return ex;
	if (memchr(l->buf, '\0', len) != NULL) {
		errmsg("%s: NUL byte: not a text file", path);
		return DV_EXIT_DATA;
	}
	for (i = 0; i < len; i++)
		cap += l->buf[i] == '\n';
	l->line = calloc(cap, sizeof(*l->line));
	l->lineno = calloc(cap, sizeof(*l->lineno));
	if (l->line == NULL || l->lineno == NULL)
		return oom();
	for (p = l->buf; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		no++;
		if (*p != '\0' && p[strlen(p) - 1] == '\r')
			p[strlen(p) - 1] = '\0';
		if (no == 1 && header != NULL) {
			if (strcmp(p, header) != 0) {
				errmsg("%s:1: the header must be exactly \"%s\"", path, header);
				return DV_EXIT_DATA;
			}
		} else if (*p != '\0') {
			l->line[l->n] = p;
			l->lineno[l->n++] = no;
		}
		if (nl == NULL)
			break;
	}
	if (l->n == 0) {
		errmsg("%s: no entries", path);
		return DV_EXIT_DATA;
	}
	return DV_EXIT_OK;
}

/* device_list - one DEVEUI argument, or the dev_eui column of a "dev_eui" CSV file */
static int device_list(const struct dv_params *p, uint8_t (**out)[LW_EUI_LEN], size_t *n)
{
	struct lines l;
	uint8_t (*euis)[LW_EUI_LEN];
	size_t i;
	int ex;

	*out = NULL;
	if (p->input != NULL) {
		euis = calloc(1, sizeof(*euis));
		if (euis == NULL)
			return oom();
		if (dj_hex_parse(p->input, euis[0], LW_EUI_LEN) != DJ_EOK) {
			free(euis);
			errmsg("%s: DevEUI argument: expected 16 hex digits", "device");
			return DV_EXIT_DATA;
		}
		*out = euis;
		*n = 1;
		return DV_EXIT_OK;
	}
	ex = lines_read(p->own.csv, "dev_eui", &l);
	if (ex != DV_EXIT_OK)
		goto out;
	euis = calloc(l.n, sizeof(*euis));
	if (euis == NULL) {
		ex = oom();
		goto out;
	}
	for (i = 0; i < l.n; i++)
		if (dj_hex_parse(l.line[i], euis[i], LW_EUI_LEN) != DJ_EOK) {
			errmsg("%s:%u: field dev_eui: expected 16 hex digits", p->own.csv,
			       l.lineno[i]);
			free(euis);
			ex = DV_EXIT_DATA;
			goto out;
		}
	*out = euis;
	*n = l.n;
out:
	lines_free(&l);
	return ex;
}

/* cms_recipient_match - whether one of the RecipientInfos of \p cms names \p cert */
static bool cms_recipient_match(CMS_ContentInfo *cms, X509 *cert, int *count)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	int i, j;

	*count = ris != NULL ? sk_CMS_RecipientInfo_num(ris) : 0;
	for (i = 0; i < *count; i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		STACK_OF(CMS_RecipientEncryptedKey) *reks;

		switch (CMS_RecipientInfo_type(ri)) {
		case CMS_RECIPINFO_TRANS:
			if (CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
				return true;
			break;
		case CMS_RECIPINFO_AGREE:
			reks = CMS_RecipientInfo_kari_get0_reks(ri);
			for (j = 0; reks != NULL && j < sk_CMS_RecipientEncryptedKey_num(reks); j++)
				if (CMS_RecipientEncryptedKey_cert_cmp(
					    sk_CMS_RecipientEncryptedKey_value(reks, j), cert) == 0)
					return true;
			break;
		default:
			break;
		}
	}
	return false;
}

/*
 * cms_decrypt_csv - decrypt a CMS EnvelopedData (or AuthEnvelopedData) file, DER, addressed
 * to the JS certificate, and parse the plaintext as an enrollment CSV. The plaintext lives in
 * a secure-memory BIO that is wiped when freed.
 */
static int cms_decrypt_csv(struct orun *r, const char *path, struct dv_csv **csv)
{
	const struct dv_owner_args *o = &r->p->own;
	const char *cert_path = o->js_cert != NULL ? o->js_cert : r->cfg->cert_file;
	const char *key_path = o->js_key != NULL ? o->js_key : r->cfg->key_file;
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL, *plain = NULL;
	X509 *cert = NULL;
	EVP_PKEY *pkey = NULL;
	FILE *f = NULL;
	struct stat st;
	char err[DV_CSV_ERR_MAX];
	char *data;
	long dlen;
	int nrecip = 0, nid, rc, ex = DV_EXIT_DATA;

	if (cert_path == NULL || key_path == NULL) {
		errmsg("%s is a CMS file: give --js-cert and --js-key (or [http] cert_file and "
		       "key_file in the configuration)", path);
		return DV_EXIT_USAGE;
	}
	in = BIO_new_file(path, "rb");
	if (in == NULL || (cms = d2i_CMS_bio(in, NULL)) == NULL) {
		errmsg("%s: neither an enrollment CSV nor a DER CMS file", path);
		goto out;
	}
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid != NID_pkcs7_enveloped && nid != NID_id_smime_ct_authEnvelopedData) {
		errmsg("%s: a CMS file, but not EnvelopedData (openssl cms -encrypt)", path);
		goto out;
	}
	f = fopen(cert_path, "r");
	cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	if (cert == NULL) {
		errmsg("--js-cert %s: not a PEM certificate", cert_path);
		ex = DV_EXIT_CONFIG;
		goto out;
	}
	if (stat(key_path, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		errmsg("--js-key %s: missing, or readable by group or others (chmod 600)", key_path);
		ex = DV_EXIT_CONFIG;
		goto out;
	}
	f = fopen(key_path, "r");
	pkey = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	if (pkey == NULL) {
		errmsg("--js-key %s: not a PEM private key", key_path);
		ex = DV_EXIT_CONFIG;
		goto out;
	}
	if (X509_check_private_key(cert, pkey) != 1) {
		errmsg("--js-key %s is not the key of --js-cert %s", key_path, cert_path);
		ex = DV_EXIT_CONFIG;
		goto out;
	}
	if (!cms_recipient_match(cms, cert, &nrecip)) {
		errmsg("%s is encrypted to another recipient: none of its %d recipients is the "
		       "certificate %s; nothing was imported", path, nrecip, cert_path);
		goto out;
	}
	plain = BIO_new(BIO_s_secmem());
	if (plain == NULL) {
		ex = oom();
		goto out;
	}
	if (CMS_decrypt(cms, pkey, cert, NULL, plain, CMS_BINARY) != 1) {
		errmsg("%s: cannot decrypt (%s); nothing was imported", path, dj_openssl_reason());
		goto out;
	}
	dlen = BIO_get_mem_data(plain, &data);
	rc = dv_csv_parse(path, data, dlen > 0 ? (size_t)dlen : 0, csv, err, sizeof(err));
	if (rc != DJ_EOK) {
		if (rc == DJ_ENOMEM) {
			ex = oom();
			goto out;
		}
		errmsg("%s (decrypted): %s", path, err);
		goto out;
	}
	ex = DV_EXIT_OK;
out:
	ERR_clear_error();
	BIO_free(plain);	/* secure memory: cleared when freed */
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return ex;
}

/* is_der - whether the file starts like DER (SEQUENCE); a CSV starts with text */
static bool is_der(const char *path)
{
	unsigned char c = 0;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return false;
	if (fread(&c, 1, 1, f) != 1)
		c = 0;
	fclose(f);
	return c == 0x30;
}

/* ---- enroll / publish ------------------------------------------------------------------ */

/* publish_all - publish the records of every unpublished owner row; mark them published */
struct pub_ctx {
	struct orun *r;
	struct dv_pub *pub;
	uint8_t (*euis)[LW_EUI_LEN];
	size_t n, cap;
	int rc;
	char err[256];
};

static int publish_one(const struct js_owner *o, void *arg)
{
	struct pub_ctx *c = arg;
	void *grown;

	if (c->n == c->cap) {
		c->cap = c->cap != 0 ? 2 * c->cap : 1024;
		grown = realloc(c->euis, c->cap * sizeof(*c->euis));
		if (grown == NULL)
			return DJ_ENOMEM;
		c->euis = grown;
	}
	memcpy(c->euis[c->n++], o->dev_eui, LW_EUI_LEN);
	return dv_pub_device(c->pub, o->zone, o->dev_eui, o->attrs, o->chain, o->chain_len,
			     c->err, sizeof(c->err));
}

static int publish_pending(struct orun *r, size_t *count)
{
	struct pub_ctx c;
	int rc, ex;

	memset(&c, 0, sizeof(c));
	c.r = r;
	*count = 0;
	rc = dv_pub_new(&r->srv, &r->tsig, r->ttl, &c.pub);
	if (rc != DJ_EOK)
		return oom();
	/* queue inside the walk; messages that fill up are sent on the way */
	rc = js_store_owner_foreach(r->store, true, publish_one, &c);
	if (rc == DJ_EOK)
		rc = dv_pub_flush(c.pub, c.err, sizeof(c.err));
	if (rc == DJ_EOK && c.n > 0)
		rc = js_store_owner_set_published(r->store,
						  (const uint8_t (*)[LW_EUI_LEN])c.euis, c.n);
	if (rc == DJ_EOK) {
		*count = c.n;
		ex = DV_EXIT_OK;
	} else if (rc == DJ_EACCES || rc == DJ_EAGAIN || rc == DJ_EIO || rc == DJ_EINVAL) {
		errmsg("DNS update failed: %s; the devices are enrolled but their records are not "
		       "all published: run '%s publish' to finish", c.err, DV_PROGRAM);
		ex = DV_EXIT_DNS;
	} else {
		errmsg("cannot publish: %s", dj_strerror(rc));
		ex = exec__fault_exit(rc);
	}
	free(c.euis);
	dv_pub_free(c.pub);
	return ex;
}

static int cmd_publish(struct orun *r)
{
	size_t n = 0;
	int ex;

	ex = open_store(r);
	if (ex == DV_EXIT_OK)
		ex = publish_pending(r, &n);
	if (ex == DV_EXIT_OK)
		printf("published the records of %zu devices\n", n);
	return ex;
}

/* build_enrollment - seal keys, sign the first link, encode the chain, per CSV row */
static int build_enrollment(struct orun *r, const struct dv_csv *csv, EVP_PKEY *mkey,
			    const char *from_zone, const char *zone, const struct dv_link *rights,
			    struct js_device *devs, struct js_owner *owners)
{
	struct dv_chain *chain;
	struct dv_attrs a;
	size_t i, tlen;
	int64_t now = js_store_now(r->store);
	int rc, ex = DV_EXIT_OK;

	chain = calloc(1, sizeof(*chain));
	if (chain == NULL)
		return oom();
	for (i = 0; i < csv->n && ex == DV_EXIT_OK; i++) {
		const struct dv_csv_row *row = &csv->rows[i];
		struct dv_link *l = &chain->links[0];

		memcpy(devs[i].dev_eui, row->dev_eui, LW_EUI_LEN);
		memcpy(devs[i].join_eui, row->join_eui, LW_EUI_LEN);
		devs[i].mac_version = row->mac_version;
		devs[i].created_at = now;
		tlen = sizeof(devs[i].root_token);
		rc = js_keystore_seal_root(r->ks, row->dev_eui, row->app_key,
					   row->has_nwk_key ? row->nwk_key : NULL,
					   devs[i].root_token, &tlen);
		if (rc != DJ_EOK) {
			errmsg("line %u: cannot seal the root keys: %s", row->line, dj_strerror(rc));
			ex = exec__fault_exit(rc);
			break;
		}
		devs[i].root_token_len = (uint32_t)tlen;

		*l = *rights;
		memcpy(l->dev_eui, row->dev_eui, LW_EUI_LEN);
		memcpy(l->join_eui, row->join_eui, LW_EUI_LEN);
		strcpy(l->from_zone, from_zone);
		strcpy(l->to_zone, zone);
		strcpy(l->signer_zone, from_zone);
		l->serial = 1;
		l->not_before = now;
		l->auth = DV_AUTH_MANUFACTURER;
		chain->n = 1;
		if (RAND_bytes(l->nonce, DV_NONCE_LEN) != 1 || dv_link_sign(l, mkey) != DJ_EOK ||
		    dv_chain_encode(chain, &owners[i].chain, &owners[i].chain_len) != DJ_EOK) {
			errmsg("line %u: cannot sign the first link", row->line);
			ex = DV_EXIT_INTERNAL;
			break;
		}
		memset(&a, 0, sizeof(a));
		strcpy(a.model, row->model);
		strcpy(a.firmware, row->firmware);
		strcpy(a.manufacturer, row->manufacturer);
		strcpy(a.date, row->date);
		a.has_identity = row->has_identity;
		memcpy(a.identity, row->identity, sizeof(a.identity));
		memcpy(owners[i].dev_eui, row->dev_eui, LW_EUI_LEN);
		strcpy(owners[i].zone, zone);
		owners[i].serial = 1;
		if (dv_attrs_format(&a, owners[i].attrs) != DJ_EOK) {
			errmsg("line %u: bad attributes", row->line);
			ex = DV_EXIT_DATA;
		}
	}
	free(chain);
	return ex;
}

static int cmd_enroll(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	struct dv_csv *csv = NULL;
	struct js_device *devs = NULL;
	struct js_owner *owners = NULL;
	struct dv_link rights;
	EVP_PKEY *mkey = NULL;
	char zone[DV_ZONE_MAX], from[DV_ZONE_MAX], err[DV_CSV_ERR_MAX], eui[EUI_HEX];
	size_t i, failed = 0, published = 0;
	int rc, ex;

	memset(&rights, 0, sizeof(rights));
	ex = zone_arg("--zone", o->zone, zone);
	if (ex == DV_EXIT_OK)
		ex = zone_arg("--from-zone", o->from_zone != NULL ? o->from_zone : o->zone, from);
	if (ex == DV_EXIT_OK)
		ex = parse_rights(o->netids, o->as_ids, &rights);
	if (ex == DV_EXIT_OK)
		ex = read_key(o->key, &mkey);
	if (ex != DV_EXIT_OK)
		goto out;
	/* the whole input before anything else */
	if (is_der(r->p->input)) {
		ex = cms_decrypt_csv(r, r->p->input, &csv);
	} else {
		rc = dv_csv_parse_file(r->p->input, &csv, err, sizeof(err));
		if (rc != DJ_EOK) {
			errmsg("%s", rc == DJ_ENOMEM ? "out of memory" : err);
			ex = rc == DJ_ENOMEM ? DV_EXIT_INTERNAL : DV_EXIT_DATA;
		}
	}
	if (ex != DV_EXIT_OK)
		goto out;
	ex = check_own_key(r, "--key", mkey, from);
	if (ex != DV_EXIT_OK)
		goto out;
	ex = open_store(r);
	if (ex != DV_EXIT_OK)
		goto out;
	devs = calloc(csv->n, sizeof(*devs));
	owners = calloc(csv->n, sizeof(*owners));
	if (devs == NULL || owners == NULL) {
		ex = oom();
		goto out;
	}
	ex = build_enrollment(r, csv, mkey, from, zone, &rights, devs, owners);
	if (ex != DV_EXIT_OK)
		goto out;
	rc = js_store_owner_enroll(r->store, devs, owners, csv->n, r->actor, &failed);
	if (rc == DJ_EEXIST) {
		dj_hex_format(csv->rows[failed < csv->n ? failed : 0].dev_eui, LW_EUI_LEN, eui);
		errmsg("%s:%u: field dev_eui: device %s is already enrolled; nothing was enrolled",
		       r->p->input, csv->rows[failed < csv->n ? failed : 0].line, eui);
		ex = DV_EXIT_DATA;
		goto out;
	}
	if (rc != DJ_EOK) {
		errmsg("cannot enroll: %s; nothing was enrolled", dj_strerror(rc));
		ex = exec__fault_exit(rc);
		goto out;
	}
	printf("enrolled %zu devices (owner %s, chain signed by %s)\n", csv->n, zone, from);
	ex = publish_pending(r, &published);
	if (ex == DV_EXIT_OK)
		printf("published the records of %zu devices in %s\n", published, zone);
out:
	if (devs != NULL) {
		OPENSSL_cleanse(devs, csv->n * sizeof(*devs));
		free(devs);
	}
	for (i = 0; owners != NULL && i < csv->n; i++)
		free(owners[i].chain);
	free(owners);
	dv_csv_free(csv);
	EVP_PKEY_free(mkey);
	return ex;
}

/* ---- auth codes ------------------------------------------------------------------------ */

static int cmd_authcode(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	uint8_t (*euis)[LW_EUI_LEN] = NULL;
	struct js_authcode *recs = NULL;
	struct js_owner own;
	EVP_PKEY *key = NULL;
	char zone[DV_ZONE_MAX], eui[EUI_HEX], (*codes)[DV_AUTHCODE_LEN + 1] = NULL;
	unsigned long ttl = DV_AUTHCODE_TTL_DEFAULT;
	size_t n = 0, i, failed = 0;
	FILE *out = NULL;
	int fd = -1, rc, ex;
	int64_t now;

	memset(&own, 0, sizeof(own));
	ex = zone_arg("--zone", o->zone, zone);
	if (ex != DV_EXIT_OK)
		return ex;
	if (o->expires_in != NULL && !parse_uint(o->expires_in, 1, DV_AUTHCODE_TTL_MAX, &ttl)) {
		errmsg("--expires-in %.40s: expected 1 to %d seconds", o->expires_in,
		       DV_AUTHCODE_TTL_MAX);
		return DV_EXIT_DATA;
	}
	ex = device_list(r->p, &euis, &n);
	if (ex == DV_EXIT_OK)
		ex = read_key(o->key, &key);
	if (ex == DV_EXIT_OK)
		ex = check_own_key(r, "--key", key, zone);
	if (ex == DV_EXIT_OK)
		ex = open_store(r);
	if (ex != DV_EXIT_OK)
		goto out;
	recs = calloc(n, sizeof(*recs));
	codes = calloc(n, sizeof(*codes));
	if (recs == NULL || codes == NULL) {
		ex = oom();
		goto out;
	}
	now = js_store_now(r->store);
	for (i = 0; i < n; i++) {
		dj_hex_format(euis[i], LW_EUI_LEN, eui);
		rc = js_store_owner_get(r->store, euis[i], &own);
		if (rc != DJ_EOK || strcmp(own.zone, zone) != 0) {
			errmsg("device %s %s; no auth code was set", eui,
			       rc == DJ_ENOENT ? "is not enrolled with an owner" :
			       rc == DJ_EOK ? "is not owned by --zone" : dj_strerror(rc));
			ex = rc == DJ_EOK || rc == DJ_ENOENT ? DV_EXIT_DENIED : exec__fault_exit(rc);
			goto out;
		}
		js_owner_clear(&own);
		memcpy(recs[i].dev_eui, euis[i], LW_EUI_LEN);
		if (dv_authcode_generate(codes[i]) != DJ_EOK ||
		    dv_authcode_seal(codes[i], now + (int64_t)ttl, &recs[i]) != DJ_EOK) {
			errmsg("cannot make an auth code: %s", dj_openssl_reason());
			ex = DV_EXIT_INTERNAL;
			goto out;
		}
	}
	/* the code file first (0600, new): a code that cannot be handed out is not stored */
	fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (out = fdopen(fd, "w")) == NULL) {
		errmsg("--out %s: cannot create (it must not exist yet): %s", o->out,
		       strerror(errno));
		ex = DV_EXIT_DATA;
		goto out;
	}
	fd = -1;
	rc = js_store_authcode_put(r->store, recs, n, r->actor, &failed);
	if (rc != DJ_EOK) {
		errmsg("cannot store the auth codes: %s; none was set", dj_strerror(rc));
		ex = rc == DJ_ENOENT ? DV_EXIT_DATA : exec__fault_exit(rc);
		goto out;
	}
	fprintf(out, "dev_eui,auth_code\n");
	for (i = 0; i < n; i++) {
		dj_hex_format(euis[i], LW_EUI_LEN, eui);
		fprintf(out, "%s,%s\n", eui, codes[i]);
	}
	if (fclose(out) != 0) {
		out = NULL;
		errmsg("--out %s: write error; the codes are set but lost: set them again",
		       o->out);
		ex = DV_EXIT_DATA;
		goto out;
	}
	out = NULL;
	printf("set %zu auth codes (valid for %lu s), written to %s\n", n, ttl, o->out);
	ex = DV_EXIT_OK;
out:
	if (out != NULL) {
		fclose(out);
		unlink(o->out);
	}
	if (fd >= 0)
		close(fd);
	if (codes != NULL) {
		OPENSSL_cleanse(codes, n * sizeof(*codes));
		free(codes);
	}
	if (recs != NULL) {
		OPENSSL_cleanse(recs, n * sizeof(*recs));
		free(recs);
	}
	js_owner_clear(&own);
	free(euis);
	EVP_PKEY_free(key);
	return ex;
}

/* ---- transfers ------------------------------------------------------------------------- */

/* load_chain - the registry's owner row and decoded chain of a device */
static int load_chain(struct orun *r, const uint8_t *dev_eui, struct js_owner *own,
		      struct dv_chain *chain)
{
	char eui[EUI_HEX];
	int rc;

	dj_hex_format(dev_eui, LW_EUI_LEN, eui);
	rc = js_store_owner_get(r->store, dev_eui, own);
	if (rc == DJ_ENOENT) {
		errmsg("device %s is not enrolled with an owner (danejoin-devices enroll)", eui);
		return DV_EXIT_DATA;
	}
	if (rc != DJ_EOK) {
		errmsg("cannot read device %s: %s", eui, dj_strerror(rc));
		return exec__fault_exit(rc);
	}
	if (dv_chain_decode(own->chain, own->chain_len, chain) != DJ_EOK) {
		errmsg("device %s: the stored chain is malformed", eui);
		return DV_EXIT_STORE;
	}
	return DV_EXIT_OK;
}

static int cmd_transfer_request(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	uint8_t (*euis)[LW_EUI_LEN] = NULL;
	struct dv_chain *chain = NULL;
	struct js_owner own;
	struct dv_link l;
	EVP_PKEY *key = NULL;
	char zone[DV_ZONE_MAX], to[DV_ZONE_MAX], eui[EUI_HEX], *b64 = NULL;
	uint8_t *enc = NULL;
	size_t n = 0, i, elen;
	FILE *out = NULL;
	int fd, ex;

	memset(&own, 0, sizeof(own));
	memset(&l, 0, sizeof(l));
	ex = zone_arg("--zone", o->zone, zone);
	if (ex == DV_EXIT_OK)
		ex = zone_arg("--to-zone", o->to_zone, to);
	if (ex == DV_EXIT_OK)
		ex = parse_rights(o->netids, o->as_ids, &l);
	if (ex == DV_EXIT_OK)
		ex = device_list(r->p, &euis, &n);
	if (ex == DV_EXIT_OK)
		ex = read_key(o->key, &key);
	if (ex == DV_EXIT_OK)
		ex = open_store(r);
	if (ex != DV_EXIT_OK)
		goto out;
	chain = calloc(1, sizeof(*chain));
	if (chain == NULL) {
		ex = oom();
		goto out;
	}
	fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (out = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		errmsg("--out %s: cannot create (it must not exist yet): %s", o->out,
		       strerror(errno));
		ex = DV_EXIT_DATA;
		goto out;
	}
	for (i = 0; i < n; i++) {
		dj_hex_format(euis[i], LW_EUI_LEN, eui);
		ex = load_chain(r, euis[i], &own, chain);
		if (ex != DV_EXIT_OK)
			goto out;
		if (strcmp(own.zone, zone) != 0) {
			errmsg("device %s is owned by %s, not by --zone %s", eui, own.zone, zone);
			ex = DV_EXIT_DENIED;
			goto out;
		}
		memcpy(l.dev_eui, euis[i], LW_EUI_LEN);
		memcpy(l.join_eui, chain->links[0].join_eui, LW_EUI_LEN);
		strcpy(l.from_zone, zone);
		strcpy(l.to_zone, to);
		strcpy(l.signer_zone, zone);
		l.serial = own.serial + 1;
		l.not_before = js_store_now(r->store);
		l.auth = DV_AUTH_SIGNED;
		js_owner_clear(&own);
		if (RAND_bytes(l.nonce, DV_NONCE_LEN) != 1 || dv_link_sign(&l, key) != DJ_EOK ||
		    dv_link_encode(&l, &enc, &elen) != DJ_EOK || dv_b64_encode(enc, elen, &b64) !=
		    DJ_EOK) {
			errmsg("cannot sign the request for %s", eui);
			ex = DV_EXIT_INTERNAL;
			goto out;
		}
		fprintf(out, "%s\n", b64);
		free(enc);
		enc = NULL;
		free(b64);
		b64 = NULL;
	}
	if (fclose(out) != 0) {
		out = NULL;
		errmsg("--out %s: write error", o->out);
		ex = DV_EXIT_DATA;
		goto out;
	}
	out = NULL;
	printf("signed %zu transfer requests (%s -> %s) into %s\n", n, zone, to, o->out);
	ex = DV_EXIT_OK;
out:
	if (out != NULL) {
		fclose(out);
		unlink(o->out);
	}
	free(enc);
	free(b64);
	free(chain);
	js_owner_clear(&own);
	free(euis);
	EVP_PKEY_free(key);
	return ex;
}

/* One transfer of a batch, as verified. */
struct xfer {
	struct js_transfer t;
	char attrs[JS_OWNER_ATTRS_MAX];
	bool done_before;	/* this very request was completed earlier: nothing to do */
};

/* pending_list - the unfinished transfers, copied out of the store walk */
struct pending_list {
	struct xfer *v;
	size_t n, cap;
};

static int pending_add(const struct js_transfer *t, void *arg)
{
	struct pending_list *pl = arg;
	void *grown;

	if (pl->n == pl->cap) {
		pl->cap = pl->cap != 0 ? 2 * pl->cap : 256;
		grown = realloc(pl->v, pl->cap * sizeof(*pl->v));
		if (grown == NULL)
			return DJ_ENOMEM;
		pl->v = grown;
	}
	memset(&pl->v[pl->n], 0, sizeof(pl->v[pl->n]));
	pl->v[pl->n].t = *t;
	pl->v[pl->n].t.chain = malloc(t->chain_len);
	if (pl->v[pl->n].t.chain == NULL)
		return DJ_ENOMEM;
	memcpy(pl->v[pl->n].t.chain, t->chain, t->chain_len);
	pl->n++;
	return DJ_EOK;
}

/* dns_fail - the message and exit code of a failed DNS step */
static int dns_fail(int rc, const char *err)
{
	if (rc == DJ_EACCES || rc == DJ_EAGAIN || rc == DJ_EIO || rc == DJ_EINVAL) {
		errmsg("DNS update failed: %s; the transfers are recorded and unfinished: run "
		       "'%s transfer' again (same flags) to finish them", err, DV_PROGRAM);
		return DV_EXIT_DNS;
	}
	errmsg("transfer failed: %s", dj_strerror(rc));
	return exec__fault_exit(rc);
}

/*
 * run_steps - take every transfer of \p v from its step to DONE: the new zone's records, then
 * the old name's CNAME, then the owner rows; each step recorded for the whole batch after the
 * server acknowledged it.
 */
static int run_steps(struct orun *r, struct xfer *v, size_t n)
{
	struct dv_pub *pub = NULL;
	struct js_owner own;
	int64_t *ids = NULL;
	char err[256] = "";
	size_t i, k;
	int rc = DJ_EOK, step, ex = DV_EXIT_OK;

	memset(&own, 0, sizeof(own));
	if (n == 0)
		return DV_EXIT_OK;
	ids = calloc(n, sizeof(*ids));
	if (ids == NULL || dv_pub_new(&r->srv, &r->tsig, r->ttl, &pub) != DJ_EOK) {
		ex = oom();
		goto out;
	}
	for (step = JS_XFER_NEW_PUBLISHED; step <= JS_XFER_DONE; step++) {
		for (i = 0, k = 0; i < n; i++) {
			struct js_transfer *t = &v[i].t;

			if (v[i].done_before || (int)t->step >= step)
				continue;
			if (step == JS_XFER_NEW_PUBLISHED) {
				if (v[i].attrs[0] == '\0') {
					rc = js_store_owner_get(r->store, t->dev_eui, &own);
					if (rc != DJ_EOK)
						break;
					strcpy(v[i].attrs, own.attrs);
					js_owner_clear(&own);
				}
				rc = dv_pub_device(pub, t->to_zone, t->dev_eui, v[i].attrs, t->chain,
						   t->chain_len, err, sizeof(err));
			} else if (step == JS_XFER_OLD_REPLACED) {
				rc = dv_pub_moved(pub, t->from_zone, t->dev_eui, t->to_zone, err,
						  sizeof(err));
			}
			if (rc != DJ_EOK)
				break;
			ids[k++] = t->id;
		}
		if (rc == DJ_EOK)
			rc = dv_pub_flush(pub, err, sizeof(err));
		if (rc == DJ_EOK && k > 0)
			rc = js_store_transfer_advance(r->store, ids, k, (enum js_transfer_step)step,
						       r->actor);
		if (rc != DJ_EOK) {
			ex = dns_fail(rc, err);
			goto out;
		}
		for (i = 0; i < n; i++)
			if (!v[i].done_before && (int)v[i].t.step < step)
				v[i].t.step = (enum js_transfer_step)step;
		crash_hook(step);
	}
out:
	js_owner_clear(&own);
	dv_pub_free(pub);
	free(ids);
	return ex;
}

/* resume_pending - finish what an earlier run left unfinished */
static int resume_pending(struct orun *r, size_t *count)
{
	struct pending_list pl;
	size_t i;
	int rc, ex;

	memset(&pl, 0, sizeof(pl));
	*count = 0;
	rc = js_store_transfer_foreach_pending(r->store, pending_add, &pl);
	if (rc != DJ_EOK) {
		errmsg("cannot read the unfinished transfers: %s", dj_strerror(rc));
		ex = exec__fault_exit(rc);
		goto out;
	}
	ex = run_steps(r, pl.v, pl.n);
	if (ex == DV_EXIT_OK)
		*count = pl.n;
out:
	for (i = 0; i < pl.n; i++)
		free(pl.v[i].t.chain);
	free(pl.v);
	return ex;
}

/*
 * verify_request - one transfer (signed request or auth code) against the registry's state
 * and the DNS; on success \p x holds the new chain. \p where names the input line.
 */
static int verify_link(struct orun *r, const char *where, struct dv_link *l, bool by_code,
		       const char *code, EVP_PKEY *registry_key, struct xfer *x)
{
	struct dv_chain *chain = NULL;
	struct js_owner own;
	struct js_transfer prev;
	struct js_authcode ac;
	enum dv_authcode_verdict av;
	EVP_PKEY *key = NULL;
	enum dv_key_status ks;
	char eui[EUI_HEX], why[200];
	int rc, ex;

	memset(&own, 0, sizeof(own));
	memset(&prev, 0, sizeof(prev));
	memset(&ac, 0, sizeof(ac));
	dj_hex_format(l->dev_eui, LW_EUI_LEN, eui);
	chain = calloc(1, sizeof(*chain));
	if (chain == NULL)
		return oom();
	ex = load_chain(r, l->dev_eui, &own, chain);
	if (ex != DV_EXIT_OK)
		goto out;
	if (!by_code) {
		/* this very request, seen before? */
		rc = js_store_transfer_find(r->store, l->dev_eui, l->nonce, &prev);
		if (rc == DJ_EOK && prev.serial == l->serial && prev.step == JS_XFER_DONE &&
		    chain->n >= l->serial &&
		    CRYPTO_memcmp(chain->links[l->serial - 1].nonce, l->nonce, DV_NONCE_LEN) == 0 &&
		    l->serial == own.serial) {
			x->done_before = true;	/* idempotent: already done, and still current */
			ex = DV_EXIT_OK;
			goto out;
		}
		if (rc == DJ_EOK) {
			errmsg("%s: device %s: replayed request (its nonce was used by transfer "
			       "serial %llu); refused", where, eui, (unsigned long long)prev.serial);
			ex = DV_EXIT_DENIED;
			goto out;
		}
		if (l->serial <= own.serial) {
			errmsg("%s: device %s: replayed or stale request: serial %llu, but the "
			       "device is at serial %llu; refused", where, eui,
			       (unsigned long long)l->serial, (unsigned long long)own.serial);
			ex = DV_EXIT_DENIED;
			goto out;
		}
	} else {
		strcpy(l->from_zone, own.zone);
		memcpy(l->join_eui, chain->links[0].join_eui, LW_EUI_LEN);
		strcpy(l->signer_zone, chain->links[0].from_zone);
		l->serial = own.serial + 1;
		l->not_before = js_store_now(r->store);
		l->auth = DV_AUTH_CODE;
		if (RAND_bytes(l->nonce, DV_NONCE_LEN) != 1) {
			ex = DV_EXIT_INTERNAL;
			goto out;
		}
		rc = js_store_authcode_get(r->store, l->dev_eui, &ac);
		if (rc == DJ_ENOENT && strcmp(own.zone, l->to_zone) == 0 &&
		    chain->links[chain->n - 1].auth == DV_AUTH_CODE) {
			/* a re-run: the code was used (and deleted) by the finished transfer */
			x->done_before = true;
			ex = DV_EXIT_OK;
			goto out;
		}
		if (rc != DJ_EOK && rc != DJ_ENOENT) {
			errmsg("cannot read the auth code of %s: %s", eui, dj_strerror(rc));
			ex = exec__fault_exit(rc);
			goto out;
		}
		av = DV_AUTHCODE_WRONG;
		if (rc == DJ_EOK && dv_authcode_check(&ac, code, js_store_now(r->store), &av) !=
		    DJ_EOK) {
			ex = DV_EXIT_INTERNAL;
			goto out;
		}
		if (av != DV_AUTHCODE_OK) {
			errmsg("%s: device %s: %s; refused", where, eui,
			       av == DV_AUTHCODE_EXPIRED ? "the auth code has expired" :
			       "wrong auth code (or none is set)");
			ex = DV_EXIT_DENIED;
			goto out;
		}
	}
	if (!dv_chain_may_append(chain, l, why, sizeof(why))) {
		errmsg("%s: device %s: %s; refused", where, eui, why);
		ex = DV_EXIT_DENIED;
		goto out;
	}
	if (by_code) {
		if (dv_link_sign(l, registry_key) != DJ_EOK) {
			ex = DV_EXIT_INTERNAL;
			goto out;
		}
	} else {
		ks = key_lookup(l->signer_zone, r, &key);
		if (ks != DV_KEY_OK) {
			errmsg("%s: device %s: zone %s %s; refused", where, eui, l->signer_zone,
			       key_status_text(ks));
			ex = ks == DV_KEY_TEMPFAIL ? DV_EXIT_DNS : DV_EXIT_DENIED;
			goto out;
		}
		rc = dv_link_verify(l, key);
		if (rc != DJ_EOK) {
			errmsg("%s: device %s: the signature does not verify under the _owner key "
			       "of %s; refused", where, eui, l->signer_zone);
			ex = rc == DJ_EACCES ? DV_EXIT_DENIED : DV_EXIT_INTERNAL;
			goto out;
		}
	}
	chain->links[chain->n++] = *l;
	memcpy(x->t.dev_eui, l->dev_eui, LW_EUI_LEN);
	x->t.serial = l->serial;
	memcpy(x->t.nonce, l->nonce, DV_NONCE_LEN);
	strcpy(x->t.from_zone, l->from_zone);
	strcpy(x->t.to_zone, l->to_zone);
	strcpy(x->attrs, own.attrs);
	if (dv_chain_encode(chain, &x->t.chain, &x->t.chain_len) != DJ_EOK) {
		errmsg("%s: device %s: the chain is full (%d links)", where, eui, DV_CHAIN_MAX);
		ex = DV_EXIT_DENIED;
		goto out;
	}
	ex = DV_EXIT_OK;
out:
	OPENSSL_cleanse(&ac, sizeof(ac));
	EVP_PKEY_free(key);
	js_transfer_clear(&prev);
	js_owner_clear(&own);
	free(chain);
	return ex;
}

/* begin_error - the message for a transfer that the store refused to record */
static int begin_error(const struct xfer *x, int rc)
{
	char eui[EUI_HEX];

	dj_hex_format(x->t.dev_eui, LW_EUI_LEN, eui);
	switch (rc) {
	case DJ_EEXIST:
		errmsg("device %s: serial %llu or this nonce was already used: a replay; "
		       "nothing was transferred", eui, (unsigned long long)x->t.serial);
		return DV_EXIT_DENIED;
	case DJ_ECONFLICT:
		errmsg("device %s: its owner changed meanwhile, or another transfer of it is "
		       "unfinished; nothing was transferred", eui);
		return DV_EXIT_DENIED;
	case DJ_ENOENT:
		errmsg("device %s is not enrolled; nothing was transferred", eui);
		return DV_EXIT_DATA;
	default:
		errmsg("cannot record the transfers: %s; nothing was transferred", dj_strerror(rc));
		return exec__fault_exit(rc);
	}
}

static int cmd_transfer(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	struct lines in;
	struct xfer *v = NULL;
	struct js_transfer *ts = NULL;
	struct dv_link *l = NULL, rights;
	EVP_PKEY *rkey = NULL;
	char to[DV_ZONE_MAX], where[300], *comma;
	uint8_t *raw = NULL;
	size_t i, k, rawlen, resumed = 0, done_before = 0, nt = 0;
	int *results = NULL;
	struct timespec t0, t1;
	int rc, ex;

	memset(&in, 0, sizeof(in));
	memset(&rights, 0, sizeof(rights));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ex = DV_EXIT_OK;
	if (o->auth_codes != NULL) {
		ex = zone_arg("--to-zone", o->to_zone, to);
		if (ex == DV_EXIT_OK)
			ex = parse_rights(o->netids, o->as_ids, &rights);
		if (ex == DV_EXIT_OK)
			ex = read_key(o->key, &rkey);
		if (ex == DV_EXIT_OK)
			ex = lines_read(o->auth_codes, "dev_eui,auth_code", &in);
	} else if (o->requests != NULL) {
		ex = lines_read(o->requests, NULL, &in);
	}
	if (ex != DV_EXIT_OK)
		goto out;
	ex = open_store(r);
	if (ex != DV_EXIT_OK)
		goto out;
	/* unfinished transfers of an earlier run first */
	ex = resume_pending(r, &resumed);
	if (ex != DV_EXIT_OK)
		goto out;
	if (resumed > 0)
		printf("finished %zu transfers left unfinished by an earlier run\n", resumed);
	if (in.n == 0) {
		if (o->requests == NULL && o->auth_codes == NULL && resumed == 0)
			printf("no unfinished transfers\n");
		goto out;
	}
	v = calloc(in.n, sizeof(*v));
	l = calloc(1, sizeof(*l));
	if (v == NULL || l == NULL) {
		ex = oom();
		goto out;
	}
	/* verify the whole batch before anything is recorded */
	for (i = 0; i < in.n; i++) {
		const char *path = o->requests != NULL ? o->requests : o->auth_codes;

		snprintf(where, sizeof(where), "%.200s:%u", path, in.lineno[i]);
		if (o->requests != NULL) {
			rc = dv_b64_decode(in.line[i], strlen(in.line[i]), &raw, &rawlen);
			if (rc == DJ_EOK)
				rc = dv_link_decode(raw, rawlen, l);
			free(raw);
			raw = NULL;
			if (rc != DJ_EOK || l->auth != DV_AUTH_SIGNED) {
				errmsg("%s: not a signed transfer request (base64 of a Link, "
				       "danejoin-devices transfer-request); nothing was transferred",
				       where);
				ex = DV_EXIT_DATA;
				goto out;
			}
			ex = verify_link(r, where, l, false, NULL, NULL, &v[i]);
		} else {
			comma = strchr(in.line[i], ',');
			*l = rights;
			if (comma == NULL || (*comma = '\0', dj_hex_parse(in.line[i], l->dev_eui,
									 LW_EUI_LEN)) != DJ_EOK) {
				errmsg("%s: expected dev_eui,auth_code; nothing was transferred",
				       where);
				ex = DV_EXIT_DATA;
				goto out;
			}
			strcpy(l->to_zone, to);
			ex = verify_link(r, where, l, true, comma + 1, rkey, &v[i]);
			if (ex == DV_EXIT_OK && !v[i].done_before)
				ex = check_own_key(r, "--key", rkey, l->signer_zone);
		}
		if (ex != DV_EXIT_OK) {
			fprintf(stderr, "%s: nothing was transferred\n", DV_PROGRAM);
			goto out;
		}
		for (k = 0; k < i; k++)
			if (!v[i].done_before &&
			    memcmp(v[k].t.dev_eui, v[i].t.dev_eui, LW_EUI_LEN) == 0) {
				errmsg("%s: the device is already in this batch; nothing was "
				       "transferred", where);
				ex = DV_EXIT_DATA;
				goto out;
			}
	}
	ts = calloc(in.n, sizeof(*ts));
	results = calloc(in.n, sizeof(*results));
	if (ts == NULL || results == NULL) {
		ex = oom();
		goto out;
	}
	for (i = 0; i < in.n; i++)
		if (!v[i].done_before)
			ts[nt++] = v[i].t;
		else
			done_before++;
	if (nt > 0) {
		rc = js_store_transfer_begin(r->store, ts, nt, r->actor, results);
		for (i = 0, k = 0; i < in.n; i++)
			if (!v[i].done_before) {
				if (rc == DJ_EOK || rc == DJ_ECONFLICT)
					v[i].t.id = ts[k].id;
				if (rc != DJ_EOK && rc != DJ_ECONFLICT) {
					ex = begin_error(&v[i], rc);
					goto out;
				}
				if (results[k] != DJ_EOK) {
					ex = begin_error(&v[i], results[k]);
					goto out;
				}
				k++;
			}
	}
	crash_hook(JS_XFER_RECORDED);
	ex = run_steps(r, v, in.n);
	if (ex != DV_EXIT_OK)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("transferred %zu devices", nt);
	if (done_before > 0)
		printf(" (%zu already done earlier: nothing to do)", done_before);
	printf(" in %.2f s\n", (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
out:
	for (i = 0; v != NULL && i < in.n; i++)
		free(v[i].t.chain);
	free(v);
	free(ts);
	free(results);
	free(l);
	lines_free(&in);
	EVP_PKEY_free(rkey);
	return ex;
}

/* ---- ownership (show) ------------------------------------------------------------------ */

static int cmd_ownership(struct orun *r)
{
	struct dv_chain *chain = NULL;
	struct js_owner own;
	uint8_t eui[LW_EUI_LEN];
	char hex[2 * DV_NONCE_LEN + 1];
	size_t i, j;
	int ex;

	memset(&own, 0, sizeof(own));
	if (dj_hex_parse(r->p->input, eui, LW_EUI_LEN) != DJ_EOK) {
		errmsg("ownership: DevEUI argument: expected 16 hex digits");
		return DV_EXIT_DATA;
	}
	chain = calloc(1, sizeof(*chain));
	if (chain == NULL)
		return oom();
	ex = open_store(r);
	if (ex == DV_EXIT_OK)
		ex = load_chain(r, eui, &own, chain);
	if (ex != DV_EXIT_OK)
		goto out;
	printf("owner:      %s\nserial:     %llu\npublished:  %s\n", own.zone,
	       (unsigned long long)own.serial, own.published ? "yes" : "no");
	for (i = 0; i < chain->n; i++) {
		const struct dv_link *l = &chain->links[i];

		dj_hex_format(l->nonce, DV_NONCE_LEN, hex);
		printf("link %llu:     %s -> %s  signed by %s (%s)  nonce %s  netids",
		       (unsigned long long)l->serial, l->from_zone, l->to_zone, l->signer_zone,
		       l->auth == DV_AUTH_MANUFACTURER ? "manufacturer" :
		       l->auth == DV_AUTH_SIGNED ? "signed request" : "auth code", hex);
		for (j = 0; j < l->n_net_ids; j++)
			printf("%s%02x%02x%02x", j > 0 ? "," : " ", l->net_ids[j][0],
			       l->net_ids[j][1], l->net_ids[j][2]);
		printf("  as_ids");
		for (j = 0; j < l->n_as_ids; j++)
			printf("%s%s", j > 0 ? "," : " ", l->as_ids[j]);
		printf("\n");
	}
out:
	js_owner_clear(&own);
	free(chain);
	return ex;
}

int exec_owner(const struct js_config *cfg, const struct dv_params *p)
{
	struct orun *r;
	size_t i;
	int ex;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return oom();
	r->cfg = cfg;
	r->p = p;
	exec__actor(r->actor, sizeof(r->actor));
	ex = dns_setup(r);
	if (ex != DV_EXIT_OK)
		goto out;
	switch (p->cmd) {
	case DV_CMD_ENROLL:
		ex = cmd_enroll(r);
		break;
	case DV_CMD_PUBLISH:
		ex = cmd_publish(r);
		break;
	case DV_CMD_AUTHCODE:
		ex = cmd_authcode(r);
		break;
	case DV_CMD_TRANSFER_REQUEST:
		ex = cmd_transfer_request(r);
		break;
	case DV_CMD_TRANSFER:
		ex = cmd_transfer(r);
		break;
	case DV_CMD_OWNERSHIP:
		ex = cmd_ownership(r);
		break;
	default:
		errmsg("internal error: command %d has no handler", (int)p->cmd);
		ex = DV_EXIT_INTERNAL;
		break;
	}
out:
	js_store_close(r->store);
	js_keystore_free(r->ks);
	for (i = 0; i < r->nkeys; i++)
		EVP_PKEY_free(r->keys[i].key);
	ca_tsig_clear(&r->tsig);
	free(r);
	return ex;
}
