/*
 * exec.c - danejoin-ca: certificates and TLSA data (publish and rollover are in exec_dns.c).
 *
 * Order of work: read every input and check every output path first, generate and sign
 * second, write last; a bad input or an existing output file stops the run before a key is
 * made or a file is written (DESIGN.md trust rule 6). Passphrases are wiped on every path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "ca-tools/ca_bulk.h"
#include "ca-tools/ca_cert.h"
#include "ca-tools/ca_key.h"
#include "ca-tools/ca_tlsa.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "exec.h"

int exec_exit_code(int rc)
{
	switch (rc) {
	case DJ_EOK:
		return CA_EXIT_OK;
	case DJ_EEXIST:
		return CA_EXIT_EXISTS;
	case DJ_EACCES:
		return CA_EXIT_REFUSED;
	case DJ_ECONFLICT:
	case DJ_EBUSY:
		return CA_EXIT_CONFLICT;
	case DJ_EAGAIN:
		return CA_EXIT_UNREACHABLE;
	case DJ_ENOMEM:
	case DJ_ECRYPTO:
	case DJ_ERROR:
		return CA_EXIT_INTERNAL;
	default:
		return CA_EXIT_INPUT;
	}
}

/* fail - print "danejoin-ca: COMMAND: err" and return the exit code for rc */
static int fail(const struct ca_params *p, int rc, const char *err)
{
	static const char *const names[CA_CMD_COUNT] = {
		"root", "intermediate", "issue", "self-signed", "sign", "inspect", "tlsa",
		"publish", "rollover",
	};

	fprintf(stderr, "%s: %s: %s\n", CA_PROGRAM, names[p->cmd],
		err != NULL && err[0] != '\0' ? err : dj_strerror(rc));
	ERR_clear_error();
	return exec_exit_code(rc);
}

/* Inputs and outputs of one certificate command; released by certjob_free(). */
struct certjob {
	char pass[CA_PASS_MAX + 1], ca_pass[CA_PASS_MAX + 1];
	bool has_pass, has_ca_pass;
	X509 *ca_cert;
	STACK_OF(X509) *ca_chain;
	EVP_PKEY *ca_key, *key;
	X509_REQ *csr;
	X509 *cert;
};

/* certjob_free - wipe the passphrases and free everything */
static void certjob_free(struct certjob *j)
{
	OPENSSL_cleanse(j->pass, sizeof(j->pass));
	OPENSSL_cleanse(j->ca_pass, sizeof(j->ca_pass));
	X509_free(j->ca_cert);
	sk_X509_pop_free(j->ca_chain, X509_free);
	EVP_PKEY_free(j->ca_key);
	EVP_PKEY_free(j->key);
	X509_REQ_free(j->csr);
	X509_free(j->cert);
}

/* load_ca - the issuing CA's chain and key, checked for the role to issue */
static int load_ca(const struct ca_params *p, struct certjob *j, char *err, size_t errlen)
{
	int rc;

	if (p->val[F_CA_PASS] != NULL) {
		rc = ca_key_read_passphrase(p->val[F_CA_PASS], j->ca_pass, err, errlen);
		if (rc != DJ_EOK)
			return rc;
		j->has_ca_pass = true;
	}
	rc = ca_cert_read_chain(p->val[F_CA_CERT], &j->ca_chain, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	j->ca_cert = sk_X509_value(j->ca_chain, 0);
	if (X509_up_ref(j->ca_cert) != 1) {
		j->ca_cert = NULL;
		return DJ_ECRYPTO;
	}
	rc = ca_key_read_private(p->val[F_CA_KEY], j->has_ca_pass ? j->ca_pass : NULL, &j->ca_key,
				 err, errlen);
	if (rc != DJ_EOK)
		return rc;
	return ca_cert_check_issuer(j->ca_cert, j->ca_key, p->role, p->pathlen, err, errlen);
}

/* outputs_free - refuse early if an output exists (no key is made for nothing) */
static int outputs_free(const struct ca_params *p, char *err, size_t errlen)
{
	const char *paths[2] = { p->val[F_KEY_OUT], p->val[F_CERT_OUT] };
	int i;

	if (p->force)
		return DJ_EOK;
	for (i = 0; i < 2; i++)
		if (paths[i] != NULL && ca_file_exists(paths[i])) {
			dj_errbuf(err, errlen, "%s exists; refusing to overwrite it (use --force)",
				  paths[i]);
			return DJ_EEXIST;
		}
	if (p->val[F_KEY_OUT] != NULL && p->val[F_CERT_OUT] != NULL &&
	    strcmp(p->val[F_KEY_OUT], p->val[F_CERT_OUT]) == 0) {
		dj_errbuf(err, errlen, "--key-out and --cert-out are the same file");
		return DJ_EINVAL;
	}
	return DJ_EOK;
}

/* exec_cert - root, intermediate, issue, self-signed, sign */
static int exec_cert(const struct ca_params *p)
{
	struct certjob j;
	struct ca_cert_props cp;
	struct ca_tlsa t = { 0 };
	STACK_OF(X509) *extra = NULL;
	char err[512] = "", *rd = NULL, keydesc[64];
	int rc;

	memset(&j, 0, sizeof(j));
	rc = outputs_free(p, err, sizeof(err));
	if (rc != DJ_EOK)
		goto out;
	if (p->val[F_PASS] != NULL) {
		rc = ca_key_read_passphrase(p->val[F_PASS], j.pass, err, sizeof(err));
		if (rc != DJ_EOK)
			goto out;
		j.has_pass = true;
	}
	if (p->val[F_CA_CERT] != NULL) {
		rc = load_ca(p, &j, err, sizeof(err));
		if (rc != DJ_EOK)
			goto out;
	}
	if (p->cmd == CA_CMD_SIGN) {
		rc = ca_csr_read(p->val[F_CSR], &j.csr, err, sizeof(err));
		if (rc != DJ_EOK)
			goto out;
		j.key = X509_REQ_get_pubkey(j.csr);
		rc = j.key != NULL ? DJ_EOK : DJ_ECRYPTO;
	} else {
		rc = ca_key_generate(p->key_type, &j.key);
	}
	if (rc != DJ_EOK)
		goto out;

	memset(&cp, 0, sizeof(cp));
	cp.role = p->role;
	cp.subject_cn = p->val[F_SUBJECT];
	cp.names = p->names;
	cp.nnames = p->cmd == CA_CMD_ROOT || p->cmd == CA_CMD_INTERMEDIATE ? 0 : p->nnames;
	cp.days = p->days;
	cp.pathlen = p->pathlen;
	cp.subject_key = j.key;
	cp.issuer_cert = j.ca_cert;
	cp.issuer_key = j.ca_cert != NULL ? j.ca_key : j.key;
	rc = ca_cert_build(&cp, &j.cert, err, sizeof(err));
	if (rc != DJ_EOK)
		goto out;
	if (p->cmd != CA_CMD_SIGN) {
		rc = ca_key_write_private(p->val[F_KEY_OUT], j.key, j.has_pass ? j.pass : NULL,
					  p->force, err, sizeof(err));
		if (rc != DJ_EOK)
			goto out;
	}
	if (p->bundle)
		extra = j.ca_chain;
	rc = ca_cert_write(p->val[F_CERT_OUT], j.cert, extra, p->force, err, sizeof(err));
	if (rc != DJ_EOK)
		goto out;
	rc = ca_tlsa_compute(j.cert, NULL, 3, 1, 1, &t);
	if (rc != DJ_EOK)
		goto out;
	rd = ca_tlsa_rdata(&t);
	printf("%s: %s certificate, %s key%s%s, TLSA %s\n", p->val[F_CERT_OUT],
	       ca_role_name(p->role), ca_key_describe(j.key, keydesc, sizeof(keydesc)),
	       p->cmd != CA_CMD_SIGN ? " in " : "", p->cmd != CA_CMD_SIGN ? p->val[F_KEY_OUT] : "",
	       rd != NULL ? rd : "?");
out:
	free(rd);
	ca_tlsa_clear(&t);
	certjob_free(&j);
	return rc == DJ_EOK ? CA_EXIT_OK : fail(p, rc, err);
}

/* exec_inspect - the summary of every certificate in the file */
static int exec_inspect(const struct ca_params *p)
{
	STACK_OF(X509) *sk = NULL;
	BIO *out = NULL;
	char err[512] = "";
	int i, rc;

	rc = ca_cert_read_chain(p->val[F_CERT], &sk, err, sizeof(err));
	if (rc != DJ_EOK)
		return fail(p, rc, err);
	out = BIO_new_fp(stdout, BIO_NOCLOSE);
	if (out == NULL) {
		rc = DJ_ENOMEM;
		goto out;
	}
	for (i = 0; i < sk_X509_num(sk) && rc == DJ_EOK; i++) {
		if (sk_X509_num(sk) > 1)
			BIO_printf(out, "%sCertificate %d of %d\n", i > 0 ? "\n" : "", i + 1,
				   sk_X509_num(sk));
		rc = ca_cert_describe(sk_X509_value(sk, i), out);
	}
out:
	BIO_free(out);
	sk_X509_pop_free(sk, X509_free);
	return rc == DJ_EOK ? CA_EXIT_OK : fail(p, rc, err);
}

/* exec_tlsa - association data from a certificate, a chain or a key */
static int exec_tlsa(const struct ca_params *p)
{
	STACK_OF(X509) *sk = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct ca_tlsa t = { 0 };
	char err[512] = "", *s = NULL;
	int rc, depth;

	if (p->val[F_CERT] != NULL || p->val[F_CHAIN] != NULL) {
		rc = ca_cert_read_chain(p->val[F_CERT] != NULL ? p->val[F_CERT] : p->val[F_CHAIN],
					&sk, err, sizeof(err));
		if (rc != DJ_EOK)
			goto out;
		depth = 0;
		if (p->val[F_CHAIN] != NULL)
			depth = p->depth >= 0 ? p->depth :
				(p->usage == DJ_TLSA_USAGE_PKIX_TA ||
				 p->usage == DJ_TLSA_USAGE_DANE_TA) ? sk_X509_num(sk) - 1 : 0;
		if (depth >= sk_X509_num(sk)) {
			dj_errbuf(err, sizeof(err), "%s holds %d certificate(s); no depth %d",
				  p->val[F_CHAIN], sk_X509_num(sk), depth);
			rc = DJ_EINVAL;
			goto out;
		}
		cert = sk_X509_value(sk, depth);
	} else {
		rc = ca_key_read_public(p->val[F_KEY] != NULL ? p->val[F_KEY] : p->val[F_PUBKEY],
					&key, err, sizeof(err));
		if (rc != DJ_EOK)
			goto out;
	}
	rc = ca_tlsa_compute(cert, key, p->usage, p->selector, p->mtype, &t);
	if (rc != DJ_EOK)
		goto out;
	s = p->has_owner ? ca_tlsa_line(p->owner, p->ttl, &t) : ca_tlsa_rdata(&t);
	if (s == NULL) {
		rc = DJ_ENOMEM;
		goto out;
	}
	printf("%s\n", s);
out:
	free(s);
	ca_tlsa_clear(&t);
	EVP_PKEY_free(key);
	sk_X509_pop_free(sk, X509_free);
	return rc == DJ_EOK ? CA_EXIT_OK : fail(p, rc, err);
}

int exec_tlsa_of_cert(const char *path, unsigned u, unsigned s, unsigned m, char **out)
{
	X509 *x = NULL;
	struct ca_tlsa t = { 0 };
	char err[512] = "";
	int rc;

	*out = NULL;
	rc = ca_cert_read(path, &x, err, sizeof(err));
	if (rc == DJ_EOK)
		rc = ca_tlsa_compute(x, NULL, u, s, m, &t);
	if (rc == DJ_EOK) {
		*out = ca_tlsa_rdata(&t);
		if (*out == NULL)
			rc = DJ_ENOMEM;
	}
	ca_tlsa_clear(&t);
	X509_free(x);
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: rollover: %s\n", CA_PROGRAM, err[0] != '\0' ? err :
			dj_strerror(rc));
		return exec_exit_code(rc);
	}
	return CA_EXIT_OK;
}

#define BAR_WIDTH 40

/* progress_bar - "[####....]  done/total" on the terminal (stderr) */
static void progress_bar(size_t done, size_t total, void *arg)
{
	size_t fill = total > 0 ? done * BAR_WIDTH / total : 0, i;
	char bar[BAR_WIDTH + 1];

	(void)arg;
	for (i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r[%s] %zu/%zu", bar, done, total);
	if (done == total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* exec_bulk - issue --csv */
static int exec_bulk(const struct ca_params *p)
{
	struct certjob j;
	struct ca_bulk_props bp;
	struct ca_bulk_item *items = NULL;
	double t0;
	size_t n = 0, issued = 0;
	char err[512] = "";
	double secs;
	int rc;

	memset(&j, 0, sizeof(j));
	rc = ca_bulk_read_csv(p->val[F_CSV], p->zone[0] != '\0' ? p->zone : NULL, &items, &n, err,
			      sizeof(err));
	if (rc != DJ_EOK)
		goto out;
	rc = load_ca(p, &j, err, sizeof(err));
	if (rc != DJ_EOK)
		goto out;
	if (mkdir(p->val[F_OUT_DIR], 0755) != 0 && errno != EEXIST) {
		dj_errbuf(err, sizeof(err), "%s: %s", p->val[F_OUT_DIR], strerror(errno));
		rc = DJ_EIO;
		goto out;
	}
	memset(&bp, 0, sizeof(bp));
	bp.ca_cert = j.ca_cert;
	bp.ca_key = j.ca_key;
	bp.key_type = p->key_type;
	bp.days = p->days;
	bp.ttl = p->ttl;
	bp.out_dir = p->val[F_OUT_DIR];
	bp.layout = p->layout;
	bp.threads = p->threads;
	bp.force = p->force;
	if (!p->quiet && isatty(STDERR_FILENO))
		bp.progress = progress_bar;
	t0 = dj_clock_mono_s();
	rc = ca_bulk_issue(&bp, items, n, &issued, err, sizeof(err));
	secs = dj_clock_mono_s() - t0;
	if (rc == DJ_EOK)
		printf("issued %zu device certificates in %.3f s (%.0f certs/s) into %s%s; TLSA "
		       "records in %s/tlsa.zone\n", issued, secs, secs > 0 ? (double)issued / secs :
		       0.0, p->val[F_OUT_DIR], p->layout == CA_BULK_BUNDLE ?
		       "/" CA_BULK_BUNDLE_FILE : "", p->val[F_OUT_DIR]);
	else if (issued > 0)
		fprintf(stderr, "%s: issue: stopped after %zu of %zu certificates\n", CA_PROGRAM,
			issued, n);
out:
	free(items);
	certjob_free(&j);
	return rc == DJ_EOK ? CA_EXIT_OK : fail(p, rc, err);
}

int exec_run(const struct ca_params *p)
{
	switch (p->cmd) {
	case CA_CMD_INSPECT:
		return exec_inspect(p);
	case CA_CMD_TLSA:
		return exec_tlsa(p);
	case CA_CMD_ISSUE:
		if (p->val[F_CSV] != NULL)
			return exec_bulk(p);
		return exec_cert(p);
	default:
		return exec_cert(p);
	}
}
