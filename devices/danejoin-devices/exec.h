/*
 * exec.h - danejoin-devices: the commands, run on a loaded configuration.
 */
#ifndef DJ_DEVICES_DANEJOIN_DEVICES_EXEC_H
#define DJ_DEVICES_DANEJOIN_DEVICES_EXEC_H

#include "js_config.h"
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

#endif /* DJ_DEVICES_DANEJOIN_DEVICES_EXEC_H */
