/*
 * params.h - danejoin-devices: commands, exit codes, and the validated parameters of one run.
 */
#ifndef DJ_DEVICES_DANEJOIN_DEVICES_PARAMS_H
#define DJ_DEVICES_DANEJOIN_DEVICES_PARAMS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dj_compiler.h"
#include "lw_frame.h"

#define DV_PROGRAM "danejoin-devices"

/* Exit codes, the same for every command (documented in --help and docs/danejoin-devices.md). */
enum dv_exit {
	DV_EXIT_OK = 0,
	DV_EXIT_USAGE = 1,	/* bad flag, unknown command, wrong arguments */
	DV_EXIT_CONFIG = 2,	/* configuration cannot be read or is invalid */
	DV_EXIT_DATA = 3,	/* bad input: CSV, DevEUI, unknown or already enrolled device */
	DV_EXIT_STORE = 4,	/* store or key error: master key missing/mismatch/mode, database */
	DV_EXIT_INTERNAL = 5,	/* out of memory, crypto library failure, a bug */
};

enum dv_cmd {
	DV_CMD_INIT,
	DV_CMD_IMPORT,
	DV_CMD_LIST,
	DV_CMD_SHOW,
	DV_CMD_DELETE,
	DV_CMD_RESET_NONCES,
	DV_CMD_REWRAP,
	DV_CMD_AUDIT,
	DV_CMD_SIMULATE,
};

/* The command line as parsed by main.c, before validation. Strings are borrowed from argv. */
struct dv_args {
	const char *config_path;
	const char *command;
	bool all;			/* --all */
	const char *new_master_key;	/* --new-master-key */
	int npos;			/* positional arguments after the command */
	char **pos;
};

/* A validated run. Strings are borrowed from argv. */
struct dv_params {
	const char *config_path;
	enum dv_cmd cmd;
	const char *csv_path;		/* import */
	const char *new_master_key;	/* rewrap */
	bool has_dev_eui;		/* show, delete, reset-nonces, audit */
	uint8_t dev_eui[LW_EUI_LEN];
	bool all;			/* reset-nonces --all */
};

/*!
 * \brief Look a command name up. \retval DJ_EOK, DJ_ENOENT (unknown command)
 */
int params_command(const char *name, enum dv_cmd *out) DJ_MUSTCHECK;

/*!
 * \brief Check that the arguments fit the command and parse them into \p out.
 *        Prints a one-line message on stderr when they do not.
 * \return DV_EXIT_OK, DV_EXIT_USAGE or DV_EXIT_DATA (a malformed DevEUI).
 */
int params_validate(const struct dv_args *args, struct dv_params *out) DJ_MUSTCHECK;

/*! \brief Print the full usage text (commands, CSV format, exit codes). */
void params_usage(FILE *f);

#endif /* DJ_DEVICES_DANEJOIN_DEVICES_PARAMS_H */
