/*
 * svc.c - the lifecycle of danejoind's Backend Interfaces service: start, reload, drain, stop.
 *
 * The service's work is split along its seams (svc_internal.h): peers.c (who may do what),
 * pipeline.c (the request path), deliver.c (where answers leave, TS002 §8), metrics.c. This
 * file wires them together: the configuration and its resolver, the key store, the store and
 * the join engine, the MQTT publisher, the HTTPS server, and the housekeeping timers. A reload
 * (SIGHUP) swaps the peer table and the TLS material and keeps everything else; a drain
 * (SIGTERM) waits for every request in flight and every asynchronous answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "backend-auth/da_dns.h"
#include "backend-auth/da_tls.h"
#include "common/dj_err.h"
#include "common/dj_log.h"
#include "admin.h"
#include "ev_pub.h"
#include "ownership/js_owner.h"
#include "svc.h"
#include "svc_internal.h"

#define SESSION_SWEEP_SECONDS 60	/* how often expired sessions are deleted */
#define DRAIN_POLL_US 20000		/* how often a drain looks for requests still in flight */

void svc__resolver_props(const struct js_config *cfg, struct da_resolver_props *rp)
{
	memset(rp, 0, sizeof(*rp));
	rp->ta_file = cfg->dane_trust_anchor_file;
	rp->auto_ta_file = cfg->dane_auto_trust_anchor_file;
	rp->builtin_root = (int)cfg->dane_root_anchor;
	rp->stubs = cfg->dane_stubs;
	rp->forwarders = cfg->dane_forwarders;
	rp->cache_max = cfg->dane_cache_max;
	rp->ttl_cap = cfg->dane_ttl_cap;
	rp->neg_ttl = cfg->dane_neg_ttl;
	rp->timeout_ms = cfg->dane_timeout_ms;
}

/* events_start - [mqtt] on: the publisher, reading the store's outbox */
static int events_start(struct svc *s, const struct js_config *cfg, char *err, size_t errlen)
{
	struct ev_pub_props pp;

	if (!cfg->mqtt)
		return DJ_EOK;
	memset(&pp, 0, sizeof(pp));
	pp.host = cfg->mqtt_host;
	pp.port = cfg->mqtt_port;
	pp.cafile = cfg->mqtt_cafile;
	ev_pub_props_dane(&pp, cfg);	/* verify = dane: [mqtt] address and [dane] */
	pp.cert = cfg->mqtt_cert;
	pp.key = cfg->mqtt_key;
	pp.client_id = cfg->mqtt_client_id;
	pp.topic_prefix = cfg->mqtt_topic_prefix;
	pp.format = strcmp(cfg->mqtt_payload_format, "json") == 0 ? EV_FORMAT_JSON
								   : EV_FORMAT_PROTOBUF;
	pp.keepalive = cfg->mqtt_keepalive;
	pp.backoff_min_ms = cfg->mqtt_backoff_min_ms;
	pp.backoff_max_ms = cfg->mqtt_backoff_max_ms;
	pp.store = s->store;
	return ev_pub_new(&pp, &s->pub, err, errlen);
}

/* open_keys_and_store - master key, key store, store, engine */
static int open_keys_and_store(struct svc *s, const struct js_config *cfg, char *err,
			       size_t errlen)
{
	uint8_t master[JS_MASTER_KEY_LEN], kcv[JS_KCV_LEN];
	struct js_store_props sp = { .path = cfg->store_path, .conninfo = cfg->store_conninfo,
				     .kcv = kcv,
				     .devnonce_history = cfg->devnonce_history,
				     .batch_max = cfg->batch_max,
				     .outbox_max = cfg->mqtt ? cfg->mqtt_outbox_max : 0,
				     .verify = true };	/* sound and writable, or no start */
	struct js_engine_props ep = { .session_lifetime = cfg->session_lifetime };
	int ret;

	ret = js_keystore_read_master(cfg->master_key_file, master);
	if (ret == DJ_EOK)
		ret = js_keystore_new(master, &s->ks);
	OPENSSL_cleanse(master, sizeof(master));
	if (ret != DJ_EOK) {
		snprintf(err, errlen, "[keys] master_key_file %s: %s", cfg->master_key_file,
			 dj_strerror(ret));
		return ret;
	}
	js_keystore_kcv(s->ks, kcv);
	ret = js_store_open(&sp, &s->store);
	if (ret != DJ_EOK) {
		if (cfg->store_conninfo != NULL)	/* never the conninfo: it may name a passfile */
			snprintf(err, errlen, "[store] conninfo: PostgreSQL: %s%s", dj_strerror(ret),
				 ret == DJ_EIO ? " (the database is unreachable or refused the "
				 "connection; see the log above)" : "");
		else
			snprintf(err, errlen, "[store] path %s: %s", cfg->store_path,
				 dj_strerror(ret));
		/* an unreachable database is a store failure (exit 4), never a fallback */
		return cfg->store_conninfo != NULL && ret == DJ_EIO ? DJ_ESQL : ret;
	}
	ep.store = s->store;
	ep.ks = s->ks;
	ret = js_engine_new(&ep, &s->engine);
	if (ret != DJ_EOK)
		snprintf(err, errlen, "join engine: %s", dj_strerror(ret));
	return ret;
}

/* resolver_for - read \p path; in DANE mode make the resolver ([dane]) on \p *base (created
 * when NULL). *out stays NULL in PKIX mode. */
static int resolver_for(const char *path, struct js_config *cfg, struct event_base **base,
			struct da_resolver **out, char *err, size_t errlen)
{
	struct da_resolver_props rp;
	char why[JS_CONFIG_ERR_MAX] = "";
	int ret;

	*out = NULL;
	ret = js_config_load(path, cfg, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	ret = svc__dane_check(path, cfg, err, errlen);
	if (ret == DJ_EOK && admin_check_config(cfg, why, sizeof(why)) != DJ_EOK) {
		snprintf(err, errlen, "%s: %s", path, why);
		ret = DJ_ECONFIG;
	}
	if (ret != DJ_EOK || !svc__auth_is_dane(cfg))
		goto out;
	ret = DJ_ENOMEM;
	if (*base == NULL && (*base = event_base_new()) == NULL)
		goto out;
	svc__resolver_props(cfg, &rp);
	ret = da_resolver_new(*base, &rp, out, why, sizeof(why));
	if (ret != DJ_EOK)
		snprintf(err, errlen, "%s: [dane] %s", path, why);
out:
	js_config_free(cfg);
	return ret;
}

int svc_check_config(const char *config_path, char *err, size_t errlen)
{
	struct event_base *base = NULL;
	struct da_resolver *r = NULL;
	struct peers *p = NULL;
	struct js_config cfg;
	int ret;

	err[0] = '\0';
	/* What the start runs, up to the store and the listener: the configuration, the [dane]
	 * resolver on a scratch loop (anchors, stubs), and svc__peers_load(), whose
	 * js_config_check_files() checks every file (master key, certificates and keys, KEKs) */
	ret = resolver_for(config_path, &cfg, &base, &r, err, errlen);
	if (ret == DJ_EOK)
		ret = svc__peers_load(config_path, base, r, &p, err, errlen);
	svc__peers_free(p);
	da_resolver_free(r);
	if (base != NULL)
		event_base_free(base);
	return ret;
}

/* expire_sessions - periodic: delete sessions past their lifetime (AppSKeys no longer due) */
static void expire_sessions(evutil_socket_t fd, short what, void *arg)
{
	struct svc *s = arg;
	uint64_t n = 0;
	int ret;

	(void)fd;
	(void)what;
	ret = js_store_sessions_expire(s->store, &n);
	if (ret != DJ_EOK)
		dj_warn("expiring sessions: %s", dj_strerror(ret));
	else if (n > 0)
		dj_info("%llu expired sessions deleted", (unsigned long long)n);
}

#define SNI_WHAT_MAX (JS_CONFIG_NAME_MAX + 16)	/* "[listen.sni.NAME]" */

/* sni_props - the [listen.sni.NAME] sections of \p cfg as srv_sni entries (borrowing cfg's
 * strings), one free() releases them; NULL with *n 0 when there are none */
static struct srv_sni *sni_props(const struct js_config *cfg, unsigned *n)
{
	struct srv_sni *v;
	char (*what)[SNI_WHAT_MAX];

	*n = 0;
	if (cfg->n_sni == 0)
		return NULL;
	v = calloc(cfg->n_sni, sizeof(*v) + SNI_WHAT_MAX);
	if (v == NULL)
		return NULL;
	what = (void *)(v + cfg->n_sni);
	for (unsigned i = 0; i < cfg->n_sni; i++) {
		snprintf(what[i], SNI_WHAT_MAX, "[listen.sni.%s]", cfg->sni[i].name);
		v[i].what = what[i];
		v[i].cert_file = cfg->sni[i].cert_file;
		v[i].key_file = cfg->sni[i].key_file;
		v[i].names = cfg->sni[i].names.v;
		v[i].n_names = cfg->sni[i].names.n;
	}
	*n = cfg->n_sni;
	return v;
}

int svc__owner_new(struct svc *s, const struct js_config *cfg, char *err, size_t errlen)
{
	/* always made in DANE mode, so that a reload may switch [js] ownership on */
	struct js_owner_props op = { .resolver = s->resolver,
				     .cache_max = cfg->dane_cache_max,
				     .ttl_cap = cfg->dane_ttl_cap,
				     .neg_ttl = cfg->dane_neg_ttl };
	int ret = js_owner_ctx_new(&op, &s->owner);

	if (ret != DJ_EOK)
		snprintf(err, errlen, "ownership checks: %s", dj_strerror(ret));
	return ret;
}

/* shared_new - what the loops will share, loop 0 (\p s) its first member */
static struct svc_shared *shared_new(struct svc *s)
{
	struct svc_shared *sh = calloc(1, sizeof(*sh));

	if (sh == NULL)
		return NULL;
	sh->loops = calloc(JS_CONFIG_THREADS_MAX, sizeof(*sh->loops));
	if (sh->loops == NULL || pthread_mutex_init(&sh->lock, NULL) != 0) {
		free(sh->loops);
		free(sh);
		return NULL;
	}
	if (pthread_cond_init(&sh->cond, NULL) != 0) {
		pthread_mutex_destroy(&sh->lock);
		free(sh->loops);
		free(sh);
		return NULL;
	}
	sh->sync_init = true;
	sh->loops[0] = s;
	sh->n_loops = 1;
	atomic_init(&sh->async_pending, 0);
	atomic_init(&sh->loops_running, 0);
	s->sh = sh;
	return sh;
}

int svc_new(struct event_base *base, const char *config_path, struct svc **out, char *err,
	    size_t errlen)
{
	struct srv_sni *sni = NULL;
	struct svc *s = calloc(1, sizeof(*s));
	struct srv_props sp;
	const struct js_config *cfg;
	int ret = DJ_ENOMEM;

	err[0] = '\0';
	if (s == NULL)
		return DJ_ENOMEM;
	if (shared_new(s) == NULL) {
		free(s);
		return DJ_ENOMEM;
	}
	s->base = base;
	s->config_path = strdup(config_path);
	if (s->config_path == NULL)
		goto out;
	{
		struct js_config tmp;
		struct event_base *b = base;

		ret = resolver_for(config_path, &tmp, &b, &s->resolver, err, errlen);
		if (ret != DJ_EOK)
			goto out;
	}
	ret = svc__peers_load(config_path, base, s->resolver, &s->peers, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	s->sh->tables = s->peers;
	cfg = &s->peers->cfg;
	s->sh->cfg_threads = cfg->threads;
	if (s->resolver != NULL) {
		ret = svc__owner_new(s, cfg, err, errlen);
		if (ret != DJ_EOK)
			goto out;
	}
	ret = open_keys_and_store(s, cfg, err, errlen);
	if (ret == DJ_EOK)
		ret = events_start(s, cfg, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	memset(&sp, 0, sizeof(sp));
	sp.listen_addr = cfg->listen_address;
	sp.cert_file = cfg->cert_file;
	sp.key_file = cfg->key_file;
	sp.client_ca_file = cfg->client_ca_file;
	sni = sni_props(cfg, &sp.n_sni);
	if (sni == NULL && cfg->n_sni > 0) {
		ret = DJ_ENOMEM;
		goto out;
	}
	sp.sni = sni;
	sp.auth = svc__auth_is_dane(cfg) ? SRV_AUTH_DANE : SRV_AUTH_PKIX;
	sp.resolver = s->resolver;
	sp.clientid_ext = cfg->dane_clientid_ext != 0 ? cfg->dane_clientid_ext
						      : DA_CLIENTID_EXT_DEFAULT;
	sp.max_body = cfg->max_body;
	sp.header_timeout = cfg->header_timeout;
	sp.idle_timeout = cfg->idle_timeout;
	sp.max_connections = cfg->max_connections;
	sp.max_connections_per_peer = cfg->max_connections_per_peer;
	sp.min_rate = cfg->min_rate;
	sp.metrics_addr = cfg->metrics_address == NULL ? JS_CONFIG_METRICS_DEFAULT
		: strcmp(cfg->metrics_address, "off") == 0 ? NULL : cfg->metrics_address;
	sp.handler = svc__handle;
	sp.metrics = svc__metrics_text;
	sp.arg = s;
	sp.reuseport = svc__threads(cfg) > 1;	/* the other loops bind the address too */
	ret = srv_new(base, &sp, &s->srv, err, errlen);
	free(sni);
	sni = NULL;
	sp.sni = NULL;
	if (ret == DJ_EOK)
		ret = admin_new(s, &s->admin, err, errlen);	/* [admin]: off when unset */
	if (ret != DJ_EOK)
		goto out;
	s->join_ev = event_new(base, -1, 0, svc__join_flush_cb, s);
	if (s->join_ev == NULL) {
		ret = DJ_ENOMEM;
		goto out;
	}
	s->expire_ev = event_new(base, -1, EV_PERSIST, expire_sessions, s);
	if (s->expire_ev == NULL ||
	    event_add(s->expire_ev, &(struct timeval){ SESSION_SWEEP_SECONDS, 0 }) != 0) {
		ret = DJ_ENOMEM;
		goto out;
	}
	ret = svc__loops_start(s, &sp, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	*out = s;
	s = NULL;
out:
	free(sni);
	svc_free(s);
	return ret;
}

int svc_reload(struct svc *s, char *err, size_t errlen)
{
	struct peers *np = NULL;
	const struct js_config *cfg;
	struct srv_sni *sni;
	unsigned n_sni;
	int ret;

	err[0] = '\0';
	ret = svc__peers_load(s->config_path, s->base, s->resolver, &np, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	cfg = &np->cfg;
	if (svc__auth_is_dane(cfg) != (s->resolver != NULL)) {
		snprintf(err, errlen, "%s: [listen] auth changed: that needs a restart",
			 s->config_path);
		svc__peers_free(np);
		return DJ_ECONFIG;
	}
	if (cfg->js_ownership && s->owner == NULL) {
		snprintf(err, errlen, "%s: [js] ownership = on needs auth = dane", s->config_path);
		svc__peers_free(np);
		return DJ_ECONFIG;
	}
	sni = sni_props(cfg, &n_sni);
	if (sni == NULL && cfg->n_sni > 0)
		ret = DJ_ENOMEM;
	else
		ret = srv_reload_tls_sni(s->srv, cfg->cert_file, cfg->key_file,
					 cfg->client_ca_file, sni, n_sni, err, errlen);
	free(sni);
	if (ret != DJ_EOK) {
		svc__peers_free(np);
		return ret;
	}
	if (cfg->threads != s->sh->cfg_threads)
		dj_warn("%s: [listen] threads: a restart applies the change; %u event loops go on",
			s->config_path, s->sh->n_loops);
	/* Requests and async answers in flight point into the old table (peer, KEK, dc_client):
	 * it stays alive when any are in flight on any loop; it is freed with the service.
	 * A pending delivery finishes with the async_url it started with. Every loop takes the
	 * new table (loops.c); "configuration reloaded" is logged once all have. */
	ret = svc__loops_swap(s, np);
	if (ret != DJ_EOK) {
		snprintf(err, errlen, "%s: out of memory", s->config_path);
		svc__peers_free(np);
	}
	return ret;
}

/* drain_check - exit the loop once nothing is in flight (async answers delivered or dropped,
 * and for loop 0 every other loop gone) */
static void drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct svc *s = arg;
	struct timeval tv = { 0, DRAIN_POLL_US };

	(void)fd;
	(void)what;
	if (svc__loop_done(s)) {
		/* the events already active still run (libevent frees what is closing then): a
		 * request among them is refused, never committed unanswered (svc__handle) */
		s->leaving = true;
		event_base_loopexit(s->base, NULL);
		return;
	}
	event_add(s->drain_ev, &tv);
}

void svc__drain_loop(struct svc *s)
{
	struct timeval tv = { 0, 0 };

	if (s->draining)
		return;
	s->draining = true;
	srv_stop_accepting(s->srv);
	s->drain_ev = evtimer_new(s->base, drain_check, s);
	if (s->drain_ev == NULL || event_add(s->drain_ev, &tv) != 0)
		event_base_loopexit(s->base, NULL);
}

void svc_drain(struct svc *s)
{
	if (s->draining)
		return;
	svc__loops_drain(s);	/* every loop stops accepting, finishes, leaves */
	svc__drain_loop(s);
}

void svc_free(struct svc *s)
{
	struct svc_shared *sh;

	if (s == NULL)
		return;
	sh = s->sh;
	if (sh != NULL)
		svc__loops_stop(s);	/* their requests and engines before the store */
	for (unsigned i = 0; i < s->join_n; i++)	/* their HTTP requests went with srv */
		svc__req_free(s->join_q[i]);
	s->join_n = 0;
	if (s->join_ev != NULL)
		event_free(s->join_ev);
	admin_free(s->admin);
	srv_free(s->srv);
	js_engine_free(s->engine);
	ev_pub_free(s->pub);		/* before the store whose outbox it reads */
	js_store_close(s->store);	/* finishes pending commits */
	js_keystore_free(s->ks);
	/* deliveries with a dc_client are cancelled (and freed) by svc__peers_free(); the ones waiting
	 * for a retry are freed here */
	s->closing = true;
	while (sh != NULL && sh->tables != NULL) {	/* the current table, and kept ones */
		struct peers *p = sh->tables;

		sh->tables = p->prev;
		svc__peers_free(p);
	}
	if (sh == NULL)
		svc__peers_free(s->peers);
	while (s->deliveries != NULL)
		svc__req_free(s->deliveries);
	svc__req_spares_free(s);
	if (s->drain_ev != NULL)
		event_free(s->drain_ev);
	if (s->expire_ev != NULL)
		event_free(s->expire_ev);
	js_owner_ctx_free(s->owner);	/* pending checks: their requests went with srv */
	da_resolver_free(s->resolver); /* after everything that may have a lookup pending */
	free(s->config_path);
	if (sh != NULL) {
		if (sh->sync_init) {
			pthread_cond_destroy(&sh->cond);
			pthread_mutex_destroy(&sh->lock);
		}
		free(sh->loops);
		free(sh);
	}
	free(s);
}
