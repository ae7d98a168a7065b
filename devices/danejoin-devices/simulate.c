/*
 * simulate.c - `danejoin-devices simulate`: run the devices of a CSV through the join engine.
 *
 * The CSV is the devices' own provisioning (the keys a real device holds); the store only has
 * their wrapped tokens. For each device the command plays a short scenario and checks every
 * outcome against what the specification requires, so it doubles as an end-to-end check:
 *   - N Join-requests, each accepted; the device decrypts the Join-accept, checks its MIC and
 *     JoinNonce, derives its session keys, and they must equal the join server's;
 *   - a replay of the last Join-request, which must be refused;
 *   - a Join-request with a corrupted MIC, which must be refused;
 *   - LoRaWAN 1.1 only: Rejoin-requests of types 1, 0 and 2, each accepted and checked likewise.
 * A device that is not enrolled is reported as refused ("unknown DevEUI") and skipped.
 * Exit status 6 means the engine did something the specification forbids.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_csv.h"
#include "exec.h"
#include "engine/js_config.h"
#include "engine/js_engine.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "lorawan/lw_sim.h"

#define SIM_EXIT_OK 0
#define SIM_EXIT_USAGE 1
#define SIM_EXIT_INPUT 3
#define SIM_EXIT_STORE 4
#define SIM_EXIT_INTERNAL 5
#define SIM_EXIT_PROTOCOL 6
#define SIM_JOINS_DEFAULT 2
#define SIM_JOINS_MAX 1000
#define SIM_RXDELAY 1
#define DEVADDR_BASE 0x26000000u

struct sim_run {
	struct js_engine *e;
	struct lw_crypto *cx;
	const struct js_config *cfg;
	unsigned accepted, refused, failures, unknown;
	unsigned by_verdict[JS_V_BUSY + 1];
};

/* keys_equal - whether the device's session keys equal the join server's */
static bool keys_equal(const struct lw_session_keys *a, const struct lw_session_keys *b)
{
	return lw_key_equal(&a->app_s_key, &b->app_s_key) &&
	       lw_key_equal(&a->f_nwk_s_int_key, &b->f_nwk_s_int_key) &&
	       lw_key_equal(&a->s_nwk_s_int_key, &b->s_nwk_s_int_key) &&
	       lw_key_equal(&a->nwk_s_enc_key, &b->nwk_s_enc_key);
}

/* step - send one frame to the engine and check the outcome; returns 1 if the device is unknown */
static int step(struct sim_run *r, struct lw_sim_device *dev, unsigned idx, const char *what,
		const uint8_t *phy, size_t len, bool expect_accept)
{
	static const uint8_t cflist[LW_CFLIST_LEN] = {	/* EU868 867.1-867.9 MHz, CFListType 0 */
		0x18, 0x4f, 0x84, 0xe8, 0x56, 0x84, 0xb8, 0x5e, 0x84,
		0x88, 0x66, 0x84, 0x58, 0x6e, 0x84, 0x00 };
	struct js_join_in in = { .phy = phy, .phy_len = len, .rx_delay = SIM_RXDELAY,
				 .has_cflist = true, .actor = "simulate" };
	struct js_join_out out;
	enum lw_sim_status st = LW_SIM_OK;
	char eui[2 * LW_EUI_LEN + 1];
	const char *verdict;
	int ret, unknown = 0;

	memcpy(in.cflist, cflist, sizeof(cflist));
	memcpy(in.net_id, r->cfg->net_id, LW_NETID_LEN);
	dj_be_put(DEVADDR_BASE | idx, in.dev_addr, LW_DEVADDR_LEN);
	in.dl_settings = dev->version >= LW_V1_1 ? LW_DL_OPTNEG : 0;
	dj_hex_format(dev->dev_eui, LW_EUI_LEN, eui);

	ret = js_engine_join(r->e, &in, &out);
	if (ret != DJ_EOK) {
		printf("%s %-5s %-14s FAULT: %s\n", eui, lw_version_str(dev->version), what,
		       dj_strerror(ret));
		r->failures++;
		return 0;
	}
	verdict = js_verdict_str(out.verdict);
	if (out.verdict == JS_ACCEPT) {
		r->accepted++;
		ret = lw_sim_handle_accept(r->cx, dev, out.phy, out.phy_len, &st);
		if (ret != DJ_EOK || st != LW_SIM_OK) {
			printf("%s %-5s %-14s accepted, but the device rejects the Join-accept: %s\n",
			       eui, lw_version_str(dev->version), what,
			       ret != DJ_EOK ? dj_strerror(ret) : lw_sim_strerror(st));
			r->failures++;
		} else if (!keys_equal(&dev->keys, &out.keys)) {
			printf("%s %-5s %-14s accepted, but the session keys differ\n", eui,
			       lw_version_str(dev->version), what);
			r->failures++;
		} else {
			printf("%s %-5s %-14s accepted  JoinNonce=%06x %s, session keys match the "
			       "device's\n", eui, lw_version_str(dev->version), what, out.join_nonce,
			       out.opt_neg ? "1.1 keys" : "1.0 keys");
		}
		if (!expect_accept)
			r->failures++;
	} else {
		r->refused++;
		r->by_verdict[out.verdict]++;
		if (out.verdict == JS_V_UNKNOWN_DEVEUI) {
			r->unknown++;
			unknown = 1;
		} else if (expect_accept) {
			r->failures++;
		}
		printf("%s %-5s %-14s refused   %s%s\n", eui, lw_version_str(dev->version), what,
		       verdict, expect_accept && !unknown ? "  <-- UNEXPECTED" : "");
	}
	js_join_out_wipe(&out);
	return unknown;
}

/* play - the scenario for one device */
static int play(struct sim_run *r, const struct dv_csv_row *row, unsigned idx, unsigned joins)
{
	struct lw_sim_device dev;
	uint8_t phy[LW_PHY_MAX], last[LW_PHY_MAX];
	size_t len = 0, last_len = 0;
	int ret;

	ret = lw_sim_init(r->cx, &dev, row->dev_eui, row->join_eui, row->mac_version,
			  row->app_key, row->has_nwk_key ? row->nwk_key : NULL);
	if (ret != DJ_EOK)
		return ret;
	for (unsigned j = 0; j < joins; j++) {
		ret = lw_sim_join_request(r->cx, &dev, phy, &len);
		if (ret != DJ_EOK)
			goto out;
		memcpy(last, phy, len);
		last_len = len;
		if (step(r, &dev, idx, "join", phy, len, true))
			goto out;	/* not enrolled: nothing more to show */
	}
	step(r, &dev, idx, "replayed join", last, last_len, false);
	ret = lw_sim_join_request(r->cx, &dev, phy, &len);
	if (ret != DJ_EOK)
		goto out;
	phy[len - 1] ^= 0x01;
	step(r, &dev, idx, "forged MIC", phy, len, false);
	if (dev.version >= LW_V1_1) {
		static const enum lw_req_type types[] = { LW_REQ_REJOIN1, LW_REQ_REJOIN0,
							  LW_REQ_REJOIN2 };
		static const char *const names[] = { "rejoin type 1", "rejoin type 0",
						     "rejoin type 2" };

		for (size_t t = 0; t < DJ_ARRAY_LEN(types); t++) {
			if (types[t] != LW_REQ_REJOIN1 && !(dev.joined && dev.opt_neg)) {
				char eui[2 * LW_EUI_LEN + 1];

				dj_hex_format(dev.dev_eui, LW_EUI_LEN, eui);
				printf("%s %-5s %-14s not sent: the device has no 1.1 session\n", eui,
				       lw_version_str(dev.version), names[t]);
				continue;
			}
			ret = lw_sim_rejoin_request(r->cx, &dev, types[t], phy, &len);
			if (ret != DJ_EOK)
				goto out;
			step(r, &dev, idx, names[t], phy, len, true);
		}
	}
	ret = DJ_EOK;
out:
	lw_sim_wipe(&dev);
	return ret;
}

/* usage - the subcommand's help */
static void usage(FILE *f)
{
	fprintf(f, "usage: danejoin-devices --config FILE simulate --csv DEVICES.csv [--joins N]\n"
		   "  Plays each device of the CSV (its own keys) against the join engine and the\n"
		   "  configured store: N joins (default %d), a replayed join, a forged MIC, and for\n"
		   "  LoRaWAN 1.1 Rejoin-requests of types 1, 0 and 2. Prints each outcome.\n"
		   "  exit: 0 as the specification requires, 1 usage, 3 bad CSV, 4 store/key error,\n"
		   "        5 internal error, 6 the engine broke a rule of the specification\n",
		SIM_JOINS_DEFAULT);
}

int exec_simulate(const struct js_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "csv", required_argument, NULL, 'c' },
		{ "joins", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sim_run r;
	struct dv_csv *csv = NULL;
	struct js_keystore *ks = NULL;
	struct js_store *store = NULL;
	uint8_t master[JS_MASTER_KEY_LEN], kcv[JS_KCV_LEN];
	char err[DV_CSV_ERR_MAX], *end;
	const char *csv_path = NULL;
	unsigned long joins = SIM_JOINS_DEFAULT;
	int c, ret, rc = SIM_EXIT_INTERNAL;

	memset(&r, 0, sizeof(r));
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			csv_path = optarg;
			break;
		case 'j':
			joins = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || joins < 1 || joins > SIM_JOINS_MAX) {
				fprintf(stderr, "danejoin-devices: simulate: --joins: expected a "
						"number from 1 to %d, got '%s'\n", SIM_JOINS_MAX, optarg);
				return SIM_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return SIM_EXIT_OK;
		default:
			usage(stderr);
			return SIM_EXIT_USAGE;
		}
	}
	if (csv_path == NULL || optind != argc) {
		fprintf(stderr, "danejoin-devices: simulate: %s\n",
			csv_path == NULL ? "--csv FILE is required" : "unexpected argument");
		usage(stderr);
		return SIM_EXIT_USAGE;
	}
	ret = dv_csv_parse_file(csv_path, &csv, err, sizeof(err));
	if (ret != DJ_EOK) {
		fprintf(stderr, "danejoin-devices: %s\n", err);
		return SIM_EXIT_INPUT;
	}
	ret = js_keystore_read_master(cfg->master_key_file, master);
	if (ret == DJ_EOK) {
		ret = js_keystore_new(master, &ks);
		OPENSSL_cleanse(master, sizeof(master));
	}
	if (ret != DJ_EOK) {
		fprintf(stderr, "danejoin-devices: master key %s: %s\n", cfg->master_key_file,
			dj_strerror(ret));
		rc = SIM_EXIT_STORE;
		goto out;
	}
	js_keystore_kcv(ks, kcv);
	{
		struct js_store_props sp = { .path = cfg->store_path,
					     .conninfo = cfg->store_conninfo, .kcv = kcv,
					     .devnonce_history = cfg->devnonce_history,
					     .batch_max = cfg->batch_max };
		ret = js_store_open(&sp, &store);
	}
	if (ret != DJ_EOK) {
		fprintf(stderr, "danejoin-devices: store %s: %s\n", cfg->store_path,
			dj_strerror(ret));
		rc = SIM_EXIT_STORE;
		goto out;
	}
	{
		struct js_engine_props ep = { .store = store, .ks = ks,
					      .session_lifetime = cfg->session_lifetime };
		ret = js_engine_new(&ep, &r.e);
	}
	if (ret == DJ_EOK)
		ret = lw_crypto_new(&r.cx);
	if (ret != DJ_EOK)
		goto out;
	r.cfg = cfg;
	for (size_t i = 0; i < csv->n; i++) {
		ret = play(&r, &csv->rows[i], (unsigned)i + 1, (unsigned)joins);
		if (ret != DJ_EOK) {
			fprintf(stderr, "danejoin-devices: simulate: %s\n", dj_strerror(ret));
			goto out;
		}
	}
	printf("\nsummary: %zu devices, %u requests accepted, %u refused", csv->n, r.accepted,
	       r.refused);
	for (unsigned v = 1, first = 1; v <= JS_V_BUSY; v++) {
		if (r.by_verdict[v] == 0)
			continue;
		printf("%s %u %s", first ? ":" : ",", r.by_verdict[v],
		       js_verdict_str((enum js_verdict)v));
		first = 0;
	}
	printf("\n%s\n", r.failures == 0 ? "every outcome is the one the LoRaWAN specification "
					   "requires"
					 : "SOME OUTCOMES BREAK THE SPECIFICATION (marked above)");
	rc = r.failures == 0 ? SIM_EXIT_OK : SIM_EXIT_PROTOCOL;
out:
	js_engine_free(r.e);
	lw_crypto_free(r.cx);
	js_store_close(store);
	js_keystore_free(ks);
	dv_csv_free(csv);
	return rc;
}
