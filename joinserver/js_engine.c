/*
 * js_engine.c - the OTAA join engine.
 *
 * Order of checks, and why: the frame is parsed first (no state is read for garbage); the device
 * and JoinEUI next (an unknown device costs no crypto); then the MIC, before any nonce rule, so
 * that a forged frame can neither learn nor move a device's nonce state. Nothing is written for a
 * refused request. For an accepted one the new state (DevNonce/RJcount1 used, JoinNonce issued,
 * the session token: AppSKey and SNwkSIntKey sealed together under the SessionKeyID, kept for
 * AppSKeyReq and for later Rejoin 0/2 MIC checks) goes to the store as a compare-and-swap on the state version read, with one audit
 * entry for the key release. If another request for the same device committed in between, the CAS
 * fails and the whole check runs again on the fresh state, so two copies of one Join-request can
 * never both be accepted.
 *
 * Root keys exist in clear only inside struct js_root_keys for the length of one request, and the
 * crypto context's key schedules are wiped before returning (DESIGN.md trust rule 5).
 */
#include <stddef.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dj_err.h"
#include "dj_hex.h"
#include "dj_log.h"
#include "js_engine.h"

#define RXDELAY_RFU_MASK 0xf0	/* TS001-1.1 §5.7: bits 7..4 RFU */
#define CFLIST_TYPE_MAX 1	/* RP002: 0 frequencies, 1 channel mask */

struct js_engine {
	struct js_store *store;
	struct js_keystore *ks;
	struct lw_crypto *cx;
	int64_t session_lifetime;
	struct js_device dev;		/* scratch: the device as read */
	struct js_commit commit;	/* scratch for js_engine_join */
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

/* check_params - the NS-supplied Join-accept fields that this engine can judge */
static enum js_verdict check_params(const struct js_join_in *in)
{
	if (in->rx_delay & RXDELAY_RFU_MASK)
		return JS_V_BAD_PARAMS;
	if (in->has_cflist && in->cflist[LW_CFLIST_LEN - 1] > CFLIST_TYPE_MAX)
		return JS_V_BAD_PARAMS;
	return JS_ACCEPT;
}

/*
 * prepare - run every check for one request against the state in e->dev, and on success fill
 * \p out (answer, keys) and \p c (the state change to commit). Returns DJ_EOK with out->verdict,
 * or a fault. Touches no durable state.
 */
static int prepare(struct js_engine *e, const struct js_join_in *in, struct js_join_out *out,
		   struct js_commit *c)
{
	struct js_device *d = &e->dev;
	struct js_root_keys rk;
	struct lw_key js_int, js_enc, s_nwk;
	struct lw_request req;
	struct lw_accept ja;
	struct lw_accept_ctx actx;
	const struct lw_key *mic_key, *enc_key;
	uint8_t mic[LW_MIC_LEN], label[JS_LABEL_MAX], raw[JS_SESSION_SECRET_LEN];
	uint8_t sid[JS_SESSION_ID_LEN];
	size_t label_len, tok_len, raw_len;
	uint32_t next;
	int ret;

	memset(&rk, 0, sizeof(rk));
	memset(&js_int, 0, sizeof(js_int));
	memset(&js_enc, 0, sizeof(js_enc));
	memset(&s_nwk, 0, sizeof(s_nwk));
	memset(out, 0, sizeof(*out));
	ret = DJ_EOK;

	out->frame_status = lw_frame_parse_request(in->phy, in->phy_len, &req);
	if (out->frame_status != LW_FRAME_OK) {
		out->verdict = JS_V_MALFORMED_FRAME;
		goto out;
	}
	out->type = req.type;
	out->nonce = req.nonce;
	memcpy(out->dev_eui, req.dev_eui, LW_EUI_LEN);

	ret = js_store_device_get(e->store, req.dev_eui, d);
	if (ret == DJ_ENOENT) {
		ret = DJ_EOK;
		out->verdict = JS_V_UNKNOWN_DEVEUI;
		goto out;
	}
	if (ret != DJ_EOK)
		goto out;
	out->mac_version = d->mac_version;
	memcpy(out->join_eui, d->join_eui, LW_EUI_LEN);
	out->opt_neg = (in->dl_settings & LW_DL_OPTNEG) != 0;

	if ((req.type == LW_REQ_JOIN || req.type == LW_REQ_REJOIN1) &&
	    memcmp(req.join_eui, d->join_eui, LW_EUI_LEN) != 0) {
		out->verdict = JS_V_WRONG_JOINEUI;
		goto out;
	}
	if (req.type != LW_REQ_JOIN && d->mac_version < LW_V1_1) {
		out->verdict = JS_V_REJOIN_UNSUPPORTED;
		goto out;
	}
	if ((out->opt_neg && d->mac_version < LW_V1_1) || (!out->opt_neg && req.type != LW_REQ_JOIN)) {
		out->verdict = JS_V_OPTNEG_MISMATCH;
		goto out;
	}
	out->verdict = check_params(in);
	if (out->verdict != JS_ACCEPT)
		goto out;

	ret = js_keystore_open_root(e->ks, d->dev_eui, d->root_token, d->root_token_len, &rk);
	if (ret != DJ_EOK) {
		dj_err("root-key token of a device failed to open: %s", dj_strerror(ret));
		goto out;
	}

	/* The MIC first: nothing about nonces is revealed or changed for a forged frame. */
	if (req.type != LW_REQ_JOIN || out->opt_neg) {
		ret = lw_keys_derive_js(e->cx, &rk.nwk_key, d->dev_eui, &js_int, &js_enc);
		if (ret != DJ_EOK)
			goto out;
	}
	switch (req.type) {
	case LW_REQ_JOIN:
		mic_key = &rk.nwk_key;	/* AppKey of a 1.0.x device: rk.nwk_key == rk.app_key */
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
		label_len = js_keystore_label(JS_PURPOSE_SESSION, sid, sizeof(sid), label);
		ret = js_keystore_open(e->ks, label, label_len, d->st.sess_token,
				       d->st.sess_token_len, raw, sizeof(raw), &raw_len);
		if (ret == DJ_EOK && raw_len != JS_SESSION_SECRET_LEN)
			ret = DJ_EUNWRAP;
		if (ret != DJ_EOK)
			goto out;
		lw_key_set(&s_nwk, raw + LW_KEY_LEN);
		mic_key = &s_nwk;
		break;
	}
	ret = lw_frame_request_mic(e->cx, mic_key, &req, mic);
	if (ret != DJ_EOK)
		goto out;
	if (CRYPTO_memcmp(mic, req.mic, LW_MIC_LEN) != 0) {
		out->verdict = JS_V_MIC_FAILED;
		goto out;
	}

	/* Nonce rules, then the JoinNonce. */
	state_copy(&c->new_st, &d->st);
	if (req.type == LW_REQ_JOIN) {
		if (lw_version_devnonce_is_counter(d->mac_version)) {
			if (d->st.dev_nonce_last >= 0 && req.nonce <= d->st.dev_nonce_last) {
				out->verdict = JS_V_DEVNONCE_TOO_LOW;
				goto out;
			}
			c->new_st.dev_nonce_last = req.nonce;
		} else {
			unsigned cap = js_store_devnonce_history(e->store);

			if (hist_contains(&d->st, req.nonce)) {
				out->verdict = JS_V_DEVNONCE_REPLAY;
				goto out;
			}
			if (c->new_st.hist_len >= cap) {
				uint32_t drop = c->new_st.hist_len - cap + 1;

				memmove(c->new_st.hist, c->new_st.hist + drop,
					(c->new_st.hist_len - drop) * sizeof(uint16_t));
				c->new_st.hist_len -= drop;
			}
			c->new_st.hist[c->new_st.hist_len++] = req.nonce;
		}
	} else if (req.type == LW_REQ_REJOIN1) {
		if (d->st.rjcount1_last >= 0 && req.nonce <= d->st.rjcount1_last) {
			out->verdict = JS_V_RJCOUNT1_REPLAY;
			goto out;
		}
		c->new_st.rjcount1_last = req.nonce;
	}
	if (d->st.join_nonce_last >= (int64_t)LW_JOINNONCE_MAX) {
		out->verdict = JS_V_JOINNONCE_EXHAUSTED;
		goto out;
	}
	next = d->st.join_nonce_last < 1 ? 1 : (uint32_t)d->st.join_nonce_last + 1;
	c->new_st.join_nonce_last = next;
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
		ret = lw_keys_derive_session_11(e->cx, &rk.nwk_key, &rk.app_key, next, d->join_eui,
						req.nonce, &out->keys);
		if (ret != DJ_EOK)
			goto out;
		actx.join_req_type = req.type == LW_REQ_JOIN ? LW_JOINREQTYPE_JOIN
							     : req.phy[1];
		memcpy(actx.join_eui, d->join_eui, LW_EUI_LEN);
		actx.nonce = req.nonce;
		mic_key = &js_int;
		enc_key = req.type == LW_REQ_JOIN ? &rk.nwk_key : &js_enc;
		ret = lw_frame_build_accept(e->cx, &ja, mic_key, &actx, enc_key, out->phy,
					    &out->phy_len);
	} else {
		ret = lw_keys_derive_session_10(e->cx, &rk.nwk_key, next, in->net_id, req.nonce,
						&out->keys);
		if (ret != DJ_EOK)
			goto out;
		ret = lw_frame_build_accept(e->cx, &ja, &rk.nwk_key, NULL, &rk.nwk_key, out->phy,
					    &out->phy_len);
	}
	if (ret != DJ_EOK)
		goto out;

	/* The state change, with one session token (AppSKey | SNwkSIntKey) sealed under the
	 * SessionKeyID: the device row keeps it for Rejoin 0/2 checks, the session row for
	 * AppSKeyReq. One seal, not two: sealing is the costliest step of a join. */
	js_session_id(d->dev_eui, next, out->session_id);
	out->session_id_len = JS_SESSION_ID_LEN;
	label_len = js_keystore_label(JS_PURPOSE_SESSION, out->session_id, JS_SESSION_ID_LEN, label);
	lw_key_export(&out->keys.app_s_key, raw);
	lw_key_export(&out->keys.s_nwk_s_int_key, raw + LW_KEY_LEN);
	ret = js_keystore_seal(e->ks, label, label_len, raw, JS_SESSION_SECRET_LEN,
			       c->new_st.sess_token, &tok_len);
	if (ret != DJ_EOK)
		goto out;
	c->new_st.sess_token_len = (uint32_t)tok_len;
	memcpy(c->dev_eui, d->dev_eui, LW_EUI_LEN);
	c->expect_version = d->st.version;
	c->has_session = e->session_lifetime > 0;
	if (c->has_session) {
		memcpy(c->session_id, out->session_id, JS_SESSION_ID_LEN);
		c->session_id_len = JS_SESSION_ID_LEN;
		memcpy(c->session_token, c->new_st.sess_token, tok_len);
		c->session_token_len = (uint32_t)tok_len;
		c->session_expires_at = js_store_now(e->store) + e->session_lifetime;
	}
	if (req.type == LW_REQ_JOIN)
		memcpy(c->audit_event, "join-accept", sizeof("join-accept"));
	else
		memcpy(c->audit_event, "rejoin-accept", sizeof("rejoin-accept"));
	label_len = strnlen(in->actor ? in->actor : "local", sizeof(c->audit_actor) - 1);
	memcpy(c->audit_actor, in->actor ? in->actor : "local", label_len);
	c->audit_actor[label_len] = '\0';
	audit_detail(c->audit_detail, out, in);
	out->verdict = JS_ACCEPT;
out:
	if (ret != DJ_EOK || out->verdict != JS_ACCEPT) {
		js_join_out_wipe(out);
		memset(out->phy, 0, sizeof(out->phy));
		out->phy_len = 0;
	}
	js_root_keys_wipe(&rk);
	lw_key_wipe(&js_int);
	lw_key_wipe(&js_enc);
	lw_key_wipe(&s_nwk);
	OPENSSL_cleanse(raw, sizeof(raw));
	lw_crypto_forget(e->cx);
	return ret;
}

/* refuse_out - keep only what a refusal may carry */
static void refuse_out(struct js_join_out *out, enum js_verdict v)
{
	js_join_out_wipe(out);
	out->verdict = v;
	out->phy_len = 0;
}

int js_engine_join(struct js_engine *e, const struct js_join_in *in, struct js_join_out *out)
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
		js_join_out_wipe(out);
		if (ret == DJ_ENOENT) {	/* deleted between read and commit */
			refuse_out(out, JS_V_UNKNOWN_DEVEUI);
			return DJ_EOK;
		}
		if (ret != DJ_ECONFLICT)
			return ret;
	}
	refuse_out(out, JS_V_BUSY);
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

int js_engine_submit(struct js_engine *e, struct js_join_req *r)
{
	int ret;

	commit_reset(&r->priv_commit);
	ret = prepare(e, &r->in, &r->out, &r->priv_commit);
	if (ret != DJ_EOK)
		return ret;
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
