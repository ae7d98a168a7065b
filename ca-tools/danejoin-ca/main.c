/*
 * main.c - danejoin-ca: flags and dispatch.
 *
 * The command line is "danejoin-ca COMMAND [FLAGS]" (flags may also come before the command).
 * params.c validates, exec.c (certificates, TLSA) and exec_dns.c (publish, rollover) do the
 * work. Exit codes: params.h.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/dj_err.h"
#include "common/dj_secmem.h"
#include "common/dj_log.h"
#include "exec.h"
#include "params.h"

#define OPT_BASE 1000	/* getopt values of the long flags: OPT_BASE + enum ca_flag */

int main(int argc, char **argv)
{
	struct option opts[F_COUNT + 3];
	struct ca_args a;
	struct ca_params p;
	int i, ch, f, verbose = 0, ex, idx;

	if (dj_secmem_setup() != DJ_EOK) {	/* first: before any OpenSSL call */
		fprintf(stderr, "danejoin-ca: cannot keep keys out of core dumps (mmap/prctl)\n");
		return CA_EXIT_INTERNAL;
	}

	memset(&a, 0, sizeof(a));
	for (i = 0; i < F_COUNT; i++) {
		opts[i].name = params_flag_name((enum ca_flag)i);
		opts[i].has_arg = params_flag_has_arg((enum ca_flag)i) ? required_argument :
				  no_argument;
		opts[i].flag = NULL;
		opts[i].val = OPT_BASE + i;
	}
	opts[F_COUNT] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[F_COUNT + 1] = (struct option){ "verbose", no_argument, NULL, 'v' };
	opts[F_COUNT + 2] = (struct option){ NULL, 0, NULL, 0 };

	/* Permute: flags anywhere, positional arguments (the command first) collected after. */
	while ((ch = getopt_long(argc, argv, "hvf", opts, &idx)) != -1) {
		if (ch == 'h') {
			params_usage(stdout);
			return CA_EXIT_OK;
		}
		if (ch == 'v') {
			verbose++;
			continue;
		}
		if (ch == 'f') {
			a.val[F_FORCE] = "1";
			continue;
		}
		if (ch < OPT_BASE || ch >= OPT_BASE + F_COUNT) {
			fprintf(stderr, "%s: see %s --help\n", CA_PROGRAM, CA_PROGRAM);
			return CA_EXIT_USAGE;
		}
		f = ch - OPT_BASE;
		if (f == F_NAME || f == F_RR || f == F_EXPECT || f == F_JOINEUI_PREFIX ||
		    f == F_ADDRESS) {
			int m = f == F_NAME ? CA_MULTI_NAME : f == F_RR ? CA_MULTI_RR :
				f == F_EXPECT ? CA_MULTI_EXPECT :
				f == F_JOINEUI_PREFIX ? CA_MULTI_JOINEUI : CA_MULTI_ADDRESS;

			if (a.nmulti[m] >= CA_MULTI_MAX) {
				fprintf(stderr, "%s: more than %d --%s\n", CA_PROGRAM, CA_MULTI_MAX,
					params_flag_name((enum ca_flag)f));
				return CA_EXIT_USAGE;
			}
			a.multi[m][a.nmulti[m]++] = optarg;
		}
		a.val[f] = optarg != NULL ? optarg : "1";
	}
	if (optind < argc) {
		a.command = argv[optind];
		a.npos = argc - optind - 1;
		a.pos = argv + optind + 1;
	}
	ex = params_validate(&a, &p);
	if (ex != CA_EXIT_OK) {
		params_free(&p);
		return ex;
	}
	dj_log_set(dj_log_stderr, NULL,
		   verbose >= 2 ? LOG_DEBUG : verbose == 1 ? LOG_INFO : LOG_WARNING);
	switch (p.cmd) {
	case CA_CMD_PUBLISH:
		ex = exec_publish(&p);
		break;
	case CA_CMD_ROLLOVER:
		ex = exec_rollover(&p);
		break;
	case CA_CMD_PUBLISH_JOINEUI:
		ex = exec_publish_joineui(&p);
		break;
	default:
		ex = exec_run(&p);
		break;
	}
	params_free(&p);
	if (fflush(stdout) != 0 && ex == CA_EXIT_OK) {
		fprintf(stderr, "%s: cannot write the output\n", CA_PROGRAM);
		ex = CA_EXIT_INTERNAL;
	}
	return ex;
}
