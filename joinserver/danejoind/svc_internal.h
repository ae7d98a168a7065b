/*
 * svc_internal.h - what the files of danejoind's Backend Interfaces service share (svc.h is the
 * interface main.c sees). Not installed.
 *
 * DESCRIPTION
 *	The service is split along its seams:
 *	- peers.c     the peer table built from the configuration: identities, SenderID/NSID
 *	              rights, KEKs, JoinEUI prefixes, rate limits;
 *	- pipeline.c  the request path: parse, authorize (NetID binding, ownership), then
 *	              JoinReq/RejoinReq through the join engine, AppSKeyReq, HomeNSReq;
 *	- deliver.c   where answers leave: the HTTP response, or a POST to an async peer (TS002 §8);
 *	- metrics.c   the counters and their Prometheus text;
 *	- svc.c       the lifecycle: start, reload, drain, stop.
 *
 *	One struct svc_req is allocated when a request arrives and carried through every stage to
 *	the delivery of its answer: the message is parsed into it once and never copied, its frame
 *	is parsed into it once and handed to the engine as it is, and for an async peer the answer
 *	waits in it until it is delivered or dropped. Every stage either hands the request on or
 *	ends it (svc__answer(), svc__refuse(), svc__reply(): each frees it).
 *
 *	Everything here runs on the event-loop thread, except the engine's completion
 *	(pipeline.c: join_done), which hands the request back to the loop.
 *
 *	SEVERAL LOOPS ([listen] threads, svc.c): one struct svc per loop, each on its own
 *	event_base and thread with its own srv (its own SO_REUSEPORT socket), join engine (key
 *	store copy), resolver and ownership cache (DANE caches are per loop), join group and
 *	counters. They share (struct svc_shared): the store and its one committer, the peer
 *	table (read-only but for the rate buckets, under peers.lock; a reload hands the new table
 *	to each loop, peers_swap in svc.c), the srv limits and TLS context (srv_props.share). Loop
 *	0 is the one main.c holds: signals, [admin], the metrics listener (it gathers every
 *	loop's counters, svc__loop_stats), housekeeping, and every asynchronous delivery (the
 *	async peers' dc_clients and discovery live on its loop; other loops hand their answers
 *	over). A request stays on the loop it arrived on until answered.
 */
#ifndef DJ_DANEJOIND_SVC_INTERNAL_H
#define DJ_DANEJOIND_SVC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>

#include "backend-auth/da_dns.h"
#include "backend-auth/da_tls.h"
#include "bi/bi_kek.h"
#include "bi/bi_msg.h"
#include "bi/dc_client.h"
#include "bi/srv.h"
#include "engine/js_config.h"
#include "engine/js_engine.h"
#include "lorawan/lw_frame.h"
#include "ownership/js_owner.h"
#include "store/js_keystore.h"
#include "store/js_store.h"

#define HTTP_OK 200
#define HTTP_BAD_REQUEST 400
#define HTTP_TOO_MANY 429
#define HTTP_SERVER_ERROR 500
#define HTTP_UNAVAILABLE 503
#define LAT_BUCKETS 12		/* latency histogram buckets (metrics.c) */
#define EUI_BITS 64		/* a JoinEUI prefix without "/BITS" is the whole EUI */
#define DISCOVERY_SUFFIX_DEFAULT "lora-alliance.org"	/* zone of the NetID names (DNS discovery) */

/* REPLY_LIT - end \p r with a string literal body (its length computed, never counted by hand) */
#define REPLY_LIT(r, status, lit) svc__reply((r), (status), (lit), sizeof(lit) - 1)

/* A JoinEUI prefix: "HEX16" or "HEX16/BITS". */
struct eui_prefix {
	uint64_t eui;
	unsigned bits;
};

struct svc_req;

/* One [peer.NAME]: who it is and what it may do. */
struct peer {
	char name[JS_CONFIG_NAME_MAX];
	const struct js_peer_config *cfg;	/* borrowed from its table's cfg */
	struct peers *tab;			/* its table */
	bool is_ns;
	unsigned n_nids;			/* ns: its sender_ids that are NetIDs, parsed */
	uint8_t nids[JS_CONFIG_LIST_MAX][LW_NETID_LEN];
	struct bi_kek *kek;			/* NULL: plain_keys */
	unsigned n_euis;
	struct eui_prefix euis[JS_CONFIG_LIST_MAX];	/* as: devices whose AppSKey it may get */
	double bucket;				/* rate limit: tokens */
	double bucket_at;
	struct dc_client *async;		/* NULL: answers go in the HTTP response (or are
						 * waiting for discovery, async_discover) */
	struct da_lookup *disc;			/* async_discover: the NetID lookup under way */
	bool disc_running;
	struct svc_req *waiting;		/* answers waiting for that lookup (wnext) */
	struct svc *s;
};

/* The peer table of one configuration, shared by every loop. */
struct peers {
	struct peers *prev;	/* svc_shared.tables: every table not yet freed */
	pthread_mutex_t lock;	/* the rate buckets (svc__rate_ok), from any loop */
	bool lock_init;
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
	uint64_t handled;	/* requests handed to this loop's handler */
};

/* What the loops share (one per process; svc.c). */
struct svc_shared {
	unsigned n_loops;
	struct svc **loops;		/* [0]: the loop main.c runs */
	pthread_mutex_t lock;		/* exited, stats snapshots */
	pthread_cond_t cond;
	bool sync_init;
	struct peers *tables;		/* every peer table not yet freed (loop 0 only) */
	unsigned cfg_threads;		/* [listen] threads as configured (0: unset) */
	atomic_uint async_pending;	/* accepted async requests not yet delivered or dropped */
	atomic_uint loops_running;	/* loops 1.. whose thread still runs */
};

struct svc {
	struct svc_shared *sh;
	unsigned idx;			/* loop number: 0 is main.c's */
	pthread_t thread;		/* loops 1..: the thread running base */
	bool thread_started;
	bool exited;			/* the thread left its loop (under sh->lock) */
	struct event_base *base;
	struct da_resolver *resolver;	/* DANE mode: the loop's resolver ([dane] needs a restart) */
	struct js_owner_ctx *owner;	/* DANE mode: ownership checks ([js] ownership) */
	struct srv *srv;
	char *config_path;
	struct peers *peers;
	struct js_keystore *ks;		/* loop 0 (the engines hold their own copies) */
	struct js_store *store;		/* loop 0's, shared */
	struct js_engine *engine;	/* this loop's */
	struct ev_pub *pub;		/* [mqtt]: the event publisher (loop 0's, shared); NULL: no
					 * events */
	struct metrics m;
	bool draining;
	bool leaving;			/* the drain is over: the loop is leaving */
	bool closing;			/* svc_free(): drop, never retry */
	struct event *drain_ev;
	struct event *expire_ev;	/* housekeeping: expired sessions out of the store */
	/* JoinReqs/RejoinReqs gathered during one pass of the loop, handed to the engine as one
	 * group when the loop gets to join_ev (js_engine_submit_many: key custody in lockstep) */
	struct event *join_ev;
	struct svc_req *join_q[JS_ENGINE_BATCH_MAX];
	unsigned join_n;
	/* requests of async peers answered with an empty 200 whose answer is not yet delivered
	 * or dropped (sh->async_pending): draining waits for them, a reload keeps their peer
	 * table */
	struct svc_req *deliveries;	/* loop 0: answers between POSTs to async peers */
	struct admin *admin;		/* [admin] (loop 0): the management API (admin.h); NULL:
					 * off */
	struct svc_req *spare;		/* freed requests kept zeroed for reuse (pipeline.c) */
	unsigned spare_n;
};

/* One request, from its arrival to the delivery of its answer (see the file comment). */
struct svc_req {
	struct svc *s;
	/* where the answer goes */
	struct srv_req *req;	/* NULL once answered, or once it got its empty 200 (async) */
	struct peer *pe;	/* NULL: an identity without a [peer.NAME] (answered in the
				 * response) */
	bool async;		/* accepted by svc__accept_async(): counted in async_pending */
	double started;		/* monotonic time the request was complete, for latency */
	bool has_hnet;		/* [js] ownership: the home NetID the ownership names */
	uint8_t hnet[LW_NETID_LEN];
	struct bi_msg msg;	/* the request, parsed here */
	uint8_t sender_nid[LW_NETID_LEN]; /* from a network server: msg.sender_id's NetID
					 * (svc__sender_check) */
	uint8_t rx[LW_EUI_LEN];		/* msg.receiver_id, parsed (proceed) */
	/* [dane] netid_binding */
	char host[DA_NAME_MAX];	/* the identity's host: "_ns-client." stripped */
	char name[DA_NAME_MAX];	/* the NetID's NAPTR owner */
	/* JoinReq / RejoinReq */
	struct lw_request frame;	/* msg.phy, parsed once; jr.in.frame points here */
	struct js_join_req jr;
	struct js_event *ev;	/* [mqtt]: the events committed with this join (ev_join.h) */
	struct srv_call done;	/* join_done's hand-back to the loop (srv_call_in_loop_at) */
	/* the answer; for an async peer it waits here (with its envelopes) between POSTs */
	struct bi_msg ans;
	unsigned tries;		/* POSTs started */
	struct event *retry_ev;	/* armed between a failed POST and the next */
	struct svc_req *prev, *next;	/* svc->deliveries */
	struct svc_req *wnext;	/* peer->waiting (async_discover) */
};

/* peers.c: the table (svc__peers_load/_free), who a peer is (svc__find_peer) and what it may
 * send (svc__sender_check, svc__nsid_equal, svc__rate_ok), JoinEUI prefixes
 * (svc__prefix_match) */
bool svc__prefix_match(const struct eui_prefix *v, unsigned n, const uint8_t eui[LW_EUI_LEN]);
bool svc__auth_is_dane(const struct js_config *cfg);
int svc__dane_check(const char *path, const struct js_config *cfg, char *err,
		    size_t errlen) DJ_MUSTCHECK;
int svc__async_client(const struct js_config *cfg, const struct js_peer_config *pc,
		      struct event_base *base, struct da_resolver *resolver,
		      struct dc_client **out, char *err, size_t errlen) DJ_MUSTCHECK;
int svc__peers_load(const char *path, struct event_base *base, struct da_resolver *resolver,
		    struct peers **out, char *err, size_t errlen) DJ_MUSTCHECK;
void svc__peers_free(struct peers *p);
struct peer *svc__find_peer(struct peers *p, const char *identity);
/* What svc__sender_check() found wrong, if anything: the field an UnknownSender names. */
enum svc_sender {
	SVC_SENDER_OK = 0,
	SVC_SENDER_BAD_ID,	/* SenderID not among the peer's sender_ids */
	SVC_SENDER_BAD_NSID,	/* SenderNSID not among its ns_ids */
};

enum svc_sender svc__sender_check(const struct peer *pe, const struct bi_msg *m,
				  uint8_t nid[LW_NETID_LEN]);
bool svc__nsid_equal(const char *a, const char *b);
bool svc__rate_ok(struct peer *pe);
bool svc__peer_async(const struct peer *pe);

/* deliver.c: each of svc__answer, svc__refuse and svc__reply ends \p r (it is freed, or for an
 * async peer waits for its POST and frees itself after) */

/* svc__answer_type - the answer type of a request type */
enum bi_msg_type svc__answer_type(enum bi_msg_type t);
/* svc__accept_async - an async peer's request is accepted for processing: answer it now with an
 * empty 200 (TS002 §8); its answer proper is POSTed later by svc__answer() */
void svc__accept_async(struct svc_req *r);
/* svc__answer - the one place answers (r->ans) leave: in the HTTP response, or (accepted by
 * svc__accept_async) POSTed to the peer's async_url; logs one line and counts */
void svc__answer(struct svc_req *r);
/* svc__refuse - answer r->msg with a Result code and a description */
void svc__refuse(struct svc_req *r, enum bi_result result, const char *desc);
/* svc__reply - an HTTP answer that is no Backend Interfaces message (errors, rate limits) */
void svc__reply(struct svc_req *r, int status, const char *body, size_t len);
/* svc__req_free - wipe and free a request, wherever it is (NULL is accepted) */
void svc__req_free(struct svc_req *r);
/* svc__req_put - a request svc__req_free has wiped: zeroed and kept for svc__handle, or freed
 * (pipeline.c) */
void svc__req_put(struct svc_req *r);
/* svc__req_spares_free - free the requests kept for reuse (pipeline.c) */
void svc__req_spares_free(struct svc *s);

/* metrics.c */

/* svc__metrics_answer - count one answer and its latency (seconds) */
void svc__metrics_answer(struct svc *s, enum bi_result result, double latency);
/* svc__metrics_text - srv's metrics callback: the Prometheus text (malloc'd) */
char *svc__metrics_text(void *arg);

/* svc.c: what other loops hand to loop 0 */

/* One loop's counters, as svc__loop_stats() copies them. */
struct loop_stats {
	struct metrics m;
	struct srv_conn_stats cs;
	struct srv_auth_stats as;
	struct da_stats ds;		/* with a resolver (DANE mode) */
	struct js_owner_stats os;	/* with ownership checks */
};

/* svc__loop_stats - on loop 0: every loop's counters (v[n_loops]), each copied on its own
 * loop's thread (loop 0 waits for them; no loop ever waits for loop 0) */
void svc__loop_stats(struct svc *s0, struct loop_stats *v);
/* svc__note_answer - admin_note_answer() on loop 0, from any loop */
void svc__note_answer(struct svc *s, const char *peer, const struct bi_msg *ans, X509 *cert);
/* svc__to_loop0 - run fn(arg) on loop 0 (at once when \p s is loop 0) */
int svc__to_loop0(struct svc *s, void (*fn)(void *arg), void *arg) DJ_MUSTCHECK;

/* loops.c: the loops beyond the first */

/* svc__threads - how many loops: [listen] threads, or one per online core (at most
 * JS_CONFIG_THREADS_MAX) */
unsigned svc__threads(const struct js_config *cfg);
/* svc__loops_start - loops 1..svc__threads()-1, their srv made from \p sp (loop 0's props),
 * each running on its own thread */
int svc__loops_start(struct svc *s0, const struct srv_props *sp, char *err,
		     size_t errlen) DJ_MUSTCHECK;
/* svc__loops_swap - a reload: every loop takes \p np (loop 0 at once); the old table is freed
 * once no loop can use it */
int svc__loops_swap(struct svc *s0, struct peers *np) DJ_MUSTCHECK;
/* svc__loops_drain - SIGTERM: every loop but 0 drains (svc__drain_loop on its thread) */
void svc__loops_drain(struct svc *s0);
/* svc__loop_done - a draining loop may leave: nothing in flight (and, for loop 0, every other
 * loop gone) */
bool svc__loop_done(const struct svc *s);
/* svc__loops_stop - end and free loops 1.. (before loop 0 is freed) */
void svc__loops_stop(struct svc *s0);

/* svc.c */

/* svc__resolver_props - [dane] as resolver properties (strings borrowed from cfg) */
void svc__resolver_props(const struct js_config *cfg, struct da_resolver_props *rp);
/* svc__owner_new - the ownership cache of loop \p s, on its resolver */
int svc__owner_new(struct svc *s, const struct js_config *cfg, char *err,
		   size_t errlen) DJ_MUSTCHECK;
/* svc__drain_loop - on \p s's thread: stop accepting; leave the loop once svc__loop_done */
void svc__drain_loop(struct svc *s);

/* pipeline.c */

/* svc__handle - srv's request handler: a new struct svc_req, then every stage */
void svc__handle(struct srv_req *req, void *arg);
/* svc__join_flush_cb - join_ev: the JoinReqs/RejoinReqs of this loop pass go to the engine */
void svc__join_flush_cb(evutil_socket_t fd, short what, void *arg);

#endif /* DJ_DANEJOIND_SVC_INTERNAL_H */
