/*
 * pipeline.c - danejoind's request path: from an authenticated HTTP request to its answer.
 *
 * The stages, each handing the one struct svc_req on (svc_internal.h):
 *   svc__handle     parse the message into the request; find the peer of the authenticated
 *                   identity; check its SenderID, SenderNSID and role (peers.c);
 *   binding_start   [dane] netid_binding: the SenderID's NetID must name the identity's host
 *                   in the DNS (NAPTR -> SRV), looked up before going on;
 *   authorize       [js] ownership: a device in the registry goes on only if its ownership
 *                   chain names the peer's network (js_owner.h); fail closed on DNS failure;
 *   proceed         the peer's rate, an async peer's empty 200 (deliver.c), the ReceiverID;
 *   do_join         JoinReq/RejoinReq: the frame parsed once and checked against the message,
 *                   then gathered with the other joins of this loop pass and handed to the
 *                   engine as one group (js_engine_submit_many); the engine's verdict comes
 *                   back to the loop (join_done -> join_finish), the session keys leave wrapped
 *                   under the peer's KEK;
 *   do_appskey      AppSKeyReq: the engine opens and audits the release
 *                   (js_engine_appskey_release), the key leaves wrapped under the AS's KEK;
 *   do_homens       HomeNSReq: the device's home network.
 *
 * Trust reasoning (DESIGN.md rules 2, 3 and 5): rights come only from the authenticated identity
 * (peers.c). The AppSKey goes to a network server only when its [peer.NAME] says
 * appskey_in_joinans = yes (ChirpStack with no application server of its own), then only wrapped
 * under that peer's KEK and audited (appskey-release, via=joinans, in the join's own commit)
 * before it leaves. Otherwise
 * the application server fetches it with AppSKeyReq, and only for devices under its join_euis;
 * an application server asking for a
 * device that is not its own gets the same answer as for a device that does not exist
 * (UnknownDevEUI), so it cannot probe another's fleet. A refused ownership check releases no
 * key and is audited.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "ev_join.h"
#include "ownership/js_owner.h"
#include "store/js_store_owner.h"
#include "svc_internal.h"

#define CLIENT_SUFFIX "-client"	/* "_ns-client.HOST": the label of a DANE client name */
#define CLIENT_LABEL_MIN 8	/* "_" + a role + CLIENT_SUFFIX is longer than this */
#define PLAIN_KEK_LABEL "(plain, by policy)"	/* the audit's kek= for a plain_keys peer */

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

/* join_event - the MQTT event of a request's answered join (strings borrowed from it) */
static void join_event(const struct svc_req *r, struct ev_join *e)
{
	const struct js_join_out *o = &r->jr.out;
	bool known = o->verdict != JS_V_UNKNOWN_DEVEUI && o->verdict != JS_V_MALFORMED_FRAME;

	memset(e, 0, sizeof(*e));
	e->rejoin = r->msg.type == BI_REJOIN_REQ;
	e->rejoin_type = o->type == LW_REQ_REJOIN0 ? 0 : o->type == LW_REQ_REJOIN2 ? 2 : 1;
	memcpy(e->dev_eui, r->msg.dev_eui, LW_EUI_LEN);
	e->has_join_eui = known;
	memcpy(e->join_eui, o->join_eui, LW_EUI_LEN);
	memcpy(e->net_id, r->jr.in.net_id, LW_NETID_LEN);
	memcpy(e->dev_addr, r->jr.in.dev_addr, LW_DEVADDR_LEN);
	e->mac_version = known ? lw_version_str(o->mac_version) : NULL;
	e->accepted = o->verdict == JS_ACCEPT;
	e->result = bi_result_str(verdict_result(o), BI_PROTO_1_1);
	e->reason = js_verdict_str(o->verdict);
	e->peer = r->pe->name;
	if (e->accepted) {
		e->session_id = o->session_id;
		e->session_id_len = o->session_id_len;
		e->join_nonce = o->join_nonce;
	}
	e->time_ms = dj_clock_real_ms();
}

/* join_accepted - engine hook ([mqtt] on): the events committed with an accepted join: the
 * join event, and the AppSKey for every application server whose join_euis cover the device
 * (the AppSKeyReq rule) and that has a KEK: never a plain key on the bus */
static int join_accepted(struct js_join_req *jr, const struct js_event **events, void *arg)
{
	struct svc_req *r = arg;
	struct peers *ps = r->s->peers;
	struct ev_as_target t[JS_COMMIT_EVENTS_MAX - 1];
	struct ev_join e;
	unsigned n = 0;
	int ret;

	ev_list_free(r->ev);	/* a re-run after a lost compare-and-swap */
	r->ev = NULL;
	join_event(r, &e);
	for (unsigned i = 0; i < ps->n && n < DJ_ARRAY_LEN(t); i++) {
		struct peer *pe = &ps->v[i];

		if (pe->is_ns || pe->kek == NULL ||
		    !svc__prefix_match(pe->euis, pe->n_euis, jr->out.join_eui))
			continue;
		t[n].as_id = pe->name;
		t[n].identity = pe->cfg->identity;
		t[n].kek = pe->kek;
		n++;
	}
	ret = ev_join_events(&e, t, n, &jr->out.keys.app_s_key, &r->ev);
	if (ret == DJ_EOK)
		*events = r->ev;
	return ret;
}

/* join_refused_event - [mqtt] on: a refused join's event, to the outbox on its own (it changes
 * no state, so nothing waits for it: the answer leaves at once) */
static void join_refused_event(struct svc *s, const struct svc_req *r)
{
	struct js_event *list = NULL;
	struct ev_join e;
	int ret;

	if (s->pub == NULL)
		return;
	join_event(r, &e);
	ret = ev_join_events(&e, NULL, 0, NULL, &list);
	if (ret != DJ_EOK) {
		dj_warn("mqtt: the event of a refused join is lost: %s", dj_strerror(ret));
		return;
	}
	ev_record(s->store, r->msg.dev_eui, list);
}

/* internal_error - turn r->ans into the answer of a fault of ours */
static void internal_error(struct svc_req *r)
{
	bi_msg_wipe(&r->ans);
	bi_msg_answer_init(&r->msg, svc__answer_type(r->msg.type), &r->ans);
	r->ans.result = BI_OTHER;
	snprintf(r->ans.description, sizeof(r->ans.description), "internal error");
}

/* appskey_release - [peer.NAME] appskey_in_joinans: the AppSKey goes in the JoinAns, wrapped
 * under the network server's KEK (config loading refused the option without one). Its audit
 * entry ("appskey-release ... via=joinans") was written by the engine in the join's own commit
 * (js_join_in.release_kek, set by do_join), which is durable when join_finish runs: no audit
 * entry, no key. Without a KEK do_join asked for no entry, and the key never leaves in plain. */
static int appskey_release(struct svc_req *r)
{
	if (r->pe->kek == NULL || r->jr.in.release_kek == NULL)
		return DJ_EINVAL;
	return DJ_EOK;
}

/* session_envelopes - an accepted join's session keys into the JoinAns, all under the peer's
 * KEK in one lockstep run (bi_kek_envelope_many): a 1.1 session's three network keys or a 1.0
 * session's NwkSKey, and with appskey_in_joinans the AppSKey (same KEK, audited in the join's
 * commit) */
static int session_envelopes(struct svc_req *r)
{
	const struct js_join_out *o = &r->jr.out;
	struct bi_msg *ans = &r->ans;
	const struct lw_key *keys[BI_KEK_MANY_MAX];
	struct bi_key_envelope *envs[BI_KEK_MANY_MAX];
	size_t n = 0;
	int ret;

	if (o->opt_neg) {
		keys[n] = &o->keys.f_nwk_s_int_key;
		envs[n++] = &ans->f_nwk_s_int_key;
		keys[n] = &o->keys.s_nwk_s_int_key;
		envs[n++] = &ans->s_nwk_s_int_key;
		keys[n] = &o->keys.nwk_s_enc_key;
		envs[n++] = &ans->nwk_s_enc_key;
	} else {
		keys[n] = &o->keys.f_nwk_s_int_key;	/* 1.0: NwkSKey */
		envs[n++] = &ans->nwk_s_key;
	}
	if (r->pe->cfg->appskey_in_joinans) {
		ret = appskey_release(r);
		if (ret != DJ_EOK)
			return ret;
		keys[n] = &o->keys.app_s_key;
		envs[n++] = &ans->app_s_key;
	}
	return bi_kek_envelope_many(r->pe->kek, n, keys, envs);	/* NULL: plain_keys */
}

/* store_fault - a join failed because the store could not commit (a database down, a lost
 * connection, a full disk): answered JoinReqFailed, so the network server may retry; the
 * request met the compare-and-swap unanswered, so its retry is safe */
static bool store_fault(int rc)
{
	return rc == DJ_EIO || rc == DJ_ESQL || rc == DJ_ENOSPC;
}

/* desc_set - \p text as the answer's Description, cut to fit as snprintf "%s" would (a copy:
 * snprintf cost ten times as much for this) */
static void desc_set(struct bi_msg *ans, const char *text)
{
	size_t n = strlen(text);

	if (n >= sizeof(ans->description))
		n = sizeof(ans->description) - 1;
	memcpy(ans->description, text, n);
	ans->description[n] = '\0';
}

/* join_finish - on the loop thread: answer a JoinReq/RejoinReq from the engine's verdict */
static void join_finish(void *arg)
{
	struct svc_req *r = arg;
	struct svc *s = r->s;
	struct js_join_out *o = &r->jr.out;
	struct bi_msg *ans = &r->ans;
	int ret = DJ_EOK;

	if (r->jr.result == DJ_ECONFLICT) {	/* lost a race with another request: re-check */
		ret = js_engine_submit(s->engine, &r->jr);
		if (ret == DJ_EOK)
			return;
	}
	bi_msg_answer_init(&r->msg, svc__answer_type(r->msg.type), ans);
	ans->has_dev_eui = true;
	memcpy(ans->dev_eui, r->msg.dev_eui, LW_EUI_LEN);
	if (ret != DJ_EOK || r->jr.result != DJ_EOK) {
		int rc = ret != DJ_EOK ? ret : r->jr.result;

		dj_err_limited("join for peer %s failed: %s", r->pe->name, dj_strerror(rc));
		ans->result = store_fault(rc) ? BI_JOIN_REQ_FAILED : BI_OTHER;
		snprintf(ans->description, sizeof(ans->description), "%s",
			 store_fault(rc) ? "store unavailable, not committed" : "internal error");
		goto send;
	}
	s->m.verdicts[o->verdict]++;
	ans->result = verdict_result(o);
	desc_set(ans, js_verdict_str(o->verdict));
	if (o->verdict != JS_ACCEPT) {
		join_refused_event(s, r);
		goto send;
	}
	memcpy(ans->phy, o->phy, o->phy_len);
	ans->phy_len = o->phy_len;
	memcpy(ans->session_key_id, o->session_id, o->session_id_len);
	ans->session_key_id_len = o->session_id_len;
	/* TS002 §6.1.3: the session's lifetime, which is how long AppSKeyReq may fetch its key */
	ans->has_lifetime = true;
	ans->lifetime = (uint32_t)s->peers->cfg.session_lifetime;
	ret = session_envelopes(r);
	if (ret != DJ_EOK)
		internal_error(r);
send:
	js_join_out_wipe(o);
	ev_list_free(r->ev);	/* committed (or not) by now: the store is done with it */
	r->ev = NULL;
	svc__answer(r);
}

/* join_done - engine completion: inline (refusal) or on the committer thread (accept) */
static void join_done(struct js_join_req *jr, void *arg)
{
	struct svc_req *r = arg;

	(void)jr;
	srv_call_in_loop_at(r->s->srv, &r->done, join_finish, r);
}

/* join_flush - hand the queued JoinReqs/RejoinReqs to the engine as one group */
static void join_flush(struct svc *s)
{
	struct js_join_req *rq[JS_ENGINE_BATCH_MAX];
	struct svc_req *q[JS_ENGINE_BATCH_MAX];
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
		int rc = ret != DJ_EOK ? ret : rets[i];

		if (rc == DJ_EOK)
			continue;
		dj_err_limited("join engine: %s", dj_strerror(rc));
		if (store_fault(rc))
			svc__refuse(q[i], BI_JOIN_REQ_FAILED, "store unavailable, not committed");
		else
			svc__refuse(q[i], BI_OTHER, "internal error");
	}
}

void svc__join_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	join_flush(arg);
}

/* join_queue - a checked JoinReq/RejoinReq joins the group of this pass of the loop */
static void join_queue(struct svc *s, struct svc_req *r)
{
	s->join_q[s->join_n++] = r;
	if (s->join_n == JS_ENGINE_BATCH_MAX)
		join_flush(s);
	else if (s->join_n == 1)
		event_active(s->join_ev, 0, 0);
}

/* do_join - JoinReq / RejoinReq: parse the frame once, check it against the message, and
 * hand it (parsed) to the engine */
static void do_join(struct svc_req *r)
{
	struct svc *s = r->s;
	const struct bi_msg *m = &r->msg;
	struct js_join_in *in = &r->jr.in;

	/* The DevEUI field must be the frame's, and the frame's JoinEUI one served here. A frame
	 * that does not parse goes on: the engine's verdict names what is wrong with it. */
	in->frame_status = lw_frame_parse_request(m->phy, m->phy_len, &r->frame);
	in->frame = &r->frame;
	if (in->frame_status == LW_FRAME_OK) {
		if (memcmp(r->frame.dev_eui, m->dev_eui, LW_EUI_LEN) != 0) {
			svc__refuse(r, BI_MALFORMED_REQUEST, "DevEUI does not match the PHYPayload");
			return;
		}
		/* a JoinReq is sent to the JoinEUI of its frame: any other ReceiverID is a
		 * message that contradicts itself */
		if (r->frame.type == LW_REQ_JOIN && m->type == BI_JOIN_REQ &&
		    memcmp(r->rx, r->frame.join_eui, LW_EUI_LEN) != 0) {	/* proceed parsed it */
			svc__refuse(r, BI_MALFORMED_REQUEST,
				    "ReceiverID is not the JoinEUI of the PHYPayload");
			return;
		}
		if ((r->frame.type == LW_REQ_JOIN || r->frame.type == LW_REQ_REJOIN1) &&
		    !svc__prefix_match(s->peers->euis, s->peers->n_euis, r->frame.join_eui)) {
			svc__refuse(r, BI_UNKNOWN_DEVEUI,
				    "the device's JoinEUI is not served by this join server");
			return;
		}
	}
	/* from a network server (unknown_sender refuses the others): svc__sender_check parsed it */
	memcpy(in->net_id, r->sender_nid, LW_NETID_LEN);
	memcpy(in->dev_addr, m->dev_addr, LW_DEVADDR_LEN);
	in->dl_settings = m->dl_settings;
	in->rx_delay = m->rx_delay;
	in->has_cflist = m->has_cflist;
	memcpy(in->cflist, m->cflist, LW_CFLIST_LEN);
	in->actor = r->pe->cfg->identity;
	/* the AppSKey in the JoinAns: its release audited in the join's commit (never in plain) */
	in->release_kek = r->pe->cfg->appskey_in_joinans && r->pe->kek != NULL ?
			  bi_kek_label(r->pe->kek) : NULL;
	r->jr.done = join_done;
	r->jr.done_arg = r;
	r->jr.accepted = s->pub != NULL ? join_accepted : NULL;
	join_queue(s, r);
}

/* as_may_have - an application server's rights: the AppSKeys of devices under its join_euis */
static bool as_may_have(const uint8_t join_eui[LW_EUI_LEN], void *arg)
{
	const struct peer *pe = arg;

	return svc__prefix_match(pe->euis, pe->n_euis, join_eui);
}

/* do_appskey - AppSKeyReq from an application server: the engine releases (opens and audits),
 * the key leaves wrapped under the AS's KEK */
static void do_appskey(struct svc_req *r)
{
	struct peer *pe = r->pe;
	const struct bi_msg *m = &r->msg;
	struct bi_msg *ans = &r->ans;
	struct js_appskey_in q = {
		.session_id = m->session_key_id, .session_id_len = m->session_key_id_len,
		.peer = pe->name, .actor = pe->cfg->identity,
		.kek_label = pe->kek != NULL ? bi_kek_label(pe->kek) : PLAIN_KEK_LABEL,
		.may_have = as_may_have, .arg = pe,
	};
	struct lw_key k;
	int ret;

	memcpy(q.dev_eui, m->dev_eui, LW_EUI_LEN);
	ret = js_engine_appskey_release(r->s->engine, &q, &k);
	if (ret == DJ_ENOENT) {
		svc__refuse(r, BI_UNKNOWN_DEVEUI, "no such session for this device");
		return;
	}
	if (ret != DJ_EOK) {
		svc__refuse(r, BI_OTHER, "internal error");
		return;
	}
	bi_msg_answer_init(m, BI_APPSKEY_ANS, ans);
	ans->has_dev_eui = true;
	memcpy(ans->dev_eui, m->dev_eui, LW_EUI_LEN);
	memcpy(ans->session_key_id, m->session_key_id, m->session_key_id_len);
	ans->session_key_id_len = m->session_key_id_len;
	ret = envelope(pe, &k, &ans->app_s_key);
	lw_key_wipe(&k);
	if (ret != DJ_EOK) {
		svc__refuse(r, BI_OTHER, "internal error");
		return;
	}
	ans->result = BI_SUCCESS;
	snprintf(ans->description, sizeof(ans->description), "AppSKey released");
	svc__answer(r);
}

/* do_homens - HomeNSReq: the device's home network */
static void do_homens(struct svc_req *r)
{
	static _Thread_local struct js_device d;	/* one per loop thread */
	struct svc *s = r->s;
	const struct bi_msg *m = &r->msg;
	struct bi_msg *ans = &r->ans;
	int ret = js_store_device_get(s->store, m->dev_eui, &d);

	if (ret == DJ_ENOENT || (ret == DJ_EOK && !svc__prefix_match(s->peers->euis,
								    s->peers->n_euis, d.join_eui))) {
		svc__refuse(r, BI_UNKNOWN_DEVEUI, "unknown DevEUI");
		return;
	}
	if (ret != DJ_EOK) {
		svc__refuse(r, BI_OTHER, "internal error");
		return;
	}
	bi_msg_answer_init(m, BI_HOMENS_ANS, ans);
	ans->has_dev_eui = true;
	memcpy(ans->dev_eui, m->dev_eui, LW_EUI_LEN);
	ans->has_h_net_id = true;
	/* [js] ownership: the network the current owner's rights name first */
	memcpy(ans->h_net_id, r->has_hnet ? r->hnet : s->peers->cfg.home_net_id, LW_NETID_LEN);
	if (m->proto == BI_PROTO_1_1 && s->peers->cfg.home_ns_id != NULL) {
		ans->has_hns_id = true;
		snprintf(ans->hns_id, sizeof(ans->hns_id), "%s", s->peers->cfg.home_ns_id);
	}
	ans->result = BI_SUCCESS;
	snprintf(ans->description, sizeof(ans->description), "home network of the device");
	svc__answer(r);
}

/* proceed - an authorized request: rate limit, ReceiverID, then the work */
static void proceed(struct svc_req *r)
{
	struct svc *s = r->s;

	if (!svc__rate_ok(r->pe)) {
		s->m.rate_limited++;
		REPLY_LIT(r, HTTP_TOO_MANY, "{\"error\":\"rate limit\"}");
		return;
	}
	/* parsed, authorized, within its rate: accepted for processing */
	svc__accept_async(r);
	if (dj_hex_parse(r->msg.receiver_id, r->rx, LW_EUI_LEN) != DJ_EOK ||
	    !svc__prefix_match(s->peers->euis, s->peers->n_euis, r->rx)) {
		svc__refuse(r, BI_UNKNOWN_RECEIVER, "ReceiverID is not served here");
		return;
	}
	switch (r->msg.type) {
	case BI_JOIN_REQ:
	case BI_REJOIN_REQ:
		do_join(r);
		break;
	case BI_APPSKEY_REQ:
		do_appskey(r);
		break;
	default:
		do_homens(r);
		break;
	}
}

/* owner_done - the ownership verdict: go on, or refuse (fail closed on a DNS failure) */
static void owner_done(const struct js_owner_verdict *v, void *arg)
{
	struct svc_req *r = arg;
	struct svc *s = r->s;
	char eui[2 * LW_EUI_LEN + 1];
	const char *desc;
	bool join = r->msg.type == BI_JOIN_REQ || r->msg.type == BI_REJOIN_REQ;

	if (v->status == JS_OWNER_CANCELLED) {
		svc__req_free(r);	/* shutting down: the request is gone with the server */
		return;
	}
	if (v->status == JS_OWNER_ALLOWED) {
		r->has_hnet = v->has_net_id;
		memcpy(r->hnet, v->net_id, LW_NETID_LEN);
		proceed(r);
		return;
	}
	/* refused, or no verdict because the DNS cannot be asked: no keys leave (rule 3) */
	desc = v->status == JS_OWNER_TEMPFAIL ? "ownership: DNS unavailable" : v->why;
	dj_hex_format(r->msg.dev_eui, LW_EUI_LEN, eui);
	dj_warn("peer=%s dev_eui=%s %s refused: %s", r->pe->name, eui,
		bi_msg_type_str(r->msg.type), v->why);
	if (js_store_audit(s->store, r->msg.dev_eui, "ownership-refused", r->pe->cfg->identity,
			   v->why) != DJ_EOK)
		dj_warn("dev_eui=%s: the ownership refusal is not in the audit log", eui);
	svc__accept_async(r);
	svc__refuse(r, join ? BI_ACTIVATION_DISALLOWED : BI_UNKNOWN_DEVEUI, desc);
}

/* authorize - [js] ownership: a request for a device the registry knows (an owner row) goes
 * on only if the device's ownership chain names the peer's network (js_owner.h); others go
 * straight to proceed() */
static void authorize(struct svc_req *r)
{
	struct svc *s = r->s;
	struct js_owner o;
	struct js_owner_req q;
	int ret;

	if (!s->peers->cfg.js_ownership) {
		proceed(r);
		return;
	}
	memset(&o, 0, sizeof(o));
	/* zone and serial only, from a reader connection: never behind the committer */
	ret = s->owner == NULL ? DJ_EINVAL
			       : js_store_owner_head(s->store, r->msg.dev_eui, o.zone,
						     sizeof(o.zone), &o.serial);
	if (ret == DJ_ENOENT) {		/* not in the registry: no ownership to check */
		proceed(r);
		return;
	}
	if (ret == DJ_EOK) {
		memset(&q, 0, sizeof(q));
		memcpy(q.dev_eui, r->msg.dev_eui, LW_EUI_LEN);
		q.zone = o.zone;
		q.serial = o.serial;
		q.identity = srv_req_peer(r->req);
		q.sender_id = r->msg.sender_id;
		q.is_ns = r->pe->is_ns;
		ret = js_owner_check(s->owner, &q, owner_done, r);	/* goes on in owner_done() */
	}
	js_owner_clear(&o);
	if (ret != DJ_EOK) {
		dj_err("ownership check: %s", dj_strerror(ret));
		svc__accept_async(r);
		svc__refuse(r, BI_OTHER, "internal error");
	}
}

/* binding_done - the NAPTR -> SRV chain of the NetID: the identity host must be a target */
static void binding_done(const struct da_discovery *d, void *arg)
{
	struct svc_req *r = arg;
	char why[3 * DA_NAME_MAX + 64];

	if (d->status == DA_TEMPFAIL) {
		/* the DNS did not answer: no verdict either way; the NS asks again */
		dj_warn("NetID binding of %s: %s: temporary failure: %s", r->host, r->name,
			d->why != NULL ? d->why : "");
		REPLY_LIT(r, HTTP_UNAVAILABLE, "{\"error\":\"NetID binding: DNS unavailable\"}");
		return;
	}
	for (size_t i = 0; d->status == DA_SECURE && i < d->n; i++) {
		if (strcasecmp(d->srv[i].host, r->host) == 0) {
			authorize(r);
			return;
		}
	}
	snprintf(why, sizeof(why), "SenderID: NetID %s is not bound to %s in the DNS (%s%s%s)",
		 r->msg.sender_id, r->host, da_status_str(d->status),
		 d->status == DA_SECURE ? ": not a target of " : "",
		 d->status == DA_SECURE ? r->name : "");
	dj_warn("identity %s: %s", r->host, why);
	svc__accept_async(r);
	svc__refuse(r, BI_UNKNOWN_SENDER, why);
}

/* binding_start - [dane] netid_binding: look the SenderID's NetID up before going on */
static void binding_start(struct svc_req *r)
{
	struct svc *s = r->s;
	const char *id = srv_req_peer(r->req), *dot;
	const char *suffix = s->peers->cfg.dane_discovery_suffix != NULL
				     ? s->peers->cfg.dane_discovery_suffix
				     : DISCOVERY_SUFFIX_DEFAULT;
	uint8_t nid[LW_NETID_LEN];

	/* "_ns-client.HOST" -> HOST; an identity without such a label is its own host */
	dot = strchr(id, '.');
	snprintf(r->host, sizeof(r->host), "%s",
		 id[0] == '_' && dot != NULL && dot - id > CLIENT_LABEL_MIN &&
				 strncmp(dot - strlen(CLIENT_SUFFIX), CLIENT_SUFFIX,
					 strlen(CLIENT_SUFFIX)) == 0
			 ? dot + 1
			 : id);
	if (dj_hex_parse(r->msg.sender_id, nid, LW_NETID_LEN) != DJ_EOK ||
	    da_netid_name((uint32_t)dj_be_get(nid, LW_NETID_LEN), suffix, r->name,
			  sizeof(r->name)) != DJ_EOK ||
	    da_discover(s->resolver, r->name, "LWNS", binding_done, r, NULL) != DJ_EOK) {
		dj_warn("identity %s: %s refused, UnknownSender: SenderID %s: no NetID name to "
			"check its binding", id, bi_msg_type_str(r->msg.type), r->msg.sender_id);
		svc__accept_async(r);
		svc__refuse(r, BI_UNKNOWN_SENDER, "SenderID: NetID binding: no valid NetID name");
	}
}

/* unknown_sender - refuse with UnknownSender unless the peer may send this message; the
 * Description and the log name the field that failed: the identity (no peer), the role, the
 * SenderID or the SenderNSID. Returns whether it refused (and so ended \p r). */
static bool unknown_sender(struct svc_req *r)
{
	const struct bi_msg *m = &r->msg;
	const char *id = srv_req_peer(r->req);
	char desc[BI_DESC_MAX];
	enum svc_sender v = SVC_SENDER_OK;

	if (r->pe == NULL)
		snprintf(desc, sizeof(desc), "SenderID: the authenticated identity is not a "
			 "configured peer");
	else if (r->pe->is_ns != (m->type != BI_APPSKEY_REQ))
		snprintf(desc, sizeof(desc), "role: a%s may not send %s",
			 r->pe->is_ns ? " network server" : "n application server",
			 bi_msg_type_str(m->type));
	else if ((v = svc__sender_check(r->pe, m, r->sender_nid)) == SVC_SENDER_BAD_ID)
		snprintf(desc, sizeof(desc), "SenderID %.*s: not among the sender_ids of this "
			 "authenticated identity", BI_ID_MAX - 1, m->sender_id);
	else if (v == SVC_SENDER_BAD_NSID)
		snprintf(desc, sizeof(desc), "SenderNSID %.*s: not among the ns_ids of this "
			 "authenticated identity", BI_ID_MAX - 1, m->sender_ns_id);
	else
		return false;
	dj_warn("identity %s: %s refused, UnknownSender: %s", id, bi_msg_type_str(m->type), desc);
	/* a configured async peer hears of its refusal the async way, as of any answer */
	svc__accept_async(r);
	svc__refuse(r, BI_UNKNOWN_SENDER, desc);
	return true;
}

/*
 * A struct svc_req is 13 KB, 9 KB of it the engine's commit record (jr.priv_commit: the DevNonce
 * history). A calloc per request zeroed all 13 KB; a few freed ones are kept instead, per loop
 * (svc__req_free runs on the request's loop, as svc__handle), and zeroed but for the commit
 * record: js_engine_submit and js_engine_submit_many reset it (commit_reset) and fill it before
 * reading it, and nothing else touches it. It holds no key (the session token in it is sealed);
 * the keys elsewhere in the struct were wiped by svc__req_free already.
 */
#define SVC_SPARE_MAX 32

/* req_zero - zero all of \p r but the engine's commit record */
static void req_zero(struct svc_req *r)
{
	size_t at = offsetof(struct svc_req, jr.priv_commit), len = sizeof(r->jr.priv_commit);

	memset(r, 0, at);
	memset((char *)r + at + len, 0, sizeof(*r) - at - len);
}

void svc__req_put(struct svc_req *r)
{
	struct svc *s = r->s;

	if (s == NULL || s->closing || s->spare_n >= SVC_SPARE_MAX) {
		free(r);
		return;
	}
	req_zero(r);
	r->next = s->spare;
	s->spare = r;
	s->spare_n++;
}

void svc__req_spares_free(struct svc *s)
{
	struct svc_req *r;

	while ((r = s->spare) != NULL) {
		s->spare = r->next;
		free(r);
	}
	s->spare_n = 0;
}

/* req_get - a zeroed request: a kept one, or a new one */
static struct svc_req *req_get(struct svc *s)
{
	struct svc_req *r = s->spare;

	if (r == NULL)
		return calloc(1, sizeof(*r));
	s->spare = r->next;
	s->spare_n--;
	r->next = NULL;
	return r;
}

void svc__handle(struct srv_req *req, void *arg)
{
	struct svc *s = arg;
	struct svc_req *r = req_get(s);
	const uint8_t *body;
	char err[BI_ERR_MAX];
	size_t len;
	int ret;

	if (r == NULL || s->leaving) {	/* leaving: its answer could not leave any more */
		free(r);
		srv_reply(req, HTTP_UNAVAILABLE, "{\"error\":\"unavailable\"}",
			  sizeof("{\"error\":\"unavailable\"}") - 1);
		return;
	}
	r->s = s;
	r->req = req;
	r->started = srv_req_started(req);
	s->m.handled++;
	body = srv_req_body(req, &len);
	ret = bi_msg_parse((const char *)body, len, &r->msg, err, sizeof(err));
	r->pe = svc__find_peer(s->peers, srv_req_peer(req));
	if (r->pe == NULL)
		/* authenticated but not configured: one answer (UnknownSender), not a connection
		 * to hold */
		srv_req_close_after(req);
	if (ret != DJ_EOK) {
		const struct bi_msg *m = &r->msg;

		dj_warn("peer %s: bad request: %s", srv_req_peer(req), err);
		if (m->type == BI_JOIN_ANS || m->type == BI_REJOIN_ANS || m->type == BI_APPSKEY_ANS ||
		    m->type == BI_HOMENS_ANS || ret == DJ_ENOMEM || m->sender_id[0] == '\0') {
			/* no request to answer: a plain HTTP error, async peer or not */
			s->m.http_errors++;
			REPLY_LIT(r, HTTP_BAD_REQUEST, "{\"error\":\"malformed request\"}");
			return;
		}
		s->m.requests[m->type]++;
		/* TS002 §8: a request tied to a configured async peer is answered the async way,
		 * MalformedRequest included (ChirpStack in async mode ignores the HTTP body) */
		svc__accept_async(r);
		svc__refuse(r, m->result, err);
		return;
	}
	s->m.requests[r->msg.type]++;
	if (r->msg.type != BI_JOIN_REQ && r->msg.type != BI_REJOIN_REQ &&
	    r->msg.type != BI_APPSKEY_REQ && r->msg.type != BI_HOMENS_REQ) {
		s->m.http_errors++;
		REPLY_LIT(r, HTTP_BAD_REQUEST, "{\"error\":\"not a request\"}");
		return;
	}
	if (unknown_sender(r))
		return;
	if (s->resolver != NULL && s->peers->cfg.dane_netid_binding && r->pe->is_ns) {
		binding_start(r); /* goes on in authorize(), or refuses */
		return;
	}
	authorize(r);
}
