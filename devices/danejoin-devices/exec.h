/*
 * exec.h - danejoin-devices: the commands, run on a loaded configuration.
 */
#ifndef DJ_DEVICES_DANEJOIN_DEVICES_EXEC_H
#define DJ_DEVICES_DANEJOIN_DEVICES_EXEC_H

#include "engine/js_config.h"
#include "params.h"

/*!
 * \brief Run the command in \p p (any but simulate). Messages go to stdout (results) and
 *        stderr (one line per error).
 * \return an enum dv_exit code.
 */
int exec_run(const struct js_config *cfg, const struct dv_params *p);

/*!
 * \brief The simulate command (devices/danejoin-devices/simulate.c). \p argv[0] is "simulate";
 *        --config has been taken out already.
 * \return an enum dv_exit code.
 */
int exec_simulate(const struct js_config *cfg, int argc, char **argv);

/*!
 * \brief The ownership commands (devices/danejoin-devices/exec_owner.c): enroll, publish,
 *        authcode, transfer-request, transfer, ownership.
 * \return an enum dv_exit code.
 */
int exec_owner(const struct js_config *cfg, const struct dv_params *p);

/*!
 * \brief verify (devices/danejoin-devices/exec_verify.c): a message signed by a device's key
 *        against the device's identity TLSA; needs no configuration or store.
 * \return DV_EXIT_OK (good signature) or the DV_EXIT_* of the verdict or fault.
 */
int exec_verify(const struct dv_params *p);

/*!
 * \brief migrate (devices/danejoin-devices/migrate.c): copy the SQLite store of \p cfg into the
 *        empty PostgreSQL database p->to, in one transaction. \return a DV_EXIT_* code
 */
int exec_migrate(const struct js_config *cfg, const struct dv_params *p);

/* Shared by exec.c and exec_owner.c. */
struct js_keystore;
struct js_store;

/*! \brief Read the configured master key and open the store (messages on stderr). Both
 *         outputs are set on DV_EXIT_OK only; close with js_store_close/js_keystore_free. */
int exec__open(const struct js_config *cfg, const char *config_path, struct js_keystore **ks,
	       struct js_store **store);

/*! \brief The exit code of an unexpected library error: internal or store. */
int exec__fault_exit(int rc);

/*! \brief The audit actor of this run: "cli:LOGIN". */
void exec__actor(char *actor, size_t len);

#endif /* DJ_DEVICES_DANEJOIN_DEVICES_EXEC_H */
