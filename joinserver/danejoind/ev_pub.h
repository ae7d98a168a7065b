/*
 * ev_pub.h - danejoind's MQTT publisher: the store's event outbox to a broker, at least once.
 *
 * DESCRIPTION
 *	ev_pub runs one thread of its own. It connects to the broker over TLS (our client
 *	certificate for mutual TLS) and authenticates the broker in one of two ways:
 *	- verify = cafile: its chain against [mqtt] cafile and its host name (libmosquitto);
 *	- verify = dane: before each connect, a DNSSEC-validated lookup of TLSA
 *	  _<port>._tcp.<host> on the publisher's own libevent base and da_resolver ([dane]
 *	  settings); only a DA_SECURE answer counts, anything else is a failed connect (logged,
 *	  backoff). The handshake then runs on our own SSL_CTX, whose verify callback checks the
 *	  broker's leaf and chain with da_tls_verify() against those records (RFC 7671: DANE-EE
 *	  ignores names and dates, DANE-TA needs the TA in the chain the broker sent). The context
 *	  has no trust store: there is no fallback to a CA file.
 *	It reads the outbox in id order, publishes each row with QoS 1 (MQTT v5, the
 *	event id also as the user property "event-id"), and has a row deleted only once the
 *	broker's PUBACK for it came back. After a lost connection, or a restart, every row still in
 *	the outbox is published again: an event may arrive twice, always under the same id, and
 *	never not at all while it is in the outbox. Reconnects wait with exponential backoff,
 *	doubled per failure from reconnect_min_ms up to reconnect_max_ms.
 *
 *	Why a thread of its own rather than the daemon's libevent loop: the loop thread is the
 *	bottleneck of the Backend Interfaces (docs/danejoind.md, Benchmark), and libmosquitto's
 *	connect (DNS, TCP, TLS handshake) blocks. On its own thread the publisher's TLS and protobuf
 *	work runs on the other core and a slow or dead broker never stalls a join.
 */
#ifndef DJ_DANEJOIND_EV_PUB_H
#define DJ_DANEJOIND_EV_PUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend-auth/da_dns.h"
#include "common/dj_compiler.h"
#include "events/ev_event.h"
#include "store/js_store.h"

struct ev_pub;
struct js_config;

struct ev_pub_props {
	const char *host;		/* the broker's name: TLSA owner (dane) and host check */
	const char *address;		/* where to connect; NULL: host */
	unsigned port;
	bool verify_dane;		/* see above; false: verify = cafile */
	struct da_resolver_props dane;	/* verify_dane: the resolver (strings borrowed) */
	const char *cafile;		/* required unless verify_dane; ignored then */
	const char *cert, *key;		/* both or neither */
	const char *client_id;
	const char *topic_prefix;
	enum ev_format format;
	unsigned keepalive;		/* seconds */
	unsigned backoff_min_ms, backoff_max_ms;
	struct js_store *store;		/* borrowed; must outlive the publisher */
};

struct ev_pub_stats {
	uint64_t published;		/* PUBACKed by the broker */
	uint64_t connects;		/* sessions established */
	uint64_t connect_failures;	/* attempts that failed (TLSA, TCP, TLS, CONNACK) */
	uint64_t render_failures;	/* outbox rows that did not decode (deleted) */
	bool connected;
	unsigned inflight;		/* published, waiting for PUBACK */
};

/*!
 * \brief Fill the verify_dane, address and dane fields of \p pp from [mqtt] verify and address
 *        and the [dane] section of \p cfg (strings borrowed from \p cfg).
 */
void ev_pub_props_dane(struct ev_pub_props *pp, const struct js_config *cfg);

/*!
 * \brief Check the props, the TLS files and (verify_dane) the resolver settings, and start the
 *        publisher thread. It connects in the
 *        background: an unreachable broker is not an error here.
 * \param err  one line naming what was wrong.
 * \retval DJ_EOK, DJ_ECONFIG (TLS files or trust anchor unusable), DJ_ENOMEM
 */
int ev_pub_new(const struct ev_pub_props *props, struct ev_pub **out, char *err,
	       size_t errlen) DJ_MUSTCHECK;

/*! \brief Stop the thread (rows not acknowledged stay in the outbox) and free (NULL accepted).
 *         Call before closing the store. */
void ev_pub_free(struct ev_pub *p);

/*! \brief Figures for metrics (any thread). */
void ev_pub_stats(struct ev_pub *p, struct ev_pub_stats *out);

#endif /* DJ_DANEJOIND_EV_PUB_H */
