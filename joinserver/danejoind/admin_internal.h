/*
 * admin_internal.h - what admin.c, admin_routes.c and admin_live.c share. Not installed.
 */
#ifndef DJ_DANEJOIND_ADMIN_INTERNAL_H
#define DJ_DANEJOIND_ADMIN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "admin.h"
#include "store/js_apikey.h"
#include "svc_internal.h"

#define ADM_SESSIONS_MAX 64		/* console sessions at once */
#define ADM_SESSION_TTL 3600		/* seconds a console session lives */
#define ADM_TOKEN_HEX 64		/* session and CSRF tokens: 32 random bytes in hex */
#define ADM_FAIL_SLOTS 64		/* addresses whose failures are counted */
#define ADM_FAIL_WINDOW 60		/* seconds */
#define ADM_FAIL_DEFAULT 10
#define ADM_SERIES 120			/* seconds of join rates kept */
#define ADM_PEERS_MAX 64		/* peers whose answers are counted */
#define ADM_STREAMS_MAX 32		/* /events clients at once */
#define ADM_OWNS_MAX 16			/* ownership verifications waiting for the DNS at once */
#define ADM_ACTOR_MAX 300
#define ADM_PING_S 15
#define ADM_BODY_MAX (16u << 20)	/* a CSV import */
#define ADM_SEG_MAX 8			/* path segments of a route */
#define ADM_DANE_MAX 64			/* requests waiting for their DANE check at once */

struct adm_session {
	bool used;
	char token[ADM_TOKEN_HEX + 1];
	char csrf[ADM_TOKEN_HEX + 1];
	char name[JS_APIKEY_NAME_MAX];
	enum js_apikey_scope scope;
	int64_t expires;
};

struct adm_fail {
	char addr[64];
	int64_t window_start;
	unsigned n;
};

struct adm_peer_stats {
	char name[JS_CONFIG_NAME_MAX];
	uint64_t requests;
	uint64_t results[BI_RESULT_COUNT];
	int64_t last_seen;
	bool has_cert;			/* the certificate it last presented */
	char subject[256];
	char spki_sha256[65];
	char not_after[32];
};

struct adm_second {
	int64_t t;
	unsigned accepted, refused;
	unsigned refused_by[BI_RESULT_COUNT];	/* refused joins by TS002 Result */
};

/* The last TLSA verdict seen for a name (GET /peers): shown while a refresh runs. */
struct adm_tlsa {
	struct admin *a;
	char name[DA_NAME_MAX];
	char verdict[32];
	char why[160];
	unsigned records;
	struct da_lookup *lookup;	/* a refresh under way */
};

/* Who made the request, once authenticated. */
struct adm_who {
	char actor[ADM_ACTOR_MAX];	/* "apikey:NAME", "mtls:IDENTITY" */
	enum js_apikey_scope scope;
	bool cookie;
};

struct admin {
	struct svc *s;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	SSL_CTX *ctx;
	enum js_apikey_scope mtls_scope;
	bool dane;			/* [admin] auth = dane: clients by their TLSA (admin_dane.c) */
	char (*ids)[DA_NAME_MAX];	/* ... [admin] client_identities, normalized */
	unsigned n_ids;
	struct adm_dane *dane_pending[ADM_DANE_MAX];
	unsigned fail_max;
	char *console_dir;
	char *cert_file;
	struct adm_session sessions[ADM_SESSIONS_MAX];
	struct adm_fail fails[ADM_FAIL_SLOTS];
	struct adm_peer_stats peers[ADM_PEERS_MAX];
	unsigned n_peers;
	struct adm_second series[ADM_SERIES];
	uint64_t joins_total, joins_refused;
	uint64_t refused_by[BI_RESULT_COUNT];	/* refused joins since start, by Result */
	struct evhttp_request *streams[ADM_STREAMS_MAX];	/* GET /events in progress */
	struct evhttp_connection *stream_conns[ADM_STREAMS_MAX];	/* ... their connections */
	struct event *ping_ev;
	struct adm_tlsa tlsa[ADM_PEERS_MAX];		/* every ADM_PING_S: adm_live_ping() */
	struct adm_own *owns;		/* GET .../ownership waiting for the DNS (admin_routes.c) */
	unsigned n_owns;
	struct adm_xfer *xfer;				/* admin_xfer.c */
};

/* A route: METHOD PATH (segments "{x}" match one segment), the scope it needs. */
typedef void (*adm_handler)(struct admin *a, struct evhttp_request *req,
			    const struct adm_who *who, char **seg, unsigned nseg);
struct adm_route {
	const char *method;
	const char *path;
	enum js_apikey_scope scope;
	adm_handler fn;
};

extern const struct adm_route adm_routes[];
extern const unsigned adm_n_routes;
/* adm_routes_free - drop the requests still waiting for the DNS (admin_routes.c; no reply) */
void adm_routes_free(struct admin *a);

/* admin.c */
void adm_reply_json(struct evhttp_request *req, int status, json_t *body);	/* steals body */
void adm_headers(struct evhttp_request *req);	/* what every answer carries (CSP, no-store) */
void adm_error(struct evhttp_request *req, int status, const char *fmt, ...)
	DJ_PRINTF(3, 4);
/* adm_body - the request body as a NUL-terminated malloc'd string (NULL: none/too large) */
char *adm_body(struct evhttp_request *req, size_t *len);
/* adm_query - the value of query parameter \p key (NULL: absent); \p buf holds it */
const char *adm_query(struct evhttp_request *req, const char *key, char *buf, size_t cap);
int64_t adm_now(void);

/* adm_auth_failed - count a failed authentication of \p addr (the rate limit) and log why */
void adm_auth_failed(struct admin *a, const char *addr, const char *why);
/* adm_split - "/a/b/c" into segments, in place (ADM_SEG_MAX + 1: too many) */
unsigned adm_split(char *buf, char **seg);
/* adm_serve - an authenticated request: 405 without a route (\p hit NULL), 403 when the
 * scope is too small, else the route's handler */
void adm_serve(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
	       const struct adm_route *hit, char **seg, unsigned nseg);

/* admin_dane.c */
int adm_dane_setup(struct admin *a, const struct js_config *cfg, char *err, size_t errlen);
/* adm_dane_presented - auth = dane and the client presented a certificate */
bool adm_dane_presented(struct admin *a, struct evhttp_request *req);
/* adm_dane_start - judge the client's certificate by its TLSA records, then adm_serve() or
 * refuse (401; 503 when the resolver fails); the answer may come later, from the loop */
void adm_dane_start(struct admin *a, struct evhttp_request *req, const char *addr,
		    const struct adm_route *hit, const char *path);
void adm_dane_free(struct admin *a);

/* admin_live.c */
void adm_live_events(struct admin *a, struct evhttp_request *req);
void adm_live_ping(struct admin *a);	/* a comment line on every stream */
json_t *adm_live_series(struct admin *a);
void adm_live_free(struct admin *a);

/* admin_xfer.c: auth codes and transfers by auth code ([registry]) */
int adm_xfer_new(struct admin *a, char *err, size_t errlen);	/* a resume if one is due */
void adm_xfer_free(struct admin *a);	/* waits for a transfer under way */
void adm_r_authcode_set(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
			char **seg, unsigned n);
void adm_r_authcode_del(struct admin *a, struct evhttp_request *req,
			   const struct adm_who *who, char **seg, unsigned n);
void adm_r_transfer(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
		    char **seg, unsigned n);

#endif /* DJ_DANEJOIND_ADMIN_INTERNAL_H */
