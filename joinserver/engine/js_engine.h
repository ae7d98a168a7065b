/*
 * js_engine.h - the OTAA join engine: Join-requests and Rejoin-requests in, Join-accepts out.
 *
 * DESCRIPTION
 *	For one request (its frame parsed once by the caller) the engine finds the device, checks
 *	the JoinEUI, opens the root keys from the key store, checks the MIC, applies the nonce
 *	rules of the device's LoRaWAN version, allocates the next JoinNonce, derives the session
 *	keys (and JSIntKey/JSEncKey), builds the encrypted Join-accept, and commits the new nonce
 *	state through the store's group commit. The answer is released only once that commit is
 *	durable (DESIGN.md trust rule 4). A request that fails any check changes nothing.
 *
 *	Nonce rules (TS001-1.0.4 §6.2.5, TS001-1.1 §6.2.4.3):
 *	- 1.0.0-1.0.3: DevNonce is random; a value in the device's bounded history of used DevNonces
 *	  is refused (JS_V_DEVNONCE_REPLAY).
 *	- 1.0.4 and 1.1: DevNonce is a counter and must strictly increase (JS_V_DEVNONCE_TOO_LOW).
 *	- RJcount1 must strictly increase (JS_V_RJCOUNT1_REPLAY).
 *	- JoinNonce is a 24-bit counter per device starting at 1; at 0xFFFFFF the device is refused
 *	  (JS_V_JOINNONCE_EXHAUSTED) and needs new root keys.
 *
 *	OptNeg (DLSettings bit 7, set by the network server in the JoinReq) selects the 1.1 key
 *	derivation and Join-accept MIC; it is refused for 1.0.x devices. A 1.1 device with OptNeg clear
 *	joins in 1.0 mode under its NwkKey. Rejoin-requests are 1.1-only and need OptNeg.
 *
 *	Rejoin types 0 and 2 carry a MIC under SNwkSIntKey; the engine keeps the current session's
 *	SNwkSIntKey sealed in the store and checks it. Type 1 is checked under JSIntKey.
 *
 *	The nonce rules are a pure function of the request and the device's state,
 *	js_engine_nonce_check(), so that they can be tested row by row.
 *
 *	The engine also releases AppSKeys to application servers (js_engine_appskey_release()): the
 *	sealed session keys are opened here, next to the key store, and every release is audited.
 *
 *	A struct js_engine belongs to one thread (it holds that thread's crypto and key-store
 *	contexts). Many engines may share one store.
 */
#ifndef DJ_JOINSERVER_JS_ENGINE_H
#define DJ_JOINSERVER_JS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "lorawan/lw_frame.h"
#include "lorawan/lw_keys.h"

#define JS_ENGINE_BATCH_MAX JS_KS_BATCH_MAX	/* requests one prepare pass takes */
#define JS_ENGINE_RETRIES 8	/* re-checks after a lost compare-and-swap before giving up */

struct js_engine;

/* Why a request was refused. JS_ACCEPT is the only success. These are answers to the peer, not
 * faults (STYLE.md rule 4). */
enum js_verdict {
	JS_ACCEPT = 0,
	JS_V_MALFORMED_FRAME,		/* see frame_status */
	JS_V_UNKNOWN_DEVEUI,
	JS_V_WRONG_JOINEUI,		/* the frame's JoinEUI is not the device's */
	JS_V_MIC_FAILED,
	JS_V_DEVNONCE_REPLAY,		/* random DevNonce already used (<= 1.0.3) */
	JS_V_DEVNONCE_TOO_LOW,		/* counter DevNonce not above the last (1.0.4, 1.1) */
	JS_V_RJCOUNT1_REPLAY,		/* RJcount1 not above the last */
	JS_V_JOINNONCE_EXHAUSTED,
	JS_V_OPTNEG_MISMATCH,		/* OptNeg set for a 1.0.x device, or clear for a rejoin */
	JS_V_REJOIN_UNSUPPORTED,	/* a Rejoin-request from a 1.0.x device */
	JS_V_NO_SESSION,		/* Rejoin 0/2 but no session to check its MIC against */
	JS_V_BAD_PARAMS,		/* RxDelay RFU bits set, or CFListType not 0/1 */
	JS_V_BUSY,			/* the device's state kept changing under us */
};

/*
 * One Join-request or Rejoin-request: its frame, and what the network server sends along with it
 * (TS002 JoinReq / RejoinReq).
 *
 * The frame is parsed once, where it arrived (lw_frame_parse_request()), and handed over parsed:
 * the engine reads frame_status and *frame and never parses the PHYPayload again. Tools and tests
 * that hold only the bytes may leave frame NULL and set phy instead; js_engine_join() and
 * js_engine_join_many() then parse it for them (the submit functions need frame).
 */
struct js_join_in {
	enum lw_frame_status frame_status;	/* what the parse returned */
	const struct lw_request *frame;	/* borrowed for the call; read when frame_status is
					 * LW_FRAME_OK; NULL: parse phy (join, join_many) */
	const uint8_t *phy;		/* the raw frame when frame is NULL; borrowed for the call */
	size_t phy_len;
	uint8_t net_id[LW_NETID_LEN];	/* the NetID the Join-accept carries */
	uint8_t dev_addr[LW_DEVADDR_LEN];
	uint8_t dl_settings;		/* bit 7: OptNeg */
	uint8_t rx_delay;
	bool has_cflist;
	uint8_t cflist[LW_CFLIST_LEN];
	const char *actor;		/* authenticated peer, for the audit log; NULL: "local" */
	/* non-NULL: the caller will send the AppSKey in the answer wrapped under the KEK of
	 * this label ([peer] appskey_in_joinans): the release is audited in the join's own
	 * commit, a second entry "appskey-release" ("session_key_id=... kek=LABEL via=joinans")
	 * after the accept's; the key may leave once done has run with an accept */
	const char *release_kek;
};

struct js_join_out {
	enum js_verdict verdict;
	enum lw_frame_status frame_status;	/* for JS_V_MALFORMED_FRAME */
	enum lw_req_type type;
	enum lw_version mac_version;	/* valid once the device was found */
	bool opt_neg;			/* the 1.1 derivation was used */
	uint8_t dev_eui[LW_EUI_LEN];
	uint8_t join_eui[LW_EUI_LEN];
	uint16_t nonce;			/* DevNonce or RJcount */
	uint32_t join_nonce;		/* the JoinNonce issued (accept only) */
	uint8_t phy[LW_JOINACC_CF_LEN];	/* the encrypted Join-accept (accept only) */
	size_t phy_len;
	struct lw_session_keys keys;	/* accept only; wipe with js_join_out_wipe() */
	uint8_t session_id[JS_SESSION_ID_MAX];
	size_t session_id_len;
};

/* An asynchronous request (for event loops). The caller owns it until done has run. */
struct js_join_req {
	struct js_join_in in;
	struct js_join_out out;
	int result;	/* DJ_EOK: out holds the verdict; DJ_ECONFLICT: submit again; else a fault */
	void (*done)(struct js_join_req *r, void *arg);	/* once; inline or on the committer */
	void *done_arg;
	/* Optional (events, e.g. MQTT): called with done_arg on the submitting thread once the
	 * checks accepted the request, before its state change is submitted, with out complete
	 * (keys included). It sets *events to the events to write to the outbox in the same
	 * transaction (borrowed until done has run; NULL: none) and returns DJ_EOK, or returns a
	 * fault, which fails the request. It runs again when a lost compare-and-swap makes the
	 * request run again. */
	int (*accepted)(struct js_join_req *r, const struct js_event **events, void *arg);
	struct js_commit priv_commit;
};

struct js_engine_props {
	struct js_store *store;		/* borrowed; must outlive the engine */
	const struct js_keystore *ks;	/* borrowed during js_engine_new (the engine keeps a dup) */
	int64_t session_lifetime;	/* seconds an AppSKey is kept for AppSKeyReq; 0: not kept */
};

/*!
 * \brief Create an engine for the calling thread.
 * \retval DJ_EOK, DJ_ENOMEM, DJ_ECRYPTO, DJ_EINVAL
 */
int js_engine_new(const struct js_engine_props *props, struct js_engine **out) DJ_MUSTCHECK;

/*! \brief Free (NULL is accepted). */
void js_engine_free(struct js_engine *e);

/*!
 * \brief Handle one request synchronously: returns once the answer may leave.
 * \return DJ_EOK with \p out->verdict set (JS_ACCEPT or why not), or a fault (nothing changed,
 *         nothing to answer but a failure).
 */
int js_engine_join(struct js_engine *e, const struct js_join_in *in,
		   struct js_join_out *out) DJ_MUSTCHECK;

/*!
 * \brief Start one request; r->done runs when the answer may leave: inline for a refusal, on the
 *        store's committer thread after the durable commit for an accept. r->in.frame is only
 *        read during this call (r->in.phy never is).
 * \retval DJ_EOK  done will run (or already ran).
 * \retval DJ_EINVAL  r->in.frame is NULL (the submit functions take parsed frames only).
 * \retval other   a fault before anything was queued; done will not run.
 */
int js_engine_submit(struct js_engine *e, struct js_join_req *r) DJ_MUSTCHECK;

/*!
 * \brief js_engine_join() for \p n requests (in[i] -> out[i]), with the same verdicts, answers and
 *        state as handling them one after the other in that order. Requests go through the
 *        checks in groups of JS_ENGINE_BATCH_MAX so that the root-key opens and the session
 *        seals of a group run as one lockstep key-wrap each (see js_keystore_open_root_many);
 *        the commits follow in order, and a request whose device another request of the group
 *        changed first runs again alone. rets[i] is what js_engine_join() would have returned.
 * \retval DJ_EOK (see rets), DJ_EINVAL
 */
int js_engine_join_many(struct js_engine *e, const struct js_join_in *in,
			struct js_join_out *out, size_t n, int rets[]) DJ_MUSTCHECK;

/*!
 * \brief js_engine_submit() for \p n requests, checked in groups as js_engine_join_many() does.
 *        rets[i] is what js_engine_submit() would have returned for r[i]: DJ_EOK means r[i]->done
 *        will run (or already ran). Two requests of one device in one call: the second loses the
 *        compare-and-swap and its done sees DJ_ECONFLICT (submit it again).
 * \retval DJ_EOK (see rets), DJ_EINVAL (nothing submitted; also when an r[i]->in.frame is NULL)
 */
int js_engine_submit_many(struct js_engine *e, struct js_join_req *const r[], size_t n,
			  int rets[]) DJ_MUSTCHECK;

/*!
 * \brief The nonce rules of one request that passed its MIC check, with no store and no crypto:
 *        judge the request's DevNonce or RJcount against the device's state \p cur and, for an
 *        accept, write the state after it to \p next: DevNonce (counter or history) or RJcount1
 *        used, and the JoinNonce to issue in next->join_nonce_last. The rules by version are in
 *        the file comment; RJcount0 (Rejoin types 0 and 2) is the network server's to check.
 * \param hist_cap  how many random DevNonces the device's history keeps (1.0.0-1.0.3); the
 *                  oldest go first when it is full.
 * \param next  written on JS_ACCEPT only (the whole state, from \p cur).
 * \return JS_ACCEPT, JS_V_DEVNONCE_REPLAY, JS_V_DEVNONCE_TOO_LOW, JS_V_RJCOUNT1_REPLAY or
 *         JS_V_JOINNONCE_EXHAUSTED (a nonce refusal goes before exhaustion).
 */
enum js_verdict js_engine_nonce_check(enum lw_version version, enum lw_req_type type,
				      uint16_t nonce, const struct js_nonce_state *cur,
				      unsigned hist_cap, struct js_nonce_state *next);

/* An application server's AppSKeyReq (TS002 §6.4), as js_engine_appskey_release() checks it. */
struct js_appskey_in {
	uint8_t dev_eui[LW_EUI_LEN];
	const uint8_t *session_id;	/* SessionKeyID; borrowed for the call */
	size_t session_id_len;
	const char *peer;		/* the requester's name, for log lines */
	const char *actor;		/* the requester's identity, for the audit entry */
	const char *kek_label;		/* how the key leaves, for the audit entry ("kek=...") */
	/* The requester's rights: whether it may have the AppSKeys of devices under join_eui. */
	bool (*may_have)(const uint8_t join_eui[LW_EUI_LEN], void *arg);
	void *arg;
};

/*!
 * \brief AppSKeyReq: find the session, check that it is the device's, unexpired and the
 *        requester's (may_have on the device's JoinEUI), open its sealed AppSKey, and audit the
 *        release ("appskey-release"). No audit entry, no key: the key is returned only once the
 *        release is on record. The caller wraps it under the requester's KEK.
 * \param key  receives the AppSKey on DJ_EOK only; wipe it with lw_key_wipe().
 * \retval DJ_EOK     released, and on record.
 * \retval DJ_ENOENT  no such session for this device: not found, expired, another device's, or
 *                    not the requester's, one answer for all so that a requester cannot probe
 *                    another's fleet.
 * \retval other      a fault (DJ_ESQL, DJ_EUNWRAP, ...): nothing released.
 */
int js_engine_appskey_release(struct js_engine *e, const struct js_appskey_in *in,
			      struct lw_key *key) DJ_MUSTCHECK;

/*! \brief Wipe the session keys an answer holds. */
void js_join_out_wipe(struct js_join_out *out);

/*!
 * \brief The audit detail of an AppSKey release, one text for every way a key leaves:
 *        "session_key_id=HEX kek=LABEL", then " via=VIA" unless \p via is NULL (AppSKeyReq).
 *        Built without printf (the JoinAns release is on the join's hot path); the label and
 *        \p via are cut at 128 and 16 characters, so the text always fits \p buf.
 */
void js_release_detail(char buf[JS_AUDIT_DETAIL_MAX], const uint8_t *session_id,
		       size_t session_id_len, const char *kek, const char *via);

/*! \brief A short text naming a verdict ("MIC failed", "DevNonce already used", …). */
const char *js_verdict_str(enum js_verdict v);

#endif /* DJ_JOINSERVER_JS_ENGINE_H */
