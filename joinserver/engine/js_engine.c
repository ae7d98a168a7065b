/*
 * js_engine.c - the OTAA join engine, and the AppSKey release.
 *
 * Order of checks, and why: the frame's parse status first (no state is read for garbage; the
 * caller parsed the frame once, where it arrived); the device and JoinEUI next (an unknown device
 * costs no crypto); then the MIC, before any nonce rule, so that a forged frame can neither learn
 * nor move a device's nonce state. Nothing is written for a refused request. For an accepted one
 * the new state (DevNonce/RJcount1 used, JoinNonce issued, the session token: AppSKey and
 * SNwkSIntKey sealed together under the SessionKeyID, kept for AppSKeyReq and for later Rejoin 0/2
 * MIC checks) goes to the store as a compare-and-swap on the state version read, with one audit
 * entry for the key release. If another request for the same device committed in between, the CAS
 * fails and the whole check runs again on the fresh state, so two copies of one Join-request can
 * never both be accepted.
 *
 * Root keys exist in clear only inside struct js_root_keys for the length of one request, and the
 * crypto context's key schedules are wiped before returning (DESIGN.md trust rule 5).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "engine/js_engine.h"

#define RXDELAY_RFU_MASK 0xf0	/* TS001-1.1 §5.7: bits 7..4 RFU */
#define CFLIST_TYPE_MAX 1	/* RP002: 0 frequencies, 1 channel mask */

/* One request of a batch, from the first check to the state change: what the phases pass on. */
struct item {
	struct js_device dev;		/* the device as read */
	const struct lw_request *req;	/* the caller's parsed frame (js_join_in.frame) */
	struct js_root_keys rk;		/* opened for this request only, wiped in item_end */
	uint8_t label[JS_LABEL_MAX];	/* the session token's label and secret, for the seal */
	size_t label_len;
	uint8_t raw[JS_SESSION_SECRET_LEN];
	uint8_t token[JS_TOKEN_MAX];	/* the sealed session token */
	size_t token_len;
	int ret;			/* a fault (DJ_EOK: none); out->verdict says the rest */
};

struct js_engine {
	struct js_store *store;
	struct js_keystore *ks;
	struct lw_crypto *cx;
	int64_t session_lifetime;
	struct js_commit commit;	/* scratch for js_engine_join */
	struct item *items;		/* scratch: JS_ENGINE_BATCH_MAX requests in flight; items[0].dev
					 * also serves js_engine_appskey_release */
	struct js_commit *commits;	/* scratch for js_engine_join_many */
};

const char *js_verdict_str(enum js_verdict v)
{
	switch (v) {
	case JS_ACCEPT: return "accepted";
	case JS_V_MALFORMED_FRAME: return "malformed frame";
	case JS_V_UNKNOWN_DEVEUI: return "unknown DevEUI";
	case JS_V_WRONG_JOINEUI: return "JoinEUI does not match the device";
	case JS_V_MIC_FAILED: return "MIC check failed";
	case JS_V_DEVNONCE_REPLAY: return "DevNonce already used";
	case JS_V_DEVNONCE_TOO_LOW: return "DevNonce not above the last one accepted";
	case JS_V_RJCOUNT1_REPLAY: return "RJcount1 not above the last one accepted";
	case JS_V_JOINNONCE_EXHAUSTED: return "JoinNonce counter exhausted";
	case JS_V_OPTNEG_MISMATCH: return "OptNeg does not fit the device's LoRaWAN version";
	case JS_V_REJOIN_UNSUPPORTED: return "Rejoin-request from a LoRaWAN 1.0.x device";
	case JS_V_NO_SESSION: return "no session to check the Rejoin-request against";
	case JS_V_BAD_PARAMS: return "bad RxDelay or CFList";
	case JS_V_BUSY: return "device state changed concurrently, retry";
	}
	return "unknown verdict";
}

void js_engine_free(struct js_engine *e)
{
	if (e == NULL)
		return;
	lw_crypto_free(e->cx);
	js_keystore_free(e->ks);
	OPENSSL_clear_free(e->items, JS_ENGINE_BATCH_MAX * sizeof(*e->items));
	OPENSSL_clear_free(e->commits, JS_ENGINE_BATCH_MAX * sizeof(*e->commits));
	OPENSSL_clear_free(e, sizeof(*e));
}

int js_engine_new(const struct js_engine_props *props, struct js_engine **out)
{
	struct js_engine *e;
	int ret;

	if (props == NULL || props->store == NULL || props->ks == NULL ||
	    props->session_lifetime < 0)
		return DJ_EINVAL;
	e = OPENSSL_zalloc(sizeof(*e));
	if (e == NULL)
		return DJ_ENOMEM;
	e->store = props->store;
	e->session_lifetime = props->session_lifetime;
	e->items = OPENSSL_zalloc(JS_ENGINE_BATCH_MAX * sizeof(*e->items));
	e->commits = OPENSSL_zalloc(JS_ENGINE_BATCH_MAX * sizeof(*e->commits));
	ret = DJ_ENOMEM;
	if (e->items == NULL || e->commits == NULL)
		goto out;
	ret = js_keystore_dup(props->ks, &e->ks);
	if (ret != DJ_EOK)
		goto out;
	ret = lw_crypto_new(&e->cx);
	if (ret != DJ_EOK)
		goto out;
	*out = e;
	e = NULL;
out:
	js_engine_free(e);
	return ret;
}

void js_join_out_wipe(struct js_join_out *out)
{
	if (out != NULL)
		lw_session_keys_wipe(&out->keys);
}

/* hist_contains - whether a random DevNonce is in the used history */
static bool hist_contains(const struct js_nonce_state *st, uint16_t nonce)
{
	for (uint32_t i = 0; i < st->hist_len; i++)
		if (st->hist[i] == nonce)
			return true;
	return false;
}

/* state_copy - copy nonce state without touching the unused part of the history array */
static void state_copy(struct js_nonce_state *dst, const struct js_nonce_state *src)
{
	dst->version = src->version;
	dst->dev_nonce_last = src->dev_nonce_last;
	dst->join_nonce_last = src->join_nonce_last;
	dst->rjcount1_last = src->rjcount1_last;
	dst->hist_len = src->hist_len;
	memcpy(dst->hist, src->hist, src->hist_len * sizeof(src->hist[0]));
	dst->sess_token_len = src->sess_token_len;
	memcpy(dst->sess_token, src->sess_token, src->sess_token_len);
}

/* clamp_cap - the history bound as the store keeps it: 1 .. JS_DEVNONCE_HIST_MAX */
static uint32_t clamp_cap(unsigned cap)
{
	if (cap == 0)
		return 1;
	return cap > JS_DEVNONCE_HIST_MAX ? JS_DEVNONCE_HIST_MAX : cap;
}

enum js_verdict js_engine_nonce_check(enum lw_version version, enum lw_req_type type,
				      uint16_t nonce, const struct js_nonce_state *cur,
				      unsigned hist_cap, struct js_nonce_state *next)
{
	bool counter = lw_version_devnonce_is_counter(version);
	uint32_t cap = clamp_cap(hist_cap), drop;

	/* Judge first, so that a refusal writes nothing. */
	if (type == LW_REQ_JOIN && counter) {
		if (cur->dev_nonce_last >= 0 && nonce <= cur->dev_nonce_last)
			return JS_V_DEVNONCE_TOO_LOW;
	} else if (type == LW_REQ_JOIN) {
		if (hist_contains(cur, nonce))
			return JS_V_DEVNONCE_REPLAY;
	} else if (type == LW_REQ_REJOIN1) {
		if (cur->rjcount1_last >= 0 && nonce <= cur->rjcount1_last)
			return JS_V_RJCOUNT1_REPLAY;
	}
	if (cur->join_nonce_last >= (int64_t)LW_JOINNONCE_MAX)
		return JS_V_JOINNONCE_EXHAUSTED;

	state_copy(next, cur);
	if (type == LW_REQ_JOIN && counter) {
		next->dev_nonce_last = nonce;
	} else if (type == LW_REQ_JOIN) {
		if (next->hist_len >= cap) {	/* full: the oldest go */
			drop = next->hist_len - cap + 1;
			memmove(next->hist, next->hist + drop,
				(next->hist_len - drop) * sizeof(next->hist[0]));
			next->hist_len -= drop;
		}
		next->hist[next->hist_len++] = nonce;
	} else if (type == LW_REQ_REJOIN1) {
		next->rjcount1_last = nonce;
	}
	next->join_nonce_last = cur->join_nonce_last < 1 ? 1 : cur->join_nonce_last + 1;
	return JS_ACCEPT;
}

/* commit_reset - clear a commit's scalar fields (not the large state it is about to receive) */
static void commit_reset(struct js_commit *c)
{
	memset(c, 0, offsetof(struct js_commit, new_st));
	memset(&c->has_session, 0, sizeof(*c) - offsetof(struct js_commit, has_session));
}

/* put_hex - append hex of len bytes at *p, advance */
static void put_hex(char **p, const uint8_t *in, size_t len)
{
	dj_hex_format(in, len, *p);
	*p += 2 * len;
}

/* put_str - append a literal at *p, advance */
static void put_str(char **p, const char *s)
{
	size_t n = strlen(s);

	memcpy(*p, s, n);
	*p += n;
}

/* audit_detail - the key-release audit text, built without printf (this is the hot path) */
static void audit_detail(char *buf, const struct js_join_out *o, const struct js_join_in *in)
{
	uint8_t b[3];
	char *p = buf;

	put_str(&p, "join_nonce=");
	dj_be_put(o->join_nonce, b, 3);
	put_hex(&p, b, 3);
	put_str(&p, o->type == LW_REQ_JOIN ? " dev_nonce=" : " rjcount=");
	dj_be_put(o->nonce, b, 2);
	put_hex(&p, b, 2);
	put_str(&p, " net_id=");
	put_hex(&p, in->net_id, LW_NETID_LEN);
	put_str(&p, " dev_addr=");
	put_hex(&p, in->dev_addr, LW_DEVADDR_LEN);
	put_str(&p, o->opt_neg ? " mode=1.1" : " mode=1.0");
	put_str(&p, " session_key_id=");
	put_hex(&p, o->session_id, o->session_id_len);
	*p = '\0';
}

#define RELEASE_LABEL_MAX 128	/* js_release_detail's cuts (KEK labels are < 64) */
#define RELEASE_VIA_MAX 16

/* put_cut - append at most max characters of s at *p, advance */
static void put_cut(char **p, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	memcpy(*p, s, n);
	*p += n;
}

void js_release_detail(char buf[JS_AUDIT_DETAIL_MAX], const uint8_t *session_id,
		       size_t session_id_len, const char *kek, const char *via)
{
	char *p = buf;

	put_str(&p, "session_key_id=");
	put_hex(&p, session_id, session_id_len < JS_SESSION_ID_MAX ? session_id_len :
		JS_SESSION_ID_MAX);
	put_str(&p, " kek=");
	put_cut(&p, kek, RELEASE_LABEL_MAX);
	if (via != NULL) {
		put_str(&p, " via=");
		put_cut(&p, via, RELEASE_VIA_MAX);
	}
	*p = '\0';
}

_Static_assert(sizeof("session_key_id= kek= via=") + 2 * JS_SESSION_ID_MAX + RELEASE_LABEL_MAX +
	       RELEASE_VIA_MAX <= JS_AUDIT_DETAIL_MAX, "release audit detail fits");

/* check_params - the NS-supplied Join-accept fields that this engine can judge */
static enum js_verdict check_params(const struct js_join_in *in)
{
	if (in->rx_delay & RXDELAY_RFU_MASK)
		return JS_V_BAD_PARAMS;
	if (in->has_cflist && in->cflist[LW_CFLIST_LEN - 1] > CFLIST_TYPE_MAX)
		return JS_V_BAD_PARAMS;
	return JS_ACCEPT;
}

/* live - still on its way to an accept: no fault, no refusal yet */
static bool live(const struct item *it, const struct js_join_out *out)
{
	return it->ret == DJ_EOK && out->verdict == JS_ACCEPT;
}

/*
 * check_frame - the first of the checks that need no key: the frame's parse status. Sets
 * out->verdict to JS_V_MALFORMED_FRAME, or fills what the frame gives and returns true: the
 * device is to be read.
 */
static bool check_frame(const struct js_join_in *in, struct js_join_out *out, struct item *it)
{
	const struct lw_request *req = in->frame;

	memset(out, 0, sizeof(*out));
	it->ret = DJ_EOK;
	it->req = req;
	out->frame_status = in->frame_status;
	if (in->frame_status != LW_FRAME_OK) {
		out->verdict = JS_V_MALFORMED_FRAME;
		return false;
	}
	out->type = req->type;
	out->nonce = req->nonce;
	memcpy(out->dev_eui, req->dev_eui, LW_EUI_LEN);
	return true;
}

/*
 * check_without_keys - the rest of the checks that need no key, on the device as read into
 * it->dev (ret: what the read returned): the device and its JoinEUI, the request type against
 * the MAC version, OptNeg, the Join-accept parameters. Sets out->verdict (JS_ACCEPT: go on) or
 * it->ret; touches no durable state.
 */
static void check_without_keys(const struct js_join_in *in, struct js_join_out *out,
			       struct item *it, int ret)
{
	const struct js_device *d = &it->dev;
	const struct lw_request *req = in->frame;

	if (ret == DJ_ENOENT) {
		out->verdict = JS_V_UNKNOWN_DEVEUI;
		return;
	}
	if (ret != DJ_EOK) {
		it->ret = ret;
		return;
	}
	out->mac_version = d->mac_version;
	memcpy(out->join_eui, d->join_eui, LW_EUI_LEN);
	out->opt_neg = (in->dl_settings & LW_DL_OPTNEG) != 0;

	if ((req->type == LW_REQ_JOIN || req->type == LW_REQ_REJOIN1) &&
	    memcmp(req->join_eui, d->join_eui, LW_EUI_LEN) != 0) {
		out->verdict = JS_V_WRONG_JOINEUI;
		return;
	}
	if (req->type != LW_REQ_JOIN && d->mac_version < LW_V1_1) {
		out->verdict = JS_V_REJOIN_UNSUPPORTED;
		return;
	}
	if ((out->opt_neg && d->mac_version < LW_V1_1) ||
	    (!out->opt_neg && req->type != LW_REQ_JOIN)) {
		out->verdict = JS_V_OPTNEG_MISMATCH;
		return;
	}
	out->verdict = check_params(in);
}

/*
 * read_devices - the checks that need no key for n requests: their devices are read together
 * (js_store_device_get_many: one snapshot, one read transaction in the SQLite store, one
 * statement in the PostgreSQL store), which is as fresh as reading each alone, since every
 * request of the group arrived before the read.
 * A device that changed since is caught by the compare-and-swap at commit, as before.
 */
static void read_devices(struct js_engine *e, const struct js_join_in *const in[],
			 struct js_join_out *const out[], size_t n)
{
	const uint8_t *eu[JS_ENGINE_BATCH_MAX];
	struct js_device *dv[JS_ENGINE_BATCH_MAX];
	size_t idx[JS_ENGINE_BATCH_MAX];
	int rets[JS_ENGINE_BATCH_MAX];
	size_t i, k;
	int ret;

	for (i = 0, k = 0; i < n; i++) {
		if (!check_frame(in[i], out[i], &e->items[i]))
			continue;
		idx[k] = i;
		eu[k] = in[i]->frame->dev_eui;
		dv[k] = &e->items[i].dev;
		k++;
	}
	ret = js_store_device_get_many(e->store, k, eu, dv, rets);
	for (i = 0; i < k; i++)
		check_without_keys(in[idx[i]], out[idx[i]], &e->items[idx[i]],
				   ret != DJ_EOK ? ret : rets[i]);
}

/* root_opened - note the result of opening a root-key token */
static void root_opened(struct item *it, int ret)
{
	if (ret != DJ_EOK) {
		dj_err("root-key token of a device failed to open: %s", dj_strerror(ret));
		it->ret = ret;
	}
}

/*
 * verify_and_build_accept - with the root keys open: the MIC, the nonce rules and the JoinNonce
 * (js_engine_nonce_check), the session keys and the Join-accept; fills c->new_st and leaves the
 * session token's label and secret in it for the seal. The key schedules it leaves in e->cx are
 * wiped by the caller (lw_crypto_forget).
 */
static void verify_and_build_accept(struct js_engine *e, const struct js_join_in *in,
				    struct js_join_out *out, struct js_commit *c, struct item *it)
{
	const struct js_device *d = &it->dev;
	const struct lw_request *req = it->req;
	const struct js_root_keys *rk = &it->rk;
	struct lw_key js_int, js_enc, s_nwk;
	struct lw_accept ja;
	struct lw_accept_ctx actx;
	const struct lw_key *mic_key, *enc_key;
	uint8_t mic[LW_MIC_LEN], sid[JS_SESSION_ID_LEN];
	size_t raw_len;
	uint32_t next;
	enum js_verdict v;
	int ret = DJ_EOK;

	memset(&js_int, 0, sizeof(js_int));
	memset(&js_enc, 0, sizeof(js_enc));
	memset(&s_nwk, 0, sizeof(s_nwk));

	/* The MIC first: nothing about nonces is revealed or changed for a forged frame. */
	if (req->type != LW_REQ_JOIN || out->opt_neg) {
		ret = lw_keys_derive_js(e->cx, &rk->nwk_key, d->dev_eui, &js_int, &js_enc);
		if (ret != DJ_EOK)
			goto out;
	}
	switch (req->type) {
	case LW_REQ_JOIN:
		mic_key = &rk->nwk_key;	/* AppKey of a 1.0.x device: rk.nwk_key == rk.app_key */
		break;
	case LW_REQ_REJOIN1:
		mic_key = &js_int;
		break;
	default:
		if (d->st.sess_token_len == 0) {
			out->verdict = JS_V_NO_SESSION;
			goto out;
		}
		js_session_id(d->dev_eui, (uint32_t)d->st.join_nonce_last, sid);
		it->label_len = js_keystore_label(JS_PURPOSE_SESSION, sid, sizeof(sid), it->label);
		ret = js_keystore_open(e->ks, it->label, it->label_len, d->st.sess_token,
				       d->st.sess_token_len, it->raw, sizeof(it->raw), &raw_len);
		if (ret == DJ_EOK && raw_len != JS_SESSION_SECRET_LEN)
			ret = DJ_EUNWRAP;
		if (ret != DJ_EOK)
			goto out;
		lw_key_set(&s_nwk, it->raw + LW_KEY_LEN);
		mic_key = &s_nwk;
		break;
	}
	ret = lw_frame_request_mic(e->cx, mic_key, req, mic);
	if (ret != DJ_EOK)
		goto out;
	if (CRYPTO_memcmp(mic, req->mic, LW_MIC_LEN) != 0) {
		out->verdict = JS_V_MIC_FAILED;
		goto out;
	}

	/* Nonce rules, then the JoinNonce. */
	v = js_engine_nonce_check(d->mac_version, req->type, req->nonce, &d->st,
				  js_store_devnonce_history(e->store), &c->new_st);
	if (v != JS_ACCEPT) {
		out->verdict = v;
		goto out;
	}
	next = (uint32_t)c->new_st.join_nonce_last;
	out->join_nonce = next;

	/* Session keys and the Join-accept. */
	memset(&ja, 0, sizeof(ja));
	ja.join_nonce = next;
	memcpy(ja.net_id, in->net_id, LW_NETID_LEN);
	memcpy(ja.dev_addr, in->dev_addr, LW_DEVADDR_LEN);
	ja.dl_settings = in->dl_settings;
	ja.rx_delay = in->rx_delay;
	ja.has_cflist = in->has_cflist;
	if (in->has_cflist)
		memcpy(ja.cflist, in->cflist, LW_CFLIST_LEN);
	if (out->opt_neg) {
		ret = lw_keys_derive_session_11(e->cx, &rk->nwk_key, &rk->app_key, next,
						d->join_eui, req->nonce, &out->keys);
		if (ret != DJ_EOK)
			goto out;
		/* a Rejoin-request's second byte is its RejoinType (TS001-1.1 §6.2.4.4) */
		actx.join_req_type = req->type == LW_REQ_JOIN ? LW_JOINREQTYPE_JOIN : req->phy[1];
		memcpy(actx.join_eui, d->join_eui, LW_EUI_LEN);
		actx.nonce = req->nonce;
		mic_key = &js_int;
		enc_key = req->type == LW_REQ_JOIN ? &rk->nwk_key : &js_enc;
		ret = lw_frame_build_accept(e->cx, &ja, mic_key, &actx, enc_key, out->phy,
					    &out->phy_len);
	} else {
		ret = lw_keys_derive_session_10(e->cx, &rk->nwk_key, next, in->net_id, req->nonce,
						&out->keys);
		if (ret != DJ_EOK)
			goto out;
		ret = lw_frame_build_accept(e->cx, &ja, &rk->nwk_key, NULL, &rk->nwk_key, out->phy,
					    &out->phy_len);
	}
	if (ret != DJ_EOK)
		goto out;

	/* One session token (AppSKey | SNwkSIntKey) sealed under the SessionKeyID: the device
	 * row keeps it for Rejoin 0/2 checks, the session row for AppSKeyReq. One seal, not two:
	 * sealing is the costliest step of a join. */
	js_session_id(d->dev_eui, next, out->session_id);
	out->session_id_len = JS_SESSION_ID_LEN;
	it->label_len = js_keystore_label(JS_PURPOSE_SESSION, out->session_id, JS_SESSION_ID_LEN,
					  it->label);
	lw_key_export(&out->keys.app_s_key, it->raw);
	lw_key_export(&out->keys.s_nwk_s_int_key, it->raw + LW_KEY_LEN);
out:
	it->ret = ret;
	lw_key_wipe(&js_int);
	lw_key_wipe(&js_enc);
	lw_key_wipe(&s_nwk);
}

_Static_assert(JS_COMMIT_AUDIT_MAX >= 2, "a join commits up to two audit entries");

/* fill_commit - the sealed token is in it->token: the state change and its audit entries (the
 * accept, then the JoinAns AppSKey release when asked) */
static void fill_commit(struct js_engine *e, const struct js_join_in *in,
			struct js_join_out *out, struct js_commit *c, struct item *it)
{
	const struct js_device *d = &it->dev;
	struct js_commit_audit *a;
	size_t n;

	c->new_st.sess_token_len = (uint32_t)it->token_len;
	memcpy(c->new_st.sess_token, it->token, it->token_len);
	memcpy(c->dev_eui, d->dev_eui, LW_EUI_LEN);
	c->expect_version = d->st.version;
	c->row = d->row;
	c->has_session = e->session_lifetime > 0;
	if (c->has_session) {
		memcpy(c->session_id, out->session_id, JS_SESSION_ID_LEN);
		c->session_id_len = JS_SESSION_ID_LEN;
		memcpy(c->session_token, it->token, it->token_len);
		c->session_token_len = (uint32_t)it->token_len;
		c->session_expires_at = js_store_now(e->store) + e->session_lifetime;
	}
	a = &c->audit[0];
	if (it->req->type == LW_REQ_JOIN)
		memcpy(a->event, "join-accept", sizeof("join-accept"));
	else
		memcpy(a->event, "rejoin-accept", sizeof("rejoin-accept"));
	n = strnlen(in->actor ? in->actor : "local", sizeof(a->actor) - 1);
	memcpy(a->actor, in->actor ? in->actor : "local", n);
	a->actor[n] = '\0';
	audit_detail(a->detail, out, in);
	c->n_audit = 1;
	if (in->release_kek != NULL) {	/* the JoinAns AppSKey release, same transaction */
		a = &c->audit[c->n_audit++];
		memcpy(a->event, "appskey-release", sizeof("appskey-release"));
		memcpy(a->actor, c->audit[0].actor, n + 1);
		js_release_detail(a->detail, out->session_id, out->session_id_len,
				  in->release_kek, "joinans");
	}
}

/* item_end - wipe what a request held; a refused or failed one keeps no keys and no answer */
static void item_end(struct js_join_out *out, struct item *it)
{
	if (!live(it, out)) {
		js_join_out_wipe(out);
		memset(out->phy, 0, sizeof(out->phy));
		out->phy_len = 0;
	}
	js_root_keys_wipe(&it->rk);
	OPENSSL_cleanse(it->raw, sizeof(it->raw));
	OPENSSL_cleanse(it->token, sizeof(it->token));
}

/*
 * prepare_many - run every check for n (<= JS_ENGINE_BATCH_MAX) requests against the state read
 * from the store, and for each accepted one fill out (answer, keys) and c (the state change to
 * commit). Touches no durable state. rets[i]: DJ_EOK with out[i].verdict, or a fault.
 *
 * The requests go through each phase together so that the two RFC 5649 steps, opening the root
 * keys and sealing the session token, run as one lockstep batch each (js_keystore_*_many): each
 * is a chain of 36 dependent AES-256 operations, the costliest part of a join when run alone.
 * The LoRaWAN crypto stays per request. Every key schedule in e->cx is wiped before returning.
 */
static void prepare_many(struct js_engine *e, const struct js_join_in *const in[],
			 struct js_join_out *const out[], struct js_commit *const c[], size_t n,
			 int rets[])
{
	const uint8_t *eu[JS_ENGINE_BATCH_MAX], *tk[JS_ENGINE_BATCH_MAX];
	const uint8_t *lb[JS_ENGINE_BATCH_MAX], *sc[JS_ENGINE_BATCH_MAX];
	uint8_t *so[JS_ENGINE_BATCH_MAX];
	size_t tl[JS_ENGINE_BATCH_MAX], ll[JS_ENGINE_BATCH_MAX], sl[JS_ENGINE_BATCH_MAX];
	size_t sol[JS_ENGINE_BATCH_MAX], idx[JS_ENGINE_BATCH_MAX];
	struct js_root_keys rk[JS_ENGINE_BATCH_MAX];
	int kr[JS_ENGINE_BATCH_MAX];
	size_t i, k;
	int ret;

	read_devices(e, in, out, n);

	/* Open the root keys of every request still live. */
	for (i = 0, k = 0; i < n; i++) {
		if (!live(&e->items[i], out[i]))
			continue;
		idx[k] = i;
		eu[k] = e->items[i].dev.dev_eui;
		tk[k] = e->items[i].dev.root_token;
		tl[k] = e->items[i].dev.root_token_len;
		k++;
	}
	if (k == 1) {
		struct item *it = &e->items[idx[0]];

		root_opened(it, js_keystore_open_root(e->ks, it->dev.dev_eui, it->dev.root_token,
						      it->dev.root_token_len, &it->rk));
	} else if (k > 1) {
		ret = js_keystore_open_root_many(e->ks, k, eu, tk, tl, rk, kr);
		for (i = 0; i < k; i++) {
			struct item *it = &e->items[idx[i]];

			root_opened(it, ret != DJ_EOK ? ret : kr[i]);
			if (ret == DJ_EOK && kr[i] == DJ_EOK)
				it->rk = rk[i];
			js_root_keys_wipe(&rk[i]);
		}
	}

	for (i = 0; i < n; i++) {
		if (live(&e->items[i], out[i]))
			verify_and_build_accept(e, in[i], out[i], c[i], &e->items[i]);
		js_root_keys_wipe(&e->items[i].rk);	/* not needed past the LoRaWAN crypto */
	}
	lw_crypto_forget(e->cx);

	/* Seal the session token of every request still live. */
	for (i = 0, k = 0; i < n; i++) {
		struct item *it = &e->items[i];

		if (!live(it, out[i]))
			continue;
		idx[k] = i;
		lb[k] = it->label;
		ll[k] = it->label_len;
		sc[k] = it->raw;
		sl[k] = sizeof(it->raw);
		so[k] = it->token;
		k++;
	}
	if (k == 1) {
		struct item *it = &e->items[idx[0]];

		it->ret = js_keystore_seal(e->ks, it->label, it->label_len, it->raw,
					   sizeof(it->raw), it->token, &it->token_len);
	} else if (k > 1) {
		ret = js_keystore_seal_many(e->ks, k, lb, ll, sc, sl, so, sol, kr);
		for (i = 0; i < k; i++) {
			struct item *it = &e->items[idx[i]];

			it->ret = ret != DJ_EOK ? ret : kr[i];
			it->token_len = sol[i];
		}
	}

	for (i = 0; i < n; i++) {
		struct item *it = &e->items[i];

		if (live(it, out[i])) {
			fill_commit(e, in[i], out[i], c[i], it);
			out[i]->verdict = JS_ACCEPT;
		}
		rets[i] = it->ret;
		item_end(out[i], it);
	}
}

/* prepare - prepare_many for one request */
static int prepare(struct js_engine *e, const struct js_join_in *in, struct js_join_out *out,
		   struct js_commit *c)
{
	int ret;

	prepare_many(e, &in, &out, &c, 1, &ret);
	return ret;
}

/* refuse_out - keep only what a refusal may carry */
static void refuse_out(struct js_join_out *out, enum js_verdict v)
{
	js_join_out_wipe(out);
	out->verdict = v;
	out->phy_len = 0;
}

/* commit_failed - a state change that did not commit: a deleted device becomes UnknownDevEUI
 * (DJ_EOK); DJ_ECONFLICT asks for the checks again on the fresh state; a fault is passed on.
 * The answer keeps no keys and no Join-accept. */
static int commit_failed(struct js_join_out *out, int ret)
{
	refuse_out(out, ret == DJ_ENOENT ? JS_V_UNKNOWN_DEVEUI : out->verdict);
	return ret == DJ_ENOENT ? DJ_EOK : ret;
}

/* with_frame - the thin path for callers that hold only the bytes (tools, tests): parse in->phy
 * into *fr, and make *copy the request pointing at it. Callers that parsed the frame where it
 * arrived (the daemon) never come here. */
static const struct js_join_in *with_frame(const struct js_join_in *in, struct js_join_in *copy,
					   struct lw_request *fr)
{
	if (in->frame != NULL)
		return in;
	*copy = *in;
	copy->frame_status = lw_frame_parse_request(in->phy, in->phy_len, fr);
	copy->frame = fr;
	return copy;
}

/* join_parsed - js_engine_join for a request whose frame is parsed */
static int join_parsed(struct js_engine *e, const struct js_join_in *in, struct js_join_out *out)
{
	int ret = DJ_EOK;

	for (int attempt = 0; attempt < JS_ENGINE_RETRIES; attempt++) {
		commit_reset(&e->commit);
		ret = prepare(e, in, out, &e->commit);
		if (ret != DJ_EOK || out->verdict != JS_ACCEPT)
			return ret;
		e->commit.done = NULL;
		ret = js_store_commit(e->store, &e->commit);
		if (ret == DJ_EOK)
			return DJ_EOK;
		ret = commit_failed(out, ret);
		if (ret != DJ_ECONFLICT)
			return ret;
	}
	refuse_out(out, JS_V_BUSY);
	return DJ_EOK;
}

int js_engine_join(struct js_engine *e, const struct js_join_in *in, struct js_join_out *out)
{
	struct js_join_in copy;
	struct lw_request fr;

	return join_parsed(e, with_frame(in, &copy, &fr), out);
}

int js_engine_join_many(struct js_engine *e, const struct js_join_in *in,
			struct js_join_out *out, size_t n, int rets[])
{
	const struct js_join_in *ip[JS_ENGINE_BATCH_MAX];
	struct js_join_in copies[JS_ENGINE_BATCH_MAX];
	struct lw_request frames[JS_ENGINE_BATCH_MAX];
	struct js_join_out *op[JS_ENGINE_BATCH_MAX];
	struct js_commit *cp[JS_ENGINE_BATCH_MAX], *acc[JS_ENGINE_BATCH_MAX];
	size_t m;
	int ret;

	if (e == NULL || (n > 0 && (in == NULL || out == NULL || rets == NULL)))
		return DJ_EINVAL;
	for (size_t base = 0; base < n; base += JS_ENGINE_BATCH_MAX) {
		size_t k = n - base < JS_ENGINE_BATCH_MAX ? n - base : JS_ENGINE_BATCH_MAX;

		for (size_t i = 0; i < k; i++) {
			ip[i] = with_frame(&in[base + i], &copies[i], &frames[i]);
			op[i] = &out[base + i];
			cp[i] = &e->commits[i];
			commit_reset(cp[i]);
		}
		prepare_many(e, ip, op, cp, k, rets + base);
		/* Commit in order, as one batch. A lost compare-and-swap (two requests of one
		 * device in the group, or another thread) runs that request again alone on the
		 * fresh state, exactly as js_engine_join would. */
		m = 0;
		for (size_t i = 0; i < k; i++) {
			if (rets[base + i] != DJ_EOK || op[i]->verdict != JS_ACCEPT)
				continue;
			cp[i]->done = NULL;
			cp[i]->result = DJ_ERROR;
			acc[m++] = cp[i];
		}
		ret = js_store_commit_many(e->store, acc, m);
		for (size_t i = 0; ret != DJ_EOK && i < m; i++)
			acc[i]->result = ret;
		for (size_t i = 0; i < k; i++) {
			if (rets[base + i] != DJ_EOK || op[i]->verdict != JS_ACCEPT)
				continue;
			if (cp[i]->result == DJ_EOK)
				continue;
			ret = commit_failed(op[i], cp[i]->result);
			if (ret == DJ_ECONFLICT)
				ret = join_parsed(e, ip[i], op[i]);
			rets[base + i] = ret;
		}
	}
	return DJ_EOK;
}

/* submit_done - committer callback: the accept may leave now, or it failed */
static void submit_done(struct js_commit *c, void *arg)
{
	struct js_join_req *r = arg;

	r->result = c->result;
	if (c->result == DJ_ENOENT) {
		refuse_out(&r->out, JS_V_UNKNOWN_DEVEUI);
		r->result = DJ_EOK;
	} else if (c->result != DJ_EOK) {
		refuse_out(&r->out, r->out.verdict);
	}
	r->done(r, r->done_arg);
}

/* submit_prepared - after the checks: answer a refusal inline, queue an accept's state change */
static int submit_prepared(struct js_engine *e, struct js_join_req *r)
{
	int ret;

	if (r->out.verdict != JS_ACCEPT) {
		r->result = DJ_EOK;
		r->done(r, r->done_arg);
		return DJ_EOK;
	}
	if (r->accepted != NULL) {
		ret = r->accepted(r, &r->priv_commit.events, r->done_arg);
		if (ret != DJ_EOK) {
			js_join_out_wipe(&r->out);
			return ret;
		}
	}
	r->priv_commit.done = submit_done;
	r->priv_commit.done_arg = r;
	ret = js_store_submit(e->store, &r->priv_commit);
	if (ret != DJ_EOK)
		js_join_out_wipe(&r->out);
	return ret;
}

int js_engine_submit(struct js_engine *e, struct js_join_req *r)
{
	int ret;

	if (r->in.frame == NULL)
		return DJ_EINVAL;
	commit_reset(&r->priv_commit);
	ret = prepare(e, &r->in, &r->out, &r->priv_commit);
	if (ret != DJ_EOK)
		return ret;
	return submit_prepared(e, r);
}

int js_engine_submit_many(struct js_engine *e, struct js_join_req *const r[], size_t n,
			  int rets[])
{
	const struct js_join_in *ip[JS_ENGINE_BATCH_MAX];
	struct js_join_out *op[JS_ENGINE_BATCH_MAX];
	struct js_commit *cp[JS_ENGINE_BATCH_MAX];

	if (e == NULL || (n > 0 && (r == NULL || rets == NULL)))
		return DJ_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (r[i]->in.frame == NULL)
			return DJ_EINVAL;
	for (size_t base = 0; base < n; base += JS_ENGINE_BATCH_MAX) {
		size_t k = n - base < JS_ENGINE_BATCH_MAX ? n - base : JS_ENGINE_BATCH_MAX;

		for (size_t i = 0; i < k; i++) {
			ip[i] = &r[base + i]->in;
			op[i] = &r[base + i]->out;
			cp[i] = &r[base + i]->priv_commit;
			commit_reset(cp[i]);
		}
		prepare_many(e, ip, op, cp, k, rets + base);
		for (size_t i = 0; i < k; i++)
			if (rets[base + i] == DJ_EOK)
				rets[base + i] = submit_prepared(e, r[base + i]);
	}
	return DJ_EOK;
}

int js_engine_appskey_release(struct js_engine *e, const struct js_appskey_in *in,
			      struct lw_key *key)
{
	struct js_device *dev;
	struct js_session se;
	uint8_t label[JS_LABEL_MAX], secret[JS_SESSION_SECRET_LEN];
	char detail[JS_AUDIT_DETAIL_MAX];
	size_t llen, slen = 0;
	int ret;

	if (e == NULL || in == NULL || key == NULL || in->may_have == NULL)
		return DJ_EINVAL;
	dev = &e->items[0].dev;		/* scratch: no join is being prepared on this thread */
	/* not found, expired, another device's, or not the requester's (the device's JoinEUI
	 * outside its rights): one answer for all, so that a requester cannot probe another's
	 * fleet */
	ret = js_store_session_get(e->store, in->session_id, in->session_id_len, &se);
	if (ret == DJ_EOK)
		ret = js_store_device_get(e->store, in->dev_eui, dev);
	if (ret == DJ_EOK && (memcmp(se.dev_eui, in->dev_eui, LW_EUI_LEN) != 0 ||
			      se.expires_at <= js_store_now(e->store) ||
			      !in->may_have(dev->join_eui, in->arg)))
		ret = DJ_ENOENT;
	if (ret != DJ_EOK)
		goto out;

	llen = js_keystore_label(JS_PURPOSE_SESSION, in->session_id, in->session_id_len, label);
	ret = js_keystore_open(e->ks, label, llen, se.session_token, se.session_token_len, secret,
			       sizeof(secret), &slen);
	if (ret != DJ_EOK || slen != JS_SESSION_SECRET_LEN) {
		dj_err("session token of %s failed to open: %s", in->peer, dj_strerror(ret));
		if (ret == DJ_EOK)
			ret = DJ_EUNWRAP;
		goto out;
	}

	/* no audit entry, no key: the release must be on record before the key leaves */
	js_release_detail(detail, in->session_id, in->session_id_len, in->kek_label, NULL);
	ret = js_store_audit(e->store, in->dev_eui, "appskey-release", in->actor, detail);
	if (ret != DJ_EOK)
		goto out;
	lw_key_set(key, secret);	/* the session secret is AppSKey | SNwkSIntKey */
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(&se, sizeof(se));
	return ret;
}
