/*
 * admin_routes.c - the routes of the management API (docs/admin-api.yaml; the table adm_routes
 *		    below and the spec's paths are compared by tests/lint/admin_api_spec.sh).
 *
 * SECURITY
 *	No answer holds a root key, session key, token or auth code: devices are shown by their
 *	identifiers and nonce counters; API keys by name and scope (a new key's token once).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "admin_internal.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_csv.h"
#include "ownership/dv_enroll.h"
#include "ownership/dv_records.h"
#include "ownership/js_owner.h"
#include "store/js_keystore.h"
#include "store/js_store_owner.h"

#define ADM_PAGE_DEFAULT 50
#define ADM_PAGE_MAX 1000
#define ADM_AUDIT_DEFAULT 100
#define ADM_AUDIT_MAX 1000
#define EUI_HEX (2 * LW_EUI_LEN + 1)

/* parse_eui - a path segment as a DevEUI; false: 400 sent */
static bool parse_eui(struct evhttp_request *req, const char *text, uint8_t eui[LW_EUI_LEN])
{
	if (strlen(text) != 2 * LW_EUI_LEN || dj_hex_parse(text, eui, LW_EUI_LEN) != DJ_EOK) {
		adm_error(req, 400, "dev_eui must be 16 hex digits");
		return false;
	}
	return true;
}

static json_t *device_json(const struct js_device *d)
{
	char eui[EUI_HEX], jeui[EUI_HEX];

	dj_hex_format(d->dev_eui, LW_EUI_LEN, eui);
	dj_hex_format(d->join_eui, LW_EUI_LEN, jeui);
	return json_pack("{s:s,s:s,s:s,s:I,s:i,s:I,s:i,s:b}", "dev_eui", eui, "join_eui", jeui,
			 "mac_version", lw_version_str(d->mac_version), "created_at",
			 (json_int_t)d->created_at, "dev_nonce_last", (int)d->st.dev_nonce_last,
			 "join_nonce_last", (json_int_t)d->st.join_nonce_last,
			 "dev_nonces_used", (int)d->st.hist_len, "has_session",
			 d->st.sess_token_len != 0);
}

/* The walk of GET /devices: filters and the page. */
struct dev_walk {
	const char *q;		/* DevEUI prefix (hex), or NULL */
	bool has_join;
	uint8_t join_eui[LW_EUI_LEN];
	size_t offset, limit, matched;
	json_t *items;
};

static int dev_walk_one(const struct js_device *d, void *arg)
{
	struct dev_walk *w = arg;
	char eui[EUI_HEX];

	dj_hex_format(d->dev_eui, LW_EUI_LEN, eui);
	if (w->q != NULL && strncmp(eui, w->q, strlen(w->q)) != 0)
		return DJ_EOK;
	if (w->has_join && memcmp(d->join_eui, w->join_eui, LW_EUI_LEN) != 0)
		return DJ_EOK;
	if (w->matched >= w->offset && json_array_size(w->items) < w->limit)
		json_array_append_new(w->items, device_json(d));
	w->matched++;
	return DJ_EOK;
}

/* num_param - an unsigned query parameter in [0, max]; false: 400 sent */
static bool num_param(struct evhttp_request *req, const char *key, size_t def, size_t max,
		      size_t *out)
{
	char buf[32], *end;
	const char *v = adm_query(req, key, buf, sizeof(buf));
	unsigned long long n;

	*out = def;
	if (v == NULL)
		return true;
	n = strtoull(v, &end, 10);
	if (*v == '\0' || *end != '\0' || *v == '-' || n > max) {
		adm_error(req, 400, "%s must be a number from 0 to %zu", key, max);
		return false;
	}
	*out = (size_t)n;
	return true;
}

static void r_devices_list(struct admin *a, struct evhttp_request *req,
			   const struct adm_who *who, char **seg, unsigned n)
{
	struct dev_walk w = { 0 };
	char qbuf[EUI_HEX + 1], jbuf[EUI_HEX + 1];
	const char *j;
	int ret;

	(void)who, (void)seg, (void)n;
	if (!num_param(req, "offset", 0, SIZE_MAX / 2, &w.offset) ||
	    !num_param(req, "limit", ADM_PAGE_DEFAULT, ADM_PAGE_MAX, &w.limit))
		return;
	w.q = adm_query(req, "q", qbuf, sizeof(qbuf));
	if (w.q != NULL) {
		for (char *p = qbuf; *p != '\0'; p++) {
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
				adm_error(req, 400, "q must be hex digits (a DevEUI prefix)");
				return;
			}
		}
	}
	j = adm_query(req, "join_eui", jbuf, sizeof(jbuf));
	if (j != NULL) {
		if (strlen(j) != 2 * LW_EUI_LEN || dj_hex_parse(j, w.join_eui, LW_EUI_LEN) != 0) {
			adm_error(req, 400, "join_eui must be 16 hex digits");
			return;
		}
		w.has_join = true;
	}
	w.items = json_array();
	ret = js_store_device_foreach(a->s->store, dev_walk_one, &w);
	if (ret != DJ_EOK) {
		json_decref(w.items);
		adm_error(req, 503, "the store cannot be read: %s", dj_strerror(ret));
		return;
	}
	adm_reply_json(req, 200, json_pack("{s:I,s:I,s:I,s:o}", "total", (json_int_t)w.matched,
					   "offset", (json_int_t)w.offset, "limit",
					   (json_int_t)w.limit, "devices", w.items));
}

static void r_device_show(struct admin *a, struct evhttp_request *req,
			  const struct adm_who *who, char **seg, unsigned n)
{
	uint8_t eui[LW_EUI_LEN];
	struct js_device *d;
	char zone[JS_ZONE_MAX] = "";
	uint64_t serial = 0;
	json_t *j;
	int ret;

	(void)who, (void)n;
	if (!parse_eui(req, seg[3], eui))
		return;
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		adm_error(req, 500, "out of memory");
		return;
	}
	ret = js_store_device_get(a->s->store, eui, d);
	if (ret != DJ_EOK) {
		free(d);
		adm_error(req, ret == DJ_ENOENT ? 404 : 503, "%s",
			  ret == DJ_ENOENT ? "no such device" : dj_strerror(ret));
		return;
	}
	j = device_json(d);
	OPENSSL_cleanse(d, sizeof(*d));
	free(d);
	if (js_store_owner_head(a->s->store, eui, zone, sizeof(zone), &serial) == DJ_EOK)
		json_object_set_new(j, "owner", json_pack("{s:s,s:I}", "zone", zone, "serial",
							  (json_int_t)serial));
	adm_reply_json(req, 200, j);
}

/* The producer of an import: row i of the parsed CSV, its root keys sealed. */
struct import_ctx {
	const struct dv_csv *csv;
	struct js_keystore *ks;
	int64_t now;
};

static int import_get(size_t i, struct js_device *d, void *arg)
{
	struct import_ctx *c = arg;

	return dv_enroll_seal_row(c->ks, &c->csv->rows[i], c->now, d);
}

/* csv_line - the line number in a parser message "upload.csv:17: ..." (0: none) */
static unsigned csv_line(const char *err)
{
	const char *p = strchr(err, ':');

	return p != NULL ? (unsigned)strtoul(p + 1, NULL, 10) : 0;
}

static void r_devices_import(struct admin *a, struct evhttp_request *req,
			     const struct adm_who *who, char **seg, unsigned n)
{
	char err[DV_CSV_ERR_MAX], eui[EUI_HEX];
	struct dv_csv *csv = NULL;
	struct import_ctx c;
	size_t len = 0, failed = 0;
	char *body;
	int ret;

	(void)seg, (void)n;
	body = adm_body(req, &len);
	if (body == NULL) {
		adm_error(req, 413, "the CSV is too large");
		return;
	}
	ret = dv_csv_parse("upload.csv", body, len, &csv, err, sizeof(err));
	OPENSSL_clear_free(body, len);
	if (ret != DJ_EOK) {
		adm_reply_json(req, ret == DJ_ENOMEM ? 500 : 422,
			       json_pack("{s:s,s:i,s:i}", "error", err, "line", (int)csv_line(err),
					 "imported", 0));
		return;
	}
	c.csv = csv;
	c.ks = a->s->ks;
	c.now = js_store_now(a->s->store);
	ret = js_store_devices_import_flags(a->s->store, csv->n, import_get, &c, who->actor, 0,
					    &failed);
	if (ret == DJ_EEXIST) {
		if (failed >= csv->n)
			failed = 0;
		dj_hex_format(csv->rows[failed].dev_eui, LW_EUI_LEN, eui);
		snprintf(err, sizeof(err), "upload.csv:%u: field dev_eui: device %s is already "
			 "enrolled; nothing was imported", csv->rows[failed].line, eui);
		adm_reply_json(req, 409, json_pack("{s:s,s:i,s:i}", "error", err, "line",
						   (int)csv->rows[failed].line, "imported", 0));
	} else if (ret != DJ_EOK) {
		adm_error(req, 503, "cannot add the devices: %s; nothing was imported",
			  dj_strerror(ret));
	} else {
		dj_notice("admin: %s imported %zu devices", who->actor, csv->n);
		adm_reply_json(req, 200, json_pack("{s:I}", "imported", (json_int_t)csv->n));
	}
	dv_csv_free(csv);
}

static void r_device_delete(struct admin *a, struct evhttp_request *req,
			    const struct adm_who *who, char **seg, unsigned n)
{
	uint8_t eui[LW_EUI_LEN];
	int ret;

	(void)n;
	if (!parse_eui(req, seg[3], eui))
		return;
	ret = js_store_device_delete(a->s->store, eui, who->actor);
	if (ret == DJ_EOK)
		adm_reply_json(req, 200, json_pack("{s:s}", "deleted", seg[3]));
	else
		adm_error(req, ret == DJ_ENOENT ? 404 : 503, "%s",
			  ret == DJ_ENOENT ? "no such device" : dj_strerror(ret));
}

static void r_device_reset(struct admin *a, struct evhttp_request *req,
			   const struct adm_who *who, char **seg, unsigned n)
{
	uint8_t eui[LW_EUI_LEN];
	uint64_t count = 0;
	int ret;

	(void)n;
	if (!parse_eui(req, seg[3], eui))
		return;
	ret = js_store_reset_nonces(a->s->store, eui, who->actor, &count);
	if (ret == DJ_EOK)
		adm_reply_json(req, 200, json_pack("{s:s,s:I}", "reset", seg[3], "devices",
						   (json_int_t)count));
	else
		adm_error(req, ret == DJ_ENOENT ? 404 : 503, "%s",
			  ret == DJ_ENOENT ? "no such device" : dj_strerror(ret));
}

/* The walk of GET /audit: filters; the newest \p limit entries are kept. */
struct audit_walk {
	const char *event;
	int64_t since, until;
	size_t limit;
	json_t *items;
};

static int audit_one(const struct js_audit_entry *e, void *arg)
{
	struct audit_walk *w = arg;
	char eui[EUI_HEX] = "";

	if (w->event != NULL && strcmp(e->event, w->event) != 0)
		return DJ_EOK;
	if (e->at < w->since || (w->until > 0 && e->at > w->until))
		return DJ_EOK;
	if (e->has_dev_eui)
		dj_hex_format(e->dev_eui, LW_EUI_LEN, eui);
	json_array_append_new(w->items,
			      json_pack("{s:I,s:I,s:s?,s:s,s:s,s:s}", "id", (json_int_t)e->id,
					"at", (json_int_t)e->at, "dev_eui",
					e->has_dev_eui ? eui : NULL, "event", e->event, "actor",
					e->actor, "detail", e->detail));
	if (json_array_size(w->items) > w->limit)
		json_array_remove(w->items, 0);
	return DJ_EOK;
}

static void r_audit(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
		    char **seg, unsigned n)
{
	struct audit_walk w = { 0 };
	char ebuf[JS_AUDIT_EVENT_MAX], dbuf[EUI_HEX + 1];
	const char *d;
	uint8_t eui[LW_EUI_LEN];
	size_t since = 0, until = 0;
	int ret;

	(void)who, (void)seg, (void)n;
	if (!num_param(req, "limit", ADM_AUDIT_DEFAULT, ADM_AUDIT_MAX, &w.limit) ||
	    !num_param(req, "since", 0, INT64_MAX, &since) ||
	    !num_param(req, "until", 0, INT64_MAX, &until))
		return;
	w.since = (int64_t)since;
	w.until = (int64_t)until;
	w.event = adm_query(req, "event", ebuf, sizeof(ebuf));
	d = adm_query(req, "dev_eui", dbuf, sizeof(dbuf));
	if (d != NULL && !parse_eui(req, d, eui))
		return;
	w.items = json_array();
	ret = js_store_audit_foreach(a->s->store, d != NULL ? eui : NULL, audit_one, &w);
	if (ret != DJ_EOK) {
		json_decref(w.items);
		adm_error(req, 503, "the store cannot be read: %s", dj_strerror(ret));
		return;
	}
	adm_reply_json(req, 200, json_pack("{s:o}", "entries", w.items));
}

static json_t *list_json(const struct js_config_list *l)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

static void tlsa_ignore(const struct da_tlsa_set *set, void *arg)
{
	(void)set, (void)arg;	/* the answer is in the resolver's cache for the next look */
}

/* The TLSA verdict of a name, from the resolver's cache. */
static void tlsa_seen(const struct da_tlsa_set *set, void *arg)
{
	json_t **out = arg;

	*out = json_pack("{s:s,s:s,s:i,s:i,s:s?}", "name", set->name, "verdict",
			 da_status_str(set->status), "ttl_left", (int)set->ttl, "records",
			 (int)set->n, "why", set->status != DA_SECURE ? set->why : NULL);
}

/* tlsa_keep - a lookup's answer into its slot (the last verdict seen for the name) */
static void tlsa_keep(const struct da_tlsa_set *set, void *arg)
{
	struct adm_tlsa *t = arg;

	t->lookup = NULL;
	snprintf(t->verdict, sizeof(t->verdict), "%s", da_status_str(set->status));
	snprintf(t->why, sizeof(t->why), "%s",
		 set->status != DA_SECURE && set->why != NULL ? set->why : "");
	t->records = (unsigned)set->n;
}

static struct adm_tlsa *tlsa_slot(struct admin *a, const char *name)
{
	struct adm_tlsa *free_slot = NULL;

	for (unsigned i = 0; i < ADM_PEERS_MAX; i++) {
		if (strcmp(a->tlsa[i].name, name) == 0)
			return &a->tlsa[i];
		if (free_slot == NULL && a->tlsa[i].name[0] == '\0')
			free_slot = &a->tlsa[i];
	}
	if (free_slot != NULL) {
		free_slot->a = a;
		snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
	}
	return free_slot;
}

/* tlsa_json - the cached verdict on \p name; when it expired, a refresh is started and the
 * last verdict seen is shown with "refreshing" (a first lookup: "pending") */
static json_t *tlsa_json(struct admin *a, const char *name)
{
	struct adm_tlsa *t;
	json_t *j = NULL;

	if (a->s->resolver == NULL)
		return json_pack("{s:s}", "verdict", "not used (auth = pkix)");
	if (da_tlsa_peek(a->s->resolver, name, tlsa_seen, &j) == DJ_EOK && j != NULL)
		return j;
	t = tlsa_slot(a, name);
	if (t == NULL) {
		if (da_tlsa_lookup(a->s->resolver, name, tlsa_ignore, NULL, NULL) != DJ_EOK)
			return json_pack("{s:s,s:s}", "name", name, "verdict", "malformed name");
		return json_pack("{s:s,s:s}", "name", name, "verdict", "pending");
	}
	if (t->lookup == NULL &&
	    da_tlsa_lookup(a->s->resolver, name, tlsa_keep, t, &t->lookup) != DJ_EOK)
		return json_pack("{s:s,s:s}", "name", name, "verdict", "malformed name");
	if (da_tlsa_peek(a->s->resolver, name, tlsa_seen, &j) == DJ_EOK && j != NULL)
		return j;
	if (t->verdict[0] == '\0')
		return json_pack("{s:s,s:s}", "name", name, "verdict", "pending");
	return json_pack("{s:s,s:s,s:i,s:i,s:b,s:s?}", "name", name, "verdict", t->verdict,
			 "ttl_left", 0, "records", (int)t->records, "refreshing", 1, "why",
			 t->why[0] != '\0' ? t->why : NULL);
}

static void r_peers(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
		    char **seg, unsigned n)
{
	struct peers *p = a->s->peers;
	json_t *arr = json_array();

	(void)who, (void)seg, (void)n;
	for (unsigned i = 0; i < p->n; i++) {
		const struct js_peer_config *pc = p->v[i].cfg;
		const struct adm_peer_stats *ps = NULL;
		json_t *by = json_object();
		uint64_t refused = 0;
		char tname[DA_NAME_MAX];

		/* its DANE name: "_ns-client.HOST" or "_as-client.HOST" (peers.c) */
		snprintf(tname, sizeof(tname), "_%s-client.%s", pc->role, pc->identity);

		for (unsigned k = 0; k < a->n_peers; k++)
			if (strcmp(a->peers[k].name, p->v[i].name) == 0)
				ps = &a->peers[k];
		for (unsigned r = 1; ps != NULL && r < BI_RESULT_COUNT; r++) {
			if (ps->results[r] == 0)
				continue;
			refused += ps->results[r];
			json_object_set_new(by, bi_result_str((enum bi_result)r, BI_PROTO_1_1),
					    json_integer((json_int_t)ps->results[r]));
		}
		json_array_append_new(
			arr, json_pack("{s:s,s:s,s:s,s:o,s:o,s:I,s:I,s:I,s:o,s:o,s:o}", "name",
				       p->v[i].name, "identity", pc->identity, "role", pc->role,
				       "sender_ids", list_json(&pc->sender_ids), "ns_ids",
				       list_json(&pc->ns_ids), "requests",
				       (json_int_t)(ps != NULL ? ps->requests : 0), "refusals",
				       (json_int_t)refused, "last_seen",
				       (json_int_t)(ps != NULL ? ps->last_seen : 0),
				       "refusals_by_reason", by, "tlsa", tlsa_json(a, tname),
				       "certificate",
				       ps != NULL && ps->has_cert
					       ? json_pack("{s:s,s:s,s:s}", "subject", ps->subject,
							   "spki_sha256", ps->spki_sha256,
							   "not_after", ps->not_after)
					       : json_null()));
	}
	adm_reply_json(req, 200, json_pack("{s:o}", "peers", arr));
}

/* cert_json - subject, SPKI SHA-256 and notAfter of a PEM certificate file */
static json_t *cert_json(const char *path, uint8_t spki[32], bool *ok)
{
	FILE *f = fopen(path, "r");
	X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	char subj[512] = "", hex[65], after[64] = "";
	int len, days = 0, secs = 0;
	unsigned mdlen = 0;
	json_t *j;

	*ok = false;
	if (f != NULL)
		fclose(f);
	if (x == NULL)
		return json_pack("{s:s}", "error", "cannot read the certificate");
	X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (len > 0 && EVP_Digest(der, (size_t)len, spki, &mdlen, EVP_sha256(), NULL) == 1)
		*ok = true;
	OPENSSL_free(der);
	dj_hex_format(spki, 32, hex);
	ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x));
	{
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
			strftime(after, sizeof(after), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	j = json_pack("{s:s,s:s,s:s,s:i}", "subject", subj, "spki_sha256", hex, "not_after",
		      after, "days_left", days);
	X509_free(x);
	return j;
}

/* The comparison of our certificate with our published TLSA records. */
struct self_cmp {
	const uint8_t *spki;
	json_t *out;
};

static void self_tlsa(const struct da_tlsa_set *set, void *arg)
{
	struct self_cmp *c = arg;
	unsigned match = 0, other = 0;

	for (size_t i = 0; i < set->n; i++) {
		const struct da_tlsa *t = &set->rr[i];

		if (t->usage == 3 && t->selector == 1 && t->mtype == 1 && t->len == 32 &&
		    memcmp(t->data, c->spki, 32) == 0)
			match++;
		else
			other++;
	}
	c->out = json_pack("{s:s,s:s,s:i,s:s}", "name", set->name, "verdict",
			   da_status_str(set->status), "ttl_left", (int)set->ttl, "match",
			   set->status != DA_SECURE ? "unknown"
			   : match == 0		    ? "mismatch"
			   : other > 0		    ? "rollover in progress"
						    : "match");
}

static void r_self(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
		   char **seg, unsigned n)
{
	const struct js_config *cfg = &a->s->peers->cfg;
	uint8_t spki[32];
	struct self_cmp c = { .spki = spki, .out = NULL };
	char name[300];
	bool ok;
	json_t *cert, *tl = NULL;

	(void)who, (void)seg, (void)n;
	cert = cert_json(cfg->cert_file, spki, &ok);
	if (a->s->resolver != NULL && ok && cfg->listen_address != NULL &&
	    cfg->dane_client_identity != NULL) {
		/* our server's TLSA: _PORT._tcp.HOST of our client identity's host */
		const char *port = strrchr(cfg->listen_address, ':');
		const char *host = strchr(cfg->dane_client_identity, '.');

		snprintf(name, sizeof(name), "_%s._tcp.%s", port != NULL ? port + 1 : "443",
			 host != NULL ? host + 1 : cfg->dane_client_identity);
		if (da_tlsa_peek(a->s->resolver, name, self_tlsa, &c) != DJ_EOK) {
			if (da_tlsa_lookup(a->s->resolver, name, tlsa_ignore, NULL, NULL) == DJ_EOK)
				(void)da_tlsa_peek(a->s->resolver, name, self_tlsa, &c);
		}
		tl = c.out != NULL ? c.out
				   : json_pack("{s:s,s:s}", "name", name, "verdict", "pending");
	} else {
		tl = json_pack("{s:s}", "verdict", "not looked up (no [dane] client_identity)");
	}
	adm_reply_json(req, 200, json_pack("{s:o,s:o}", "certificate", cert, "tlsa", tl));
}

/* A GET .../ownership waiting for the DNS: its links verified by js_owner_inspect. */
struct adm_own {
	struct adm_own *next, *prev;	/* a->owns */
	struct admin *a;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct js_owner_inspection *h;	/* NULL once the report came */
	json_t *j;			/* the answer, without the verdicts yet */
};

#define NO_RESOLVER "not verified: no DNSSEC resolver configured"

static const char *const auth_names[] = { "?", "manufacturer", "signed request", "auth code" };

/* own_free - unlink \p p, cancel its inspection, forget its connection (no reply) */
static void own_free(struct adm_own *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		p->a->owns = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	p->a->n_owns--;
	js_owner_inspect_cancel(p->h);
	if (p->conn != NULL)
		evhttp_connection_set_closecb(p->conn, NULL, NULL);
	json_decref(p->j);
	free(p);
}

/* own_closed - the client went away before the verdicts: nothing to answer */
static void own_closed(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	dj_info("admin: a client left before its ownership answer; its lookups are cancelled");
	own_free(arg);
}

void adm_routes_free(struct admin *a)
{
	while (a->owns != NULL)
		own_free(a->owns);
}

/* link_json - one stored link, its structure checked (dv_chain_verify_link, no keys) */
static json_t *link_json(const struct dv_chain *ch, size_t i)
{
	const struct dv_link *l = &ch->links[i];
	json_t *nets = json_array(), *ases = json_array();
	char hex[2 * DV_NETID_LEN + 1];
	struct dv_chain_verdict v;
	bool follows;

	for (size_t k = 0; k < l->n_net_ids; k++) {
		dj_hex_format(l->net_ids[k], DV_NETID_LEN, hex);
		json_array_append_new(nets, json_string(hex));
	}
	for (size_t k = 0; k < l->n_as_ids; k++)
		json_array_append_new(ases, json_string(l->as_ids[k]));
	/* signed, and follows the links before it (serial, zones, EUIs, who signs) */
	follows = dv_chain_verify_link(ch, i, NULL, NULL, &v) == DJ_EOK &&
		  v.status == DV_CHAIN_OK;
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:b,s:s,s:s}", "serial",
			 (json_int_t)l->serial, "from", l->from_zone, "to", l->to_zone, "signer",
			 l->signer_zone, "auth", auth_names[(unsigned)l->auth < 4 ? l->auth : 0],
			 "net_ids", nets, "as_ids", ases, "not_before", (json_int_t)l->not_before,
			 "signed", l->sig_len > 0, "structure", follows ? "ok" : "broken", "why",
			 follows ? "" : v.why);
}

/* no_resolver - the verdicts without a DNSSEC resolver: none is claimed */
static void no_resolver(json_t *j)
{
	json_t *links = json_object_get(j, "links"), *l;
	size_t i;

	json_array_foreach(links, i, l) {
		bool broken = strcmp(json_string_value(json_object_get(l, "structure")), "ok") != 0;

		json_object_set_new(l, "verified", json_false());
		json_object_set_new(l, "result", json_string(broken ? "broken" : "not_checked"));
		json_object_set_new(l, "verification",
				    broken ? json_sprintf("structure broken: %s",
							  json_string_value(json_object_get(l, "why")))
					   : json_string(NO_RESOLVER));
	}
	json_object_set_new(j, "verification", json_string(NO_RESOLVER));
	json_object_set_new(j, "dns", json_pack("{s:s,s:s}", "dnssec", "not looked up", "why",
						"no DNSSEC resolver configured"));
}

/* verdicts - the report of js_owner_inspect into the answer \p j */
static void verdicts(json_t *j, const struct js_owner_report *r)
{
	json_t *links = json_object_get(j, "links"), *l, *dns;
	char name[DV_NAME_MAX], first[JS_OWNER_WHY_MAX + 32] = "";
	size_t i, good = 0;

	json_array_foreach(links, i, l) {
		const struct js_owner_link_report *lr = &r->links[i];

		if (i >= r->chain->n)
			break;
		if (dv_owner_name(r->chain->links[i].signer_zone, name) != DJ_EOK)
			snprintf(name, sizeof(name), "-");
		json_object_set_new(l, "verification", json_string(lr->why));
		json_object_set_new(l, "verified", json_boolean(lr->result == JS_LINK_VERIFIED));
		json_object_set_new(l, "result", json_string(js_owner_link_result_str(lr->result)));
		json_object_set_new(l, "signer_key",
				    json_pack("{s:s,s:s}", "name", name, "dnssec",
					      lr->key_asked ? da_status_str(lr->key_status)
							    : "not looked up"));
		if (lr->result == JS_LINK_VERIFIED)
			good++;
		else if (first[0] == '\0')
			snprintf(first, sizeof(first), "link %zu: %s", i + 1, lr->why);
	}
	json_object_set_new(j, "verification",
			    json_string(good == json_array_size(links) && good > 0
						? "every link verified" : first));
	dns = json_pack("{s:s,s:s}", "name", r->published_name, "dnssec",
			da_status_str(r->published_status));
	json_object_set_new(dns, "same_as_stored", r->published_same < 0
						 ? json_null()
						 : json_boolean(r->published_same == 1));
	if (r->published_serial > 0)
		json_object_set_new(dns, "serial", json_integer((json_int_t)r->published_serial));
	if (r->published_why[0] != '\0')
		json_object_set_new(dns, "why", json_string(r->published_why));
	json_object_set_new(j, "dns", dns);
}

/* on_report - the verdicts are in: answer */
static void on_report(const struct js_owner_report *r, void *arg)
{
	struct adm_own *p = arg;
	struct evhttp_request *req = p->req;
	json_t *j = p->j;

	p->j = NULL;
	p->h = NULL;
	own_free(p);
	if (r->cancelled) {
		json_decref(j);
		adm_error(req, 503, "the ownership check was cancelled (shutting down or out of "
			  "memory)");
		return;
	}
	verdicts(j, r);
	adm_reply_json(req, 200, j);
}

/* own_answer - the answer for device \p o without the verdicts (NULL: no memory) */
static json_t *own_answer(struct admin *a, const char *eui_text, const uint8_t eui[LW_EUI_LEN],
			  const struct js_owner *o, bool *decodes)
{
	struct js_authcode ac;
	struct dv_chain *ch = calloc(1, sizeof(*ch));
	json_t *links = json_array(), *j;

	*decodes = ch != NULL && dv_chain_decode(o->chain, o->chain_len, ch) == DJ_EOK &&
		   ch->n > 0;
	for (size_t i = 0; *decodes && i < ch->n; i++)
		json_array_append_new(links, link_json(ch, i));
	free(ch);
	j = json_pack("{s:s,s:s,s:I,s:b,s:I,s:o}", "dev_eui", eui_text, "owner", o->zone,
		      "serial", (json_int_t)o->serial, "published", o->published, "updated_at",
		      (json_int_t)o->updated_at, "links", links);
	if (j == NULL)
		return NULL;
	memset(&ac, 0, sizeof(ac));
	json_object_set_new(j, "auth_code",
			    js_store_authcode_get(a->s->store, eui, &ac) == DJ_EOK
				    ? json_pack("{s:b,s:I}", "set", 1, "expires_at",
						(json_int_t)ac.expires_at)
				    : json_pack("{s:b}", "set", 0));
	OPENSSL_cleanse(&ac, sizeof(ac));
	return j;
}

/* r_ownership - a device's chain link by link: each link's structure, and its signature under
 * its signer's _owner key from a DNSSEC-secure answer (js_owner_inspect, asynchronous: the
 * answer is sent when the lookups are done), and the chain the DNS publishes */
static void r_ownership(struct admin *a, struct evhttp_request *req,
			const struct adm_who *who, char **seg, unsigned n)
{
	uint8_t eui[LW_EUI_LEN];
	struct js_owner o;
	struct adm_own *p;
	bool decodes;
	json_t *j;
	int ret;

	(void)who, (void)n;
	if (!parse_eui(req, seg[3], eui))
		return;
	memset(&o, 0, sizeof(o));
	ret = js_store_owner_get(a->s->store, eui, &o);
	if (ret != DJ_EOK) {
		adm_error(req, ret == DJ_ENOENT ? 404 : 503, "%s",
			  ret == DJ_ENOENT ? "the device has no owner (not enrolled)"
					   : dj_strerror(ret));
		return;
	}
	j = own_answer(a, seg[3], eui, &o, &decodes);
	if (j == NULL) {
		js_owner_clear(&o);
		adm_error(req, 503, "out of memory");
		return;
	}
	if (!decodes || a->s->owner == NULL) {
		js_owner_clear(&o);
		if (!decodes)
			json_object_set_new(j, "verification",
					    json_string("structure broken: the stored chain does not "
							"decode"));
		else
			no_resolver(j);
		adm_reply_json(req, 200, j);
		return;
	}
	p = a->n_owns < ADM_OWNS_MAX ? calloc(1, sizeof(*p)) : NULL;
	if (p == NULL) {
		js_owner_clear(&o);
		json_decref(j);
		adm_error(req, 503, "too many ownership checks in progress; try again");
		return;
	}
	p->a = a;
	p->req = req;
	p->j = j;
	p->conn = evhttp_request_get_connection(req);
	p->next = a->owns;
	if (a->owns != NULL)
		a->owns->prev = p;
	a->owns = p;
	a->n_owns++;
	if (p->conn != NULL)
		evhttp_connection_set_closecb(p->conn, own_closed, p);
	ret = js_owner_inspect(a->s->owner, eui, o.zone, o.chain, o.chain_len, on_report, p,
			       &p->h);
	js_owner_clear(&o);
	if (ret != DJ_EOK) {
		own_free(p);	/* p->j with it */
		adm_error(req, 503, "the ownership check cannot start: %s", dj_strerror(ret));
	}
	/* p may be gone: the report may have come from the resolver's cache */
}

static int xfer_one(const struct js_transfer *t, void *arg)
{
	static const char *const steps[] = { "recorded", "new owner published",
					     "old owner replaced", "done" };
	char eui[EUI_HEX];

	dj_hex_format(t->dev_eui, LW_EUI_LEN, eui);
	json_array_append_new(arg, json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:I,s:I}", "id",
					     (json_int_t)t->id, "dev_eui", eui, "serial",
					     (json_int_t)t->serial, "from", t->from_zone, "to",
					     t->to_zone, "step",
					     steps[(unsigned)t->step < 4 ? t->step : 3],
					     "created_at", (json_int_t)t->created_at,
					     "updated_at", (json_int_t)t->updated_at));
	return DJ_EOK;
}

static void r_transfers(struct admin *a, struct evhttp_request *req,
			const struct adm_who *who, char **seg, unsigned n)
{
	json_t *arr = json_array();
	int ret;

	(void)who, (void)seg, (void)n;
	ret = js_store_transfer_foreach_pending(a->s->store, xfer_one, arr);
	if (ret != DJ_EOK) {
		json_decref(arr);
		adm_error(req, 503, "the store cannot be read: %s", dj_strerror(ret));
		return;
	}
	adm_reply_json(req, 200, json_pack("{s:o}", "transfers", arr));
}

static void r_metrics(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
		      char **seg, unsigned n)
{
	(void)who, (void)seg, (void)n;
	adm_reply_json(req, 200, adm_live_series(a));
}

static void r_events(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
		     char **seg, unsigned n)
{
	(void)who, (void)seg, (void)n;
	adm_live_events(a, req);
}

static void r_whoami(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
		     char **seg, unsigned n)
{
	(void)a, (void)seg, (void)n;
	adm_reply_json(req, 200, json_pack("{s:s,s:s,s:b}", "actor", who->actor, "scope",
					   js_apikey_scope_name(who->scope), "cookie",
					   who->cookie));
}

static int key_one(const struct js_apikey *k, void *arg)
{
	json_array_append_new(arg, json_pack("{s:s,s:s,s:I,s:I}", "name", k->name, "scope",
					     js_apikey_scope_name(k->scope), "created_at",
					     (json_int_t)k->created_at, "revoked_at",
					     (json_int_t)k->revoked_at));
	return DJ_EOK;
}

static void r_keys_list(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
			char **seg, unsigned n)
{
	json_t *arr = json_array();
	int ret;

	(void)who, (void)seg, (void)n;
	ret = js_apikey_foreach(a->s->store, key_one, arr);
	if (ret != DJ_EOK) {
		json_decref(arr);
		adm_error(req, 503, "the store cannot be read: %s", dj_strerror(ret));
		return;
	}
	adm_reply_json(req, 200, json_pack("{s:o}", "apikeys", arr));
}

static void r_keys_create(struct admin *a, struct evhttp_request *req,
			  const struct adm_who *who, char **seg, unsigned n)
{
	char token[JS_APIKEY_TOKEN_MAX];
	const char *name = NULL, *scope_text = NULL;
	enum js_apikey_scope scope;
	size_t len = 0;
	char *body = adm_body(req, &len);
	json_t *j = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
	int ret;

	(void)seg, (void)n;
	free(body);
	if (j == NULL || json_unpack(j, "{s:s,s:s}", "name", &name, "scope", &scope_text) != 0) {
		json_decref(j);
		adm_error(req, 400, "the body must be {\"name\": NAME, \"scope\": SCOPE}");
		return;
	}
	if (!js_apikey_name_ok(name) || js_apikey_scope_parse(scope_text, &scope) != DJ_EOK) {
		json_decref(j);
		adm_error(req, 400, "name: 1 to 63 of A-Z a-z 0-9 . _ -; scope: read, operate "
			  "or admin");
		return;
	}
	ret = js_apikey_create(a->s->store, name, scope, who->actor, token);
	if (ret == DJ_EOK) {
		adm_reply_json(req, 201, json_pack("{s:s,s:s,s:s}", "name", name, "scope",
						   scope_text, "key", token));
		OPENSSL_cleanse(token, sizeof(token));
	} else {
		adm_error(req, ret == DJ_EEXIST ? 409 : 503, "%s",
			  ret == DJ_EEXIST ? "the name is taken" : dj_strerror(ret));
	}
	json_decref(j);
}

static void r_keys_revoke(struct admin *a, struct evhttp_request *req,
			  const struct adm_who *who, char **seg, unsigned n)
{
	int ret;

	(void)n;
	if (!js_apikey_name_ok(seg[3])) {
		adm_error(req, 400, "bad key name");
		return;
	}
	ret = js_apikey_revoke(a->s->store, seg[3], who->actor);
	if (ret == DJ_EOK)
		adm_reply_json(req, 200, json_pack("{s:s}", "revoked", seg[3]));
	else
		adm_error(req, ret == DJ_ENOENT ? 404 : 503, "%s",
			  ret == DJ_ENOENT ? "no key in force by that name" : dj_strerror(ret));
}

/* adm_routes - every route and the scope it needs; docs/admin-api.yaml must list the same
 * (tests/lint/admin_api_spec.sh). One route per line, in this form. */
const struct adm_route adm_routes[] = {
	{ "GET", "/api/v1/whoami", JS_SCOPE_READ, r_whoami },
	{ "GET", "/api/v1/devices", JS_SCOPE_READ, r_devices_list },
	{ "POST", "/api/v1/devices", JS_SCOPE_OPERATE, r_devices_import },
	{ "GET", "/api/v1/devices/{dev_eui}", JS_SCOPE_READ, r_device_show },
	{ "DELETE", "/api/v1/devices/{dev_eui}", JS_SCOPE_OPERATE, r_device_delete },
	{ "POST", "/api/v1/devices/{dev_eui}/reset-nonces", JS_SCOPE_OPERATE, r_device_reset },
	{ "GET", "/api/v1/devices/{dev_eui}/ownership", JS_SCOPE_READ, r_ownership },
	{ "GET", "/api/v1/transfers", JS_SCOPE_READ, r_transfers },
	{ "POST", "/api/v1/devices/{dev_eui}/auth-code", JS_SCOPE_OPERATE, adm_r_authcode_set },
	{ "DELETE", "/api/v1/devices/{dev_eui}/auth-code", JS_SCOPE_OPERATE, adm_r_authcode_del },
	{ "POST", "/api/v1/transfers", JS_SCOPE_OPERATE, adm_r_transfer },
	{ "GET", "/api/v1/audit", JS_SCOPE_READ, r_audit },
	{ "GET", "/api/v1/peers", JS_SCOPE_READ, r_peers },
	{ "GET", "/api/v1/self", JS_SCOPE_READ, r_self },
	{ "GET", "/api/v1/metrics", JS_SCOPE_READ, r_metrics },
	{ "GET", "/api/v1/events", JS_SCOPE_READ, r_events },
	{ "GET", "/api/v1/apikeys", JS_SCOPE_ADMIN, r_keys_list },
	{ "POST", "/api/v1/apikeys", JS_SCOPE_ADMIN, r_keys_create },
	{ "DELETE", "/api/v1/apikeys/{name}", JS_SCOPE_ADMIN, r_keys_revoke },
};
const unsigned adm_n_routes = DJ_ARRAY_LEN(adm_routes);
