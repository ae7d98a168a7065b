/*
 * apikey.h - danejoin-devices apikey: the management API's keys (apikey.c).
 */
#ifndef DJ_DEVICES_DANEJOIN_DEVICES_APIKEY_H
#define DJ_DEVICES_DANEJOIN_DEVICES_APIKEY_H

#include "engine/js_config.h"

/*! \brief Run "apikey SUB ..." (\p argv[0] is "apikey", --config taken out). \return DV_EXIT_* */
int apikey_main(const struct js_config *cfg, const char *config_path, int argc, char **argv);

#endif /* DJ_DEVICES_DANEJOIN_DEVICES_APIKEY_H */
