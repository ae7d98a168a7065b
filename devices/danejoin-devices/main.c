/*
 * main.c - danejoin-devices: flags and dispatch.
 *
 * The command line is "danejoin-devices [OPTIONS] COMMAND [ARGS]"; options may also follow the
 * command. params.c validates, exec.c (and simulate.c) do the work. Exit codes: params.h.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/dj_err.h"
#include "common/dj_secmem.h"
#include "common/dj_log.h"
#include "apikey.h"
#include "exec.h"
#include "engine/js_config.h"
#include "params.h"

/* long_opts - every flag of every command; params_validate() checks which command may use it */
static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "all", no_argument, NULL, 'a' },
	{ "new-master-key", required_argument, NULL, 'k' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "forget-nonces", no_argument, NULL, 'F' },
	{ "bump", required_argument, NULL, 'B' },
	{ "zone", required_argument, NULL, 1000 },
	{ "from-zone", required_argument, NULL, 1001 },
	{ "to-zone", required_argument, NULL, 1002 },
	{ "key", required_argument, NULL, 1003 },
	{ "ns", required_argument, NULL, 1004 },
	{ "tsig-file", required_argument, NULL, 1005 },
	{ "ta-file", required_argument, NULL, 1006 },
	{ "lookup-via", required_argument, NULL, 1007 },
	{ "js-cert", required_argument, NULL, 1008 },
	{ "js-key", required_argument, NULL, 1009 },
	{ "netids", required_argument, NULL, 1010 },
	{ "as-ids", required_argument, NULL, 1011 },
	{ "csv", required_argument, NULL, 1012 },
	{ "out", required_argument, NULL, 1013 },
	{ "requests", required_argument, NULL, 1014 },
	{ "auth-codes", required_argument, NULL, 1015 },
	{ "expires-in", required_argument, NULL, 1016 },
	{ "ttl", required_argument, NULL, 1017 },
	{ "dev-eui", required_argument, NULL, 1018 },
	{ "message", required_argument, NULL, 1019 },
	{ "signature", required_argument, NULL, 1020 },
	{ "device-key", required_argument, NULL, 1021 },
	{ "to", required_argument, NULL, 2000 },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* parse_flags - one getopt pass over argv into \p a; returns -1 on --help, DV_EXIT_* otherwise */
static int parse_flags(int argc, char **argv, const char *shortopts, struct dv_args *a,
		       int *verbose)
{
	int ch;

	optind = 0;	/* glibc: full re-initialisation for the second pass */
	while ((ch = getopt_long(argc, argv, shortopts, long_opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a->config_path = optarg;
			break;
		case 'a':
			a->all = true;
			break;
		case 'k':
			a->new_master_key = optarg;
			break;
		case 'v':
			(*verbose)++;
			break;
		case 'F':
			a->forget_nonces = true;
			break;
		case 'B':
			a->bump = optarg;
			break;
		case 'h':
			return -1;
		case 2000:
			a->to = optarg;
			break;
		case 1000: case 1001: case 1002: case 1003: case 1004: case 1005: case 1006:
		case 1007: case 1008: case 1009: case 1010: case 1011: case 1012: case 1013:
		case 1014: case 1015: case 1016: case 1017: case 1018: case 1019: case 1020:
		case 1021: {
			/* owner_slots - the ownership flags, in long_opts order from 1000 */
			const char **owner_slots[] = {
				&a->own.zone, &a->own.from_zone, &a->own.to_zone, &a->own.key,
				&a->own.ns, &a->own.tsig_file, &a->own.ta_file, &a->own.lookup_via,
				&a->own.js_cert, &a->own.js_key, &a->own.netids, &a->own.as_ids,
				&a->own.csv, &a->own.out, &a->own.requests, &a->own.auth_codes,
				&a->own.expires_in, &a->own.ttl, &a->own.dev_eui,
				&a->own.message, &a->own.signature, &a->own.device_key,
			};
			*owner_slots[ch - 1000] = optarg;
			a->owner_flag = true;
			break;
		}
		default:	/* getopt has printed what was wrong */
			fprintf(stderr, "%s: see %s --help\n", DV_PROGRAM, DV_PROGRAM);
			return DV_EXIT_USAGE;
		}
	}
	return DV_EXIT_OK;
}

/* strip_config - take --config FILE / --config=FILE / -c FILE out of a simulate command line */
static int strip_config(int argc, char **argv, struct dv_args *a)
{
	int i, n = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: %s needs a FILE\n", DV_PROGRAM, argv[i]);
				return -1;
			}
			a->config_path = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--config=", 9) == 0) {
			a->config_path = argv[i] + 9;
			continue;
		}
		argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return n;
}

int main(int argc, char **argv)
{
	struct dv_args a;
	struct dv_params p;
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX];
	enum dv_cmd cmd;
	int verbose = 0, ex, sub_argc, rc;
	char **sub_argv;

	if (dj_secmem_setup() != DJ_EOK) {	/* first: before any OpenSSL call */
		fprintf(stderr, "danejoin-devices: cannot keep keys out of core dumps (mmap/prctl)\n");
		return DV_EXIT_INTERNAL;
	}

	memset(&a, 0, sizeof(a));
	js_config_defaults(&cfg);

	/* Options before the command. */
	ex = parse_flags(argc, argv, "+c:vh", &a, &verbose);
	if (ex < 0) {
		params_usage(stdout);
		return DV_EXIT_OK;
	}
	if (ex != DV_EXIT_OK)
		return ex;
	if (optind >= argc) {
		fprintf(stderr, "%s: no command given (see %s --help)\n", DV_PROGRAM, DV_PROGRAM);
		return DV_EXIT_USAGE;
	}
	a.command = argv[optind];
	sub_argc = argc - optind;
	sub_argv = argv + optind;

	if (strcmp(a.command, "apikey") == 0) {
		/* its own flags (apikey.c); only --config is ours */
		sub_argc = strip_config(sub_argc, sub_argv, &a);
		if (sub_argc < 0)
			return DV_EXIT_USAGE;
		dj_log_set(dj_log_stderr, NULL, verbose >= 1 ? LOG_INFO : LOG_WARNING);
		rc = a.config_path != NULL ? js_config_load(a.config_path, &cfg, err, sizeof(err))
					   : DJ_EOK;
		if (rc != DJ_EOK) {
			fprintf(stderr, "%s: %s\n", DV_PROGRAM,
				err[0] != '\0' ? err : dj_strerror(rc));
			return rc == DJ_ENOMEM ? DV_EXIT_INTERNAL : DV_EXIT_CONFIG;
		}
		ex = apikey_main(&cfg, a.config_path, sub_argc, sub_argv);
		js_config_free(&cfg);
		return ex;
	}
	if (params_command(a.command, &cmd) == DJ_EOK && cmd == DV_CMD_SIMULATE) {
		/* The simulator parses its own flags; only --config is ours. */
		sub_argc = strip_config(sub_argc, sub_argv, &a);
		if (sub_argc < 0)
			return DV_EXIT_USAGE;
	} else {
		/* Options and arguments after the command. */
		ex = parse_flags(sub_argc, sub_argv, "c:avh", &a, &verbose);
		if (ex < 0) {
			params_usage(stdout);
			return DV_EXIT_OK;
		}
		if (ex != DV_EXIT_OK)
			return ex;
		a.npos = sub_argc - optind;
		a.pos = sub_argv + optind;
	}
	ex = params_validate(&a, &p);
	if (ex != DV_EXIT_OK)
		return ex;

	dj_log_set(dj_log_stderr, NULL,
		   verbose >= 2 ? LOG_DEBUG : verbose == 1 ? LOG_INFO : LOG_WARNING);

	/* verify needs no configuration: a third party checks a device without a JS */
	rc = p.config_path != NULL ? js_config_load(p.config_path, &cfg, err, sizeof(err)) : DJ_EOK;
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DV_PROGRAM, err[0] != '\0' ? err : dj_strerror(rc));
		return rc == DJ_ENOMEM ? DV_EXIT_INTERNAL : DV_EXIT_CONFIG;
	}
	if (p.cmd == DV_CMD_SIMULATE)
		ex = exec_simulate(&cfg, sub_argc, sub_argv);
	else if (p.cmd == DV_CMD_MIGRATE)
		ex = exec_migrate(&cfg, &p);
	else if (p.cmd == DV_CMD_VERIFY)
		ex = exec_verify(&p);
	else if (p.cmd >= DV_CMD_ENROLL)
		ex = exec_owner(&cfg, &p);
	else
		ex = exec_run(&cfg, &p);
	js_config_free(&cfg);
	if (fflush(stdout) != 0 && ex == DV_EXIT_OK) {
		fprintf(stderr, "%s: cannot write the output\n", DV_PROGRAM);
		ex = DV_EXIT_INTERNAL;
	}
	return ex;
}
