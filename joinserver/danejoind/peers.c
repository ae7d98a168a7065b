/*
 * peers.c - danejoind's peers: the [peer.NAME] table, identities, rights and rate limits.
 *
 * Trust reasoning (DESIGN.md rules 2 and 5):
 * - A peer's rights come only from its authenticated identity (srv_req_peer(): the verified
 *   certificate's single SAN dNSName, or its DANE client name) looked up in [peer.NAME]. The
 *   SenderID, SenderNSID and role of every message must be among that peer's rights; otherwise
 *   the answer is UnknownSender and nothing runs (pipeline.c).
 * - Session keys leave only wrapped under the peer's KEK, or in plain for a peer whose
 *   configuration says plain_keys = yes (config loading refuses a peer with neither). A KEK
 *   file must be readable by its owner only (js_config_read_kek()).
 * - Identities are DNS names: a peer is found whatever the case of the identity it presents,
 *   and two peers whose identities differ only in case are refused at load (js_config).
 * - An application server gets AppSKeys only for devices under its join_euis.
 * A table replaced by SIGHUP stays alive behind the new one while requests still point into it
 * (svc_reload).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "svc_internal.h"

#define ASYNC_TIMEOUT_MS 5000	/* one POST of an async answer: connect, handshake, HTTP answer */
#define CLIENT_LABEL "-client."	/* "_ns-client.HOST": a DANE client name (after the role) */
#define NSID_EUI_DIGITS 16	/* an NSID written as an EUI-64 (TS002-1.1 §6.2: NSID) */
#define HEX_DIGITS "0123456789abcdefABCDEF"
#define KEK_AES128_LEN 16	/* the only KEK size ChirpStack v4 unwraps with */

/* js_config validates kek_label for bi_kek_new(), and reads KEKs bi_kek_new() takes */
_Static_assert(JS_CONFIG_KEK_LABEL_MAX == BI_KEK_LABEL_MAX - 1, "kek_label limits differ");
_Static_assert(JS_CONFIG_KEK_MAX == 32, "a KEK is AES-128 or AES-256");

/* peer_nids - a network server's sender_ids as NetIDs, parsed once for svc__sender_check (one
 * that does not parse is left out: it never matched) */
static void peer_nids(struct peer *pe)
{
	const struct js_config_list *ids = &pe->cfg->sender_ids;

	pe->n_nids = 0;
	for (unsigned i = 0; pe->is_ns && i < ids->n && i < JS_CONFIG_LIST_MAX; i++)
		if (dj_hex_parse(ids->v[i], pe->nids[pe->n_nids], LW_NETID_LEN) == DJ_EOK)
			pe->n_nids++;
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
	p->bits = slash != NULL ? (unsigned)atoi(slash + 1) : EUI_BITS;
}

/* svc__prefix_match - whether \p eui lies in one of the prefixes */
bool svc__prefix_match(const struct eui_prefix *v, unsigned n, const uint8_t eui[LW_EUI_LEN])
{
	uint64_t e = dj_be_get(eui, LW_EUI_LEN);

	for (unsigned i = 0; i < n; i++) {
		uint64_t mask = v[i].bits == 0 ? 0 : ~0ull << (EUI_BITS - v[i].bits);

		if ((e & mask) == (v[i].eui & mask))
			return true;
	}
	return false;
}

/* svc__peers_free - free a peer table (NULL is accepted; not the tables behind p->prev) */
void svc__peers_free(struct peers *p)
{
	if (p == NULL)
		return;
	/* dc_client_free() cancels POSTs in flight: their callbacks run now, with p->v valid */
	for (unsigned i = 0; i < p->n; i++) {
		bi_kek_free(p->v[i].kek);
		dc_client_free(p->v[i].async);
		da_lookup_cancel(p->v[i].disc); /* waiting deliveries are freed with the svc */
	}
	free(p->v);
	js_config_free(&p->cfg);
	if (p->lock_init)
		pthread_mutex_destroy(&p->lock);
	free(p);
}

/* svc__auth_is_dane - [listen] auth: DANE unless "pkix" */
bool svc__auth_is_dane(const struct js_config *cfg)
{
	return cfg->auth == NULL || strcmp(cfg->auth, "dane") == 0;
}

/* svc__dane_check - the [listen] auth and [dane] settings make sense together */
int svc__dane_check(const char *path, const struct js_config *cfg, char *err, size_t errlen)
{
	char norm[DA_NAME_MAX], why[DA_WHY_MAX];

	if (cfg->auth != NULL && strcmp(cfg->auth, "dane") != 0 && strcmp(cfg->auth, "pkix") != 0) {
		snprintf(err, errlen, "%s: [listen] auth: \"%s\" is neither dane nor pkix", path,
			 cfg->auth);
		return DJ_ECONFIG;
	}
	if (!svc__auth_is_dane(cfg)) {
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

/* svc__async_client - the dc_client that POSTs answers to an async peer, on \p base (NULL: its own,
 * for --check-config); authenticates with our [listen] certificate and checks the peer's
 * server certificate against client_ca_file and the URL host */
int svc__async_client(const struct js_config *cfg, const struct js_peer_config *pc,
		      struct event_base *base, struct da_resolver *resolver,
		      struct dc_client **out, char *err, size_t errlen)
{
	struct dc_props dp = { .url = pc->async_url, .cert_file = cfg->cert_file,
			       .key_file = cfg->key_file, .ca_file = cfg->client_ca_file,
			       .timeout_ms = ASYNC_TIMEOUT_MS, .connections = 1, .base = base,
			       .server_name = pc->async_server_name };
	char why[DC_ERR_MAX] = "";
	int ret;

	if (svc__auth_is_dane(cfg)) {
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

/* warn_kek_size - a network server's KEK that is not AES-128: both sizes work here, but
 * ChirpStack v4 unwraps with AES-128 KEKs only (aes_kw::Kek<Aes128>) and fails every join */
static void warn_kek_size(const char *path, const char *name, size_t klen)
{
	dj_warn("%s: [peer.%s] kek_file: an AES-%zu KEK: ChirpStack v4 unwraps session keys "
		"only with AES-128 KEKs, so a ChirpStack network server fails every join at key "
		"unwrap (The Things Stack takes both)", path, name, klen * 8);
}

/* svc__peers_load - the configuration and the peer table built from it (async clients on
 * \p base) */
int svc__peers_load(const char *path, struct event_base *base, struct da_resolver *resolver,
		    struct peers **out, char *err, size_t errlen)
{
	struct peers *p = calloc(1, sizeof(*p));
	uint8_t key[JS_CONFIG_KEK_MAX];
	size_t klen = 0;
	int ret = DJ_ENOMEM;

	if (p == NULL)
		return DJ_ENOMEM;
	if (pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p);
		return DJ_ENOMEM;
	}
	p->lock_init = true;
	ret = js_config_load(path, &p->cfg, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	ret = DJ_ECONFIG;
	if (p->cfg.listen_address == NULL || p->cfg.cert_file == NULL || p->cfg.key_file == NULL) {
		snprintf(err, errlen, "%s: [listen] address, cert_file and key_file are required by "
			 "danejoind", path);
		goto out;
	}
	ret = svc__dane_check(path, &p->cfg, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	ret = DJ_ECONFIG;
	if (p->cfg.join_euis.n == 0) {
		snprintf(err, errlen, "%s: [js] join_euis: required by danejoind (the JoinEUIs "
			 "served here)", path);
		goto out;
	}
	/* the files, as --check-config checks them: the same function at start and reload */
	ret = js_config_check_files(path, &p->cfg, err, errlen);
	if (ret != DJ_EOK)
		goto out;
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
		pe->tab = p;
		pe->is_ns = strcmp(pc->role, "ns") == 0;
		pe->bucket = pc->rate;
		for (unsigned k = 0; k < pc->join_euis.n; k++)
			parse_prefix(pc->join_euis.v[k], &pe->euis[k]);
		pe->n_euis = pc->join_euis.n;
		peer_nids(pe);
		p->n++;
		if (pc->kek_file != NULL) {
			ret = js_config_read_kek(pc, key, &klen, err, errlen);
			if (ret == DJ_EOK) {
				ret = bi_kek_new(pc->kek_label, key, klen, &pe->kek);
				if (ret == DJ_EINVAL) {	/* js_config let a label through */
					snprintf(err, errlen, "%s: [peer.%s] kek_label: not a valid "
						 "label", path, pc->name);
					ret = DJ_ECONFIG;
				} else if (ret != DJ_EOK) {
					snprintf(err, errlen, "[peer.%s] KEK: %s", pc->name,
						 dj_strerror(ret));
				}
			}
			OPENSSL_cleanse(key, sizeof(key));
			if (ret != DJ_EOK)
				goto out;
			if (pe->is_ns && klen != KEK_AES128_LEN)
				warn_kek_size(path, pc->name, klen);
		}
		if (pc->async_discover && (pc->async_url != NULL || !svc__auth_is_dane(&p->cfg))) {
			snprintf(err, errlen, "[peer.%s] async_discover: %s", pc->name,
				 pc->async_url != NULL ? "excludes async_url (its static override)"
						       : "needs auth = dane");
			ret = DJ_ECONFIG;
			goto out;
		}
		if (pc->async_url != NULL) {
			ret = svc__async_client(&p->cfg, pc, base, resolver, &pe->async, err, errlen);
			if (ret != DJ_EOK)
				goto out;
		}
	}
	*out = p;
	p = NULL;
	ret = DJ_EOK;
out:
	svc__peers_free(p);
	return ret;
}

/* svc__find_peer - the configured peer of an authenticated identity */
struct peer *svc__find_peer(struct peers *p, const char *identity)
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
		    strncasecmp(identity + 1 + n, CLIENT_LABEL, strlen(CLIENT_LABEL)) == 0 &&
		    strcasecmp(identity + 1 + n + strlen(CLIENT_LABEL), pc->identity) == 0)
			return &p->v[i];
	}
	return NULL;
}

/* nsid_is_eui - an NSID written as an EUI-64: exactly 16 hex digits, in either case */
static bool nsid_is_eui(const char *s)
{
	return strlen(s) == NSID_EUI_DIGITS && strspn(s, HEX_DIGITS) == NSID_EUI_DIGITS;
}

/* nsid_dns_len - the length of a DNS-name NSID without its trailing dot */
static size_t nsid_dns_len(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

/* svc__nsid_equal - two NSIDs name the same network server: as EUI-64s when both are 16 hex
 * digits (TTS writes them upper-case, configurations often lower-case), else as DNS names
 * (RFC 4343: case does not count; a trailing dot does not either) */
bool svc__nsid_equal(const char *a, const char *b)
{
	uint8_t x[LW_EUI_LEN], y[LW_EUI_LEN];
	size_t n;

	if (nsid_is_eui(a) || nsid_is_eui(b))
		return nsid_is_eui(a) && nsid_is_eui(b) &&
		       dj_hex_parse(a, x, LW_EUI_LEN) == DJ_EOK &&
		       dj_hex_parse(b, y, LW_EUI_LEN) == DJ_EOK && memcmp(x, y, LW_EUI_LEN) == 0;
	n = nsid_dns_len(a);
	return n > 0 && n == nsid_dns_len(b) && strncasecmp(a, b, n) == 0;
}

/* svc__sender_check - SenderID, then SenderNSID, among the peer's rights; from a network
 * server, the SenderID's NetID is left in \p nid (unless SVC_SENDER_BAD_ID) */
enum svc_sender svc__sender_check(const struct peer *pe, const struct bi_msg *m,
				  uint8_t nid[LW_NETID_LEN])
{
	const struct js_peer_config *pc = pe->cfg;
	bool ok = false;

	if (pe->is_ns) {
		/* the NetIDs of its sender_ids were parsed at load (peer_nids) */
		if (dj_hex_parse(m->sender_id, nid, LW_NETID_LEN) != DJ_EOK)
			return SVC_SENDER_BAD_ID;
		for (unsigned i = 0; i < pe->n_nids && !ok; i++)
			ok = memcmp(nid, pe->nids[i], LW_NETID_LEN) == 0;
	} else {
		for (unsigned i = 0; i < pc->sender_ids.n && !ok; i++)
			ok = strcmp(m->sender_id, pc->sender_ids.v[i]) == 0;
	}
	if (!ok)
		return SVC_SENDER_BAD_ID;
	if (!m->has_sender_ns_id || pc->ns_ids.n == 0)
		return SVC_SENDER_OK;
	for (unsigned i = 0; i < pc->ns_ids.n; i++)
		if (svc__nsid_equal(m->sender_ns_id, pc->ns_ids.v[i]))
			return SVC_SENDER_OK;
	return SVC_SENDER_BAD_NSID;
}

/* svc__rate_ok - token bucket per peer (rate 0: unlimited), one for every loop */
bool svc__rate_ok(struct peer *pe)
{
	struct peers *p = pe->tab;
	double now, rate = pe->cfg->rate;
	bool ok = false;

	if (rate == 0)
		return true;
	pthread_mutex_lock(&p->lock);
	now = dj_clock_mono_s();
	pe->bucket += (now - pe->bucket_at) * rate;
	pe->bucket_at = now;
	if (pe->bucket > rate)
		pe->bucket = rate;	/* burst of one second */
	if (pe->bucket >= 1) {
		pe->bucket -= 1;
		ok = true;
	}
	pthread_mutex_unlock(&p->lock);
	return ok;
}

/* svc__peer_async - answers to this peer go asynchronously (TS002 §8) */
bool svc__peer_async(const struct peer *pe)
{
	return pe->async != NULL || pe->cfg->async_discover;
}
