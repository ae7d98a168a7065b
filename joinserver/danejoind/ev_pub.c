/*
 * ev_pub.c - the MQTT publisher: outbox rows to the broker with QoS 1, deleted after PUBACK.
 *
 * PURPOSE
 *	One thread (pub_main) owns a libmosquitto client and everything below; the only state
 *	shared with other threads is atomic (the "new rows" kick from the store's committer, the
 *	figures for metrics, and the delete-in-flight flag). Each connection is a fresh client:
 *	libmosquitto's own queue of unacknowledged messages is thrown away with it, and the outbox,
 *	which still holds every unacknowledged row, is read again from its first row. The cursor
 *	(the last row id published on this connection) keeps a connection from publishing a row
 *	twice; a reconnect resets it. Acknowledged ids are deleted in batches through the store's
 *	group commit (JS_COMMIT_OUTBOX_DONE), so deletions share the joins' fsyncs.
 *
 * SECURITY
 *	- TLS to the broker, verify = cafile: the broker's chain is checked against cafile and its
 *	  name against host (libmosquitto with tls_insecure false); our certificate and key
 *	  authenticate us.
 *	- verify = dane (RFC 6698, RFC 7671; DESIGN.md rule 1): before every connect the TLSA RRset
 *	  _<port>._tcp.<host> is looked up on this thread's own event base and resolver. Only a
 *	  DNSSEC-secure answer with DANE-TA/EE records lets the connect go ahead; insecure, bogus,
 *	  absent or failed lookups are connect failures (logged, retried with backoff), never a
 *	  reason to trust something else. libmosquitto then uses our SSL_CTX (MOSQ_OPT_SSL_CTX,
 *	  without libmosquitto's defaults): it has no trust store, and its verify callback decides
 *	  at depth 0 with da_tls_verify() on the chain the broker sent and the records of this
 *	  connect. A certificate verify hook checks afterwards that the DANE verdict was reached
 *	  and positive, so no path through OpenSSL's verifier can accept the broker without it.
 *	  Records are fetched anew for each connect (through the resolver's TTL-bounded cache), so
 *	  a rolled broker key is picked up by the next reconnect.
 *	- Payloads hold AppSKeys only wrapped under an AS's KEK (ev_join.c, ev_event.c); they are
 *	  wiped after use all the same. Nothing secret is logged: ids, topics and TLS errors only.
 *	- A failing broker never blocks a join: the outbox takes events (bounded by outbox_max,
 *	  see js_store.h), this thread retries.
 */
#include "ev_pub.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "backend-auth/da_tls.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_log.h"
#include "common/dj_thread.h"
#include "engine/js_config.h"

#define PUB_WINDOW 512		/* published rows waiting for PUBACK, at most */
#define PUB_FETCH 64		/* rows read from the outbox at once */
#define PUB_ACK_CAP (4 * PUB_WINDOW)	/* acknowledged ids waiting for their delete */
#define PUB_LOOP_MS 10		/* mosquitto_loop() wait: the latency of an idle publisher */
#define PUB_POLL_MS 1000	/* look at the outbox this often even without a kick: rows other
				 * processes wrote (danejoin-devices' ownership events) */
#define PUB_CONNACK_MS 10000	/* a connection without CONNACK by then is dropped */
#define PUB_STOP_WAIT_MS 5000	/* at exit, wait this long for the last delete */
#define PUB_ERR_MAX 256
#define MQTT_RC_FAILURE 0x80	/* MQTT v5 §2.4: reason codes >= 0x80 are failures */
#define PUB_EVENT_ID_PROP "event-id"
#define PUB_DANE_ERR_MAX 640	/* why DANE refused: the TLSA name and OpenSSL's reason */
#define PUB_SESSION_ERR_MAX 1024	/* a connect failure's line */
#define PUB_TLSA_MAX 16		/* TLSA records kept for one connect */
#define PUB_TLSA_NAME_MAX (DA_NAME_MAX + 16)	/* "_<port>._tcp." + host */
#define NS_PER_MS 1000000L
#define MS_PER_S 1000

struct inflight {
	int mid;
	int64_t id;
};

struct ev_pub {
	struct ev_pub_props props;	/* strings are owned copies */
	char *host, *address, *cafile, *cert, *key, *client_id, *prefix;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;		/* with cond: the stop flag and backoff sleeps */
	pthread_cond_t cond;
	bool sync_init;
	bool stop;

	atomic_bool kick;		/* the store committed new rows */
	atomic_bool del_busy;		/* a delete commit is in the store's queue */
	_Atomic uint64_t published, connects, connect_failures, render_failures;
	atomic_bool connected;
	atomic_uint inflight_n;

	/* verify = dane; used on the publisher thread only once it runs */
	struct event_base *base;
	struct da_resolver *res;
	SSL_CTX *ssl_ctx;		/* the broker's handshakes: verify_cb below */
	SSL_CTX *vctx;			/* da_tls_verify()'s context (DANE enabled) */
	char tlsa_name[PUB_TLSA_NAME_MAX];
	struct da_tlsa rr[PUB_TLSA_MAX];	/* this connect's records; data owned */
	size_t n_rr;
	bool tlsa_done;			/* the lookup's callback ran */
	enum da_status tlsa_status;
	char tlsa_why[DA_WHY_MAX];
	int dane_state;			/* this handshake: 0 not checked, 1 matched, -1 refused */
	char dane_err[PUB_DANE_ERR_MAX];	/* why the broker was refused */

	/* publisher thread only */
	struct mosquitto *mosq;
	bool up;			/* CONNACK success on this connection */
	bool lost;			/* the connection is gone or refused */
	char last_err[PUB_ERR_MAX];	/* the last error libmosquitto logged (TLS detail) */
	int64_t cursor;			/* the last row id published on this connection */
	bool more;			/* the last fetch filled its page */
	struct inflight inf[PUB_WINDOW];
	unsigned n_inf;
	int64_t *acks;			/* acknowledged, delete not yet submitted */
	unsigned n_acks;
	int64_t *del_ids;		/* in the delete commit (owned by it while del_busy) */
	struct js_commit *del;
	uint8_t instance[JS_INSTANCE_ID_LEN];
	struct js_outbox_row rows[PUB_FETCH];
};

/* stopping - whether ev_pub_free() asked the thread to stop */
static bool stopping(struct ev_pub *p)
{
	bool s;

	pthread_mutex_lock(&p->lock);
	s = p->stop;
	pthread_mutex_unlock(&p->lock);
	return s;
}

/* nap - sleep \p ms, or less if stopped */
static void nap(struct ev_pub *p, unsigned ms)
{
	/* pthread_cond_timedwait() takes a CLOCK_REALTIME deadline */
	int64_t until = dj_clock_real_ms() + ms;
	struct timespec t = { until / MS_PER_S, (long)(until % MS_PER_S) * NS_PER_MS };

	pthread_mutex_lock(&p->lock);
	while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &t) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&p->lock);
}

/* store_kick - outbox hook (committer thread): new rows to publish */
static void store_kick(void *arg)
{
	atomic_store(&((struct ev_pub *)arg)->kick, true);
}

/* del_done - the delete commit is durable (or failed: those rows are published again later) */
static void del_done(struct js_commit *c, void *arg)
{
	struct ev_pub *p = arg;

	if (c->result != DJ_EOK)
		dj_warn("mqtt: deleting %u delivered events from the outbox failed: %s; they will "
			"be published again", c->n_done_ids, dj_strerror(c->result));
	atomic_store(&p->del_busy, false);
}

/* flush_acks - hand the acknowledged ids to the store for deletion, one commit at a time */
static void flush_acks(struct ev_pub *p)
{
	int64_t *t;

	if (p->n_acks == 0 || atomic_load(&p->del_busy))
		return;
	t = p->del_ids;
	p->del_ids = p->acks;
	p->acks = t;
	memset(p->del, 0, sizeof(*p->del));
	p->del->kind = JS_COMMIT_OUTBOX_DONE;
	p->del->done_ids = p->del_ids;
	p->del->n_done_ids = p->n_acks;
	p->del->done = del_done;
	p->del->done_arg = p;
	p->n_acks = 0;
	atomic_store(&p->del_busy, true);
	if (js_store_submit(p->props.store, p->del) != DJ_EOK) {
		atomic_store(&p->del_busy, false);
		dj_warn("mqtt: the store refused a delete of delivered events; they will be "
			"published again");
	}
}

/* acked - whether row \p id was acknowledged and waits for its delete */
static bool acked(struct ev_pub *p, int64_t id)
{
	for (unsigned i = 0; i < p->n_acks; i++)
		if (p->acks[i] == id)
			return true;
	if (atomic_load(&p->del_busy))
		for (unsigned i = 0; i < p->del->n_done_ids; i++)
			if (p->del_ids[i] == id)
				return true;
	return false;
}

/* on_log - libmosquitto's log: keep the last error (TLS verification detail) for our lines */
static void on_log(struct mosquitto *m, void *arg, int level, const char *msg)
{
	struct ev_pub *p = arg;

	(void)m;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		snprintf(p->last_err, sizeof(p->last_err), "%s", msg);
	dj_debug("mqtt: libmosquitto: %s", msg);
}

/* on_connect - CONNACK */
static void on_connect(struct mosquitto *m, void *arg, int rc, int flags,
		       const mosquitto_property *props)
{
	struct ev_pub *p = arg;

	(void)m;
	(void)flags;
	(void)props;
	if (rc != 0) {
		snprintf(p->last_err, sizeof(p->last_err), "broker refused the connection: %s",
			 mosquitto_reason_string(rc));
		p->lost = true;
		return;
	}
	p->up = true;
}

/* on_disconnect - the connection is gone */
static void on_disconnect(struct mosquitto *m, void *arg, int rc, const mosquitto_property *props)
{
	struct ev_pub *p = arg;

	(void)m;
	(void)props;
	if (rc != 0 && p->last_err[0] == '\0')
		snprintf(p->last_err, sizeof(p->last_err), "%s", mosquitto_strerror(rc));
	p->lost = true;
}

/* on_publish - PUBACK for mid: the row may be deleted */
static void on_publish(struct mosquitto *m, void *arg, int mid, int reason,
		       const mosquitto_property *props)
{
	struct ev_pub *p = arg;
	unsigned i;

	(void)m;
	(void)props;
	for (i = 0; i < p->n_inf && p->inf[i].mid != mid; i++)
		;
	if (i == p->n_inf)
		return;
	if (reason >= MQTT_RC_FAILURE) {
		/* kept: published again after the next reconnect */
		dj_err("mqtt: the broker refused event row %lld: %s", (long long)p->inf[i].id,
		       mosquitto_reason_string(reason));
	} else {
		p->acks[p->n_acks++] = p->inf[i].id;	/* room: pump() keeps n_inf + n_acks <= cap */
		atomic_fetch_add(&p->published, 1);
	}
	p->inf[i] = p->inf[--p->n_inf];
	atomic_store(&p->inflight_n, p->n_inf);
}

/* publish_row - render and publish one row; false when the connection failed */
static bool publish_row(struct ev_pub *p, const struct js_outbox_row *r)
{
	char id[EV_ID_MAX], topic[EV_TOPIC_MAX];
	mosquitto_property *props = NULL;
	uint8_t *payload = NULL;
	size_t len = 0;
	int mid = 0, rc;

	ev_event_id(p->instance, r->id, id);
	rc = ev_render(r->body, r->len, id, p->prefix, p->props.format, topic, sizeof(topic),
		       &payload, &len);
	if (rc != DJ_EOK) {
		/* a row no later code can read: drop it rather than block on it forever */
		dj_err("mqtt: outbox row %lld does not decode (%s): deleted unpublished",
		       (long long)r->id, dj_strerror(rc));
		atomic_fetch_add(&p->render_failures, 1);
		p->acks[p->n_acks++] = r->id;
		return true;
	}
	rc = mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, PUB_EVENT_ID_PROP,
						id);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_publish_v5(p->mosq, &mid, topic, (int)len, payload, 1, false, props);
	mosquitto_property_free_all(&props);
	ev_payload_free(payload, len);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(p->last_err, sizeof(p->last_err), "publish: %s", mosquitto_strerror(rc));
		p->lost = true;
		return false;
	}
	p->inf[p->n_inf].mid = mid;
	p->inf[p->n_inf].id = r->id;
	p->n_inf++;
	atomic_store(&p->inflight_n, p->n_inf);
	return true;
}

/* pump - publish outbox rows while the window has room */
static void pump(struct ev_pub *p)
{
	while (!p->lost && p->n_inf < PUB_WINDOW && p->n_inf + p->n_acks + PUB_FETCH <= PUB_ACK_CAP) {
		size_t want = PUB_WINDOW - p->n_inf, n = 0;
		int rc;

		if (!p->more && !atomic_exchange(&p->kick, false))
			return;
		if (want > PUB_FETCH)
			want = PUB_FETCH;
		rc = js_store_outbox_fetch(p->props.store, p->cursor, p->rows, want, &n);
		if (rc != DJ_EOK) {
			dj_warn("mqtt: reading the outbox: %s", dj_strerror(rc));
			p->more = false;
			return;
		}
		p->more = n == want;
		for (size_t i = 0; i < n; i++) {
			if (!acked(p, p->rows[i].id) && !publish_row(p, &p->rows[i]))
				break;
			p->cursor = p->rows[i].id;
		}
		OPENSSL_cleanse(p->rows, n * sizeof(p->rows[0]));
	}
}

/* tlsa_clear - forget this connect's records */
static void tlsa_clear(struct ev_pub *p)
{
	for (size_t i = 0; i < p->n_rr; i++)
		free((void *)(uintptr_t)p->rr[i].data);
	memset(p->rr, 0, sizeof(p->rr));
	p->n_rr = 0;
}

/* on_tlsa - the resolver's verdict on the broker's TLSA name: keep a copy of the records */
static void on_tlsa(const struct da_tlsa_set *set, void *arg)
{
	struct ev_pub *p = arg;
	uint8_t *d;

	p->tlsa_done = true;
	p->tlsa_status = set->status;
	snprintf(p->tlsa_why, sizeof(p->tlsa_why), "%s", set->why != NULL ? set->why : "");
	if (set->status != DA_SECURE)
		return;
	for (size_t i = 0; i < set->n && p->n_rr < PUB_TLSA_MAX; i++) {
		d = malloc(set->rr[i].len > 0 ? set->rr[i].len : 1);
		if (d == NULL) {
			p->tlsa_status = DA_TEMPFAIL;	/* not secure enough to use: retried */
			snprintf(p->tlsa_why, sizeof(p->tlsa_why), "out of memory");
			return;
		}
		memcpy(d, set->rr[i].data, set->rr[i].len);
		p->rr[p->n_rr] = set->rr[i];
		p->rr[p->n_rr].data = d;
		p->n_rr++;
	}
}

/* tlsa_fetch - the broker's TLSA records for this connect; false (with err) unless secure */
static bool tlsa_fetch(struct ev_pub *p, char *err, size_t errlen)
{
	int rc;

	tlsa_clear(p);
	p->tlsa_done = false;
	p->tlsa_status = DA_TEMPFAIL;
	p->tlsa_why[0] = '\0';
	rc = da_tlsa_lookup(p->res, p->tlsa_name, on_tlsa, p, NULL);
	if (rc == DJ_EOK && !p->tlsa_done)
		rc = da_resolver_wait(p->res);
	if (rc != DJ_EOK || !p->tlsa_done) {
		snprintf(err, errlen, "TLSA %s: lookup failed: %s", p->tlsa_name,
			 dj_strerror(rc != DJ_EOK ? rc : DJ_EIO));
		return false;
	}
	if (p->tlsa_status != DA_SECURE || p->n_rr == 0) {
		snprintf(err, errlen, "TLSA %s: %s (only a DNSSEC-secure TLSA RRset "
			 "authenticates the broker)", p->tlsa_name,
			 p->tlsa_why[0] ? p->tlsa_why : da_status_str(p->tlsa_status));
		return false;
	}
	return true;
}

/* verify_cb - OpenSSL's per-certificate callback for the broker's chain: above the leaf,
 *             PKIX findings do not matter (there is no trust store; DANE decides); at the
 *             leaf, da_tls_verify() against this connect's records, once per handshake */
static int verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct ev_pub *p = ssl != NULL ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
	struct da_verdict v;
	X509 *leaf;

	(void)preverify_ok;
	if (p == NULL)
		return 0;
	if (X509_STORE_CTX_get_error_depth(xs) > 0)
		return 1;
	if (p->dane_state == 0) {
		p->dane_state = -1;
		leaf = X509_STORE_CTX_get_current_cert(xs);
		if (leaf == NULL) {
			snprintf(p->dane_err, sizeof(p->dane_err), "DANE: no broker certificate");
		} else if (da_tls_verify(p->vctx, leaf, X509_STORE_CTX_get0_untrusted(xs),
					 p->host, p->rr, p->n_rr, DA_PEER_SERVER, &v) != DJ_EOK) {
			snprintf(p->dane_err, sizeof(p->dane_err), "DANE: the check itself failed "
				 "(out of memory or OpenSSL)");
		} else if (!v.ok) {
			snprintf(p->dane_err, sizeof(p->dane_err), "DANE: the broker's certificate "
				 "does not match TLSA %s (%zu record%s): %s", p->tlsa_name, p->n_rr,
				 p->n_rr == 1 ? "" : "s", v.why);
		} else {
			p->dane_state = 1;
			dj_debug("mqtt: broker matched TLSA %s %d %d %d at depth %d", p->tlsa_name,
				 v.usage, v.selector, v.mtype, v.depth);
		}
	}
	if (p->dane_state != 1)
		X509_STORE_CTX_set_error(xs, X509_V_ERR_DANE_NO_MATCH);
	return p->dane_state == 1;
}

/* cert_verify - the whole chain check: OpenSSL's verifier (with verify_cb), and then the DANE
 *               verdict itself, so that the broker is never accepted without a TLSA match */
static int cert_verify(X509_STORE_CTX *xs, void *arg)
{
	struct ev_pub *p = arg;
	int ok = X509_verify_cert(xs);

	if (ok > 0 && p->dane_state != 1) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_DANE_NO_MATCH);
		if (p->dane_err[0] == '\0')
			snprintf(p->dane_err, sizeof(p->dane_err), "DANE: the broker's certificate "
				 "was not checked against TLSA %s", p->tlsa_name);
		return 0;
	}
	return ok > 0;
}

/* dane_setup - verify = dane: the resolver on our own event base, our TLS contexts (with our
 *              client certificate), the TLSA owner name */
static int dane_setup(struct ev_pub *p, char *err, size_t errlen)
{
	char why[PUB_ERR_MAX];
	int rc;

	if (snprintf(p->tlsa_name, sizeof(p->tlsa_name), "_%u._tcp.%s", p->props.port, p->host) >=
	    (int)sizeof(p->tlsa_name)) {
		snprintf(err, errlen, "[mqtt] host: too long for a TLSA name");
		return DJ_ECONFIG;
	}
	p->base = event_base_new();
	if (p->base == NULL)
		return DJ_ENOMEM;
	rc = da_resolver_new(p->base, &p->props.dane, &p->res, why, sizeof(why));
	if (rc != DJ_EOK) {
		snprintf(err, errlen, "[mqtt] verify = dane: [dane] resolver: %s", why);
		return rc;
	}
	p->ssl_ctx = SSL_CTX_new(TLS_client_method());
	p->vctx = SSL_CTX_new(TLS_client_method());
	if (p->ssl_ctx == NULL || p->vctx == NULL)
		return DJ_ENOMEM;
	if (da_tls_ctx_enable(p->vctx) != DJ_EOK ||
	    SSL_CTX_set_min_proto_version(p->ssl_ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "mqtt: cannot set up TLS for DANE");
		return DJ_ECRYPTO;
	}
	if (p->cert != NULL &&
	    (SSL_CTX_use_certificate_chain_file(p->ssl_ctx, p->cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(p->ssl_ctx, p->key, SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(p->ssl_ctx) != 1)) {
		snprintf(err, errlen, "[mqtt] cert, key: %s (files readable? a pair?)",
			 dj_openssl_reason());
		ERR_clear_error();
		return DJ_ECONFIG;
	}
	SSL_CTX_set_app_data(p->ssl_ctx, p);
	SSL_CTX_set_verify(p->ssl_ctx, SSL_VERIFY_PEER, verify_cb);
	SSL_CTX_set_cert_verify_callback(p->ssl_ctx, cert_verify, p);
	return DJ_EOK;
}

void ev_pub_props_dane(struct ev_pub_props *pp, const struct js_config *cfg)
{
	pp->verify_dane = cfg->mqtt_verify != NULL && strcmp(cfg->mqtt_verify, "dane") == 0;
	pp->address = cfg->mqtt_address;
	memset(&pp->dane, 0, sizeof(pp->dane));
	pp->dane.ta_file = cfg->dane_trust_anchor_file;
	pp->dane.auto_ta_file = cfg->dane_auto_trust_anchor_file;
	pp->dane.builtin_root = (int)cfg->dane_root_anchor;
	pp->dane.stubs = cfg->dane_stubs;
	pp->dane.forwarders = cfg->dane_forwarders;
	pp->dane.cache_max = cfg->dane_cache_max;
	pp->dane.ttl_cap = cfg->dane_ttl_cap;
	pp->dane.neg_ttl = cfg->dane_neg_ttl;
	pp->dane.timeout_ms = cfg->dane_timeout_ms;
}

/* client_new - a fresh libmosquitto client: MQTT v5, TLS with our files, our callbacks */
static int client_new(struct ev_pub *p, struct mosquitto **out, char *err, size_t errlen)
{
	struct mosquitto *m = mosquitto_new(p->client_id, true, p);
	int rc;

	if (m == NULL) {
		snprintf(err, errlen, "mqtt: out of memory");
		return DJ_ENOMEM;
	}
	rc = mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	if (p->props.verify_dane) {
		/* our context as it is: no CA file, no libmosquitto verify callback */
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_int_option(m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_void_option(m, MOSQ_OPT_SSL_CTX, p->ssl_ctx);
		if (rc != MOSQ_ERR_SUCCESS) {
			snprintf(err, errlen, "mqtt: cannot use our TLS context: %s",
				 mosquitto_strerror(rc));
			mosquitto_destroy(m);
			return DJ_ECRYPTO;
		}
	}
	if (!p->props.verify_dane && rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_set(m, p->cafile, NULL, p->cert, p->key, NULL);
	if (!p->props.verify_dane && rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_opts_set(m, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(err, errlen, "[mqtt] cafile, cert, key: %s (files readable? cert and key "
			 "a pair?)", mosquitto_strerror(rc));
		mosquitto_destroy(m);
		return DJ_ECONFIG;
	}
	mosquitto_log_callback_set(m, on_log);
	mosquitto_connect_v5_callback_set(m, on_connect);
	mosquitto_disconnect_v5_callback_set(m, on_disconnect);
	mosquitto_publish_v5_callback_set(m, on_publish);
	*out = m;
	return DJ_EOK;
}

/* session - one connection, from connect until it is lost or we stop; true if it came up */
static bool session(struct ev_pub *p)
{
	char err[PUB_SESSION_ERR_MAX];
	uint64_t started = dj_clock_mono_ms(), polled = started;
	bool was_up = false;
	int rc;

	p->up = p->lost = false;
	p->last_err[0] = '\0';
	p->cursor = 0;
	p->more = true;
	p->n_inf = 0;
	atomic_store(&p->inflight_n, 0);
	p->dane_state = 0;
	p->dane_err[0] = '\0';
	if (p->props.verify_dane && !tlsa_fetch(p, err, sizeof(err))) {
		atomic_fetch_add(&p->connect_failures, 1);
		dj_err("mqtt: cannot connect to %s:%u: %s; events stay in the outbox", p->host,
		       p->props.port, err);
		return false;
	}
	if (client_new(p, &p->mosq, err, sizeof(err)) != DJ_EOK) {
		dj_err("mqtt: %s", err);
		atomic_fetch_add(&p->connect_failures, 1);
		return false;
	}
	rc = mosquitto_connect_bind_v5(p->mosq, p->address != NULL ? p->address : p->host,
				       (int)p->props.port, (int)p->props.keepalive, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(err, sizeof(err), "%s%s%s", mosquitto_strerror(rc),
			 p->last_err[0] || p->dane_err[0] ? ": " : "",
			 p->dane_err[0] ? p->dane_err : p->last_err);
		p->lost = true;
	}
	while (!p->lost && !stopping(p)) {
		rc = mosquitto_loop(p->mosq, PUB_LOOP_MS, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			snprintf(err, sizeof(err), "%s%s%s", mosquitto_strerror(rc),
				 p->last_err[0] || p->dane_err[0] ? ": " : "",
				 p->dane_err[0] ? p->dane_err : p->last_err);
			p->lost = true;
			break;
		}
		if (p->lost) {
			snprintf(err, sizeof(err), "%s", p->last_err[0] ? p->last_err : "closed");
			break;
		}
		if (!p->up) {
			if (dj_clock_mono_ms() - started > PUB_CONNACK_MS) {
				snprintf(err, sizeof(err), "no CONNACK within %d ms", PUB_CONNACK_MS);
				p->lost = true;
			}
			continue;
		}
		if (!was_up) {
			was_up = true;
			atomic_store(&p->connected, true);
			atomic_fetch_add(&p->connects, 1);
			if (p->props.verify_dane)
				dj_notice("mqtt: connected to %s:%u (TLS, broker verified by DANE, "
					  "TLSA %s); publishing the outbox", p->host,
					  p->props.port, p->tlsa_name);
			else
				dj_notice("mqtt: connected to %s:%u (TLS, broker certificate "
					  "verified); publishing the outbox", p->host,
					  p->props.port);
		}
		if (dj_clock_mono_ms() - polled >= PUB_POLL_MS) {
			polled = dj_clock_mono_ms();
			atomic_store(&p->kick, true);	/* one indexed query a second */
		}
		pump(p);
		flush_acks(p);
	}
	if (p->lost) {
		if (was_up) {
			dj_err("mqtt: connection to %s:%u lost: %s; %u events unacknowledged stay "
			       "in the outbox", p->host, p->props.port, err, p->n_inf);
		} else {
			atomic_fetch_add(&p->connect_failures, 1);
			dj_err("mqtt: cannot connect to %s:%u: %s; events stay in the outbox",
			       p->host, p->props.port, err);
		}
	} else if (p->up) {
		(void)mosquitto_disconnect_v5(p->mosq, 0, NULL);
	}
	atomic_store(&p->connected, false);
	mosquitto_destroy(p->mosq);	/* its queue of unacknowledged messages goes with it */
	p->mosq = NULL;
	p->n_inf = 0;
	atomic_store(&p->inflight_n, 0);
	return was_up;
}

/* pub_main - the publisher thread: sessions, with bounded exponential backoff between them */
static void *pub_main(void *arg)
{
	struct ev_pub *p = arg;
	unsigned delay = p->props.backoff_min_ms;
	uint64_t t0;

	dj_thread_name("mqtt publisher");	/* /proc/PID/task/TID/comm, top -H */
	while (!stopping(p)) {
		if (session(p))
			delay = p->props.backoff_min_ms;
		if (stopping(p))
			break;
		dj_info("mqtt: reconnecting in %u ms", delay);
		nap(p, delay);
		delay = delay > p->props.backoff_max_ms / 2 ? p->props.backoff_max_ms : delay * 2;
	}
	/* hand over the last acknowledgements: fewer duplicates after a restart */
	t0 = dj_clock_mono_ms();
	while (dj_clock_mono_ms() - t0 < PUB_STOP_WAIT_MS &&
	       (p->n_acks > 0 || atomic_load(&p->del_busy))) {
		flush_acks(p);
		if (atomic_load(&p->del_busy)) {
			struct timespec ts = { 0, NS_PER_MS };

			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

/* dup_opt - strdup of an optional string; false when out of memory */
static bool dup_opt(const char *s, char **out)
{
	*out = s != NULL ? strdup(s) : NULL;
	return s == NULL || *out != NULL;
}

void ev_pub_free(struct ev_pub *p)
{
	struct timespec ts = { 0, NS_PER_MS };

	if (p == NULL)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		js_store_set_outbox_notify(p->props.store, NULL, NULL);
		while (atomic_load(&p->del_busy))	/* the store runs its done callback soon */
			nanosleep(&ts, NULL);
	}
	if (p->sync_init) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
	}
	tlsa_clear(p);
	da_resolver_free(p->res);
	if (p->base != NULL)
		event_base_free(p->base);
	SSL_CTX_free(p->ssl_ctx);
	SSL_CTX_free(p->vctx);
	free(p->host);
	free(p->address);
	free(p->cafile);
	free(p->cert);
	free(p->key);
	free(p->client_id);
	free(p->prefix);
	free(p->acks);
	free(p->del_ids);
	free(p->del);
	OPENSSL_clear_free(p, sizeof(*p));
	mosquitto_lib_cleanup();
}

int ev_pub_new(const struct ev_pub_props *props, struct ev_pub **out, char *err, size_t errlen)
{
	struct ev_pub *p = NULL;
	struct mosquitto *probe = NULL;
	int ret = DJ_EINVAL;

	if (props == NULL || props->host == NULL || (props->cafile == NULL && !props->verify_dane) ||
	    props->client_id == NULL || props->topic_prefix == NULL || props->store == NULL ||
	    props->backoff_min_ms == 0 || props->backoff_min_ms > props->backoff_max_ms) {
		snprintf(err, errlen, "mqtt: incomplete settings");
		return DJ_EINVAL;
	}
	mosquitto_lib_init();
	ret = DJ_ENOMEM;
	p = OPENSSL_zalloc(sizeof(*p));
	if (p == NULL) {
		mosquitto_lib_cleanup();
		snprintf(err, errlen, "mqtt: out of memory");
		return DJ_ENOMEM;
	}
	p->props = *props;
	if (!dup_opt(props->host, &p->host) || !dup_opt(props->address, &p->address) ||
	    !dup_opt(props->cafile, &p->cafile) ||
	    !dup_opt(props->cert, &p->cert) || !dup_opt(props->key, &p->key) ||
	    !dup_opt(props->client_id, &p->client_id) || !dup_opt(props->topic_prefix, &p->prefix))
		goto nomem;
	p->acks = calloc(PUB_ACK_CAP, sizeof(*p->acks));
	p->del_ids = calloc(PUB_ACK_CAP, sizeof(*p->del_ids));
	p->del = calloc(1, sizeof(*p->del));
	if (p->acks == NULL || p->del_ids == NULL || p->del == NULL)
		goto nomem;
	if (pthread_mutex_init(&p->lock, NULL) != 0)
		goto nomem;
	if (pthread_cond_init(&p->cond, NULL) != 0) {
		pthread_mutex_destroy(&p->lock);
		goto nomem;
	}
	p->sync_init = true;
	js_store_instance_id(props->store, p->instance);
	memset(&p->props.dane, 0, sizeof(p->props.dane));	/* borrowed strings: not kept */
	if (props->verify_dane) {
		p->props.dane = props->dane;
		ret = dane_setup(p, err, errlen);
		memset(&p->props.dane, 0, sizeof(p->props.dane));
		if (ret == DJ_ENOMEM)
			goto nomem;
		if (ret != DJ_EOK)
			goto out;
	}
	/* the TLS files are checked now, so that a bad path is a configuration error at start */
	ret = client_new(p, &probe, err, errlen);
	mosquitto_destroy(probe);
	if (ret != DJ_EOK)
		goto out;
	atomic_store(&p->kick, true);
	js_store_set_outbox_notify(props->store, store_kick, p);
	if (pthread_create(&p->thread, NULL, pub_main, p) != 0) {
		js_store_set_outbox_notify(props->store, NULL, NULL);
		goto nomem;
	}
	p->started = true;
	*out = p;
	return DJ_EOK;
nomem:
	ret = DJ_ENOMEM;
	snprintf(err, errlen, "mqtt: out of memory");
out:
	ev_pub_free(p);
	return ret;
}

void ev_pub_stats(struct ev_pub *p, struct ev_pub_stats *out)
{
	out->published = atomic_load(&p->published);
	out->connects = atomic_load(&p->connects);
	out->connect_failures = atomic_load(&p->connect_failures);
	out->render_failures = atomic_load(&p->render_failures);
	out->connected = atomic_load(&p->connected);
	out->inflight = atomic_load(&p->inflight_n);
}
