/*
 * admin_xfer.c - the management API's auth codes and transfers by auth code
 *		  (docs/admin-api.md "Auth codes and transfers"): the same rules and step machine
 *		  as danejoin-devices authcode / transfer --auth-codes (devices/ownership).
 *
 * AUTHORITY
 *	danejoind acts as the registry. An API key (or mTLS identity) of scope operate may set
 *	and revoke the auth code of any enrolled device, for its current owner: the key is the
 *	authority, and the audit log names it. No owner key is asked for (the CLI's --key proves
 *	to the registry that the caller is the owner; here the registry's own operators act).
 *	A transfer by auth code is signed by the registry key of [registry] key_file, which must
 *	be the _owner key (DNSSEC-secure TLSA 3 1 0) of each chain's first signer, exactly as
 *	danejoin-devices transfer --auth-codes --key checks it: a link the join servers would
 *	reject is never published.
 *
 * THREADS
 *	A transfer makes blocking DNS lookups and RFC 2136 updates, so it runs in a worker
 *	thread, one at a time (a second request meanwhile gets 503 with Retry-After). The worker
 *	uses the service's store handle: js_store.h makes every call safe from any thread, and a
 *	second handle would not see an in-memory store and would contend with the first for
 *	SQLite's write lock (PostgreSQL: the same handle's writer connection, under its lock).
 *	The worker never touches the HTTP request: when it ends it event_active()s done_ev, and
 *	the answer is sent on the loop thread. A client that hangs up meanwhile is noticed by the
 *	connection's close callback; the transfer goes on, as it would in the CLI.
 *
 * SECURITY
 *	An auth code appears in exactly one answer (its creation) and never in a log, the audit
 *	detail or any other answer; every buffer that held one is wiped. The registry key and the
 *	TSIG secret are read per transfer and wiped after it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "admin_internal.h"
#include "ca-tools/ca_update.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "ownership/dv_authcode.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_ownerkey.h"
#include "ownership/dv_records.h"
#include "ownership/dv_transfer.h"
#include "store/js_store_owner.h"

#define EUI_HEX (2 * LW_EUI_LEN + 1)
#define XFER_LINE_MAX (EUI_HEX + DV_AUTHCODE_LEN + 2)	/* "DEVEUI,CODE" */
#define XFER_RETRY_S "2"
#define ROOT_KEY_FILE "/usr/share/dns/root.key"

/* One transfer (or a resume at start), handed to the worker and back. */
struct adm_xfer_job {
	/* in: set on the loop thread */
	bool resume_only;
	char line[XFER_LINE_MAX];	/* "DEVEUI,CODE": wiped after use */
	char eui[EUI_HEX];
	char from[DV_ZONE_MAX];
	char to[DV_ZONE_MAX];
	struct dv_link rights;
	char actor[ADM_ACTOR_MAX];
	char key_file[1024], tsig_file[1024], ta_file[1024];
	char ns[80], via[80];
	uint32_t ttl;
	/* out: set by the worker */
	int rc;
	bool setup_failed;		/* the registry's files or servers: nothing was tried */
	bool resume_failed;		/* earlier transfers could not be finished: this one was
					 * not started */
	struct dv_xfer_report rep;
	/* the request (loop thread only); NULL when the client hung up */
	struct evhttp_request *req;
	struct evhttp_connection *conn;
};

struct adm_xfer {
	struct admin *a;
	struct event *done_ev;
	pthread_t thread;
	bool running;			/* loop thread only */
	struct adm_xfer_job *job;
};

/* ---- the worker ------------------------------------------------------------------------- */

/* job_setup - the registry key, the DNS server \p srv and its TSIG key (both borrowed by the
 * publisher: the caller's), the keyring and the publisher */
static int job_setup(struct adm_xfer_job *j, EVP_PKEY **rkey, struct ca_server *srv,
		     struct ca_tsig *tsig, struct dv_keyring **ring, struct dv_pub **pub)
{
	struct dv_xfer_report *r = &j->rep;
	char err[256];
	int rc;

	rc = dv_key_read(j->key_file, rkey);
	if (rc != DJ_EOK) {
		snprintf(r->why, sizeof(r->why), "[registry] key_file %.200s: %s", j->key_file,
			 rc == DJ_EFILEMODE ? "not a regular file of mode 0600" :
			 rc == DJ_ENOENT ? "no such file" :
			 "not a PEM private key of type EC P-256 or Ed25519");
		return rc;
	}
	rc = ca_server_parse(j->ns, srv, err, sizeof(err));
	if (rc == DJ_EOK)
		rc = ca_tsig_read(j->tsig_file, tsig, err, sizeof(err));
	if (rc != DJ_EOK) {
		snprintf(r->why, sizeof(r->why), "[registry]: %s", err);
		return rc;
	}
	rc = dv_keyring_new(&(struct dv_keyring_props){
				    .ta_file = j->ta_file,
				    .stub_addr = j->via[0] != '\0' ? j->via : j->ns,
			    }, ring);
	if (rc == DJ_EOK)
		rc = dv_pub_new(srv, tsig, j->ttl, pub);
	if (rc != DJ_EOK)
		snprintf(r->why, sizeof(r->why), "cannot set up the DNS side: %s", dj_strerror(rc));
	return rc;
}

/* job_run - resume what is unfinished, then the transfer of the job */
static void job_run(struct admin *a, struct adm_xfer_job *j)
{
	const char *line = j->line;
	struct dv_keyring *ring = NULL;
	struct dv_pub *pub = NULL;
	struct dv_xfer_env env;
	struct ca_server srv;
	struct ca_tsig tsig;
	EVP_PKEY *rkey = NULL;
	int rc;

	memset(&tsig, 0, sizeof(tsig));
	memset(&j->rep, 0, sizeof(j->rep));
	rc = job_setup(j, &rkey, &srv, &tsig, &ring, &pub);
	if (rc != DJ_EOK) {
		j->setup_failed = true;
		goto out;
	}
	memset(&env, 0, sizeof(env));
	env.store = a->s->store;
	env.actor = j->actor;
	env.key_fn = dv_keyring_get;
	env.key_arg = ring;
	dv_xfer_pub_dns(pub, &env.pub);
	rc = dv_transfer_resume(&env, &j->rep);
	if (rc != DJ_EOK) {
		j->resume_failed = true;
		goto out;
	}
	if (j->resume_only)
		goto out;
	rc = dv_transfer_apply(&env, &(struct dv_xfer_batch){
				       .kind = DV_XFER_AUTHCODES,
				       .n = 1,
				       .line = &line,
				       .to_zone = j->to,
				       .rights = &j->rights,
				       .registry_key = rkey,
			       }, &j->rep);
out:
	j->rc = rc;
	OPENSSL_cleanse(j->line, sizeof(j->line));
	dv_pub_free(pub);
	dv_keyring_free(ring);
	ca_tsig_clear(&tsig);
	EVP_PKEY_free(rkey);
}

/* worker - the thread of one job: run it, then wake the loop (done_cb) */
static void *worker(void *arg)
{
	struct adm_xfer *x = arg;

	job_run(x->a, x->job);
	event_active(x->done_ev, EV_TIMEOUT, 0);
	return NULL;
}

/* ---- the answer, on the loop thread ------------------------------------------------------ */

/* verdict_status - the HTTP status of a refusal */
static int verdict_status(enum dv_xfer_status st)
{
	switch (st) {
	case DV_XFER_DENIED: return 403;
	case DV_XFER_UNKNOWN: return 404;
	case DV_XFER_MALFORMED: return 400;
	case DV_XFER_TEMPFAIL: return 503;
	case DV_XFER_REPLAYED:
	case DV_XFER_STALE:
	case DV_XFER_ALREADY_DONE: return 409;
	case DV_XFER_OK: break;
	}
	return 200;
}

/* job_reply - the answer to the request of \p j (which is still open) */
static void job_reply(struct evhttp_request *req, const struct adm_xfer_job *j)
{
	const struct dv_xfer_report *r = &j->rep;

	if (j->setup_failed) {
		adm_error(req, 503, "the registry cannot transfer now: %s; nothing was changed",
			  r->why);
	} else if (j->rc != DJ_EOK && j->resume_failed) {
		adm_reply_json(req, r->dns_failed ? 502 : 503, json_pack(
			"{s:s,s:b}", "error", r->dns_failed ?
			"transfers recorded earlier cannot be finished: the DNS update failed; "
			"this transfer was not started (retry later)" :
			"transfers recorded earlier cannot be finished; this transfer was not "
			"started (retry later)", "recorded", 0));
		dj_warn("admin: unfinished transfers: %s", r->why);
	} else if (j->rc != DJ_EOK && r->dns_failed) {
		adm_reply_json(req, 502, json_pack(
			"{s:s,s:s,s:b}", "error", "the DNS update failed: the transfer is "
			"recorded and unfinished; danejoind finishes it at the next transfer "
			"request or at its next start (GET /api/v1/transfers shows it)", "why",
			r->why, "recorded", 1));
	} else if (j->rc != DJ_EOK) {
		adm_error(req, 503, "the transfer failed: %s", r->why);
	} else if (r->status != DV_XFER_OK) {
		adm_reply_json(req, verdict_status(r->status),
			       json_pack("{s:s,s:s}", "error", r->why, "verdict",
					 dv_xfer_status_str(r->status)));
	} else if (r->done_before > 0) {
		adm_reply_json(req, 409, json_pack(
			"{s:s,s:s}", "error", "the device was already transferred to this zone by "
			"an auth code, which was used and deleted: nothing to do", "verdict",
			dv_xfer_status_str(DV_XFER_ALREADY_DONE)));
	} else {
		adm_reply_json(req, 200, json_pack("{s:s,s:s,s:s,s:I,s:I}", "dev_eui", j->eui,
						   "from", j->from, "to", j->to, "transferred",
						   (json_int_t)r->transferred, "resumed",
						   (json_int_t)r->resumed));
	}
}

/* job_log - one log line on what a job did (never the code) */
static void job_log(const struct adm_xfer_job *j)
{
	const struct dv_xfer_report *r = &j->rep;

	if (j->resume_only && j->rc == DJ_EOK && r->resumed > 0)
		dj_notice("admin: finished %zu transfers left unfinished", r->resumed);
	else if (j->resume_only && j->rc != DJ_EOK)
		dj_warn("admin: unfinished transfers stay unfinished: %s", r->why);
	else if (!j->resume_only && j->rc == DJ_EOK && r->status == DV_XFER_OK &&
		 r->transferred > 0)
		dj_notice("admin: %s transferred %s from %s to %s by auth code", j->actor, j->eui,
			  j->from, j->to);
	else if (!j->resume_only)
		dj_notice("admin: %s: transfer of %s to %s refused or failed: %s", j->actor,
			  j->eui, j->to, j->rc == DJ_EOK ? dv_xfer_status_str(r->status) : r->why);
}

/* done_cb - on the loop thread once the worker is done: the answer, if the client is there */
static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct adm_xfer *x = arg;
	struct adm_xfer_job *j = x->job;

	(void)fd, (void)what;
	pthread_join(x->thread, NULL);
	x->running = false;
	x->job = NULL;
	job_log(j);
	if (j->req != NULL) {
		evhttp_connection_set_closecb(j->conn, NULL, NULL);
		job_reply(j->req, j);
	}
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

/* client_gone - the connection of a request waiting for its transfer closed */
static void client_gone(struct evhttp_connection *conn, void *arg)
{
	struct adm_xfer *x = arg;

	(void)conn;
	if (x->job != NULL) {
		x->job->req = NULL;
		x->job->conn = NULL;
	}
}

/* ---- configuration ---------------------------------------------------------------------- */

/* configured - [registry] is set (js_config checked that it is whole) */
static bool configured(const struct js_config *cfg)
{
	return cfg->registry_key_file != NULL && cfg->registry_ns != NULL &&
	       cfg->registry_tsig_file != NULL;
}

/* job_new - a job with the registry's configuration of now */
static struct adm_xfer_job *job_new(const struct js_config *cfg)
{
	struct adm_xfer_job *j = calloc(1, sizeof(*j));
	const char *ta = cfg->dane_trust_anchor_file != NULL ? cfg->dane_trust_anchor_file
			 : cfg->dane_auto_trust_anchor_file != NULL
				 ? cfg->dane_auto_trust_anchor_file : ROOT_KEY_FILE;

	if (j == NULL)
		return NULL;
	snprintf(j->key_file, sizeof(j->key_file), "%s", cfg->registry_key_file);
	snprintf(j->tsig_file, sizeof(j->tsig_file), "%s", cfg->registry_tsig_file);
	snprintf(j->ta_file, sizeof(j->ta_file), "%s", ta);
	snprintf(j->ns, sizeof(j->ns), "%s", cfg->registry_ns);
	if (cfg->registry_lookup_via != NULL)
		snprintf(j->via, sizeof(j->via), "%s", cfg->registry_lookup_via);
	j->ttl = cfg->registry_ttl != 0 ? cfg->registry_ttl : DV_TTL_DEFAULT;
	return j;
}

/* job_start - the worker on \p j; false: it could not start (j is freed) */
static bool job_start(struct adm_xfer *x, struct adm_xfer_job *j)
{
	x->job = j;
	x->running = true;
	if (pthread_create(&x->thread, NULL, worker, x) != 0) {
		x->running = false;
		x->job = NULL;
		OPENSSL_cleanse(j, sizeof(*j));
		free(j);
		return false;
	}
	return true;
}

/* count_one - js_store_transfer_foreach_pending: count */
static int count_one(const struct js_transfer *t, void *arg)
{
	(void)t;
	(*(size_t *)arg)++;
	return DJ_EOK;
}

int adm_xfer_new(struct admin *a, char *err, size_t errlen)
{
	const struct js_config *cfg = &a->s->peers->cfg;
	struct adm_xfer *x;
	struct adm_xfer_job *j;
	struct ca_server srv;
	struct ca_tsig tsig;
	EVP_PKEY *key = NULL;
	size_t pending = 0;
	int rc;

	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return DJ_ENOMEM;
	x->a = a;
	a->xfer = x;
	x->done_ev = event_new(a->s->base, -1, 0, done_cb, x);
	if (x->done_ev == NULL)
		return DJ_ENOMEM;
	if (!configured(cfg))
		return DJ_EOK;
	/* at start: the registry's files and servers must be usable (as --check-config says) */
	rc = dv_key_read(cfg->registry_key_file, &key);
	EVP_PKEY_free(key);
	if (rc != DJ_EOK) {
		snprintf(err, errlen, "[registry] key_file %s: not a 0600 PEM private key of type "
			 "EC P-256 or Ed25519", cfg->registry_key_file);
		return DJ_ECONFIG;
	}
	rc = ca_server_parse(cfg->registry_ns, &srv, err, errlen);
	if (rc == DJ_EOK)
		rc = ca_tsig_read(cfg->registry_tsig_file, &tsig, err, errlen);
	ca_tsig_clear(&tsig);
	if (rc != DJ_EOK)
		return DJ_ECONFIG;
	dj_notice("admin: transfers by auth code on (registry key %s, DNS updates to %s)",
		  cfg->registry_key_file, cfg->registry_ns);
	/* transfers an earlier run left unfinished: finished now, in the worker */
	if (js_store_transfer_foreach_pending(a->s->store, count_one, &pending) == DJ_EOK &&
	    pending > 0) {
		j = job_new(cfg);
		if (j == NULL)
			return DJ_ENOMEM;
		j->resume_only = true;
		snprintf(j->actor, sizeof(j->actor), "danejoind");
		dj_notice("admin: %zu unfinished transfers: finishing them", pending);
		if (!job_start(x, j))
			dj_warn("admin: cannot start the transfer worker");
	}
	return DJ_EOK;
}

void adm_xfer_free(struct admin *a)
{
	struct adm_xfer *x = a->xfer;

	if (x == NULL)
		return;
	if (x->running) {	/* wait for the worker: the store outlives it */
		pthread_join(x->thread, NULL);
		if (x->job->conn != NULL)
			evhttp_connection_set_closecb(x->job->conn, NULL, NULL);
		OPENSSL_cleanse(x->job, sizeof(*x->job));
		free(x->job);
	}
	if (x->done_ev != NULL)
		event_free(x->done_ev);
	free(x);
	a->xfer = NULL;
}

/* ---- the routes ------------------------------------------------------------------------- */

/* parse_eui - a DevEUI from a path segment or a body field; false: 400 sent */
static bool parse_eui(struct evhttp_request *req, const char *field, const char *text,
		      uint8_t eui[LW_EUI_LEN])
{
	if (text == NULL || strlen(text) != 2 * LW_EUI_LEN ||
	    dj_hex_parse(text, eui, LW_EUI_LEN) != DJ_EOK) {
		adm_error(req, 400, "%s: expected 16 hex digits", field);
		return false;
	}
	return true;
}

/* body_json - the request body as a JSON object (an empty body: {} when \p empty_ok), the
 * body wiped; NULL: 400 sent */
static json_t *body_json(struct evhttp_request *req, bool empty_ok)
{
	size_t len = 0;
	char *body = adm_body(req, &len);
	json_t *j = NULL;

	if (body == NULL) {
		adm_error(req, 413, "the body is too large");
		return NULL;
	}
	if (len == 0 && empty_ok)
		j = json_object();
	else
		j = json_loadb(body, len, 0, NULL);
	OPENSSL_clear_free(body, len);
	if (!json_is_object(j)) {
		json_decref(j);
		adm_error(req, 400, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* only_fields - every key of \p j is one of \p names (NULL-terminated); false: 400 sent */
static bool only_fields(struct evhttp_request *req, json_t *j, const char *const *names)
{
	const char *k;
	json_t *v;

	json_object_foreach(j, k, v) {
		size_t i;

		for (i = 0; names[i] != NULL && strcmp(names[i], k) != 0; i++)
			;
		if (names[i] == NULL) {
			adm_error(req, 400, "%.64s: unknown field", k);
			return false;
		}
	}
	return true;
}

/* reply_code - 201 with the new code: the one answer that ever holds it (wiped after) */
static void reply_code(struct evhttp_request *req, const char *eui, const char *zone,
		       const char *code, int64_t expires_at)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:s}", "dev_eui", eui, "owner", zone, "auth_code",
			      code, "expires_at", (json_int_t)expires_at, "note",
			      "shown once: the registry keeps only a hash");
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	json_decref(j);
	if (text == NULL || b == NULL) {
		free(text);
		if (b != NULL)
			evbuffer_free(b);
		adm_error(req, 500, "out of memory; the auth code is set but lost: set it again");
		return;
	}
	adm_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evbuffer_add(b, text, strlen(text));
	OPENSSL_clear_free(text, strlen(text));
	evhttp_send_reply(req, 201, "Created", b);
	evbuffer_free(b);
}

/* POST /api/v1/devices/{dev_eui}/auth-code {"expires_in": S, "zone": Z} (both optional) */
void adm_r_authcode_set(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
			char **seg, unsigned n)
{
	static const char *const fields[] = { "expires_in", "zone", NULL };
	char owner[JS_ZONE_MAX] = "", zone[DV_ZONE_MAX], code[DV_AUTHCODE_LEN + 1];
	uint8_t eui[LW_EUI_LEN];
	struct js_authcode rec;
	struct dv_xfer_report rep;
	json_int_t ttl = DV_AUTHCODE_TTL_DEFAULT;
	json_t *j, *v;
	uint64_t serial = 0;
	int64_t expires;
	size_t failed = 0;
	int rc;

	(void)n;
	if (!parse_eui(req, "dev_eui", seg[3], eui) || (j = body_json(req, true)) == NULL)
		return;
	if (!only_fields(req, j, fields))
		goto out;
	v = json_object_get(j, "expires_in");
	if (v != NULL) {
		ttl = json_is_integer(v) ? json_integer_value(v) : 0;
		if (ttl < 1 || ttl > DV_AUTHCODE_TTL_MAX) {
			adm_error(req, 400, "expires_in: expected 1 to %d seconds",
				  DV_AUTHCODE_TTL_MAX);
			goto out;
		}
	}
	rc = js_store_owner_head(a->s->store, eui, owner, sizeof(owner), &serial);
	if (rc != DJ_EOK) {
		adm_error(req, rc == DJ_ENOENT ? 404 : 503, "%s", rc == DJ_ENOENT ?
			  "the device is not enrolled with an owner" : dj_strerror(rc));
		goto out;
	}
	v = json_object_get(j, "zone");
	if (v != NULL && (!json_is_string(v) ||
			  dv_zone_normalize(json_string_value(v), zone) != DJ_EOK)) {
		adm_error(req, 400, "zone: not a DNS zone name");
		goto out;
	}
	if (v == NULL)
		snprintf(zone, sizeof(zone), "%s", owner);
	memset(&rec, 0, sizeof(rec));
	expires = js_store_now(a->s->store) + (int64_t)ttl;
	rc = dv_transfer_authcodes(a->s->store, (const uint8_t (*)[LW_EUI_LEN])eui, 1, zone,
				   expires, &code, &rec, &rep);
	if (rc == DJ_EOK && rep.status != DV_XFER_OK) {
		adm_reply_json(req, rep.status == DV_XFER_DENIED ? 409 : 404,
			       json_pack("{s:s}", "error", rep.why));
		goto wipe;
	}
	if (rc == DJ_EOK)
		rc = js_store_authcode_put(a->s->store, &rec, 1, who->actor, &failed);
	if (rc != DJ_EOK) {
		adm_error(req, rc == DJ_ENOENT ? 404 : 503, "no auth code was set: %s",
			  rc == DJ_ENOENT ? "the device is not enrolled" : dj_strerror(rc));
		goto wipe;
	}
	dj_notice("admin: %s set an auth code for %s (owner %s, expires_at %lld)", who->actor,
		  seg[3], owner, (long long)expires);
	reply_code(req, seg[3], owner, code, expires);
wipe:
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(&rec, sizeof(rec));
out:
	json_decref(j);
}

/* DELETE /api/v1/devices/{dev_eui}/auth-code */
void adm_r_authcode_del(struct admin *a, struct evhttp_request *req,
			   const struct adm_who *who, char **seg, unsigned n)
{
	uint8_t eui[LW_EUI_LEN];
	int rc;

	(void)n;
	if (!parse_eui(req, "dev_eui", seg[3], eui))
		return;
	rc = js_store_authcode_revoke(a->s->store, eui, who->actor);
	if (rc == DJ_EOK) {
		dj_notice("admin: %s revoked the auth code of %s", who->actor, seg[3]);
		adm_reply_json(req, 200, json_pack("{s:s}", "revoked", seg[3]));
	} else {
		adm_error(req, rc == DJ_ENOENT ? 404 : 503, "%s", rc == DJ_ENOENT ?
			  "no auth code is set for this device (or it is not enrolled)" :
			  dj_strerror(rc));
	}
}

/* parse_rights - "net_ids": ["000013", ...], "as_ids": ["as.example", ...]; false: 400 sent */
static bool parse_rights(struct evhttp_request *req, json_t *j, struct dv_link *l)
{
	json_t *nets = json_object_get(j, "net_ids"), *ases = json_object_get(j, "as_ids"), *v;
	size_t i;

	if (nets != NULL && (!json_is_array(nets) || json_array_size(nets) > DV_RIGHTS_MAX)) {
		adm_error(req, 400, "net_ids: expected an array of up to %d NetIDs", DV_RIGHTS_MAX);
		return false;
	}
	json_array_foreach(nets, i, v) {
		const char *s = json_string_value(v);

		if (s == NULL || strlen(s) != 2 * DV_NETID_LEN ||
		    dj_hex_parse(s, l->net_ids[i], DV_NETID_LEN) != DJ_EOK) {
			adm_error(req, 400, "net_ids[%zu]: expected 6 hex digits", i);
			return false;
		}
		l->n_net_ids = i + 1;
	}
	if (ases != NULL && (!json_is_array(ases) || json_array_size(ases) > DV_RIGHTS_MAX)) {
		adm_error(req, 400, "as_ids: expected an array of up to %d AS-IDs", DV_RIGHTS_MAX);
		return false;
	}
	json_array_foreach(ases, i, v) {
		const char *s = json_string_value(v);

		if (s == NULL || strlen(s) >= DV_ASID_MAX || !dv_asid_valid(s)) {
			adm_error(req, 400, "as_ids[%zu]: expected an AS-ID (printable, no space, "
				  "comma or quote)", i);
			return false;
		}
		snprintf(l->as_ids[i], sizeof(l->as_ids[i]), "%s", s);
		l->n_as_ids = i + 1;
	}
	return true;
}

/* parse_transfer - the body of POST /transfers into \p jb; false: 400 sent */
static bool parse_transfer(struct evhttp_request *req, json_t *j, struct adm_xfer_job *jb)
{
	static const char *const fields[] = { "dev_eui", "auth_code", "to_zone", "net_ids",
					      "as_ids", NULL };
	const char *eui = json_string_value(json_object_get(j, "dev_eui"));
	const char *code = json_string_value(json_object_get(j, "auth_code"));
	const char *to = json_string_value(json_object_get(j, "to_zone"));
	uint8_t raw[LW_EUI_LEN];

	if (!only_fields(req, j, fields) || !parse_eui(req, "dev_eui", eui, raw))
		return false;
	if (code == NULL || !dv_authcode_wellformed(code)) {
		adm_error(req, 400, "auth_code: expected the %d-character code that was set",
			  DV_AUTHCODE_LEN);
		return false;
	}
	if (to == NULL || dv_zone_normalize(to, jb->to) != DJ_EOK) {
		adm_error(req, 400, "to_zone: not a DNS zone name");
		return false;
	}
	if (!parse_rights(req, j, &jb->rights))
		return false;
	dj_hex_format(raw, LW_EUI_LEN, jb->eui);
	snprintf(jb->line, sizeof(jb->line), "%s,%s", jb->eui, code);
	return true;
}

/* POST /api/v1/transfers {"dev_eui", "auth_code", "to_zone", "net_ids", "as_ids"} */
void adm_r_transfer(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
		    char **seg, unsigned n)
{
	const struct js_config *cfg = &a->s->peers->cfg;
	struct adm_xfer *x = a->xfer;
	struct adm_xfer_job *jb;
	uint8_t eui[LW_EUI_LEN];
	uint64_t serial = 0;
	json_t *j;
	int rc;

	(void)seg, (void)n;
	if (!configured(cfg)) {
		adm_error(req, 503, "transfers by auth code are not configured: set [registry] "
			  "key_file, ns and tsig_file (docs/admin-api.md)");
		return;
	}
	if (x->running) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
				  XFER_RETRY_S);
		adm_error(req, 503, "another transfer is running; retry in a moment");
		return;
	}
	j = body_json(req, false);
	if (j == NULL)
		return;
	jb = job_new(cfg);
	if (jb == NULL) {
		json_decref(j);
		adm_error(req, 500, "out of memory");
		return;
	}
	if (!parse_transfer(req, j, jb)) {
		json_decref(j);
		OPENSSL_cleanse(jb, sizeof(*jb));
		free(jb);
		return;
	}
	json_decref(j);
	if (dj_hex_parse(jb->eui, eui, LW_EUI_LEN) == DJ_EOK)
		rc = js_store_owner_head(a->s->store, eui, jb->from, sizeof(jb->from), &serial);
	else
		rc = DJ_EINVAL;
	if (rc != DJ_EOK) {
		adm_error(req, rc == DJ_ENOENT ? 404 : 503, "%s", rc == DJ_ENOENT ?
			  "the device is not enrolled with an owner" : dj_strerror(rc));
		OPENSSL_cleanse(jb, sizeof(*jb));
		free(jb);
		return;
	}
	snprintf(jb->actor, sizeof(jb->actor), "%s", who->actor);
	jb->req = req;
	jb->conn = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(jb->conn, client_gone, x);
	if (!job_start(x, jb)) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
		adm_error(req, 503, "cannot start the transfer worker");
	}
}
