/*
 * main.c - danejoind: flags, signals and the event loop.
 *
 * Exit codes: 0 clean shutdown (SIGTERM/SIGINT after draining) or a valid --check-config;
 * 1 usage; 2 configuration error, including a file it names that is missing, malformed, of an
 * unsafe mode or a symbolic link (the operator fixes a file); 4 store or key store error (the
 * database, a master key that does not match it); 5 internal error. --check-config and the
 * start run the same checks (svc__peers_load), so they exit alike.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "common/dj_err.h"
#include "common/dj_secmem.h"
#include "common/dj_log.h"
#include "bi/srv.h"
#include "svc.h"

#define EXIT_USAGE 1
#define EXIT_CONFIG 2
#define EXIT_STORE 4
#define EXIT_INTERNAL 5
#define ERR_MAX 512

/* usage - the help text */
static void usage(FILE *f)
{
	fprintf(f,
		"Usage: danejoind --config FILE [--check-config] [-v]\n"
		"\n"
		"The danejoin LoRaWAN Join Server: answers JoinReq, RejoinReq, AppSKeyReq and HomeNSReq\n"
		"(LoRaWAN Backend Interfaces, JSON over HTTPS with client certificates).\n"
		"\n"
		"  -c, --config FILE   the configuration (see danejoin.conf.example)\n"
		"      --check-config  check the configuration and every file it names (keys, their\n"
		"                      modes, certificates, KEKs) as the start does, then exit\n"
		"  -v, --verbose       log each request (info); twice: debug\n"
		"  -h, --help          this text\n"
		"\n"
		"Signals: SIGHUP reloads peers, KEKs, authorization and TLS material without dropping\n"
		"connections; SIGTERM/SIGINT stop accepting, finish requests in flight, commit, exit 0.\n"
		"\n"
		"Exit codes: 0 clean exit or valid configuration; 1 usage; 2 configuration error\n"
		"(also a named file missing, malformed, of unsafe mode or a symbolic link); 4 store\n"
		"error (database, a master key that does not match it); 5 internal error.\n");
}

/* exit_code - the exit code for a start-up failure */
static int exit_code(int ret)
{
	switch (ret) {
	case DJ_ECONFIG:
	case DJ_ENOENT:
	case DJ_EACCES:
	case DJ_EFILEMODE:	/* a file the configuration names: js_config_check_files() */
		return EXIT_CONFIG;
	case DJ_EMASTERKEY:
	case DJ_ESQL:
	case DJ_ESCHEMA:
	case DJ_EMALFORMED:
		return EXIT_STORE;
	default:
		return EXIT_INTERNAL;
	}
}

/* on_signal - SIGHUP reloads, SIGTERM/SIGINT drain */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct svc *s = arg;
	char err[ERR_MAX];

	(void)what;
	if (sig == SIGHUP) {
		if (svc_reload(s, err, sizeof(err)) != DJ_EOK)
			dj_err("reload refused, the running configuration stays: %s", err);
		return;
	}
	dj_notice("signal %d: draining", (int)sig);
	svc_drain(s);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	int check = 0, verbose = 0, c, ret, rc = EXIT_INTERNAL;
	char err[ERR_MAX] = "";
	struct event_base *base = NULL;
	struct event *evs[3] = { NULL, NULL, NULL };
	const int sigs[3] = { SIGHUP, SIGTERM, SIGINT };
	struct svc *s = NULL;

	if (dj_secmem_setup() != DJ_EOK) {	/* first: before any OpenSSL call */
		fprintf(stderr, "danejoind: cannot keep keys out of core dumps (mmap/prctl)\n");
		return EXIT_INTERNAL;
	}

	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (config == NULL || optind != argc) {
		fprintf(stderr, "danejoind: %s\n", config == NULL ? "--config FILE is required"
								  : "unexpected argument");
		usage(stderr);
		return EXIT_USAGE;
	}
	dj_log_set(dj_log_stderr, NULL, verbose >= 2 ? LOG_DEBUG : verbose ? LOG_INFO : LOG_NOTICE);
	if (check) {
		ret = svc_check_config(config, err, sizeof(err));
		if (ret != DJ_EOK) {
			fprintf(stderr, "danejoind: %s\n", err);
			return exit_code(ret);
		}
		printf("danejoind: %s: configuration is valid\n", config);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0 || (base = srv_base_new()) == NULL) {
		fprintf(stderr, "danejoind: cannot create the event loop\n");
		return EXIT_INTERNAL;
	}
	ret = svc_new(base, config, &s, err, sizeof(err));
	if (ret != DJ_EOK) {
		fprintf(stderr, "danejoind: %s\n", err[0] ? err : dj_strerror(ret));
		rc = exit_code(ret);
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		evs[i] = evsignal_new(base, sigs[i], on_signal, s);
		if (evs[i] == NULL || event_add(evs[i], NULL) != 0)
			goto out;
	}
	dj_notice("danejoind ready (%s)", config);
	if (event_base_dispatch(base) < 0)
		goto out;
	dj_notice("danejoind: drained, exiting");
	rc = 0;
out:
	for (int i = 0; i < 3; i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	svc_free(s);
	if (base != NULL)
		event_base_free(base);
	return rc;
}
