/*
 * svc.c - the Backend Interfaces service of danejoind.
 *
 * Trust reasoning (DESIGN.md rules 2 and 5):
 * - A peer's rights come only from its authenticated identity (srv_req_peer(): the verified
 *   certificate's single SAN dNSName today, its DANE name later) looked up in [peer.NAME]. The
 *   SenderID, SenderNSID and role of every message must be among that peer's rights; otherwise
 *   the answer is UnknownSender and nothing runs.
 * - Session keys leave only inside KeyEnvelopes wrapped under the peer's KEK, or in plain for a
 *   peer whose configuration says plain_keys = yes (config loading refuses a peer with neither).
 *   The AppSKey never goes to a network server: the application server fetches it with
 *   AppSKeyReq, and only for devices under its join_euis.
 * - An application server asking for a device that is not its own gets the same answer as for
 *   a device that does not exist (UnknownDevEUI), so it cannot probe another's fleet.
 * Nothing is logged that holds a key: one line per request with peer, message type, DevEUI,
 * result and latency.
 *
 * Asynchronous mode (TS002 §8), for a peer with async_url: once a request is parsed and the
 * peer known, it gets HTTP 200 with an empty body at once (accept_async()), and the answer
 * (UnknownSender included) is POSTed to async_url through the peer's dc_client, over mutual TLS
 * with our [listen] certificate and the peer's server certificate checked against
 * client_ca_file and the URL's host. A POST that fails is retried ASYNC_TRIES - 1 times after
 * async_backoff_ms, then logged as an error and dropped: the state change (a join) has already
 * happened, and the network server times out and asks again, which TS002 expects of it.
 * Requests that cannot be parsed and rate-limited requests are still answered in the
 * response: they were not accepted for processing. The answer waits in memory with its
 * envelopes and is wiped when delivered or dropped.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bi/bi_kek.h"
#include "bi/bi_msg.h"
#include "backend-auth/da_dns.h"
#include "backend-auth/da_tls.h"
#include "bi/dc_client.h"
#include "ev_pub.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "engine/js_config.h"
#include "engine/js_engine.h"
#include "store/js_keystore.h"
#include "ownership/js_owner.h"
#include "store/js_store.h"
#include "store/js_store_owner.h"
#include "bi/srv.h"
#include "svc.h"

#define KEK_FILE_MAX 130	/* 64 hex digits, a newline, slack */
#define LAT_BUCKETS 12		/* latency histogram buckets (seconds, upper bounds below) */
#define SESSION_SWEEP_SECONDS 60	/* how often expired sessions are deleted */
#define HTTP_OK 200
#define HTTP_BAD_REQUEST 400
#define HTTP_TOO_MANY 429
#define HTTP_UNAVAILABLE 503
#define HTTP_SERVER_ERROR 500
#define ASYNC_TRIES 3			/* POSTs of one async answer before it is dropped */
#define ASYNC_TIMEOUT_MS 5000		/* one POST: connect, handshake, HTTP answer */
#define MS_PER_S 1000
#define US_PER_MS 1000

/* REPLY_LIT - answer with a string literal body (its length computed, never counted by hand) */
#define REPLY_LIT(req, status, lit) srv_reply((req), (status), (lit), sizeof(lit) - 1)

/* async_backoff_ms - wait before POST 2, 3, ... of an async answer */
static const unsigned async_backoff_ms[ASYNC_TRIES - 1] = { 100, 400 };

static const double lat_bounds[LAT_BUCKETS] = { 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
						0.05, 0.1, 0.2, 0.5, 1.0, 5.0 };

struct eui_prefix {
	uint64_t eui;
	unsigned bits;
};

struct peer {
	char name[JS_CONFIG_NAME_MAX];
	const struct js_peer_config *cfg;	/* borrowed from svc->cfg */
	bool is_ns;
	struct bi_kek *kek;			/* NULL: plain_keys */
	unsigned n_euis;
	struct eui_prefix euis[JS_CONFIG_LIST_MAX];	/* as: devices whose AppSKey it may get */
	double bucket;				/* rate limit: tokens */
	double bucket_at;
	struct dc_client *async;		/* NULL: answers go in the HTTP response (or are
						 * waiting for discovery, async_discover) */
	struct da_lookup *disc;			/* async_discover: the NetID lookup under way */
	bool disc_running;
	struct delivery *waiting;		/* deliveries waiting for that lookup */
	struct svc *s;
};

struct peers {
	struct peers *prev;	/* a table replaced by SIGHUP while requests used it */
	unsigned n;
	struct peer *v;
	struct js_config cfg;			/* owns the strings the peers point into */
	unsigned n_euis;
	struct eui_prefix euis[JS_CONFIG_LIST_MAX];	/* [js] join_euis */
};

struct metrics {
	uint64_t requests[BI_HOMENS_ANS + 1];
	uint64_t results[BI_RESULT_COUNT];
	uint64_t verdicts[JS_V_BUSY + 1];
	uint64_t http_errors, rate_limited;
	uint64_t lat_count, lat_bucket[LAT_BUCKETS];
	double lat_sum;
};

/* An answer on its way to an async peer, kept (with its envelopes) until delivered or dropped. */
struct delivery {
	struct delivery *prev, *next;	/* svc->deliveries */
	struct svc *s;
	struct peer *pe;		/* its table outlives every pending delivery (svc_reload) */
	struct bi_msg ans;		/* wiped in delivery_free() */
	unsigned tries;			/* POSTs started */
	struct event *retry_ev;		/* armed between a failed POST and the next */
	struct delivery *wnext;		/* pe->waiting (async_discover) */
};

struct svc {
	struct event_base *base;
	struct da_resolver *resolver;	/* DANE mode: the loop's resolver ([dane] needs a restart) */
	struct js_owner_ctx *owner;	/* DANE mode: ownership checks ([js] ownership) */
	struct srv *srv;
	char *config_path;
	struct peers *peers;
	struct js_keystore *ks;
	struct js_store *store;
	struct js_engine *engine;
	struct ev_pub *pub;		/* [mqtt]: the event publisher; NULL: no events */
	struct metrics m;
	bool draining;
	bool closing;			/* svc_free(): drop, never retry */
	struct event *drain_ev;
	struct event *expire_ev;	/* housekeeping: expired sessions out of the store */
	/* JoinReqs/RejoinReqs gathered during one pass of the loop, handed to the engine as one
	 * group when the loop gets to join_ev (js_engine_submit_many: key custody in lockstep) */
	struct event *join_ev;
	struct job *join_q[JS_ENGINE_BATCH_MAX];
	unsigned join_n;
	/* requests of async peers answered with an empty 200 whose answer is not yet delivered
	 * or dropped: draining waits for them, a reload keeps their peer table */
	unsigned async_pending;
	struct delivery *deliveries;
};

/* Where an answer goes: the HTTP response, or (async peer, accepted) a POST to its async_url. */
struct reply_to {
	struct srv_req *req;	/* NULL once the request got its empty 200 (accept_async()) */
	struct peer *pe;	/* NULL: an identity without a [peer.NAME] (answered in the
				 * response) */
	double started;		/* monotonic time the request was complete, for latency */
	bool has_hnet;		/* [js] ownership: the home NetID the ownership names */
	uint8_t hnet[LW_NETID_LEN];
};

/* One request waiting for the engine. */
struct job {
	struct svc *s;
	struct reply_to to;
	struct bi_msg msg;
	struct js_join_req jr;
	struct js_event *ev;	/* [mqtt]: the events committed with this join (ev_pub.h) */
};

/* now_mono - monotonic seconds */
static double now_mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* parse_prefix - "HEX16" or "HEX16/BITS" (validated by js_config already) */
static void parse_prefix(const char *txt, struct eui_prefix *p)
{
	char hex[2 * LW_EUI_LEN + 1];
	uint8_t eui[LW_EUI_LEN];
	const char *slash = strchr(txt, '/');

	snprintf(hex, sizeof(hex), "%.16s", txt);
	if (dj_hex_parse(hex, eui, LW_EUI_LEN) != DJ_EOK)
		memset(eui, 0, sizeof(eui));
	p->eui = dj_be_get(eui, LW_EUI_LEN);
	p->bits = slash != NULL ? (unsigned)atoi(slash + 1) : 64;
}

/* prefix_match - whether \p eui lies in one of the prefixes */
static bool prefix_match(const struct eui_prefix *v, unsigned n, const uint8_t eui[LW_EUI_LEN])
{
	uint64_t e = dj_be_get(eui, LW_EUI_LEN);

	for (unsigned i = 0; i < n; i++) {
		uint64_t mask = v[i].bits == 0 ? 0 : ~0ull << (64 - v[i].bits);

		if ((e & mask) == (v[i].eui & mask))
			return true;
	}
	return false;
}

/* read_kek_file - a KEK file: 32 or 64 hex digits (+ newline), no group/other access */
static int read_kek_file(const char *path, uint8_t key[32], size_t *len, char *err, size_t errlen)
{
	char buf[KEK_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd, ret = DJ_EMALFORMED;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "kek_file %s: cannot open", path);
		return DJ_ENOENT;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "kek_file %s: must be a regular file readable by its owner "
			 "only (mode 0600)", path);
		close(fd);
		return DJ_EFILEMODE;
	}
	n = read(fd, buf, KEK_FILE_MAX);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		if (dj_hex_parse_var(buf, key, 32, len) == DJ_EOK && (*len == 16 || *len == 32))
			ret = DJ_EOK;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (ret != DJ_EOK)
		snprintf(err, errlen, "kek_file %s: expected 32 or 64 hex digits", path);
	return ret;
}

/* peers_free - free a peer table (NULL is accepted) */
static void peers_free(struct peers *p)
{
	if (p == NULL)
		return;
	peers_free(p->prev);
	/* dc_client_free() cancels POSTs in flight: their callbacks run now, with p->v valid */
	for (unsigned i = 0; i < p->n; i++) {
		bi_kek_free(p->v[i].kek);
		dc_client_free(p->v[i].async);
		da_lookup_cancel(p->v[i].disc); /* waiting deliveries are freed with the svc */
	}
	free(p->v);
	js_config_free(&p->cfg);
	free(p);
}

/* auth_is_dane - [listen] auth: DANE unless "pkix" */
static bool auth_is_dane(const struct js_config *cfg)
{
	return cfg->auth == NULL || strcmp(cfg->auth, "dane") == 0;
}

/* resolver_props - [dane] as resolver properties (strings borrowed from cfg) */
static void resolver_props(const struct js_config *cfg, struct da_resolver_props *rp)
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

/* dane_check - the [listen] auth and [dane] settings make sense together */
static int dane_check(const char *path, const struct js_config *cfg, char *err, size_t errlen)
{
	char norm[DA_NAME_MAX], why[DA_WHY_MAX];

	if (cfg->auth != NULL && strcmp(cfg->auth, "dane") != 0 && strcmp(cfg->auth, "pkix") != 0) {
		snprintf(err, errlen, "%s: [listen] auth: \"%s\" is neither dane nor pkix", path,
			 cfg->auth);
		return DJ_ECONFIG;
	}
	if (!auth_is_dane(cfg)) {
		if (cfg->js_ownership) {
			snprintf(err, errlen, "%s: [js] ownership = on needs auth = dane (the "
				 "chains and owner keys are read through the [dane] resolver)", path);
			return DJ_ECONFIG;
		}
		if (cfg->client_ca_file == NULL) {
			snprintf(err, errlen, "%s: [listen] client_ca_file: required with auth = pkix",
				 path);
			return DJ_ECONFIG;
		}
		return DJ_EOK;
	}
	if (cfg->dane_trust_anchor_file == NULL && cfg->dane_auto_trust_anchor_file == NULL &&
	    !cfg->dane_root_anchor) {
		snprintf(err, errlen, "%s: [dane] needs trust_anchor_file, auto_trust_anchor_file "
			 "or root_anchor = yes (auth = dane is the default)", path);
		return DJ_ECONFIG;
	}
	if (cfg->dane_client_identity != NULL &&
	    da_name_normalize(cfg->dane_client_identity, norm, sizeof(norm), why, sizeof(why)) !=
		    DJ_EOK) {
		snprintf(err, errlen, "%s: [dane] client_identity %s: %s", path,
			 cfg->dane_client_identity, why);
		return DJ_ECONFIG;
	}
	return DJ_EOK;
}

/* async_client - the dc_client that POSTs answers to an async peer, on \p base (NULL: its own,
 * for --check-config); authenticates with our [listen] certificate and checks the peer's
 * server certificate against client_ca_file and the URL host */
static int async_client(const struct js_config *cfg, const struct js_peer_config *pc,
			struct event_base *base, struct da_resolver *resolver,
			struct dc_client **out, char *err, size_t errlen)
{
	struct dc_props dp = { .url = pc->async_url, .cert_file = cfg->cert_file,
			       .key_file = cfg->key_file, .ca_file = cfg->client_ca_file,
			       .timeout_ms = ASYNC_TIMEOUT_MS, .connections = 1, .base = base,
			       .server_name = pc->async_server_name };
	char why[DC_ERR_MAX] = "";
	int ret;

	if (auth_is_dane(cfg)) {
		/* DANE both ways: the peer's server by its TLSA, we by our client identity */
		dp.ca_file = NULL;
		dp.resolver = resolver;
		dp.clientid = cfg->dane_client_identity;
		dp.clientid_ext = cfg->dane_clientid_ext;
	}

	ret = dc_client_new(&dp, out, why, sizeof(why));
	if (ret == DJ_EOK)
		return DJ_EOK;
	snprintf(err, errlen, "[peer.%s] async_url: %s", pc->name, why);
	return ret == DJ_ENOMEM || ret == DJ_ECRYPTO ? ret : DJ_ECONFIG;
}

/* peers_load - the configuration and the peer table built from it (async clients on \p base) */
static int peers_load(const char *path, struct event_base *base, struct da_resolver *resolver,
		      struct peers **out, char *err, size_t errlen)
{
	struct peers *p = calloc(1, sizeof(*p));
	uint8_t key[32];
	size_t klen = 0;
	int ret = DJ_ENOMEM;

	if (p == NULL)
		return DJ_ENOMEM;
	ret = js_config_load(path, &p->cfg, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	ret = DJ_ECONFIG;
	if (p->cfg.listen_address == NULL || p->cfg.cert_file == NULL || p->cfg.key_file == NULL) {
		snprintf(err, errlen, "%s: [listen] address, cert_file and key_file are required by "
			 "danejoind", path);
		goto out;
	}
	ret = dane_check(path, &p->cfg, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	ret = DJ_ECONFIG;
	if (p->cfg.join_euis.n == 0) {
		snprintf(err, errlen, "%s: [js] join_euis: required by danejoind (the JoinEUIs "
			 "served here)", path);
		goto out;
	}
	for (unsigned i = 0; i < p->cfg.join_euis.n; i++)
		parse_prefix(p->cfg.join_euis.v[i], &p->euis[i]);
	p->n_euis = p->cfg.join_euis.n;
	p->v = calloc(p->cfg.n_peers ? p->cfg.n_peers : 1, sizeof(*p->v));
	if (p->v == NULL) {
		ret = DJ_ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < p->cfg.n_peers; i++) {
		const struct js_peer_config *pc = &p->cfg.peers[i];
		struct peer *pe = &p->v[i];

		snprintf(pe->name, sizeof(pe->name), "%s", pc->name);
		pe->cfg = pc;
		pe->is_ns = strcmp(pc->role, "ns") == 0;
		pe->bucket = pc->rate;
		for (unsigned k = 0; k < pc->join_euis.n; k++)
			parse_prefix(pc->join_euis.v[k], &pe->euis[k]);
		pe->n_euis = pc->join_euis.n;
		p->n++;
		if (pc->kek_file != NULL) {
			ret = read_kek_file(pc->kek_file, key, &klen, err, errlen);
			if (ret == DJ_EOK)
				ret = bi_kek_new(pc->kek_label, key, klen, &pe->kek);
			OPENSSL_cleanse(key, sizeof(key));
			if (ret != DJ_EOK) {
				if (err[0] == '\0' || ret == DJ_EINVAL)
					snprintf(err, errlen, "[peer.%s] kek_label: not a valid label",
						 pc->name);
				goto out;
			}
		}
		if (pc->async_discover && (pc->async_url != NULL || !auth_is_dane(&p->cfg))) {
			snprintf(err, errlen, "[peer.%s] async_discover: %s", pc->name,
				 pc->async_url != NULL ? "excludes async_url (its static override)"
						       : "needs auth = dane");
			ret = DJ_ECONFIG;
			goto out;
		}
		if (pc->async_url != NULL) {
			ret = async_client(&p->cfg, pc, base, resolver, &pe->async, err, errlen);
			if (ret != DJ_EOK)
				goto out;
		}
	}
	*out = p;
	p = NULL;
	ret = DJ_EOK;
out:
	peers_free(p);
	return ret;
}

/* find_peer - the configured peer of an authenticated identity */
static struct peer *find_peer(struct peers *p, const char *identity)
{
	size_t n;

	for (unsigned i = 0; i < p->n; i++) {
		const struct js_peer_config *pc = p->v[i].cfg;

		if (strcasecmp(pc->identity, identity) == 0)
			return &p->v[i];
		/* DANE client names: "_ns-client.HOST" is the identity of a peer "HOST", role ns
		 * (an "_as-client." name only ever matches a peer whose role is as) */
		n = strlen(pc->role);
		if (identity[0] == '_' && strncasecmp(identity + 1, pc->role, n) == 0 &&
		    strncasecmp(identity + 1 + n, "-client.", 8) == 0 &&
		    strcasecmp(identity + 1 + n + 8, pc->identity) == 0)
			return &p->v[i];
	}
	return NULL;
}

/* sender_allowed - SenderID (and SenderNSID) among the peer's rights */
static bool sender_allowed(const struct peer *pe, const struct bi_msg *m)
{
	const struct js_peer_config *pc = pe->cfg;
	uint8_t a[LW_NETID_LEN], b[LW_NETID_LEN];
	bool ok = false;

	for (unsigned i = 0; i < pc->sender_ids.n && !ok; i++) {
		if (pe->is_ns)
			ok = dj_hex_parse(m->sender_id, a, LW_NETID_LEN) == DJ_EOK &&
			     dj_hex_parse(pc->sender_ids.v[i], b, LW_NETID_LEN) == DJ_EOK &&
			     memcmp(a, b, LW_NETID_LEN) == 0;
		else
			ok = strcmp(m->sender_id, pc->sender_ids.v[i]) == 0;
	}
	if (!ok || !m->has_sender_ns_id || pc->ns_ids.n == 0)
		return ok;
	for (unsigned i = 0; i < pc->ns_ids.n; i++)
		if (strcmp(m->sender_ns_id, pc->ns_ids.v[i]) == 0)
			return true;
	return false;
}

/* rate_ok - token bucket per peer (rate 0: unlimited) */
static bool rate_ok(struct peer *pe)
{
	double now = now_mono(), rate = pe->cfg->rate;

	if (rate == 0)
		return true;
	pe->bucket += (now - pe->bucket_at) * rate;
	pe->bucket_at = now;
	if (pe->bucket > rate)
		pe->bucket = rate;	/* burst of one second */
	if (pe->bucket < 1)
		return false;
	pe->bucket -= 1;
	return true;
}

/* answer_type - the answer type of a request type */
static enum bi_msg_type answer_type(enum bi_msg_type t)
{
	switch (t) {
	case BI_JOIN_REQ: return BI_JOIN_ANS;
	case BI_REJOIN_REQ: return BI_REJOIN_ANS;
	case BI_APPSKEY_REQ: return BI_APPSKEY_ANS;
	default: return BI_HOMENS_ANS;
	}
}

/* delivery_free - unlink, wipe the answer and free (NULL is accepted) */
static void delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	if (d->prev != NULL)
		d->prev->next = d->next;
	else if (d->s->deliveries == d)
		d->s->deliveries = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	d->s->async_pending--;
	if (d->retry_ev != NULL)
		event_free(d->retry_ev);
	bi_msg_wipe(&d->ans);
	free(d);
}

static void delivery_post(struct delivery *d);

/* delivery_failed - one POST failed: arm the next try, or drop the answer after the last */
static void delivery_failed(struct delivery *d, const char *why)
{
	unsigned ms = d->tries <= DJ_ARRAY_LEN(async_backoff_ms) ? async_backoff_ms[d->tries - 1]
								 : 0;
	struct timeval tv = { ms / MS_PER_S, (ms % MS_PER_S) * US_PER_MS };

	dj_warn("async peer=%s type=%s transaction=%u: POST %u of %u failed: %s", d->pe->name,
		bi_msg_type_str(d->ans.type), d->ans.transaction_id, d->tries, ASYNC_TRIES, why);
	if (d->s->closing || d->tries >= ASYNC_TRIES || evtimer_add(d->retry_ev, &tv) != 0) {
		/* the state change stands; the network server times out and asks again */
		dj_err("async peer=%s type=%s transaction=%u: answer dropped after %u POSTs%s",
		       d->pe->name, bi_msg_type_str(d->ans.type), d->ans.transaction_id, d->tries,
		       d->s->closing ? " (shutting down)" : "");
		delivery_free(d);
	}
}

/* delivery_done - dc_client completion of one POST: delivered, or failed */
static void delivery_done(int rc, const struct bi_msg *reply, int have_reply, const char *err,
			  void *arg)
{
	struct delivery *d = arg;

	(void)reply;
	(void)have_reply;
	/* DJ_EOK includes an empty HTTP 200 (the usual acknowledgement); DJ_EMALFORMED is an HTTP
	 * 200 whose body is no message: the receiver of an async answer
	 * acknowledges it with an empty 200, so that is a delivery too */
	if (rc == DJ_EOK || rc == DJ_EMALFORMED) {
		dj_info("async peer=%s type=%s transaction=%u: delivered, HTTP %d (POST %u)",
			d->pe->name, bi_msg_type_str(d->ans.type), d->ans.transaction_id, HTTP_OK,
			d->tries);
		delivery_free(d);
		return;
	}
	delivery_failed(d, err);
}

/* delivery_retry - retry_ev: the next POST */
static void delivery_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	delivery_post(arg);
}

/* delivery_post - start one POST of \p d; a failure to start counts as a failed POST */
/* peer_async - answers to this peer go asynchronously */
static bool peer_async(const struct peer *pe)
{
	return pe->async != NULL || pe->cfg->async_discover;
}

/* on_ns_found - async_discover: the NetID's NS (first SRV target); post what waited for it */
static void on_ns_found(const struct da_discovery *dd, void *arg)
{
	struct peer *pe = arg;
	struct delivery *d, *next;
	char url[128], why[DC_ERR_MAX] = "";
	struct js_peer_config pc;
	int ret = DJ_EIO;

	pe->disc = NULL;
	pe->disc_running = false;
	if (dd->status == DA_SECURE && dd->n > 0 && dd->srv[0].n_addr > 0) {
		snprintf(url, sizeof(url),
			 strchr(dd->srv[0].addr[0], ':') != NULL ? "https://[%s]:%u/" : "https://%s:%u/",
			 dd->srv[0].addr[0], dd->srv[0].port);
		pc = *pe->cfg;
		pc.async_url = url;
		pc.async_server_name = (char *)dd->srv[0].host;
		ret = async_client(&pe->s->peers->cfg, &pc, pe->s->base, pe->s->resolver, &pe->async,
				   why, sizeof(why));
		if (ret == DJ_EOK)
			dj_info("async peer=%s: %s is %s (%s)", pe->name, dd->name, url,
				dd->srv[0].host);
	} else {
		snprintf(why, sizeof(why), "discovery of %s: %s%s%s", dd->name,
			 da_status_str(dd->status), dd->why != NULL ? ": " : "",
			 dd->why != NULL ? dd->why : "");
	}
	d = pe->waiting;
	pe->waiting = NULL;
	for (; d != NULL; d = next) {
		next = d->wnext;
		d->wnext = NULL;
		if (ret == DJ_EOK) {
			d->tries--; /* the lookup was not a POST */
			delivery_post(d);
		} else {
			delivery_failed(d, why);
		}
	}
}

/* discover_ns - async_discover: park \p d and find the NS of the answer's NetID */
static void discover_ns(struct delivery *d)
{
	struct peer *pe = d->pe;
	const char *suffix = d->s->peers->cfg.dane_discovery_suffix;
	char name[DA_NAME_MAX + 32];
	uint8_t nid[LW_NETID_LEN];

	d->wnext = pe->waiting;
	pe->waiting = d;
	if (pe->disc_running)
		return;
	if (d->s->resolver == NULL || dj_hex_parse(d->ans.receiver_id, nid, LW_NETID_LEN) != DJ_EOK ||
	    da_netid_name((uint32_t)nid[0] << 16 | (uint32_t)nid[1] << 8 | nid[2],
			  suffix != NULL ? suffix : "lora-alliance.org", name, sizeof(name)) != DJ_EOK) {
		pe->waiting = d->wnext;
		d->wnext = NULL;
		d->tries = ASYNC_TRIES;
		delivery_failed(d, "no NetID to discover the network server by");
		return;
	}
	pe->s = d->s;
	pe->disc_running = true;
	if (da_discover(d->s->resolver, name, "LWNS", on_ns_found, pe, &pe->disc) != DJ_EOK) {
		pe->disc_running = false;
		pe->waiting = d->wnext;
		d->wnext = NULL;
		delivery_failed(d, "cannot start the discovery");
	}
}

static void delivery_post(struct delivery *d)
{
	int ret;

	d->tries++;
	if (d->pe->async == NULL) {
		discover_ns(d);
		return;
	}
	ret = dc_client_send(d->pe->async, &d->ans, delivery_done, d);
	if (ret == DJ_EOK)
		return;		/* delivery_done() runs later, from the loop */
	if (ret == DJ_EINVAL)
		d->tries = ASYNC_TRIES;	/* cannot be encoded: no retry will do better */
	delivery_failed(d, dj_strerror(ret));
}

/* deliver - hand \p ans (taken: zeroed here) to a new delivery to \p pe's async_url. On failure
 * the answer is dropped (wiped by the caller) and the accepted request is no longer pending. */
static int deliver(struct svc *s, struct peer *pe, struct bi_msg *ans)
{
	struct delivery *d = calloc(1, sizeof(*d));
	int ret = DJ_ENOMEM;

	if (d == NULL)
		goto out;
	d->retry_ev = evtimer_new(s->base, delivery_retry, d);
	if (d->retry_ev == NULL)
		goto out;
	d->s = s;
	d->pe = pe;
	d->ans = *ans;
	memset(ans, 0, sizeof(*ans));	/* the envelopes now live (and get wiped) in d */
	d->next = s->deliveries;
	if (s->deliveries != NULL)
		s->deliveries->prev = d;
	s->deliveries = d;
	delivery_post(d);	/* from here on d frees itself, and counts down async_pending */
	d = NULL;
	ret = DJ_EOK;
out:
	if (d != NULL) {
		if (d->retry_ev != NULL)
			event_free(d->retry_ev);
		free(d);
	}
	if (ret != DJ_EOK)
		s->async_pending--;
	return ret;
}

/* accept_async - an async peer's request is accepted for processing: answer it now with an
 * empty 200 (TS002 §8); the answer proper is POSTed later by send_answer() */
static void accept_async(struct svc *s, struct reply_to *to)
{
	if (to->req == NULL || to->pe == NULL || !peer_async(to->pe))
		return;
	srv_reply(to->req, HTTP_OK, "", 0);
	to->req = NULL;
	s->async_pending++;
}

/* send_answer - the one place answers leave: in the HTTP response, or (to->req NULL: accepted
 * by accept_async()) POSTed to the peer's async_url; logs one line and counts */
static void send_answer(struct svc *s, struct reply_to *to, struct bi_msg *ans)
{
	char *json = NULL, eui[2 * LW_EUI_LEN + 1] = "-";
	size_t len = 0;
	double lat = now_mono() - to->started;
	int ret;

	if (to->req != NULL) {
		ret = bi_msg_encode(ans, &json, &len);
		if (ret != DJ_EOK) {
			dj_err("encoding a %s failed: %s", bi_msg_type_str(ans->type),
			       dj_strerror(ret));
			REPLY_LIT(to->req, HTTP_SERVER_ERROR, "{}");
			s->m.http_errors++;
			goto out;
		}
	}
	/* log first: without a peer the name is the identity, which srv_reply() frees */
	if (ans->has_dev_eui)
		dj_hex_format(ans->dev_eui, LW_EUI_LEN, eui);
	dj_info("peer=%s type=%s dev_eui=%s transaction=%u result=%s latency_ms=%.3f%s",
		to->pe != NULL ? to->pe->name : srv_req_peer(to->req), bi_msg_type_str(ans->type),
		eui, ans->transaction_id, bi_result_str(ans->result, BI_PROTO_1_1), lat * 1e3,
		to->req == NULL ? " async" : "");
	s->m.results[ans->result]++;
	s->m.lat_count++;
	s->m.lat_sum += lat;
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		if (lat <= lat_bounds[i])
			s->m.lat_bucket[i]++;
	if (to->req != NULL) {
		srv_reply(to->req, HTTP_OK, json, len);
		to->req = NULL;
		goto out;
	}
	ret = deliver(s, to->pe, ans);
	if (ret != DJ_EOK)
		dj_err("async peer=%s type=%s transaction=%u: answer dropped: %s", to->pe->name,
		       bi_msg_type_str(ans->type), ans->transaction_id, dj_strerror(ret));
out:
	/* the encoded answer carries wrapped keys, or plain ones for a plain_keys peer */
	if (json != NULL)
		OPENSSL_clear_free(json, len);
	bi_msg_wipe(ans);
}

/* refuse - answer \p m with a Result code and a description */
static void refuse(struct svc *s, struct reply_to *to, const struct bi_msg *m, enum bi_result r,
		   const char *desc)
{
	struct bi_msg ans;

	bi_msg_answer_init(m, answer_type(m->type), &ans);
	ans.result = r;
	/* a Description longer than the field is cut, on purpose */
	snprintf(ans.description, sizeof(ans.description), "%.*s",
		 (int)(sizeof(ans.description) - 1), desc);
	if (m->has_dev_eui) {
		ans.has_dev_eui = true;
		memcpy(ans.dev_eui, m->dev_eui, LW_EUI_LEN);
	}
	send_answer(s, to, &ans);
}

/* verdict_result - the Result code for an engine verdict */
static enum bi_result verdict_result(const struct js_join_out *o)
{
	switch (o->verdict) {
	case JS_ACCEPT: return BI_SUCCESS;
	case JS_V_MALFORMED_FRAME:
		return o->frame_status == LW_FRAME_BAD_LENGTH || o->frame_status == LW_FRAME_EMPTY
			       ? BI_FRAME_SIZE_ERROR : BI_MALFORMED_REQUEST;
	case JS_V_UNKNOWN_DEVEUI: return BI_UNKNOWN_DEVEUI;
	case JS_V_MIC_FAILED: return BI_MIC_FAILED;
	case JS_V_BAD_PARAMS: return BI_MALFORMED_REQUEST;
	case JS_V_BUSY: return BI_OTHER;
	default: return BI_JOIN_REQ_FAILED;
	}
}

/* envelope - one session key into an envelope for the peer (KEK, or plain by policy) */
static int envelope(struct peer *pe, const struct lw_key *k, struct bi_key_envelope *env)
{
	return bi_kek_envelope(pe->kek, k, env);	/* pe->kek NULL only with plain_keys */
}

/* now_unix_ms - wall-clock Unix milliseconds, for event times */
static int64_t now_unix_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * MS_PER_S + t.tv_nsec / (US_PER_MS * MS_PER_S);
}

/* join_event - the MQTT event of a job's answered join (strings borrowed from the job) */
static void join_event(const struct job *j, struct ev_join *e)
{
	const struct js_join_out *o = &j->jr.out;
	bool known = o->verdict != JS_V_UNKNOWN_DEVEUI && o->verdict != JS_V_MALFORMED_FRAME;

	memset(e, 0, sizeof(*e));
	e->rejoin = j->msg.type == BI_REJOIN_REQ;
	e->rejoin_type = o->type == LW_REQ_REJOIN0 ? 0 : o->type == LW_REQ_REJOIN2 ? 2 : 1;
	memcpy(e->dev_eui, j->msg.dev_eui, LW_EUI_LEN);
	e->has_join_eui = known;
	memcpy(e->join_eui, o->join_eui, LW_EUI_LEN);
	memcpy(e->net_id, j->jr.in.net_id, LW_NETID_LEN);
	memcpy(e->dev_addr, j->jr.in.dev_addr, LW_DEVADDR_LEN);
	e->mac_version = known ? lw_version_str(o->mac_version) : NULL;
	e->accepted = o->verdict == JS_ACCEPT;
	e->result = bi_result_str(verdict_result(o), BI_PROTO_1_1);
	e->reason = js_verdict_str(o->verdict);
	e->peer = j->to.pe->name;
	if (e->accepted) {
		e->session_id = o->session_id;
		e->session_id_len = o->session_id_len;
		e->join_nonce = o->join_nonce;
	}
	e->time_ms = now_unix_ms();
}

/* join_accepted - engine hook ([mqtt] on): the events committed with an accepted join: the
 * join event, and the AppSKey for every application server whose join_euis cover the device
 * (the AppSKeyReq rule) and that has a KEK: never a plain key on the bus */
static int join_accepted(struct js_join_req *r, const struct js_event **events, void *arg)
{
	struct job *j = arg;
	struct peers *ps = j->s->peers;
	struct ev_as_target t[JS_COMMIT_EVENTS_MAX - 1];
	struct ev_join e;
	unsigned n = 0;
	int ret;

	ev_list_free(j->ev);	/* a re-run after a lost compare-and-swap */
	j->ev = NULL;
	join_event(j, &e);
	for (unsigned i = 0; i < ps->n && n < DJ_ARRAY_LEN(t); i++) {
		struct peer *pe = &ps->v[i];

		if (pe->is_ns || pe->kek == NULL ||
		    !prefix_match(pe->euis, pe->n_euis, r->out.join_eui))
			continue;
		t[n].as_id = pe->name;
		t[n].identity = pe->cfg->identity;
		t[n].kek = pe->kek;
		n++;
	}
	ret = ev_join_events(&e, t, n, &r->out.keys.app_s_key, &j->ev);
	if (ret == DJ_EOK)
		*events = j->ev;
	return ret;
}

/* join_refused_event - [mqtt] on: a refused join's event, to the outbox on its own (it changes
 * no state, so nothing waits for it: the answer leaves at once) */
static void join_refused_event(struct svc *s, const struct job *j)
{
	struct js_event *list = NULL;
	struct ev_join e;
	int ret;

	if (s->pub == NULL)
		return;
	join_event(j, &e);
	ret = ev_join_events(&e, NULL, 0, NULL, &list);
	if (ret != DJ_EOK) {
		dj_warn("mqtt: the event of a refused join is lost: %s", dj_strerror(ret));
		return;
	}
	ev_record(s->store, j->msg.dev_eui, list);
}

/* join_finish - on the loop thread: answer a JoinReq/RejoinReq from the engine's verdict */
static void join_finish(void *arg)
{
	struct job *j = arg;
	struct svc *s = j->s;
	struct js_join_out *o = &j->jr.out;
	struct bi_msg ans;
	int ret = DJ_EOK;

	if (j->jr.result == DJ_ECONFLICT) {	/* lost a race with another request: re-check */
		ret = js_engine_submit(s->engine, &j->jr);
		if (ret == DJ_EOK)
			return;
	}
	bi_msg_answer_init(&j->msg, answer_type(j->msg.type), &ans);
	ans.has_dev_eui = true;
	memcpy(ans.dev_eui, j->msg.dev_eui, LW_EUI_LEN);
	if (ret != DJ_EOK || j->jr.result != DJ_EOK) {
		dj_err("join for peer %s failed: %s", j->to.pe->name,
		       dj_strerror(ret != DJ_EOK ? ret : j->jr.result));
		ans.result = BI_OTHER;
		snprintf(ans.description, sizeof(ans.description), "internal error");
		goto send;
	}
	s->m.verdicts[o->verdict]++;
	ans.result = verdict_result(o);
	snprintf(ans.description, sizeof(ans.description), "%s", js_verdict_str(o->verdict));
	if (o->verdict != JS_ACCEPT) {
		join_refused_event(s, j);
		goto send;
	}
	memcpy(ans.phy, o->phy, o->phy_len);
	ans.phy_len = o->phy_len;
	memcpy(ans.session_key_id, o->session_id, o->session_id_len);
	ans.session_key_id_len = o->session_id_len;
	if (o->opt_neg)
		ret = envelope(j->to.pe, &o->keys.f_nwk_s_int_key, &ans.f_nwk_s_int_key) ||
		      envelope(j->to.pe, &o->keys.s_nwk_s_int_key, &ans.s_nwk_s_int_key) ||
		      envelope(j->to.pe, &o->keys.nwk_s_enc_key, &ans.nwk_s_enc_key);
	else
		ret = envelope(j->to.pe, &o->keys.f_nwk_s_int_key, &ans.nwk_s_key);
	if (ret != DJ_EOK) {
		bi_msg_wipe(&ans);
		bi_msg_answer_init(&j->msg, answer_type(j->msg.type), &ans);
		ans.result = BI_OTHER;
		snprintf(ans.description, sizeof(ans.description), "internal error");
	}
send:
	js_join_out_wipe(o);
	send_answer(s, &j->to, &ans);
	ev_list_free(j->ev);
	free(j);
}

/* join_done - engine completion: inline (refusal) or on the committer thread (accept) */
static void join_done(struct js_join_req *r, void *arg)
{
	struct job *j = arg;

	(void)r;
	if (srv_call_in_loop(j->s->srv, join_finish, j) != DJ_EOK)
		dj_log(LOG_CRIT, "cannot hand a join answer to the loop: out of memory");
}

/* join_flush - hand the queued JoinReqs/RejoinReqs to the engine as one group */
static void join_flush(struct svc *s)
{
	struct js_join_req *rq[JS_ENGINE_BATCH_MAX];
	struct job *q[JS_ENGINE_BATCH_MAX];
	int rets[JS_ENGINE_BATCH_MAX];
	unsigned n = s->join_n;
	int ret;

	if (n == 0)
		return;
	memcpy(q, s->join_q, n * sizeof(q[0]));
	s->join_n = 0;
	for (unsigned i = 0; i < n; i++)
		rq[i] = &q[i]->jr;
	ret = js_engine_submit_many(s->engine, rq, n, rets);
	for (unsigned i = 0; i < n; i++) {
		int r = ret != DJ_EOK ? ret : rets[i];

		if (r == DJ_EOK)
			continue;
		dj_err("join engine: %s", dj_strerror(r));
		refuse(s, &q[i]->to, &q[i]->msg, BI_OTHER, "internal error");
		free(q[i]);
	}
}

/* join_flush_cb - the loop reached join_ev: the requests gathered so far go as one group */
static void join_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	join_flush(arg);
}

/* join_queue - a checked JoinReq/RejoinReq joins the group of this pass of the loop */
static void join_queue(struct svc *s, struct job *j)
{
	s->join_q[s->join_n++] = j;
	if (s->join_n == JS_ENGINE_BATCH_MAX)
		join_flush(s);
	else if (s->join_n == 1)
		event_active(s->join_ev, 0, 0);
}

/* do_join - JoinReq / RejoinReq: hand the frame to the engine */
static void do_join(struct svc *s, struct reply_to *to, const struct bi_msg *m)
{
	struct peer *pe = to->pe;
	struct lw_request fr;
	struct job *j;

	/* The DevEUI field must be the frame's, and the frame's JoinEUI one served here. */
	if (lw_frame_parse_request(m->phy, m->phy_len, &fr) == LW_FRAME_OK) {
		if (memcmp(fr.dev_eui, m->dev_eui, LW_EUI_LEN) != 0) {
			refuse(s, to, m, BI_MALFORMED_REQUEST,
			       "DevEUI does not match the PHYPayload");
			return;
		}
		if ((fr.type == LW_REQ_JOIN || fr.type == LW_REQ_REJOIN1) &&
		    !prefix_match(s->peers->euis, s->peers->n_euis, fr.join_eui)) {
			refuse(s, to, m, BI_UNKNOWN_DEVEUI,
			       "the device's JoinEUI is not served by this join server");
			return;
		}
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		refuse(s, to, m, BI_OTHER, "out of memory");
		return;
	}
	j->s = s;
	j->to = *to;
	j->msg = *m;
	j->jr.in.phy = j->msg.phy;
	j->jr.in.phy_len = j->msg.phy_len;
	if (dj_hex_parse(m->sender_id, j->jr.in.net_id, LW_NETID_LEN) != DJ_EOK)
		memset(j->jr.in.net_id, 0, LW_NETID_LEN);
	memcpy(j->jr.in.dev_addr, m->dev_addr, LW_DEVADDR_LEN);
	j->jr.in.dl_settings = m->dl_settings;
	j->jr.in.rx_delay = m->rx_delay;
	j->jr.in.has_cflist = m->has_cflist;
	memcpy(j->jr.in.cflist, m->cflist, LW_CFLIST_LEN);
	j->jr.in.actor = pe->cfg->identity;
	j->jr.done = join_done;
	j->jr.done_arg = j;
	j->jr.accepted = s->pub != NULL ? join_accepted : NULL;
	join_queue(s, j);
}

/* do_appskey - AppSKeyReq from an application server */
static void do_appskey(struct svc *s, struct reply_to *to, const struct bi_msg *m)
{
	struct peer *pe = to->pe;
	static struct js_device dev;	/* loop thread only */
	struct js_session se;
	struct bi_msg ans;
	struct lw_key k;
	uint8_t label[JS_LABEL_MAX], secret[JS_SESSION_SECRET_LEN];
	size_t llen, slen = 0;
	char detail[JS_AUDIT_DETAIL_MAX], sid[2 * BI_SESSION_KEY_ID_MAX + 1];
	int ret;

	/* not found, expired, another device's, or not this AS's (the device's JoinEUI outside
	 * the AS's join_euis): one answer for all, so an AS cannot probe another's fleet */
	ret = js_store_session_get(s->store, m->session_key_id, m->session_key_id_len, &se);
	if (ret == DJ_EOK)
		ret = js_store_device_get(s->store, m->dev_eui, &dev);
	if (ret == DJ_ENOENT || (ret == DJ_EOK && (memcmp(se.dev_eui, m->dev_eui, LW_EUI_LEN) != 0 ||
						  se.expires_at <= js_store_now(s->store) ||
						  !prefix_match(pe->euis, pe->n_euis, dev.join_eui)))) {
		refuse(s, to, m, BI_UNKNOWN_DEVEUI, "no such session for this device");
		return;
	}
	if (ret != DJ_EOK) {
		refuse(s, to, m, BI_OTHER, "internal error");
		return;
	}
	llen = js_keystore_label(JS_PURPOSE_SESSION, m->session_key_id, m->session_key_id_len,
				 label);
	ret = js_keystore_open(s->ks, label, llen, se.session_token, se.session_token_len, secret,
			       sizeof(secret), &slen);
	if (ret != DJ_EOK || slen != JS_SESSION_SECRET_LEN) {
		OPENSSL_cleanse(secret, sizeof(secret));
		dj_err("session token of %s failed to open: %s", pe->name, dj_strerror(ret));
		refuse(s, to, m, BI_OTHER, "internal error");
		return;
	}
	lw_key_set(&k, secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	bi_msg_answer_init(m, BI_APPSKEY_ANS, &ans);
	ans.has_dev_eui = true;
	memcpy(ans.dev_eui, m->dev_eui, LW_EUI_LEN);
	memcpy(ans.session_key_id, m->session_key_id, m->session_key_id_len);
	ans.session_key_id_len = m->session_key_id_len;
	ret = envelope(pe, &k, &ans.app_s_key);
	lw_key_wipe(&k);
	if (ret != DJ_EOK) {
		bi_msg_wipe(&ans);
		refuse(s, to, m, BI_OTHER, "internal error");
		return;
	}
	dj_hex_format(m->session_key_id, m->session_key_id_len, sid);
	snprintf(detail, sizeof(detail), "session_key_id=%s kek=%s", sid,
		 pe->kek != NULL ? bi_kek_label(pe->kek) : "(plain, by policy)");
	if (js_store_audit(s->store, m->dev_eui, "appskey-release", pe->cfg->identity, detail) !=
	    DJ_EOK) {
		/* no audit entry, no key: the release must be on record */
		bi_msg_wipe(&ans);
		refuse(s, to, m, BI_OTHER, "internal error");
		return;
	}
	ans.result = BI_SUCCESS;
	snprintf(ans.description, sizeof(ans.description), "AppSKey released");
	send_answer(s, to, &ans);
}

/* do_homens - HomeNSReq: the device's home network */
static void do_homens(struct svc *s, struct reply_to *to, const struct bi_msg *m)
{
	static struct js_device d;	/* loop thread only */
	struct bi_msg ans;
	int ret = js_store_device_get(s->store, m->dev_eui, &d);

	if (ret == DJ_ENOENT || (ret == DJ_EOK && !prefix_match(s->peers->euis, s->peers->n_euis,
								d.join_eui))) {
		refuse(s, to, m, BI_UNKNOWN_DEVEUI, "unknown DevEUI");
		return;
	}
	if (ret != DJ_EOK) {
		refuse(s, to, m, BI_OTHER, "internal error");
		return;
	}
	bi_msg_answer_init(m, BI_HOMENS_ANS, &ans);
	ans.has_dev_eui = true;
	memcpy(ans.dev_eui, m->dev_eui, LW_EUI_LEN);
	ans.has_h_net_id = true;
	/* [js] ownership: the network the current owner's rights name first */
	memcpy(ans.h_net_id, to->has_hnet ? to->hnet : s->peers->cfg.home_net_id, LW_NETID_LEN);
	if (m->proto == BI_PROTO_1_1 && s->peers->cfg.home_ns_id != NULL) {
		ans.has_hns_id = true;
		snprintf(ans.hns_id, sizeof(ans.hns_id), "%s", s->peers->cfg.home_ns_id);
	}
	ans.result = BI_SUCCESS;
	snprintf(ans.description, sizeof(ans.description), "home network of the device");
	send_answer(s, to, &ans);
}

/* handle - srv handler: authenticate, authorize, dispatch */
/* proceed - an authorized request: rate limit, ReceiverID, then the work */
static void proceed(struct svc *s, struct reply_to *to, struct bi_msg *m)
{
	uint8_t rx[LW_EUI_LEN];

	if (!rate_ok(to->pe)) {
		s->m.rate_limited++;
		REPLY_LIT(to->req, HTTP_TOO_MANY, "{\"error\":\"rate limit\"}");
		return;
	}
	/* parsed, authorized, within its rate: accepted for processing */
	accept_async(s, to);
	if (dj_hex_parse(m->receiver_id, rx, LW_EUI_LEN) != DJ_EOK ||
	    !prefix_match(s->peers->euis, s->peers->n_euis, rx)) {
		refuse(s, to, m, BI_UNKNOWN_RECEIVER, "ReceiverID is not served here");
		return;
	}
	switch (m->type) {
	case BI_JOIN_REQ:
	case BI_REJOIN_REQ:
		do_join(s, to, m);
		break;
	case BI_APPSKEY_REQ:
		do_appskey(s, to, m);
		break;
	default:
		do_homens(s, to, m);
		break;
	}
}

/* A request waiting for the ownership check of its device ([js] ownership). */
struct ocheck {
	struct svc *s;
	struct reply_to to;
	struct bi_msg m;
};

/* owner_done - the ownership verdict: go on, or refuse (fail closed on a DNS failure) */
static void owner_done(const struct js_owner_verdict *v, void *arg)
{
	struct ocheck *oc = arg;
	struct svc *s = oc->s;
	char eui[2 * LW_EUI_LEN + 1];
	const char *desc;
	bool join = oc->m.type == BI_JOIN_REQ || oc->m.type == BI_REJOIN_REQ;

	if (v->status == JS_OWNER_CANCELLED)
		goto out;		/* shutting down: the request is gone with the server */
	if (v->status == JS_OWNER_ALLOWED) {
		oc->to.has_hnet = v->has_net_id;
		memcpy(oc->to.hnet, v->net_id, LW_NETID_LEN);
		proceed(s, &oc->to, &oc->m);
		goto out;
	}
	/* refused, or no verdict because the DNS cannot be asked: no keys leave (rule 3) */
	desc = v->status == JS_OWNER_TEMPFAIL ? "ownership: DNS unavailable" : v->why;
	dj_hex_format(oc->m.dev_eui, LW_EUI_LEN, eui);
	dj_warn("peer=%s dev_eui=%s %s refused: %s", oc->to.pe->name, eui,
		bi_msg_type_str(oc->m.type), v->why);
	if (js_store_audit(s->store, oc->m.dev_eui, "ownership-refused", oc->to.pe->cfg->identity,
			   v->why) != DJ_EOK)
		dj_warn("dev_eui=%s: the ownership refusal is not in the audit log", eui);
	accept_async(s, &oc->to);
	refuse(s, &oc->to, &oc->m, join ? BI_ACTIVATION_DISALLOWED : BI_UNKNOWN_DEVEUI, desc);
out:
	bi_msg_wipe(&oc->m);
	free(oc);
}

/* authorize - [js] ownership: a request for a device the registry knows (an owner row) goes
 * on only if the device's ownership chain names the peer's network (js_owner.h); others go
 * straight to proceed() */
static void authorize(struct svc *s, struct reply_to *to, struct bi_msg *m)
{
	struct js_owner o;
	struct js_owner_req q;
	struct ocheck *oc;
	int ret;

	if (!s->peers->cfg.js_ownership) {
		proceed(s, to, m);
		return;
	}
	memset(&o, 0, sizeof(o));
	/* zone and serial only, from a reader connection: never behind the committer */
	ret = s->owner == NULL ? DJ_EINVAL
			       : js_store_owner_head(s->store, m->dev_eui, o.zone, sizeof(o.zone),
						     &o.serial);
	if (ret == DJ_ENOENT) {		/* not in the registry: no ownership to check */
		proceed(s, to, m);
		return;
	}
	oc = ret == DJ_EOK ? calloc(1, sizeof(*oc)) : NULL;
	if (oc == NULL) {
		dj_err("ownership check: %s", ret != DJ_EOK ? dj_strerror(ret) : "out of memory");
		js_owner_clear(&o);
		accept_async(s, to);
		refuse(s, to, m, BI_OTHER, "internal error");
		return;
	}
	oc->s = s;
	oc->to = *to;
	oc->m = *m;
	memset(&q, 0, sizeof(q));
	memcpy(q.dev_eui, m->dev_eui, LW_EUI_LEN);
	q.zone = o.zone;
	q.serial = o.serial;
	q.identity = srv_req_peer(to->req);
	q.sender_id = m->sender_id;
	q.is_ns = to->pe->is_ns;
	ret = js_owner_check(s->owner, &q, owner_done, oc);	/* continues in owner_done() */
	js_owner_clear(&o);
	if (ret != DJ_EOK) {
		dj_err("ownership check: %s", dj_strerror(ret));
		accept_async(s, &oc->to);
		refuse(s, &oc->to, &oc->m, BI_OTHER, "internal error");
		bi_msg_wipe(&oc->m);
		free(oc);
	}
}

/* A request waiting for the DNS binding of its NetID to the client's identity. */
struct binding {
	struct svc *s;
	struct reply_to to;
	struct bi_msg m;
	char host[DA_NAME_MAX];		/* the identity's host: "_ns-client." stripped */
	char name[DA_NAME_MAX];		/* the NetID's NAPTR owner */
};

/* binding_done - the NAPTR -> SRV chain of the NetID: the identity host must be a target */
static void binding_done(const struct da_discovery *d, void *arg)
{
	struct binding *b = arg;
	struct svc *s = b->s;
	char why[3 * DA_NAME_MAX + 64];
	size_t i;

	if (d->status == DA_TEMPFAIL) {
		/* the DNS did not answer: no verdict either way; the NS asks again */
		dj_warn("NetID binding of %s: %s: temporary failure: %s", b->host, b->name,
			d->why != NULL ? d->why : "");
		REPLY_LIT(b->to.req, HTTP_UNAVAILABLE, "{\"error\":\"NetID binding: DNS unavailable\"}");
		goto out;
	}
	for (i = 0; d->status == DA_SECURE && i < d->n; i++) {
		if (strcasecmp(d->srv[i].host, b->host) == 0) {
			authorize(s, &b->to, &b->m);
			goto out;
		}
	}
	snprintf(why, sizeof(why), "NetID %s is not bound to %s in the DNS (%s%s%s)",
		 b->m.sender_id, b->host, da_status_str(d->status),
		 d->status == DA_SECURE ? ": not a target of " : "",
		 d->status == DA_SECURE ? b->name : "");
	dj_warn("identity %s: %s", b->host, why);
	accept_async(s, &b->to);
	refuse(s, &b->to, &b->m, BI_UNKNOWN_SENDER, why);
out:
	bi_msg_wipe(&b->m);
	free(b);
}

/* binding_start - [dane] netid_binding: look the SenderID's NetID up before going on */
static void binding_start(struct svc *s, struct reply_to *to, const struct bi_msg *m)
{
	const char *id = srv_req_peer(to->req), *dot;
	const char *suffix = s->peers->cfg.dane_discovery_suffix != NULL
				     ? s->peers->cfg.dane_discovery_suffix
				     : "lora-alliance.org";
	uint8_t nid[LW_NETID_LEN];
	struct binding *b = calloc(1, sizeof(*b));

	if (b == NULL) {
		REPLY_LIT(to->req, HTTP_UNAVAILABLE, "{\"error\":\"unavailable\"}");
		return;
	}
	b->s = s;
	b->to = *to;
	b->m = *m;
	/* "_ns-client.HOST" -> HOST; an identity without such a label is its own host */
	dot = strchr(id, '.');
	snprintf(b->host, sizeof(b->host), "%s",
		 id[0] == '_' && dot != NULL && dot - id > 8 && strncmp(dot - 7, "-client", 7) == 0
			 ? dot + 1
			 : id);
	if (dj_hex_parse(m->sender_id, nid, LW_NETID_LEN) != DJ_EOK ||
	    da_netid_name((uint32_t)nid[0] << 16 | (uint32_t)nid[1] << 8 | nid[2], suffix, b->name,
			  sizeof(b->name)) != DJ_EOK ||
	    da_discover(s->resolver, b->name, "LWNS", binding_done, b, NULL) != DJ_EOK) {
		accept_async(s, &b->to);
		refuse(s, &b->to, &b->m, BI_UNKNOWN_SENDER, "NetID binding: no valid NetID name");
		bi_msg_wipe(&b->m);
		free(b);
	}
}

static void handle(struct srv_req *req, void *arg)
{
	struct svc *s = arg;
	struct reply_to to = { .req = req, .started = srv_req_started(req) };
	struct bi_msg m;
	const uint8_t *body;
	char err[BI_ERR_MAX];
	size_t len;
	int ret;

	body = srv_req_body(req, &len);
	ret = bi_msg_parse((const char *)body, len, &m, err, sizeof(err));
	to.pe = find_peer(s->peers, srv_req_peer(req));
	if (ret != DJ_EOK) {
		/* not accepted for processing: answered in the response, async peer or not */
		dj_warn("peer %s: bad request: %s", srv_req_peer(req), err);
		if (m.type == BI_JOIN_ANS || m.type == BI_REJOIN_ANS || m.type == BI_APPSKEY_ANS ||
		    m.type == BI_HOMENS_ANS || ret == DJ_ENOMEM || m.sender_id[0] == '\0') {
			s->m.http_errors++;
			REPLY_LIT(req, HTTP_BAD_REQUEST, "{\"error\":\"malformed request\"}");
			return;
		}
		s->m.requests[m.type]++;
		refuse(s, &to, &m, m.result, err);
		return;
	}
	s->m.requests[m.type]++;
	if (m.type != BI_JOIN_REQ && m.type != BI_REJOIN_REQ && m.type != BI_APPSKEY_REQ &&
	    m.type != BI_HOMENS_REQ) {
		s->m.http_errors++;
		REPLY_LIT(req, HTTP_BAD_REQUEST, "{\"error\":\"not a request\"}");
		return;
	}
	if (to.pe == NULL || !sender_allowed(to.pe, &m) ||
	    to.pe->is_ns != (m.type != BI_APPSKEY_REQ)) {
		dj_warn("identity %s may not send %s with SenderID %s", srv_req_peer(req),
			bi_msg_type_str(m.type), m.sender_id);
		/* a configured async peer hears of its refusal the async way, as of any answer */
		accept_async(s, &to);
		refuse(s, &to, &m, BI_UNKNOWN_SENDER,
		       "SenderID not allowed for this authenticated identity");
		return;
	}
	if (s->resolver != NULL && s->peers->cfg.dane_netid_binding && to.pe->is_ns) {
		binding_start(s, &to, &m); /* continues in authorize(), or refuses */
		bi_msg_wipe(&m);
		return;
	}
	authorize(s, &to, &m);
	bi_msg_wipe(&m);
}

/* events_metrics - [mqtt] on: the outbox and the publisher (dj_events_*) */
static void events_metrics(struct svc *s, FILE *f)
{
	struct js_store_stats st;
	struct ev_pub_stats ps;

	if (s->pub == NULL)
		return;
	js_store_stats(s->store, &st);
	ev_pub_stats(s->pub, &ps);
	fprintf(f, "# TYPE dj_events_outbox gauge\ndj_events_outbox %llu\n"
		   "# TYPE dj_events_written_total counter\ndj_events_written_total %llu\n"
		   "# TYPE dj_events_published_total counter\ndj_events_published_total %llu\n"
		   "# TYPE dj_events_dropped_total counter\ndj_events_dropped_total %llu\n"
		   "# TYPE dj_events_inflight gauge\ndj_events_inflight %u\n"
		   "# TYPE dj_events_broker_connected gauge\ndj_events_broker_connected %d\n"
		   "# TYPE dj_events_broker_connects_total counter\n"
		   "dj_events_broker_connects_total %llu\n"
		   "# TYPE dj_events_broker_connect_failures_total counter\n"
		   "dj_events_broker_connect_failures_total %llu\n"
		   "# TYPE dj_events_undecodable_total counter\ndj_events_undecodable_total %llu\n",
		(unsigned long long)st.outbox_rows, (unsigned long long)st.events_written,
		(unsigned long long)ps.published, (unsigned long long)st.events_dropped,
		ps.inflight, ps.connected ? 1 : 0, (unsigned long long)ps.connects,
		(unsigned long long)ps.connect_failures, (unsigned long long)ps.render_failures);
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

/* metrics_text - Prometheus text exposition */
static char *metrics_text(void *arg)
{
	struct svc *s = arg;
	struct js_store_stats st;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	uint64_t cum = 0;

	if (f == NULL)
		return NULL;
	js_store_stats(s->store, &st);
	fprintf(f, "# TYPE danejoin_requests_total counter\n");
	for (int t = BI_JOIN_REQ; t <= BI_HOMENS_REQ; t += 2)
		fprintf(f, "danejoin_requests_total{type=\"%s\"} %llu\n", bi_msg_type_str(t),
			(unsigned long long)s->m.requests[t]);
	fprintf(f, "# TYPE danejoin_answers_total counter\n");
	for (int r = 0; r < BI_RESULT_COUNT; r++)
		fprintf(f, "danejoin_answers_total{result=\"%s\"} %llu\n",
			bi_result_str(r, BI_PROTO_1_1), (unsigned long long)s->m.results[r]);
	fprintf(f, "# TYPE danejoin_joins_total counter\n");
	for (int v = 0; v <= JS_V_BUSY; v++)
		fprintf(f, "danejoin_joins_total{verdict=\"%s\"} %llu\n", js_verdict_str(v),
			(unsigned long long)s->m.verdicts[v]);
	fprintf(f, "# TYPE danejoin_request_seconds histogram\n");
	for (unsigned i = 0; i < LAT_BUCKETS; i++) {
		cum = s->m.lat_bucket[i];
		fprintf(f, "danejoin_request_seconds_bucket{le=\"%g\"} %llu\n", lat_bounds[i],
			(unsigned long long)cum);
	}
	fprintf(f, "danejoin_request_seconds_bucket{le=\"+Inf\"} %llu\n",
		(unsigned long long)s->m.lat_count);
	fprintf(f, "danejoin_request_seconds_sum %.6f\ndanejoin_request_seconds_count %llu\n",
		s->m.lat_sum, (unsigned long long)s->m.lat_count);
	fprintf(f, "# TYPE danejoin_group_commit_transactions_total counter\n"
		   "danejoin_group_commit_transactions_total %llu\n"
		   "# TYPE danejoin_group_commit_items_total counter\n"
		   "danejoin_group_commit_items_total %llu\n"
		   "# TYPE danejoin_group_commit_batch_max gauge\n"
		   "danejoin_group_commit_batch_max %llu\n",
		(unsigned long long)st.transactions, (unsigned long long)st.commits,
		(unsigned long long)st.batch_max_seen);
	fprintf(f, "# TYPE danejoin_open_connections gauge\ndanejoin_open_connections %u\n"
		   "# TYPE danejoin_http_errors_total counter\ndanejoin_http_errors_total %llu\n"
		   "# TYPE danejoin_rate_limited_total counter\ndanejoin_rate_limited_total %llu\n",
		srv_connections(s->srv), (unsigned long long)s->m.http_errors,
		(unsigned long long)s->m.rate_limited);
	if (s->resolver != NULL) {
		struct srv_auth_stats as;
		struct da_stats ds;

		srv_auth_stats(s->srv, &as);
		da_resolver_stats(s->resolver, &ds);
		fprintf(f, "# TYPE danejoin_peer_auth_total counter\n"
			   "danejoin_peer_auth_total{result=\"ok\"} %llu\n"
			   "danejoin_peer_auth_total{result=\"rejected\"} %llu\n"
			   "danejoin_peer_auth_total{result=\"tempfail\"} %llu\n"
			   "# TYPE danejoin_peer_auth_held_requests_total counter\n"
			   "danejoin_peer_auth_held_requests_total %llu\n",
			as.ok, as.rejected, as.tempfail, as.held);
		fprintf(f, "# TYPE danejoin_dns_queries_total counter\ndanejoin_dns_queries_total %llu\n"
			   "# TYPE danejoin_dns_cache_hits_total counter\n"
			   "danejoin_dns_cache_hits_total %llu\n"
			   "# TYPE danejoin_dns_cache_entries gauge\ndanejoin_dns_cache_entries %zu\n"
			   "# TYPE danejoin_dns_answers_total counter\n"
			   "danejoin_dns_answers_total{status=\"secure\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"insecure\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"bogus\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"nxdomain\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"nodata\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"tempfail\"} %llu\n",
			(unsigned long long)ds.queries, (unsigned long long)ds.cache_hits, ds.cached,
			(unsigned long long)ds.secure, (unsigned long long)ds.insecure,
			(unsigned long long)ds.bogus, (unsigned long long)ds.nxdomain,
			(unsigned long long)ds.nodata, (unsigned long long)ds.tempfail);
	}
	if (s->owner != NULL && s->peers->cfg.js_ownership) {
		struct js_owner_stats os;

		js_owner_stats(s->owner, &os);
		fprintf(f, "# TYPE danejoin_ownership_checks_total counter\n"
			   "danejoin_ownership_checks_total{verdict=\"allowed\"} %llu\n"
			   "danejoin_ownership_checks_total{verdict=\"refused\"} %llu\n"
			   "danejoin_ownership_checks_total{verdict=\"tempfail\"} %llu\n"
			   "# TYPE danejoin_ownership_cache_hits_total counter\n"
			   "danejoin_ownership_cache_hits_total %llu\n"
			   "# TYPE danejoin_ownership_fetches_total counter\n"
			   "danejoin_ownership_fetches_total %llu\n"
			   "# TYPE danejoin_ownership_cache_entries gauge\n"
			   "danejoin_ownership_cache_entries %zu\n",
			(unsigned long long)os.allowed, (unsigned long long)os.refused,
			(unsigned long long)os.tempfail, (unsigned long long)os.hits,
			(unsigned long long)os.fetches, os.cached);
	}
	events_metrics(s, f);
	fclose(f);
	return buf;
}

/* open_keys_and_store - master key, key store, store, engine */
static int open_keys_and_store(struct svc *s, const struct js_config *cfg, char *err,
			       size_t errlen)
{
	uint8_t master[JS_MASTER_KEY_LEN], kcv[JS_KCV_LEN];
	struct js_store_props sp = { .path = cfg->store_path, .kcv = kcv,
				     .devnonce_history = cfg->devnonce_history,
				     .batch_max = cfg->batch_max,
				     .outbox_max = cfg->mqtt ? cfg->mqtt_outbox_max : 0 };
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
		snprintf(err, errlen, "[store] path %s: %s", cfg->store_path, dj_strerror(ret));
		return ret;
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
	ret = dane_check(path, cfg, err, errlen);
	if (ret != DJ_EOK || !auth_is_dane(cfg))
		goto out;
	ret = DJ_ENOMEM;
	if (*base == NULL && (*base = event_base_new()) == NULL)
		goto out;
	resolver_props(cfg, &rp);
	ret = da_resolver_new(*base, &rp, out, why, sizeof(why));
	if (ret != DJ_EOK)
		snprintf(err, errlen, "%s: [dane] %s", path, why);
out:
	js_config_free(cfg);
	return ret;
}

int svc_check_config(const char *config_path, char *err, size_t errlen)
{
	struct peers *p = NULL;
	uint8_t master[JS_MASTER_KEY_LEN];
	int ret;

	struct event_base *base = NULL;
	struct da_resolver *r = NULL;
	struct js_config cfg;

	err[0] = '\0';
	/* a resolver on a scratch loop: the [dane] settings (anchors, stubs) are checked too */
	ret = resolver_for(config_path, &cfg, &base, &r, err, errlen);
	if (ret == DJ_EOK)
		ret = peers_load(config_path, base, r, &p, err, errlen);
	if (ret == DJ_EOK)
		ret = js_keystore_read_master(p->cfg.master_key_file, master);
	else
		goto out;
	OPENSSL_cleanse(master, sizeof(master));
	if (ret != DJ_EOK)
		snprintf(err, errlen, "[keys] master_key_file %s: %s", p->cfg.master_key_file,
			 dj_strerror(ret));
out:
	peers_free(p);
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

int svc_new(struct event_base *base, const char *config_path, struct svc **out, char *err,
	    size_t errlen)
{
	struct svc *s = calloc(1, sizeof(*s));
	struct srv_props sp;
	const struct js_config *cfg;
	int ret = DJ_ENOMEM;

	err[0] = '\0';
	if (s == NULL)
		return DJ_ENOMEM;
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
	ret = peers_load(config_path, base, s->resolver, &s->peers, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	cfg = &s->peers->cfg;
	if (s->resolver != NULL) {
		/* always made in DANE mode, so that a reload may switch [js] ownership on */
		struct js_owner_props op = { .resolver = s->resolver,
					     .cache_max = cfg->dane_cache_max,
					     .ttl_cap = cfg->dane_ttl_cap,
					     .neg_ttl = cfg->dane_neg_ttl };

		ret = js_owner_ctx_new(&op, &s->owner);
		if (ret != DJ_EOK) {
			snprintf(err, errlen, "ownership checks: %s", dj_strerror(ret));
			goto out;
		}
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
	sp.auth = auth_is_dane(cfg) ? SRV_AUTH_DANE : SRV_AUTH_PKIX;
	sp.resolver = s->resolver;
	sp.clientid_ext = cfg->dane_clientid_ext != 0 ? cfg->dane_clientid_ext
						      : DA_CLIENTID_EXT_DEFAULT;
	sp.max_body = cfg->max_body;
	sp.header_timeout = cfg->header_timeout;
	sp.idle_timeout = cfg->idle_timeout;
	sp.max_connections = cfg->max_connections;
	sp.metrics_addr = cfg->metrics_address == NULL ? JS_CONFIG_METRICS_DEFAULT
		: strcmp(cfg->metrics_address, "off") == 0 ? NULL : cfg->metrics_address;
	sp.handler = handle;
	sp.metrics = metrics_text;
	sp.arg = s;
	ret = srv_new(base, &sp, &s->srv, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	s->join_ev = event_new(base, -1, 0, join_flush_cb, s);
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
	*out = s;
	s = NULL;
out:
	svc_free(s);
	return ret;
}

int svc_reload(struct svc *s, char *err, size_t errlen)
{
	struct peers *np = NULL;
	const struct js_config *cfg;
	int ret;

	err[0] = '\0';
	ret = peers_load(s->config_path, s->base, s->resolver, &np, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	cfg = &np->cfg;
	if (auth_is_dane(cfg) != (s->resolver != NULL)) {
		snprintf(err, errlen, "%s: [listen] auth changed: that needs a restart",
			 s->config_path);
		peers_free(np);
		return DJ_ECONFIG;
	}
	if (cfg->js_ownership && s->owner == NULL) {
		snprintf(err, errlen, "%s: [js] ownership = on needs auth = dane", s->config_path);
		peers_free(np);
		return DJ_ECONFIG;
	}
	ret = srv_reload_tls(s->srv, cfg->cert_file, cfg->key_file, cfg->client_ca_file, err,
			     errlen);
	if (ret != DJ_EOK) {
		peers_free(np);
		return ret;
	}
	/* Jobs and async deliveries in flight point into the old table (peer, KEK, dc_client):
	 * keep it alive behind the new one when any are in flight; it is freed with the service.
	 * A pending delivery finishes with the async_url it started with. */
	if (srv_in_flight(s->srv) == 0 && s->async_pending == 0)
		peers_free(s->peers);
	else
		np->prev = s->peers;
	s->peers = np;
	dj_notice("configuration reloaded: %u peers", np->n);
	return DJ_EOK;
}

/* drain_check - exit the loop once nothing is in flight (async answers delivered or dropped) */
static void drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct svc *s = arg;
	struct timeval tv = { 0, 20000 };

	(void)fd;
	(void)what;
	if (srv_in_flight(s->srv) == 0 && s->async_pending == 0) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	event_add(s->drain_ev, &tv);
}

void svc_drain(struct svc *s)
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

void svc_free(struct svc *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->join_n; i++)	/* their requests went with srv */
		free(s->join_q[i]);
	s->join_n = 0;
	if (s->join_ev != NULL)
		event_free(s->join_ev);
	srv_free(s->srv);
	js_engine_free(s->engine);
	ev_pub_free(s->pub);		/* before the store whose outbox it reads */
	js_store_close(s->store);	/* finishes pending commits */
	js_keystore_free(s->ks);
	/* deliveries with a dc_client are cancelled (and freed) by peers_free(); the ones waiting
	 * for a retry are freed here */
	s->closing = true;
	peers_free(s->peers);
	while (s->deliveries != NULL)
		delivery_free(s->deliveries);
	if (s->drain_ev != NULL)
		event_free(s->drain_ev);
	if (s->expire_ev != NULL)
		event_free(s->expire_ev);
	js_owner_ctx_free(s->owner);	/* pending checks: their requests went with srv */
	da_resolver_free(s->resolver); /* after everything that may have a lookup pending */
	free(s->config_path);
	free(s);
}
