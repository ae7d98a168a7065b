/*
 * exec.h - danejoin-ca: the commands, run on validated parameters. Results go to stdout, one
 *          line per error to stderr. Each returns an enum ca_exit code.
 */
#ifndef DJ_CA_TOOLS_DANEJOIN_CA_EXEC_H
#define DJ_CA_TOOLS_DANEJOIN_CA_EXEC_H

#include "params.h"

/*! \brief root, intermediate, issue (one or --csv), self-signed, sign, inspect, tlsa. */
int exec_run(const struct ca_params *p);

/*! \brief publish (exec_dns.c). */
int exec_publish(const struct ca_params *p);

/*! \brief rollover (exec_dns.c). */
int exec_rollover(const struct ca_params *p);
/*! \brief publish-joineui: A/AAAA and TLSA at the JoinEUI names of the prefixes. */
int exec_publish_joineui(const struct ca_params *p);

/*! \brief The exit code for a library error code. */
int exec_exit_code(int rc);

/*!
 * \brief TLSA rdata "U S M hex" of a certificate file (first certificate), for rollover.
 *        *\p out is the caller's (free()). \return a CA_EXIT_* code.
 */
int exec_tlsa_of_cert(const char *path, unsigned u, unsigned s, unsigned m, char **out);

#endif /* DJ_CA_TOOLS_DANEJOIN_CA_EXEC_H */
