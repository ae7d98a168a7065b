/*
 * ca_bulk.c - issue device certificates in bulk on worker threads.
 *
 * Each worker fetches its algorithms once (a key generator, the digest) and then takes rows by
 * an atomic counter, so the CPUs share the work without a lock on the hot path (STYLE.md rule
 * 9: fetch once, reuse). The calling thread only reports progress. The CA key is used for
 * signing by every worker at once; OpenSSL 3 allows concurrent use of a const EVP_PKEY.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "ca_bulk.h"
#include "ca_cert.h"
#include "ca_tlsa.h"
#include "dj_err.h"

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
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			dj_errbuf(err, errlen, "%s:%d: line too long", path, lineno);
			goto out;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
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

/* Shared by the workers of one run. */
struct bulk_run {
	const struct ca_bulk_props *p;
	const struct ca_bulk_item *items;
	size_t n;
	char **lines;			/* tlsa.zone line per item */
	atomic_size_t next;		/* the next row to take */
	atomic_size_t done;
	atomic_int failed;
	pthread_mutex_t err_lock;
	int rc;
	char err[256];
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
}

/* issue_one - key, certificate, files and TLSA line for one item */
static int issue_one(struct bulk_run *r, EVP_PKEY_CTX *gen, const EVP_MD *md, size_t idx,
		     char *err, size_t errlen)
{
	const struct ca_bulk_item *it = &r->items[idx];
	const char *names[1] = { it->name };
	struct ca_cert_props cp;
	struct ca_tlsa t = { 0 };
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	char path[CA_ROLL_PATH_MAX_BULK], owner[CA_NAME_BUF + 1];
	int rc;

	rc = ca_key_generate_with(gen, &key);
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
	cp.md = md;
	rc = ca_cert_build(&cp, &x, err, errlen);
	if (rc != DJ_EOK)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.key", r->p->out_dir, it->dev_eui);
	rc = ca_key_write_private(path, key, NULL, r->p->force, err, errlen);
	if (rc != DJ_EOK)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.crt", r->p->out_dir, it->dev_eui);
	rc = ca_cert_write(path, x, NULL, r->p->force, err, errlen);
	if (rc != DJ_EOK)
		goto out;
	rc = ca_tlsa_compute(x, NULL, 3, 1, 1, &t);
	if (rc != DJ_EOK)
		goto out;
	snprintf(owner, sizeof(owner), "%s.", it->name);
	r->lines[idx] = ca_tlsa_line(owner, r->p->ttl, &t);
	if (r->lines[idx] == NULL)
		rc = DJ_ENOMEM;
out:
	ca_tlsa_clear(&t);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* worker - take rows until none is left or a worker failed */
static void *worker(void *arg)
{
	struct bulk_run *r = arg;
	EVP_PKEY_CTX *gen = NULL;
	EVP_MD *md = NULL;
	char err[256];
	size_t idx;
	int rc;

	rc = ca_key_generator(r->p->key_type, &gen);
	md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (rc != DJ_EOK || md == NULL) {
		fail_run(r, DJ_ECRYPTO, "cannot set up key generation");
		goto out;
	}
	while (!atomic_load(&r->failed)) {
		idx = atomic_fetch_add(&r->next, 1);
		if (idx >= r->n)
			break;
		rc = issue_one(r, gen, md, idx, err, sizeof(err));
		if (rc != DJ_EOK) {
			fail_run(r, rc, err);
			break;
		}
		atomic_fetch_add(&r->done, 1);
	}
out:
	EVP_MD_free(md);
	EVP_PKEY_CTX_free(gen);
	return NULL;
}

/* precheck - refuse before writing anything if an output file exists */
static int precheck(const struct ca_bulk_props *p, const struct ca_bulk_item *items, size_t n,
		    char *err, size_t errlen)
{
	char path[CA_ROLL_PATH_MAX_BULK];
	size_t i;

	if (p->force)
		return DJ_EOK;
	snprintf(path, sizeof(path), "%s/tlsa.zone", p->out_dir);
	if (ca_file_exists(path))
		goto exists;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s.key", p->out_dir, items[i].dev_eui);
		if (ca_file_exists(path))
			goto exists;
		snprintf(path, sizeof(path), "%s/%s.crt", p->out_dir, items[i].dev_eui);
		if (ca_file_exists(path))
			goto exists;
	}
	return DJ_EOK;
exists:
	dj_errbuf(err, errlen, "%s exists; nothing was issued (use --force to replace)", path);
	return DJ_EEXIST;
}

int ca_bulk_issue(const struct ca_bulk_props *p, const struct ca_bulk_item *items, size_t n,
		  size_t *issued, char *err, size_t errlen)
{
	struct bulk_run r;
	pthread_t tids[CA_BULK_THREADS_MAX];
	struct timespec pause = { 0, CA_PROGRESS_MS * 1000000L };
	unsigned nthreads, started = 0, i;
	char path[CA_ROLL_PATH_MAX_BULK];
	size_t k, total = 0, off = 0;
	char *zone = NULL;
	long ncpu;
	int rc;

	*issued = 0;
	if (strlen(p->out_dir) > CA_ROLL_PATH_MAX_BULK - 64) {
		dj_errbuf(err, errlen, "output folder path too long");
		return DJ_EINVAL;
	}
	rc = precheck(p, items, n, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	memset(&r, 0, sizeof(r));
	r.p = p;
	r.items = items;
	r.n = n;
	r.lines = calloc(n, sizeof(char *));
	if (r.lines == NULL)
		return DJ_ENOMEM;
	pthread_mutex_init(&r.err_lock, NULL);
	atomic_init(&r.next, 0);
	atomic_init(&r.done, 0);
	atomic_init(&r.failed, 0);
	nthreads = p->threads;
	if (nthreads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu > 0 ? (unsigned)ncpu : 1;
	}
	if (nthreads > CA_BULK_THREADS_MAX)
		nthreads = CA_BULK_THREADS_MAX;
	if (nthreads > n)
		nthreads = (unsigned)n;
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&tids[i], NULL, worker, &r) != 0) {
			fail_run(&r, DJ_ENOMEM, "cannot start a worker thread");
			break;
		}
		started++;
	}
	while (atomic_load(&r.done) < n && !atomic_load(&r.failed)) {
		if (p->progress != NULL)
			p->progress(atomic_load(&r.done), n, p->progress_arg);
		nanosleep(&pause, NULL);
	}
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (p->progress != NULL)
		p->progress(atomic_load(&r.done), n, p->progress_arg);
	*issued = atomic_load(&r.done);
	if (r.rc != DJ_EOK) {
		rc = r.rc;
		dj_errbuf(err, errlen, "%s", r.err);
		goto out;
	}
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
	pthread_mutex_destroy(&r.err_lock);
	return rc;
}
