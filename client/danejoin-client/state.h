/*
 * state.h - danejoin-client: the simulated devices' non-volatile state between runs.
 *
 * DESCRIPTION
 *	A real device keeps its DevNonce counter, the last JoinNonce and its RJcounts in
 *	non-volatile memory; the simulator's copy lives in a small text file so that consecutive
 *	runs use increasing DevNonces. For Rejoin-requests of types 0 and 2 the file also keeps the
 *	session (NetID, DevAddr, SNwkSIntKey): it is a test tool's file, written with mode 0600 and
 *	refused when group or others may read it.
 *
 *	Format: a header line, then one line per device:
 *	  DEVEUI DEVNONCE_NEXT JOINNONCE_LAST|- RJCOUNT0 RJCOUNT1 [OPTNEG NETID DEVADDR SNWKSINTKEY]
 */
#ifndef DJ_CLIENT_DANEJOIN_CLIENT_STATE_H
#define DJ_CLIENT_DANEJOIN_CLIENT_STATE_H

#include <stddef.h>

#include "common/dj_compiler.h"
#include "lorawan/lw_sim.h"

#define ST_HEADER "# danejoin-client simulator state v1"

struct st_file;

/*!
 * \brief Read \p path; a missing file is an empty state.
 * \retval DJ_EOK, DJ_EMALFORMED, DJ_EFILEMODE, DJ_EIO, DJ_ENOMEM (err says which line)
 */
int st_load(const char *path, struct st_file **out, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Copy the stored state of \p d's DevEUI (if any) into \p d. */
void st_apply(const struct st_file *s, struct lw_sim_device *d);

/*! \brief Record \p d's state. \retval DJ_EOK, DJ_ENOMEM */
int st_update(struct st_file *s, const struct lw_sim_device *d) DJ_MUSTCHECK;

/*! \brief Write atomically (temporary file, mode 0600, fsync, rename). \retval DJ_EOK, DJ_EIO */
int st_save(const struct st_file *s, const char *path, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Wipe and free (NULL is accepted). */
void st_free(struct st_file *s);

#endif /* DJ_CLIENT_DANEJOIN_CLIENT_STATE_H */
