/*
 * srv_sni.c - several server certificates, chosen by the name the client asks for (TLS SNI,
 *	       RFC 6066 §3).
 *
 * A network server that finds us by ChirpStack's JoinEUI lookup connects to
 * "<JoinEUI nibbles reversed>.<suffix>" and checks that name against its roots with PKIX, so
 * the certificate it gets must carry that name; the name our peers know us by (the default
 * certificate, [listen] cert_file) need not. Each [listen.sni.NAME] becomes one SSL_CTX built
 * exactly like the default one (srv__tls_ctx_new: the same TLS 1.3 rules, the same client
 * certificate demands and callbacks, the same roots in PKIX mode, the same dane_clientid
 * extension in DANE mode), so switching to it in the servername callback changes only the
 * certificate and key we present: client authentication is identical whichever is served.
 *
 * The table of SNI contexts hangs off the default context as ex_data and is freed with it.
 * Every SSL holds a reference to the context it was made from, so a connection accepted before
 * a reload still finds its table when its ClientHello arrives.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/dj_err.h"
#include "common/dj_log.h"
#include "srv_internal.h"

/* One certificate and the names it is served for (names copied). */
struct sni_entry {
	SSL_CTX *ctx;
	unsigned n_names;
	char **names;
};

struct sni_table {
	unsigned n;
	struct sni_entry *e;
};

static int tab_idx = -1;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

/* table_free - free a table and the contexts it holds (NULL accepted) */
static void table_free(struct sni_table *t)
{
	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->n; i++) {
		SSL_CTX_free(t->e[i].ctx);
		for (unsigned j = 0; j < t->e[i].n_names; j++)
			free(t->e[i].names[j]);
		free(t->e[i].names);
	}
	free(t->e);
	free(t);
}

/* tab_ex_free - ex_data destructor: the table goes with the default context */
static void tab_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	table_free(ptr);
}

/* tab_init - allocate the SSL_CTX ex_data slot once per process */
static void tab_init(void)
{
	tab_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tab_ex_free);
}

/* name_match - whether \p host (from the ClientHello) is \p pat: equal ignoring case (RFC
 * 4343), or pat "*.D" and host one more label in front of D (RFC 6125 §6.4.3, no partial
 * wildcards) */
static bool name_match(const char *pat, const char *host)
{
	const char *dot;

	if (strncmp(pat, "*.", 2) != 0)
		return strcasecmp(pat, host) == 0;
	dot = strchr(host, '.');
	return dot != NULL && dot != host && strcasecmp(pat + 1, dot) == 0;
}

/* servername_cb - switch to the context whose names hold the SNI; exact names win over
 * wildcards; no SNI or an unknown one keeps the default certificate */
static int servername_cb(SSL *ssl, int *al, void *arg)
{
	const struct sni_table *t = arg;
	const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const struct sni_entry *hit = NULL;

	(void)al;
	if (host == NULL || t == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	for (int pass = 0; pass < 2 && hit == NULL; pass++)
		for (unsigned i = 0; i < t->n && hit == NULL; i++)
			for (unsigned j = 0; j < t->e[i].n_names && hit == NULL; j++) {
				const char *pat = t->e[i].names[j];

				if ((pat[0] == '*') == (pass == 1) && name_match(pat, host))
					hit = &t->e[i];
			}
	if (hit == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	if (SSL_set_SSL_CTX(ssl, hit->ctx) != hit->ctx) {
		ERR_clear_error();
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

int srv__tls_ctx_build(const struct srv_props *p, const char *cert_file, const char *key_file,
		       const char *ca_file, const struct srv_sni *sni, unsigned n_sni,
		       SSL_CTX **out, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	struct sni_table *t = NULL;
	char why[512];
	int ret;

	*out = NULL;
	ret = srv__tls_ctx_new(p->auth, p->clientid_ext, cert_file, key_file, ca_file, &ctx, err,
			       errlen);
	if (ret != DJ_EOK)
		goto out;
	if (n_sni == 0)
		goto done;
	ret = DJ_ECRYPTO;
	pthread_once(&tab_once, tab_init);
	if (tab_idx < 0) {
		dj_errbuf(err, errlen, "SSL_CTX_get_ex_new_index failed");
		goto out;
	}
	ret = DJ_ENOMEM;
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->e = calloc(n_sni, sizeof(*t->e))) == NULL) {
		dj_errbuf(err, errlen, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < n_sni; i++) {
		struct sni_entry *e = &t->e[i];

		t->n = i + 1;
		ret = srv__tls_ctx_new(p->auth, p->clientid_ext, sni[i].cert_file, sni[i].key_file,
				       ca_file, &e->ctx, why, sizeof(why));
		if (ret != DJ_EOK) {
			dj_errbuf(err, errlen, "%s: %s", sni[i].what, why);
			goto out;
		}
		ret = DJ_ENOMEM;
		e->names = calloc(sni[i].n_names, sizeof(*e->names));
		if (e->names == NULL && sni[i].n_names > 0) {
			dj_errbuf(err, errlen, "out of memory");
			goto out;
		}
		for (unsigned j = 0; j < sni[i].n_names; j++) {
			e->names[j] = strdup(sni[i].names[j]);
			if (e->names[j] == NULL) {
				dj_errbuf(err, errlen, "out of memory");
				goto out;
			}
			e->n_names = j + 1;
		}
	}
	ret = DJ_ECRYPTO;
	if (SSL_CTX_set_ex_data(ctx, tab_idx, t) != 1) {
		dj_errbuf(err, errlen, "SSL_CTX_set_ex_data failed");
		goto out;
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	t = NULL;	/* the context's now */
done:
	*out = ctx;
	ctx = NULL;
	ret = DJ_EOK;
out:
	table_free(t);
	SSL_CTX_free(ctx);
	return ret;
}
