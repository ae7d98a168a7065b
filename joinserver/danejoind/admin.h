/*
 * admin.h - danejoind's management API and console ([admin], docs/admin-api.md): JSON over
 *	     HTTPS on its own listener, on the service's event loop.
 *
 * DESCRIPTION
 *	admin.c is the listener: TLS, who the client is (an API key as "Authorization: Bearer",
 *	a console session cookie with its CSRF token, or an mTLS client certificate: chaining to
 *	[admin] client_ca_file (auth = pkix), or by a DANE identity _admin-client.HOST of
 *	[admin] client_identities whose TLSA records match it (auth = dane, admin_dane.c)), the rate limit on failed authentications, strict headers (no
 *	CORS, CSP), the route table with each route's scope, static console files.
 *	admin_routes.c answers the routes; admin_live.c keeps the join time series and the
 *	server-sent events of joins. No answer ever holds a root key, session key or token.
 */
#ifndef DJ_DANEJOIND_ADMIN_H
#define DJ_DANEJOIND_ADMIN_H

#include <stddef.h>

#include <openssl/x509.h>

#include "bi/bi_msg.h"
#include "common/dj_compiler.h"

struct svc;
struct admin;
struct js_config;

/*! \brief Start the listener of [admin] address (nothing when it is unset: *out NULL). */
int admin_new(struct svc *s, struct admin **out, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief What --check-config checks of [admin] beyond js_config: the DANE identities are
 *         DNS names. \retval DJ_EOK, DJ_ECONFIG (\p err says which) */
int admin_check_config(const struct js_config *cfg, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Close the listener and every admin connection (NULL is accepted). */
void admin_free(struct admin *a);

/*! \brief An answer left for peer \p peer (\p a may be NULL): counted for /peers (with the
 *         certificate \p cert it presented, if known), and a join goes into the time series
 *         and to the /events streams. */
void admin_note_answer(struct admin *a, const char *peer, const struct bi_msg *ans,
		       X509 *cert);

#endif /* DJ_DANEJOIND_ADMIN_H */
