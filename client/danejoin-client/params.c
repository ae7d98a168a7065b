/*
 * params.c - danejoin-client: which flags each command takes, and their validation.
 *
 * Every flag is checked here, before anything is read or sent (DESIGN.md trust rule 6: bad input
 * gets a clear error and changes nothing). Hex is parsed to bytes with exact lengths; IDs are
 * normalised (NetID and JoinEUI upper-case hex), so the messages sent are canonical.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend-auth/da_tls.h"
#include "common/dj_cli.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "params.h"

/* commands - names, in the order of enum dc_cmd */
static const char *const commands[] = { "join", "rejoin", "appskey", "homens", "bench",
					 "listen", "subscribe" };

int params_command(const char *name, enum dc_cmd *out)
{
	for (size_t i = 0; i < DJ_ARRAY_LEN(commands); i++) {
		if (strcmp(name, commands[i]) == 0) {
			*out = (enum dc_cmd)i;
			return DJ_EOK;
		}
	}
	return DJ_ENOENT;
}

/* usage_err - print "danejoin-client: MSG" and give the exit code \p code */
#define usage_err(code, ...) (dj_cli_err(DC_PROGRAM, __VA_ARGS__), (code))

/* parse_text_id - a printable ID without spaces (AS-ID, NSID): 1..BI_ID_MAX-1 characters */
static bool parse_text_id(const char *s, char out[BI_ID_MAX])
{
	size_t n = strlen(s);

	if (n == 0 || n >= BI_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]))
			return false;
	memcpy(out, s, n + 1);
	return true;
}

/* parse_hex_id - exactly \p len bytes of hex, written back as upper-case text */
static bool parse_hex_id(const char *s, size_t len, char out[BI_ID_MAX])
{
	uint8_t b[LW_EUI_LEN];

	if (len > sizeof(b) || dj_hex_parse(s, b, len) != DJ_EOK)
		return false;
	dj_hex_format_upper(b, len, out);
	return true;
}

/* allowed - refuse a flag the command does not take */
static int allowed(const char *flag, const void *val, bool ok, const char *cmd)
{
	if (val != NULL && !ok)
		return usage_err(DC_EXIT_USAGE, "%s does not take %s", cmd, flag);
	return DC_EXIT_OK;
}

/* validate_subscribe - subscribe: the broker, our certificate, its roots, a filter, a count; no
 * other flag */
static int validate_subscribe(const struct dc_args *a, struct dc_params *p)
{
	if (a->sender_id || a->receiver_id || a->protocol || a->sender_ns_id || a->kek_label ||
	    a->kek_file || a->allow_plain || a->show_keys || a->phy || a->mac_version ||
	    a->dev_addr || a->dl_settings || a->rx_delay || a->cflist || a->sim || a->state ||
	    a->dev_eui || a->type || a->session_key_id || a->devices || a->connections ||
	    a->requests || a->raw || a->rate || a->on_clock || a->listen || a->server_name || a->ta_file || a->stubs ||
	    a->forwarders || a->tlsa_name || a->clientid || a->clientid_ext || a->npos > 0)
		return usage_err(DC_EXIT_USAGE, "subscribe takes only --url, --cert, --key, --ca, "
				 "--topic, --client-id, --count and --timeout");
	if (a->url == NULL || a->ca == NULL)
		return usage_err(DC_EXIT_USAGE, "subscribe needs --url mqtts://HOST:PORT and --ca");
	if ((a->cert == NULL) != (a->key == NULL))
		return usage_err(DC_EXIT_USAGE, "--cert and --key go together");
	p->url = a->url;
	p->cert = a->cert;
	p->key = a->key;
	p->ca = a->ca;
	p->topic = a->topic != NULL ? a->topic : "danejoin/#";
	p->mqtt_client_id = a->mqtt_client_id;
	if (a->count != NULL && !dj_cli_parse_uint(a->count, 1, DC_BENCH_MAX, &p->count))
		return usage_err(DC_EXIT_USAGE, "--count: 1..%u", DC_BENCH_MAX);
	if (a->timeout != NULL && !dj_cli_parse_uint(a->timeout, 1, 86400000, &p->timeout_ms))
		return usage_err(DC_EXIT_USAGE, "--timeout: milliseconds, 1..86400000");
	return DC_EXIT_OK;
}

/* check_flags - which flags each command takes */
static int check_flags(const struct dc_args *a, enum dc_cmd cmd)
{
	bool jr = cmd == DC_CMD_JOIN || cmd == DC_CMD_REJOIN;
	bool raw = jr && a->sim == NULL;
	bool send = cmd != DC_CMD_LISTEN;	/* listen receives: no join server, no IDs */
	const char *c = a->command;
	int r = DC_EXIT_OK;

#define ALLOW(flag, field, cond) \
	do { \
		if (r == DC_EXIT_OK) \
			r = allowed(flag, a->field, cond, c); \
	} while (0)
	ALLOW("--phy", phy, raw);
	ALLOW("--mac-version", mac_version, raw);
	ALLOW("--dev-addr", dev_addr, jr);
	ALLOW("--dl-settings", dl_settings, jr);
	ALLOW("--rx-delay", rx_delay, jr);
	ALLOW("--cflist", cflist, jr);
	ALLOW("--sim", sim, jr || cmd == DC_CMD_BENCH);
	ALLOW("--state", state, a->sim != NULL);
	ALLOW("--dev-eui", dev_eui, cmd != DC_CMD_BENCH && send && !raw);
	ALLOW("--count", count, (cmd == DC_CMD_JOIN && a->sim != NULL) || !send);
	ALLOW("--type", type, cmd == DC_CMD_REJOIN);
	ALLOW("--session-key-id", session_key_id, cmd == DC_CMD_APPSKEY);
	ALLOW("--devices", devices, cmd == DC_CMD_BENCH);
	ALLOW("--connections", connections, cmd == DC_CMD_BENCH);
	ALLOW("--requests", requests, cmd == DC_CMD_BENCH);
	ALLOW("--raw", raw, cmd == DC_CMD_BENCH && a->sim == NULL);
	ALLOW("--rate", rate, cmd == DC_CMD_BENCH);
	ALLOW("--on-clock", on_clock, cmd == DC_CMD_BENCH);
	ALLOW("--devices", devices, a->raw == NULL);
	ALLOW("--sender-ns-id", sender_ns_id, cmd != DC_CMD_APPSKEY && send);
	ALLOW("--listen", listen, !send);
	ALLOW("--url", url, send);
	ALLOW("--server-name", server_name, send);
	ALLOW("--timeout", timeout, send);
	ALLOW("--sender-id", sender_id, send);
	ALLOW("--receiver-id", receiver_id, send);
	ALLOW("--protocol", protocol, send);
	ALLOW("--kek-label", kek_label, send);
	ALLOW("--kek-file", kek_file, send);
	ALLOW("--tlsa-name", tlsa_name, send && a->ca == NULL);
	ALLOW("--clientid", clientid, send && a->ca == NULL);
	ALLOW("--clientid-ext", clientid_ext, a->ca == NULL);
	ALLOW("--trust-anchor", ta_file, a->ca == NULL);
	ALLOW("--stub", stubs, a->ca == NULL);
	ALLOW("--forwarder", forwarders, a->ca == NULL);
	ALLOW("--discover", discover, send && a->ca == NULL && cmd != DC_CMD_BENCH);
#undef ALLOW
	if (r == DC_EXIT_OK && a->allow_plain && !send)
		r = usage_err(DC_EXIT_USAGE, "%s does not take --allow-plain-keys", c);
	if (r == DC_EXIT_OK && a->show_keys && cmd != DC_CMD_APPSKEY)
		r = usage_err(DC_EXIT_USAGE, "%s does not take --show-keys", c);
	if (r == DC_EXIT_OK && a->npos > 0)
		r = usage_err(DC_EXIT_USAGE, "%s takes no positional arguments", c);
	return r;
}

/* validate_auth - DANE (the default: a trust anchor is needed) or PKIX (--ca) */
static int validate_auth(const struct dc_args *a, struct dc_params *p)
{
	p->ca = a->ca;
	p->ta_file = a->ta_file;
	p->stubs = a->stubs;
	p->forwarders = a->forwarders;
	p->tlsa_name = a->tlsa_name;
	p->clientid = a->clientid;
	p->clientid_ext = 0;
	if (a->ca != NULL)
		return DC_EXIT_OK;
	if (a->ta_file == NULL && access(DC_ROOT_KEY, R_OK) != 0)
		return usage_err(DC_EXIT_USAGE, "DANE (the default) needs --trust-anchor FILE (or "
				 "%s); --ca FILE selects private-root PKIX instead",
				 DC_ROOT_KEY);
	if (a->clientid_ext != NULL &&
	    !dj_cli_parse_uint(a->clientid_ext, 1, 65535, &p->clientid_ext))
		return usage_err(DC_EXIT_USAGE, "--clientid-ext: a TLS extension type, 1..65535");
	return DC_EXIT_OK;
}

/* validate_common - connection, IDs, protocol, KEK */
static int validate_common(const struct dc_args *a, struct dc_params *p)
{
	bool ns = p->cmd != DC_CMD_APPSKEY;
	int r;

	if ((a->url == NULL) == (a->discover == NULL) || a->cert == NULL || a->key == NULL)
		return usage_err(DC_EXIT_USAGE, "--cert, --key and one of --url or --discover are "
				 "required");
	if (a->discover != NULL && a->receiver_id == NULL)
		return usage_err(DC_EXIT_USAGE, "--discover needs --receiver-id (the JoinEUI to "
				 "look up)");
	p->url = a->url;
	p->discover = a->discover;
	p->cert = a->cert;
	p->key = a->key;
	r = validate_auth(a, p);
	if (r != DC_EXIT_OK)
		return r;
	p->server_name = a->server_name;
	p->timeout_ms = 0;
	if (a->timeout != NULL && !dj_cli_parse_uint(a->timeout, 1, 3600000, &p->timeout_ms))
		return usage_err(DC_EXIT_USAGE, "--timeout: milliseconds, 1..3600000");

	if (a->sender_id == NULL)
		return usage_err(DC_EXIT_USAGE, "--sender-id is required (%s)",
				 ns ? "the NetID, 6 hex digits" : "the AS-ID");
	if (ns ? !parse_hex_id(a->sender_id, LW_NETID_LEN, p->sender_id)
	       : !parse_text_id(a->sender_id, p->sender_id))
		return usage_err(DC_EXIT_INPUT, "--sender-id %s: %s", a->sender_id,
				 ns ? "a NetID is 6 hex digits" : "1..63 printable characters");
	if (a->receiver_id != NULL) {
		if (!parse_hex_id(a->receiver_id, LW_EUI_LEN, p->receiver_id))
			return usage_err(DC_EXIT_INPUT, "--receiver-id %s: a JoinEUI is 16 hex "
					 "digits", a->receiver_id);
		p->has_receiver_id = true;
	} else if (p->cmd == DC_CMD_APPSKEY || p->cmd == DC_CMD_HOMENS) {
		return usage_err(DC_EXIT_USAGE, "--receiver-id (the JoinEUI) is required");
	}

	if (a->protocol == NULL || strcmp(a->protocol, "1.1") == 0)
		p->proto = BI_PROTO_1_1;
	else if (strcmp(a->protocol, "1.0") == 0)
		p->proto = BI_PROTO_1_0;
	else
		return usage_err(DC_EXIT_USAGE, "--protocol is 1.0 or 1.1");
	if (a->sender_ns_id != NULL) {
		if (p->proto != BI_PROTO_1_1)
			return usage_err(DC_EXIT_USAGE, "--sender-ns-id is for --protocol 1.1 only "
					 "(TS002-1.1 §13)");
		if (!parse_text_id(a->sender_ns_id, p->sender_ns_id))
			return usage_err(DC_EXIT_INPUT, "--sender-ns-id: 1..63 printable "
					 "characters");
		p->has_sender_ns_id = true;
	} else if (ns && p->proto == BI_PROTO_1_1) {
		return usage_err(DC_EXIT_USAGE, "--sender-ns-id is required with --protocol 1.1");
	}

	if ((a->kek_label == NULL) != (a->kek_file == NULL))
		return usage_err(DC_EXIT_USAGE, "--kek-label and --kek-file go together");
	if (a->kek_label != NULL &&
	    (strlen(a->kek_label) == 0 || strlen(a->kek_label) >= BI_KEK_LABEL_MAX))
		return usage_err(DC_EXIT_USAGE, "--kek-label: 1..%d characters",
				 BI_KEK_LABEL_MAX - 1);
	p->kek_label = a->kek_label;
	p->kek_file = a->kek_file;
	p->allow_plain = a->allow_plain;
	p->show_keys = a->show_keys;
	return DC_EXIT_OK;
}

/* validate_listen - listen: the address, our certificate, the senders' roots, a count */
static int validate_listen(const struct dc_args *a, struct dc_params *p)
{
	int r;

	if (a->listen == NULL || a->cert == NULL || a->key == NULL)
		return usage_err(DC_EXIT_USAGE, "listen needs --listen HOST:PORT, --cert and --key");
	p->listen_addr = a->listen;
	p->cert = a->cert;
	p->key = a->key;
	r = validate_auth(a, p);
	if (r != DC_EXIT_OK)
		return r;
	p->count = 0;
	if (a->count != NULL && !dj_cli_parse_uint(a->count, 1, DC_COUNT_MAX, &p->count))
		return usage_err(DC_EXIT_USAGE, "--count: 1..%d", DC_COUNT_MAX);
	return DC_EXIT_OK;
}

/* validate_frame_opts - DevAddr, DLSettings, RxDelay, CFList (join, rejoin) */
static int validate_frame_opts(const struct dc_args *a, struct dc_params *p)
{
	unsigned v;

	if (a->dev_addr != NULL) {
		if (dj_hex_parse(a->dev_addr, p->dev_addr, LW_DEVADDR_LEN) != DJ_EOK)
			return usage_err(DC_EXIT_INPUT, "--dev-addr: 8 hex digits");
		p->has_dev_addr = true;
	}
	if (a->dl_settings != NULL) {
		if (dj_hex_parse(a->dl_settings, &p->dl_settings, 1) != DJ_EOK)
			return usage_err(DC_EXIT_INPUT, "--dl-settings: 2 hex digits");
		p->has_dl_settings = true;
	}
	p->rx_delay = DC_RXDELAY_DEFAULT;
	if (a->rx_delay != NULL) {
		if (!dj_cli_parse_uint(a->rx_delay, 0, DC_RXDELAY_MAX, &v))
			return usage_err(DC_EXIT_INPUT, "--rx-delay: 0..%d", DC_RXDELAY_MAX);
		p->rx_delay = (uint8_t)v;
	}
	if (a->cflist != NULL) {
		if (dj_hex_parse(a->cflist, p->cflist, LW_CFLIST_LEN) != DJ_EOK)
			return usage_err(DC_EXIT_INPUT, "--cflist: 32 hex digits");
		p->has_cflist = true;
	}
	return DC_EXIT_OK;
}

/* validate_sim - the CSV, the state file, the device */
static int validate_sim(const struct dc_args *a, struct dc_params *p)
{
	int n;

	p->sim_path = a->sim;
	if (a->state != NULL)
		n = snprintf(p->state_path, sizeof(p->state_path), "%s", a->state);
	else
		n = snprintf(p->state_path, sizeof(p->state_path), "%s%s", a->sim,
			     DC_STATE_SUFFIX);
	if (n < 0 || (size_t)n >= sizeof(p->state_path))
		return usage_err(DC_EXIT_USAGE, "--state: path too long");
	if (p->cmd == DC_CMD_BENCH)
		return DC_EXIT_OK;
	if (a->dev_eui == NULL)
		return usage_err(DC_EXIT_USAGE, "--sim needs --dev-eui");
	return DC_EXIT_OK;
}

int params_validate(const struct dc_args *a, struct dc_params *p)
{
	unsigned v;
	int r;

	memset(p, 0, sizeof(*p));
	if (params_command(a->command, &p->cmd) != DJ_EOK)
		return usage_err(DC_EXIT_USAGE, "unknown command %s; see %s --help", a->command,
				 DC_PROGRAM);
	if (p->cmd == DC_CMD_SUBSCRIBE)
		return validate_subscribe(a, p);
	r = check_flags(a, p->cmd);
	if (r == DC_EXIT_OK && p->cmd == DC_CMD_LISTEN)
		return validate_listen(a, p);
	if (r == DC_EXIT_OK)
		r = validate_common(a, p);
	if (r != DC_EXIT_OK)
		return r;
	if (a->dev_eui != NULL) {
		if (dj_hex_parse(a->dev_eui, p->dev_eui, LW_EUI_LEN) != DJ_EOK)
			return usage_err(DC_EXIT_INPUT, "--dev-eui %s: 16 hex digits", a->dev_eui);
		p->has_dev_eui = true;
	}

	switch (p->cmd) {
	case DC_CMD_JOIN:
	case DC_CMD_REJOIN:
		r = validate_frame_opts(a, p);
		if (r != DC_EXIT_OK)
			return r;
		if (p->cmd == DC_CMD_REJOIN && (a->type != NULL || a->sim != NULL)) {
			if (a->type == NULL || !dj_cli_parse_uint(a->type, 0, 2, &v))
				return usage_err(DC_EXIT_USAGE, "rejoin --sim needs --type 0, 1 or 2");
			p->has_type = true;
			p->rejoin_type = v == 0 ? LW_REQ_REJOIN0 :
					 v == 1 ? LW_REQ_REJOIN1 : LW_REQ_REJOIN2;
		}
		if (a->sim != NULL) {
			if (a->phy != NULL)
				return usage_err(DC_EXIT_USAGE, "--sim and --phy exclude each other");
			p->count = 1;
			if (a->count != NULL &&
			    !dj_cli_parse_uint(a->count, 1, DC_COUNT_MAX, &p->count))
				return usage_err(DC_EXIT_USAGE, "--count: 1..%d", DC_COUNT_MAX);
			return validate_sim(a, p);
		}
		if (a->phy == NULL || a->mac_version == NULL || a->dev_addr == NULL)
			return usage_err(DC_EXIT_USAGE, "%s needs --sim, or --phy, --mac-version "
					 "and --dev-addr", a->command);
		if (dj_hex_parse_var(a->phy, p->phy, sizeof(p->phy), &p->phy_len) != DJ_EOK)
			return usage_err(DC_EXIT_INPUT, "--phy: hex, at most %d bytes", LW_PHY_MAX);
		if (lw_version_parse(a->mac_version, &p->mac_version) != DJ_EOK)
			return usage_err(DC_EXIT_INPUT, "--mac-version %s: 1.0, 1.0.0 .. 1.0.4 or "
					 "1.1", a->mac_version);
		p->has_phy = true;
		p->has_mac_version = true;
		return DC_EXIT_OK;
	case DC_CMD_APPSKEY:
		if (!p->has_dev_eui || a->session_key_id == NULL)
			return usage_err(DC_EXIT_USAGE, "appskey needs --dev-eui and "
					 "--session-key-id");
		if (dj_hex_parse_var(a->session_key_id, p->session_key_id,
				     sizeof(p->session_key_id), &p->session_key_id_len) != DJ_EOK ||
		    p->session_key_id_len == 0)
			return usage_err(DC_EXIT_INPUT, "--session-key-id: hex, 1..%d bytes",
					 BI_SESSION_KEY_ID_MAX);
		return DC_EXIT_OK;
	case DC_CMD_HOMENS:
		if (!p->has_dev_eui)
			return usage_err(DC_EXIT_USAGE, "homens needs --dev-eui");
		return DC_EXIT_OK;
	case DC_CMD_BENCH:
		if (a->rate != NULL && !dj_cli_parse_uint(a->rate, 1, 1000000, &p->rate))
			return usage_err(DC_EXIT_USAGE, "bench --rate: requests/s, 1..1000000");
		if (a->on_clock != NULL && a->on_clock[0] == '\0')
			return usage_err(DC_EXIT_USAGE, "bench --on-clock: an empty command");
		p->on_clock = a->on_clock;
		if (a->raw != NULL) {
			if (a->connections == NULL || a->requests == NULL)
				return usage_err(DC_EXIT_USAGE, "bench --raw FILE needs "
						 "--connections and --requests");
			p->raw_path = a->raw;
		} else if (a->sim == NULL || a->devices == NULL || a->connections == NULL ||
			   a->requests == NULL) {
			return usage_err(DC_EXIT_USAGE, "bench needs --sim, --devices, "
					 "--connections and --requests (or --raw FILE, "
					 "--connections and --requests)");
		}
		if (!dj_cli_parse_uint(a->raw != NULL ? "1" : a->devices, 1, DC_BENCH_MAX,
				       &p->devices) ||
		    !dj_cli_parse_uint(a->connections, 1, 1024, &p->connections) ||
		    !dj_cli_parse_uint(a->requests, 1, DC_BENCH_MAX, &p->requests))
			return usage_err(DC_EXIT_USAGE, "bench: --devices 1..%u, --connections "
					 "1..1024, --requests 1..%u", DC_BENCH_MAX, DC_BENCH_MAX);
		return p->raw_path != NULL ? DC_EXIT_OK : validate_sim(a, p);
	case DC_CMD_LISTEN:
	case DC_CMD_SUBSCRIBE:
		break;	/* validate_listen(), validate_subscribe() above */
	}
	return usage_err(DC_EXIT_INTERNAL, "unhandled command");
}

void params_usage(FILE *f)
{
	fprintf(f,
"Usage: %s COMMAND [OPTIONS]\n"
"\n"
"The network-server / application-server side of the LoRaWAN Backend Interfaces (TS002):\n"
"sends one request to a join server over HTTPS with mutual TLS 1.3 and prints the answer as\n"
"one line of JSON on stdout (key envelopes stay wrapped). Status and errors go to stderr.\n"
"\n"
"Commands:\n"
"  join --phy HEX --mac-version V --dev-addr HEX [--dl-settings HEX] [--rx-delay N]\n"
"       [--cflist HEX]                 JoinReq with that PHYPayload (DevEUI from the frame)\n"
"  join --sim DEVICES.csv --dev-eui HEX [--count N] [--state FILE] [--dev-addr HEX] ...\n"
"                                      a simulated device joins; its Join-accept and session\n"
"                                      keys are checked against the JoinAns envelopes\n"
"  rejoin --sim DEVICES.csv --dev-eui HEX --type 0|1|2 [--state FILE] ...\n"
"                                      RejoinReq (types 0 and 2 need a session: join first)\n"
"  appskey --dev-eui HEX --session-key-id HEX [--show-keys]\n"
"                                      AppSKeyReq (sender: the AS-ID)\n"
"  homens --dev-eui HEX                HomeNSReq\n"
"  bench --sim DEVICES.csv --devices N --connections M --requests R [--state FILE]\n"
"                                      R JoinReqs from the first N devices over M keep-alive\n"
"                                      connections; prints joins/s and p50/p99 latency\n"
"  bench --raw FILE --connections M --requests R\n"
"                                      R POSTs of FILE's bytes; checks only the HTTP status\n"
"  bench ... --rate N                  open loop: N requests/s whatever the answers do;\n"
"                                      latency from each request's due time (p50/p99/p99.9)\n"
"  bench ... --on-clock CMD            run the shell command CMD once the warm-up is answered,\n"
"                                      just before the clock starts (DC_BENCH_WARM: its count)\n"
"  listen --listen HOST:PORT --cert FILE --key FILE [--count N]\n"
"                                      receive asynchronous answers (TS002 §8; a join\n"
"                                      server peer with async_url): an HTTPS server that\n"
"                                      authenticates clients by DANE (or, with --ca, by\n"
"                                      chaining to --ca), answers each POST with an empty 200\n"
"                                      and prints its message as one JSON line; exits after N\n"
"                                      messages (default: runs until SIGTERM/SIGINT)\n"
"  subscribe --url mqtts://HOST:PORT --ca FILE [--cert FILE --key FILE]\n"
"       [--topic FILTER] [--client-id ID] [--count N] [--timeout MS]\n"
"                                      the join server's MQTT events (protobuf or JSON),\n"
"                                      one JSON line each; FILTER default danejoin/#;\n"
"                                      --client-id keeps a broker session across restarts;\n"
"                                      exits after N events (status 3 at --timeout)\n"
"\n"
"Common options:\n"
"  --url https://HOST:PORT/    the join server\n"
"  --cert FILE --key FILE      our client certificate chain and key (PEM)\n"
"  Peers are authenticated by DANE: TLSA records validated by DNSSEC (the default)\n"
"  --trust-anchor FILE         DS/DNSKEY lines (default: %s)\n"
"  --stub ZONE@ADDR[@PORT]     ask ADDR for ZONE (several: separated by spaces)\n"
"  --forwarder ADDR[@PORT]     a recursive resolver to ask (default: full recursion)\n"
"  --tlsa-name NAME            the server's TLSA owner (default: _PORT._tcp.HOST)\n"
"  --clientid NAME             our DANE identity, sent in the dane_clientid extension\n"
"                              (e.g. _ns-client.ns1.example.net; default: not sent, the\n"
"                              server takes the certificate's single SAN dNSName)\n"
"  --clientid-ext N            the extension's codepoint (default %u)\n"
"  --discover SUFFIX           instead of --url: find the join server of --receiver-id by\n"
"                              TS002 §19 (NAPTR \"LWNS\" -> SRV -> A/AAAA under\n"
"                              <JoinEUI nibbles>.joineuis.SUFFIX), every step DNSSEC-secure\n"
"  --ca FILE                   instead of DANE: private-root PKIX, the roots the server\n"
"                              certificate must chain to (PEM)\n"
"  --server-name NAME          PKIX: expected name in the server certificate (default:\n"
"                              URL host); DANE: the reference name for DANE-TA\n"
"  --timeout MS                per request (default 10000)\n"
"  (listen takes only --listen, --cert, --key, --count and the DANE/--ca options)\n"
"  --sender-id ID              the NetID (6 hex digits) for join/rejoin/homens/bench,\n"
"                              the AS-ID for appskey\n"
"  --receiver-id JOINEUI       16 hex digits (join/rejoin/bench: default from the frame/CSV)\n"
"  --protocol 1.0|1.1          TS002 ProtocolVersion (default 1.1)\n"
"  --sender-ns-id ID           SenderNSID; required with 1.1 except for appskey\n"
"  --kek-label L --kek-file F  our KEK: F holds 32 or 64 hex digits and must not be readable\n"
"                              by group or others\n"
"  --allow-plain-keys          accept plaintext key envelopes (refused otherwise)\n"
"  --state FILE                simulator state (DevNonces, session), default DEVICES.csv%s;\n"
"                              written with mode 0600: it holds a session key (test use only)\n"
"  -v, --verbose               log to stderr;  -h, --help  this text\n"
"\n"
"Exit codes:\n"
"  0  the answer's Result is Success (with --sim: the device accepts the Join-accept and\n"
"     the session keys match); or HTTP 200 with an empty body: the join server accepted\n"
"     the request and will POST the answer asynchronously (a note on stderr, nothing on\n"
"     stdout); listen: N messages received, or SIGTERM\n"
"  1  usage: bad flag, unknown command, missing or conflicting flags\n"
"  2  bad input: a file, hex, CSV, state file or KEK file (including its mode)\n"
"  3  connection, TLS or HTTP failure (no usable answer)\n"
"  4  the answer's Result is not Success (its code and Description on stderr)\n"
"  5  internal error\n"
"  6  --sim: the device rejects the Join-accept, or the session keys differ\n",
		DC_PROGRAM, DC_ROOT_KEY, DA_CLIENTID_EXT_DEFAULT, DC_STATE_SUFFIX);
}
