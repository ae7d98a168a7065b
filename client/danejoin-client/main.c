/*
 * main.c - danejoin-client: flags and dispatch.
 *
 * The command line is "danejoin-client COMMAND [OPTIONS]" (options may also come first).
 * params.c validates, exec.c and bench.c do the work. Exit codes: params.h.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/dj_err.h"
#include "common/dj_log.h"
#include "common/dj_secmem.h"
#include "exec.h"
#include "params.h"

enum {
	OPT_URL = 256, OPT_CERT, OPT_KEY, OPT_CA, OPT_SERVER_NAME, OPT_TIMEOUT, OPT_SENDER_ID,
	OPT_RECEIVER_ID, OPT_PROTOCOL, OPT_SENDER_NS_ID, OPT_KEK_LABEL, OPT_KEK_FILE,
	OPT_ALLOW_PLAIN, OPT_SHOW_KEYS, OPT_PHY, OPT_MAC_VERSION, OPT_DEV_ADDR, OPT_DL_SETTINGS,
	OPT_RX_DELAY, OPT_CFLIST, OPT_SIM, OPT_STATE, OPT_DEV_EUI, OPT_COUNT, OPT_TYPE,
	OPT_SESSION_KEY_ID, OPT_DEVICES, OPT_CONNECTIONS, OPT_REQUESTS, OPT_LISTEN, OPT_TA_FILE,
	OPT_STUB, OPT_FORWARDER, OPT_TLSA_NAME, OPT_CLIENTID, OPT_CLIENTID_EXT, OPT_DISCOVER,
	OPT_TOPIC, OPT_CLIENT_ID, OPT_RAW, OPT_RATE, OPT_ON_CLOCK,
};

/* long_opts - every flag of every command; params_validate() checks which command may use it */
static const struct option long_opts[] = {
	{ "url", required_argument, NULL, OPT_URL },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "server-name", required_argument, NULL, OPT_SERVER_NAME },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "sender-id", required_argument, NULL, OPT_SENDER_ID },
	{ "receiver-id", required_argument, NULL, OPT_RECEIVER_ID },
	{ "protocol", required_argument, NULL, OPT_PROTOCOL },
	{ "sender-ns-id", required_argument, NULL, OPT_SENDER_NS_ID },
	{ "kek-label", required_argument, NULL, OPT_KEK_LABEL },
	{ "kek-file", required_argument, NULL, OPT_KEK_FILE },
	{ "allow-plain-keys", no_argument, NULL, OPT_ALLOW_PLAIN },
	{ "show-keys", no_argument, NULL, OPT_SHOW_KEYS },
	{ "phy", required_argument, NULL, OPT_PHY },
	{ "mac-version", required_argument, NULL, OPT_MAC_VERSION },
	{ "dev-addr", required_argument, NULL, OPT_DEV_ADDR },
	{ "dl-settings", required_argument, NULL, OPT_DL_SETTINGS },
	{ "rx-delay", required_argument, NULL, OPT_RX_DELAY },
	{ "cflist", required_argument, NULL, OPT_CFLIST },
	{ "sim", required_argument, NULL, OPT_SIM },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "dev-eui", required_argument, NULL, OPT_DEV_EUI },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "session-key-id", required_argument, NULL, OPT_SESSION_KEY_ID },
	{ "devices", required_argument, NULL, OPT_DEVICES },
	{ "connections", required_argument, NULL, OPT_CONNECTIONS },
	{ "requests", required_argument, NULL, OPT_REQUESTS },
	{ "raw", required_argument, NULL, OPT_RAW },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "on-clock", required_argument, NULL, OPT_ON_CLOCK },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "topic", required_argument, NULL, OPT_TOPIC },
	{ "client-id", required_argument, NULL, OPT_CLIENT_ID },
	{ "trust-anchor", required_argument, NULL, OPT_TA_FILE },
	{ "stub", required_argument, NULL, OPT_STUB },
	{ "forwarder", required_argument, NULL, OPT_FORWARDER },
	{ "tlsa-name", required_argument, NULL, OPT_TLSA_NAME },
	{ "clientid", required_argument, NULL, OPT_CLIENTID },
	{ "clientid-ext", required_argument, NULL, OPT_CLIENTID_EXT },
	{ "discover", required_argument, NULL, OPT_DISCOVER },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* set_opt - store one flag's argument; returns false for an unknown flag */
static bool set_opt(int ch, struct dc_args *a)
{
	switch (ch) {
	case OPT_URL: a->url = optarg; break;
	case OPT_CERT: a->cert = optarg; break;
	case OPT_KEY: a->key = optarg; break;
	case OPT_CA: a->ca = optarg; break;
	case OPT_SERVER_NAME: a->server_name = optarg; break;
	case OPT_TIMEOUT: a->timeout = optarg; break;
	case OPT_SENDER_ID: a->sender_id = optarg; break;
	case OPT_RECEIVER_ID: a->receiver_id = optarg; break;
	case OPT_PROTOCOL: a->protocol = optarg; break;
	case OPT_SENDER_NS_ID: a->sender_ns_id = optarg; break;
	case OPT_KEK_LABEL: a->kek_label = optarg; break;
	case OPT_KEK_FILE: a->kek_file = optarg; break;
	case OPT_ALLOW_PLAIN: a->allow_plain = true; break;
	case OPT_SHOW_KEYS: a->show_keys = true; break;
	case OPT_PHY: a->phy = optarg; break;
	case OPT_MAC_VERSION: a->mac_version = optarg; break;
	case OPT_DEV_ADDR: a->dev_addr = optarg; break;
	case OPT_DL_SETTINGS: a->dl_settings = optarg; break;
	case OPT_RX_DELAY: a->rx_delay = optarg; break;
	case OPT_CFLIST: a->cflist = optarg; break;
	case OPT_SIM: a->sim = optarg; break;
	case OPT_STATE: a->state = optarg; break;
	case OPT_DEV_EUI: a->dev_eui = optarg; break;
	case OPT_COUNT: a->count = optarg; break;
	case OPT_TYPE: a->type = optarg; break;
	case OPT_SESSION_KEY_ID: a->session_key_id = optarg; break;
	case OPT_DEVICES: a->devices = optarg; break;
	case OPT_CONNECTIONS: a->connections = optarg; break;
	case OPT_REQUESTS: a->requests = optarg; break;
	case OPT_RAW: a->raw = optarg; break;
	case OPT_RATE: a->rate = optarg; break;
	case OPT_ON_CLOCK: a->on_clock = optarg; break;
	case OPT_LISTEN: a->listen = optarg; break;
	case OPT_TOPIC: a->topic = optarg; break;
	case OPT_CLIENT_ID: a->mqtt_client_id = optarg; break;
	case OPT_TA_FILE: a->ta_file = optarg; break;
	case OPT_STUB: a->stubs = optarg; break;
	case OPT_FORWARDER: a->forwarders = optarg; break;
	case OPT_TLSA_NAME: a->tlsa_name = optarg; break;
	case OPT_CLIENTID: a->clientid = optarg; break;
	case OPT_CLIENTID_EXT: a->clientid_ext = optarg; break;
	case OPT_DISCOVER: a->discover = optarg; break;
	default: return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct dc_args a;
	struct dc_params p;
	int ch, verbose = 0, ret;

	if (dj_secmem_setup() != DJ_EOK) {	/* first: before any OpenSSL call */
		fprintf(stderr, "danejoin-client: cannot keep keys out of core dumps (mmap/prctl)\n");
		return DC_EXIT_INTERNAL;
	}

	memset(&a, 0, sizeof(a));
	opterr = 1;
	/* "+" would stop at the command; GNU permutation lets flags follow it */
	while ((ch = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
		if (ch == 'v') {
			verbose++;
		} else if (ch == 'h') {
			params_usage(stdout);
			return DC_EXIT_OK;
		} else if (!set_opt(ch, &a)) {	/* getopt has printed what was wrong */
			fprintf(stderr, "%s: see %s --help\n", DC_PROGRAM, DC_PROGRAM);
			return DC_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s: no command; see %s --help\n", DC_PROGRAM, DC_PROGRAM);
		return DC_EXIT_USAGE;
	}
	a.command = argv[optind];
	a.npos = argc - optind - 1;
	if (verbose > 0)
		dj_log_set(dj_log_stderr, NULL, verbose > 1 ? LOG_DEBUG : LOG_INFO);
	ret = params_validate(&a, &p);
	if (ret != DC_EXIT_OK)
		return ret;
	return exec_run(&p);
}
