/*
 * svc.h - the join server's Backend Interfaces service: configuration, peers and their rights,
 * and the handling of JoinReq, RejoinReq, AppSKeyReq and HomeNSReq.
 *
 * DESCRIPTION
 *	svc sits between srv (TLS, HTTP, peer authentication) and the join engine. For each request
 *	it maps the authenticated identity to a configured peer, checks that the message's SenderID
 *	(and SenderNSID) are among that peer's rights and that the ReceiverID is a JoinEUI served
 *	here, runs the request, wraps the session keys under the peer's KEK, and answers. Everything
 *	runs on the event-loop thread; accepted joins complete from the store's committer thread via
 *	srv_call_in_loop(). With [listen] threads > 1 there are several loops, each on its own
 *	thread; svc_new() starts them, and svc_reload(), svc_drain() and svc_free(), called on the
 *	first loop (main.c's), reach every loop (svc_internal.h, SEVERAL LOOPS). For a peer with async_url the request gets an empty HTTP 200 at once and
 *	the answer is POSTed to that URL (TS002 §8; see deliver.c). The files of the service and
 *	what they share: svc_internal.h.
 */
#ifndef DJ_DANEJOIND_SVC_H
#define DJ_DANEJOIND_SVC_H

#include <stddef.h>

#include <event2/event.h>

#include "common/dj_compiler.h"

struct svc;

/*!
 * \brief Load the configuration, open the store and key store, and start listening.
 * \param err  one line naming what was wrong.
 * \retval DJ_EOK, DJ_ECONFIG (configuration), DJ_EFILEMODE/DJ_EMASTERKEY (keys), DJ_ESQL, DJ_EIO
 */
int svc_new(struct event_base *base, const char *config_path, struct svc **out, char *err,
	    size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Validate a configuration as danejoind would use it, without opening the store or
 *        binding: the start's own checks (js_config_load(), [dane], and the peer table with
 *        js_config_check_files(): master key, certificates and matching keys, KEKs, modes).
 * \retval DJ_EOK, DJ_ECONFIG, DJ_EFILEMODE, DJ_ENOENT, DJ_EACCES, DJ_ENOMEM
 */
int svc_check_config(const char *config_path, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief SIGHUP: reload peers, KEKs, authorization and TLS material; keep connections. On
 *         failure nothing changes. */
int svc_reload(struct svc *s, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief SIGTERM: stop accepting; the loop exits once every request in flight is answered
 *         and every asynchronous answer (async_url) is delivered or dropped after its retries. */
void svc_drain(struct svc *s);

/*! \brief Close the store (finishing its commits) and free everything (NULL is accepted). */
void svc_free(struct svc *s);

#endif /* DJ_DANEJOIND_SVC_H */
