/*
 * exec.c - danejoin-client: join, rejoin, appskey and homens.
 *
 * Output contract: stdout carries exactly one JSON line per answer (bi_msg_encode(); key
 * envelopes stay wrapped); human-readable status and errors go to stderr. A join server in
 * asynchronous mode (TS002 §8) answers with an empty HTTP 200: nothing on stdout, a note with
 * the TransactionID on stderr, exit 0 (the answer goes to the peer's async_url).
 *
 * Security reasoning:
 *   - The KEK file is a secret: refused when group- or other-readable (as the join server's
 *     master key is), read once, wiped after the KEK is keyed.
 *   - A plaintext envelope is refused unless --allow-plain-keys (bi_kek_open()); an envelope
 *     under another KEK label is refused: the client never accepts weaker protection silently.
 *   - Unwrapped keys are compared in constant time (lw_key_equal) and wiped; only appskey
 *     --show-keys prints a key.
 *   - With --sim the DevNonce is written to the state file *before* the request leaves, as a
 *     device must keep it in non-volatile memory first: a crash never makes it reuse a nonce.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "backend-auth/da_tls.h"
#include "common/dj_log.h"
#include "exec.h"
#include "state.h"

#define KEK_FILE_MAX 256		/* bytes read from a KEK file: 64 hex digits and whitespace */
#define DEVADDR_NWKID 0x26		/* first DevAddr byte for simulated devices (TTN-like) */
/* err_exit - map a dj_err code of local work to an exit code */
static int err_exit(int rc)
{
	switch (rc) {
	case DJ_EOK:
		return DC_EXIT_OK;
	case DJ_ENOMEM:
	case DJ_ECRYPTO:
	case DJ_ERROR:
		return DC_EXIT_INTERNAL;
	default:
		return DC_EXIT_INPUT;
	}
}

int exec__print(const struct bi_msg *m)
{
	char *json = NULL;
	size_t len = 0;

	if (bi_msg_encode(m, &json, &len) != DJ_EOK) {
		fprintf(stderr, "%s: cannot encode the answer\n", DC_PROGRAM);
		return DC_EXIT_INTERNAL;
	}
	fwrite(json, 1, len, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	OPENSSL_clear_free(json, len);
	return DC_EXIT_OK;
}

static struct event_base *dane_base;
static struct da_resolver *dane_resolver;

int exec__dane(const struct dc_params *p, struct event_base **base, struct da_resolver **r)
{
	struct da_resolver_props rp = { .ta_file = p->ta_file, .stubs = p->stubs,
					.forwarders = p->forwarders };
	char err[DC_ERR_MAX] = "";
	int rc;

	if (dane_resolver == NULL) {
		rp.builtin_root = p->ta_file == NULL;
		if (dane_base == NULL && (dane_base = dc_base_new()) == NULL) {
			fprintf(stderr, "%s: cannot create the event loop\n", DC_PROGRAM);
			return DC_EXIT_INTERNAL;
		}
		rc = da_resolver_new(dane_base, &rp, &dane_resolver, err, sizeof(err));
		if (rc != DJ_EOK) {
			fprintf(stderr, "%s: DANE resolver: %s\n", DC_PROGRAM,
				err[0] != '\0' ? err : dj_strerror(rc));
			return rc == DJ_ECONFIG ? DC_EXIT_INPUT : DC_EXIT_INTERNAL;
		}
	}
	*base = dane_base;
	*r = dane_resolver;
	return DC_EXIT_OK;
}

void exec__dane_free(void)
{
	da_resolver_free(dane_resolver);
	dane_resolver = NULL;
	dc_base_free(dane_base);
	dane_base = NULL;
}

struct disc_result {
	bool done;
	int status;
	char why[DC_ERR_MAX];
	char host[DA_NAME_MAX];
	char addr[64];
	uint16_t port;
};

/* on_discovery - keep the first server (they come in priority/weight order) and its address */
static void on_discovery(const struct da_discovery *d, void *arg)
{
	struct disc_result *r = arg;

	r->done = true;
	r->status = d->status;
	snprintf(r->why, sizeof(r->why), "%s", d->why != NULL ? d->why : "");
	if (d->status != DA_SECURE || d->n == 0 || d->srv[0].n_addr == 0) {
		if (d->status == DA_SECURE)
			snprintf(r->why, sizeof(r->why), "no server with an address");
		r->status = d->status == DA_SECURE ? DA_NODATA : d->status;
		return;
	}
	snprintf(r->host, sizeof(r->host), "%s", d->srv[0].host);
	snprintf(r->addr, sizeof(r->addr), "%s", d->srv[0].addr[0]);
	r->port = d->srv[0].port;
}

/* discover_js - the join server of the JoinEUI, by DNSSEC-secure NAPTR -> SRV -> A/AAAA */
static int discover_js(const struct dc_params *p, struct da_resolver *res, char *url,
		       size_t urllen, char *host, size_t hostlen)
{
	struct disc_result r = { .done = false };
	char name[DA_NAME_MAX + 64];
	uint8_t eui[LW_EUI_LEN];
	uint64_t v = 0;

	if (dj_hex_parse(p->receiver_id, eui, sizeof(eui)) != DJ_EOK)
		return DC_EXIT_INPUT;
	for (size_t i = 0; i < sizeof(eui); i++)
		v = v << 8 | eui[i];
	if (da_joineui_name(v, p->discover, name, sizeof(name)) != DJ_EOK) {
		fprintf(stderr, "%s: --discover %s: not a usable DNS suffix\n", DC_PROGRAM,
			p->discover);
		return DC_EXIT_USAGE;
	}
	if (da_discover(res, name, "LWNS", on_discovery, &r, NULL) != DJ_EOK ||
	    da_resolver_wait(res) != DJ_EOK || !r.done) {
		fprintf(stderr, "%s: discovery of %s failed\n", DC_PROGRAM, name);
		return DC_EXIT_INTERNAL;
	}
	if (r.status != DA_SECURE) {
		fprintf(stderr, "%s: discovery of %s: %s%s%s\n", DC_PROGRAM, name,
			da_status_str((enum da_status)r.status), r.why[0] ? ": " : "", r.why);
		return DC_EXIT_CONN;
	}
	snprintf(url, urllen, strchr(r.addr, ':') != NULL ? "https://[%s]:%u/" : "https://%s:%u/",
		 r.addr, r.port);
	snprintf(host, hostlen, "%s", r.host);
	dj_info("discovered %s: %s (%s)", name, url, host);
	return DC_EXIT_OK;
}

int exec__client(const struct dc_params *p, unsigned connections, struct dc_client **out)
{
	char url[128], host[DA_NAME_MAX];

	struct dc_props props = {
		.url = p->url, .cert_file = p->cert, .key_file = p->key, .ca_file = p->ca,
		.server_name = p->server_name, .timeout_ms = p->timeout_ms,
		.connections = connections, .tlsa_name = p->tlsa_name, .clientid = p->clientid,
		.clientid_ext = p->clientid_ext,
	};
	char err[DC_ERR_MAX] = "";
	int rc;

	if (p->ca == NULL) {
		rc = exec__dane(p, &props.base, &props.resolver);
		if (rc != DC_EXIT_OK)
			return rc;
	}
	if (p->discover != NULL) {
		rc = discover_js(p, props.resolver, url, sizeof(url), host, sizeof(host));
		if (rc != DC_EXIT_OK)
			return rc;
		props.url = url;
		props.server_name = host;
	}

	rc = dc_client_new(&props, out, err, sizeof(err));
	if (rc == DJ_EOK)
		return DC_EXIT_OK;
	fprintf(stderr, "%s: %s\n", DC_PROGRAM, err);
	return rc == DJ_EINVAL ? DC_EXIT_USAGE : rc == DJ_ECONFIG ? DC_EXIT_INPUT
						    : DC_EXIT_INTERNAL;
}

void exec__req_init(const struct dc_params *p, enum bi_msg_type type, struct bi_msg *m)
{
	uint8_t tid[4];

	memset(m, 0, sizeof(*m));
	m->proto = p->proto;
	m->type = type;
	memcpy(m->sender_id, p->sender_id, sizeof(m->sender_id));
	memcpy(m->receiver_id, p->receiver_id, sizeof(m->receiver_id));
	if (RAND_bytes(tid, sizeof(tid)) != 1)
		memset(tid, 0, sizeof(tid));	/* uniqueness helps logs only */
	m->transaction_id = (uint32_t)dj_be_get(tid, sizeof(tid));
	if (p->has_sender_ns_id) {
		m->has_sender_ns_id = true;
		memcpy(m->sender_ns_id, p->sender_ns_id, sizeof(m->sender_ns_id));
	}
}

void exec__sim_req(const struct dc_params *p, const struct lw_sim_device *d, unsigned idx,
		   enum bi_msg_type type, const uint8_t *phy, size_t len, struct bi_msg *m)
{
	exec__req_init(p, type, m);
	if (!p->has_receiver_id)
		dj_hex_format_upper(d->join_eui, LW_EUI_LEN, m->receiver_id);
	m->mac_version = d->version;
	memcpy(m->phy, phy, len);
	m->phy_len = len;
	m->has_dev_eui = true;
	memcpy(m->dev_eui, d->dev_eui, LW_EUI_LEN);
	if (p->has_dev_addr) {
		memcpy(m->dev_addr, p->dev_addr, LW_DEVADDR_LEN);
	} else {
		m->dev_addr[0] = DEVADDR_NWKID;
		dj_be_put(idx, m->dev_addr + 1, LW_DEVADDR_LEN - 1);
	}
	if (p->has_dl_settings)
		m->dl_settings = p->dl_settings;
	else
		m->dl_settings = d->version >= LW_V1_1 ? LW_DL_OPTNEG : 0;
	m->rx_delay = p->rx_delay;
	if (p->has_cflist) {
		m->has_cflist = true;
		memcpy(m->cflist, p->cflist, LW_CFLIST_LEN);
	}
}

int exec__sim_init(struct lw_crypto *cx, const struct dv_csv_row *row, const struct st_file *st,
		   struct lw_sim_device *d)
{
	int rc;

	rc = lw_sim_init(cx, d, row->dev_eui, row->join_eui, row->mac_version, row->app_key,
			 row->has_nwk_key ? row->nwk_key : NULL);
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: device of line %u: %s\n", DC_PROGRAM, row->line,
			dj_strerror(rc));
		return err_exit(rc);
	}
	st_apply(st, d);
	return DC_EXIT_OK;
}

/* load_kek - the client's KEK from --kek-file (a secret: mode checked, buffers wiped) */
static int load_kek(const struct dc_params *p, struct bi_kek **out)
{
	char buf[KEK_FILE_MAX + 1], *s, *e;
	uint8_t key[32];
	size_t klen = 0;
	struct stat sb;
	ssize_t n;
	int fd = -1, ret = DC_EXIT_INPUT, rc;

	*out = NULL;
	if (p->kek_file == NULL)
		return DC_EXIT_OK;
	fd = open(p->kek_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		fprintf(stderr, "%s: --kek-file %s: %s\n", DC_PROGRAM, p->kek_file,
			strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
		fprintf(stderr, "%s: --kek-file %s: %s (mode %03o): chmod 600\n", DC_PROGRAM,
			p->kek_file, S_ISREG(sb.st_mode) ? "readable by group or others"
							 : "not a regular file",
			(unsigned)(sb.st_mode & 0777));
		goto out;
	}
	n = read(fd, buf, KEK_FILE_MAX + 1);
	if (n < 0 || n > KEK_FILE_MAX) {
		fprintf(stderr, "%s: --kek-file %s: %s\n", DC_PROGRAM, p->kek_file,
			n < 0 ? strerror(errno) : "too long");
		goto out;
	}
	buf[n] = '\0';
	for (s = buf; *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'; s++)
		;
	for (e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
					  e[-1] == '\r'); e--)
		;
	*e = '\0';
	if (dj_hex_parse_var(s, key, sizeof(key), &klen) != DJ_EOK ||
	    (klen != 16 && klen != 32)) {
		fprintf(stderr, "%s: --kek-file %s: 32 or 64 hex digits expected\n", DC_PROGRAM,
			p->kek_file);
		goto out;
	}
	rc = bi_kek_new(p->kek_label, key, klen, out);
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: KEK: %s\n", DC_PROGRAM, dj_strerror(rc));
		ret = rc == DJ_EINVAL ? DC_EXIT_USAGE : DC_EXIT_INTERNAL;
		goto out;
	}
	ret = DC_EXIT_OK;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(key, sizeof(key));
	if (fd >= 0)
		close(fd);
	return ret;
}

/* open_env - unwrap one envelope with the client's KEK; explains a refusal on stderr */
static int open_env(const struct dc_params *p, struct bi_kek *kek, const char *name,
		    const struct bi_key_envelope *env, struct lw_key *key)
{
	uint8_t raw[LW_KEY_LEN];
	int rc;

	if (kek == NULL && env->kek_label[0] != '\0') {
		fprintf(stderr, "%s: %s is wrapped under KEK '%s': give --kek-label and "
			"--kek-file\n", DC_PROGRAM, name, env->kek_label);
		return DC_EXIT_USAGE;
	}
	rc = bi_kek_open(kek, env, p->allow_plain, raw);
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s: %s\n", DC_PROGRAM, name,
			rc == DJ_EACCES ? (env->kek_label[0] == '\0'
					   ? "plaintext envelope refused (--allow-plain-keys)"
					   : "wrapped under another KEK label")
			: rc == DJ_EUNWRAP ? "unwrap failed (wrong KEK?)" : dj_strerror(rc));
		OPENSSL_cleanse(raw, sizeof(raw));
		return DC_EXIT_DEVICE;
	}
	lw_key_set(key, raw);
	OPENSSL_cleanse(raw, sizeof(raw));
	return DC_EXIT_OK;
}

/* is_async_accept - the call got HTTP 200 with an empty body: accepted for async answering
 * (dc_client reports that as DJ_EOK without an answer) */
static bool is_async_accept(int rc, int have, const char *err)
{
	(void)err;
	return rc == DJ_EOK && !have;
}

/* answer_exit - the exit code for the call of \p req: prints the answer (if any) and explains
 * failures; *async says the answer will arrive asynchronously (exit 0, nothing printed) */
static int answer_exit(int rc, const struct bi_msg *req, int have, const struct bi_msg *ans,
		       const char *err, bool *async)
{
	int r;

	*async = is_async_accept(rc, have, err);
	if (*async) {
		/* the TransactionID is what ties the answer, POSTed elsewhere, to this request */
		fprintf(stderr, "%s: HTTP 200 with an empty body: %s TransactionID %u accepted, "
			"the answer will arrive asynchronously\n", DC_PROGRAM,
			bi_msg_type_str(req->type), req->transaction_id);
		return DC_EXIT_OK;
	}
	if (have) {
		r = exec__print(ans);
		if (r != DC_EXIT_OK)
			return r;
	}
	if (rc != DJ_EOK)
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err);
	if (have && ans->result != BI_SUCCESS) {
		fprintf(stderr, "%s: Result %s: %s\n", DC_PROGRAM,
			bi_result_str(ans->result, ans->proto), ans->description);
		return DC_EXIT_RESULT;
	}
	if (rc == DJ_ENOMEM)
		return DC_EXIT_INTERNAL;
	if (rc != DJ_EOK)
		return DC_EXIT_CONN;
	return DC_EXIT_OK;
}

/* call_exit - send \p req, wait for its answer in *ans: the exit code of answer_exit() */
static int call_exit(struct dc_client *c, const struct bi_msg *req, struct bi_msg *ans,
		     bool *async)
{
	char err[DC_ERR_MAX] = "";
	int rc, have = 0;

	rc = dc_client_call(c, req, ans, &have, err, sizeof(err));
	return answer_exit(rc, req, have, ans, err, async);
}

/* compare_keys - the device's session keys against the JoinAns/RejoinAns envelopes */
static int compare_keys(const struct dc_params *p, struct bi_kek *kek, const struct bi_msg *ans,
			const struct lw_sim_device *d)
{
	const struct {
		const char *name;
		const struct bi_key_envelope *env;
		const struct lw_key *mine;
		bool v11;
	} k[] = {
		{ "NwkSKey", &ans->nwk_s_key, &d->keys.f_nwk_s_int_key, false },
		{ "FNwkSIntKey", &ans->f_nwk_s_int_key, &d->keys.f_nwk_s_int_key, true },
		{ "SNwkSIntKey", &ans->s_nwk_s_int_key, &d->keys.s_nwk_s_int_key, true },
		{ "NwkSEncKey", &ans->nwk_s_enc_key, &d->keys.nwk_s_enc_key, true },
		{ "AppSKey", &ans->app_s_key, &d->keys.app_s_key, false },
	};
	struct lw_key theirs;
	unsigned n = 0;
	int ret = DC_EXIT_OK;

	memset(&theirs, 0, sizeof(theirs));
	for (size_t i = 0; i < DJ_ARRAY_LEN(k) && ret == DC_EXIT_OK; i++) {
		if (!k[i].env->present)
			continue;
		if (i > 0 && i < 4 && !d->keys.v11) {
			fprintf(stderr, "%s: %s in the answer, but the device derived LoRaWAN 1.0 "
				"session keys\n", DC_PROGRAM, k[i].name);
			ret = DC_EXIT_DEVICE;
			break;
		}
		if (i == 0 && d->keys.v11) {
			fprintf(stderr, "%s: NwkSKey in the answer, but the device derived LoRaWAN "
				"1.1 session keys\n", DC_PROGRAM);
			ret = DC_EXIT_DEVICE;
			break;
		}
		ret = open_env(p, kek, k[i].name, k[i].env, &theirs);
		if (ret != DC_EXIT_OK)
			break;
		if (!lw_key_equal(&theirs, k[i].mine)) {
			fprintf(stderr, "%s: %s differs from the device's\n", DC_PROGRAM, k[i].name);
			ret = DC_EXIT_DEVICE;
		}
		n++;
	}
	lw_key_wipe(&theirs);
	if (ret == DC_EXIT_OK && n == 0) {
		fprintf(stderr, "%s: the answer carries no session keys\n", DC_PROGRAM);
		ret = DC_EXIT_DEVICE;
	}
	if (ret == DC_EXIT_OK)
		fprintf(stderr, "session keys match (%u compared%s)\n", n,
			ans->app_s_key.present ? "" : "; AppSKey not in the answer");
	return ret;
}

/* save_state - record \p d and write the state file */
static int save_state(const struct dc_params *p, struct st_file *st,
		      const struct lw_sim_device *d)
{
	char err[DC_ERR_MAX] = "";
	int rc;

	rc = st_update(st, d);
	if (rc == DJ_EOK)
		rc = st_save(st, p->state_path, err, sizeof(err));
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err[0] ? err : dj_strerror(rc));
		return err_exit(rc);
	}
	return DC_EXIT_OK;
}

/* cmd_sim - join/rejoin --sim: the simulated device talks to the join server */
static int cmd_sim(const struct dc_params *p, struct dc_client *c, struct bi_kek *kek)
{
	struct dv_csv *csv = NULL;
	struct st_file *st = NULL;
	struct lw_crypto *cx = NULL;
	struct lw_sim_device dev;
	struct bi_msg req, ans;
	const struct dv_csv_row *row = NULL;
	enum lw_sim_status ss;
	char err[DC_ERR_MAX] = "";
	uint8_t phy[LW_PHY_MAX];
	size_t len, idx = 0;
	bool async = false;
	int rc, ret = DC_EXIT_INTERNAL;

	memset(&dev, 0, sizeof(dev));
	memset(&ans, 0, sizeof(ans));
	rc = dv_csv_parse_file(p->sim_path, &csv, err, sizeof(err));
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err[0] ? err : dj_strerror(rc));
		ret = err_exit(rc);
		goto out;
	}
	for (idx = 0; idx < csv->n; idx++) {
		if (memcmp(csv->rows[idx].dev_eui, p->dev_eui, LW_EUI_LEN) == 0) {
			row = &csv->rows[idx];
			break;
		}
	}
	if (row == NULL) {
		fprintf(stderr, "%s: %s: no device with that DevEUI\n", DC_PROGRAM, p->sim_path);
		ret = DC_EXIT_INPUT;
		goto out;
	}
	rc = st_load(p->state_path, &st, err, sizeof(err));
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err);
		ret = err_exit(rc);
		goto out;
	}
	if (lw_crypto_new(&cx) != DJ_EOK)
		goto out;
	ret = exec__sim_init(cx, row, st, &dev);
	if (ret != DC_EXIT_OK)
		goto out;

	for (unsigned i = 0; i < p->count; i++) {
		if (p->cmd == DC_CMD_JOIN)
			rc = lw_sim_join_request(cx, &dev, phy, &len);
		else
			rc = lw_sim_rejoin_request(cx, &dev, p->rejoin_type, phy, &len);
		if (rc != DJ_EOK) {
			fprintf(stderr, "%s: the device cannot build the request: %s%s\n",
				DC_PROGRAM, dj_strerror(rc), rc == DJ_EINVAL ?
				" (rejoin 0/2 need a 1.1 session: join first; rejoin needs 1.1)"
				: "");
			ret = err_exit(rc);
			goto out;
		}
		ret = save_state(p, st, &dev);	/* the nonce is spent before it leaves */
		if (ret != DC_EXIT_OK)
			goto out;
		exec__sim_req(p, &dev, (unsigned)idx + 1, p->cmd == DC_CMD_JOIN ? BI_JOIN_REQ
						     : BI_REJOIN_REQ, phy, len, &req);
		ret = call_exit(c, &req, &ans, &async);
		if (ret != DC_EXIT_OK)
			goto out;
		if (async)
			continue;	/* the Join-accept goes to the async receiver, not to us */
		rc = lw_sim_handle_accept(cx, &dev, ans.phy, ans.phy_len, &ss);
		if (rc != DJ_EOK || ss != LW_SIM_OK) {
			fprintf(stderr, "%s: the device rejects the Join-accept: %s\n", DC_PROGRAM,
				rc != DJ_EOK ? dj_strerror(rc) : lw_sim_strerror(ss));
			ret = rc != DJ_EOK ? DC_EXIT_INTERNAL : DC_EXIT_DEVICE;
			goto out;
		}
		ret = save_state(p, st, &dev);
		if (ret != DC_EXIT_OK)
			goto out;
		ret = compare_keys(p, kek, &ans, &dev);
		if (ret != DC_EXIT_OK)
			goto out;
		bi_msg_wipe(&ans);
	}
	ret = DC_EXIT_OK;
out:
	bi_msg_wipe(&ans);
	lw_sim_wipe(&dev);
	lw_crypto_free(cx);
	st_free(st);
	dv_csv_free(csv);
	OPENSSL_cleanse(err, sizeof(err));
	return ret;
}

/* cmd_raw - join/rejoin --phy: the frame as given */
static int cmd_raw(const struct dc_params *p, struct dc_client *c)
{
	struct lw_request fr;
	struct bi_msg req, ans;
	enum lw_frame_status fs;
	bool async;
	int ret;

	memset(&ans, 0, sizeof(ans));
	fs = lw_frame_parse_request(p->phy, p->phy_len, &fr);
	if (fs != LW_FRAME_OK) {
		fprintf(stderr, "%s: --phy: %s\n", DC_PROGRAM, lw_frame_strerror(fs));
		return DC_EXIT_INPUT;
	}
	if ((p->cmd == DC_CMD_JOIN) != (fr.type == LW_REQ_JOIN) ||
	    (p->has_type && fr.type != p->rejoin_type)) {
		fprintf(stderr, "%s: --phy is a %s\n", DC_PROGRAM, fr.type == LW_REQ_JOIN
			? "Join-request" : "Rejoin-request of another type");
		return DC_EXIT_INPUT;
	}
	exec__req_init(p, p->cmd == DC_CMD_JOIN ? BI_JOIN_REQ : BI_REJOIN_REQ, &req);
	if (!p->has_receiver_id) {
		if (fr.type == LW_REQ_REJOIN0 || fr.type == LW_REQ_REJOIN2) {
			fprintf(stderr, "%s: a Rejoin-request of type 0/2 has no JoinEUI: give "
				"--receiver-id\n", DC_PROGRAM);
			return DC_EXIT_USAGE;
		}
		dj_hex_format_upper(fr.join_eui, LW_EUI_LEN, req.receiver_id);
	}
	req.mac_version = p->mac_version;
	memcpy(req.phy, p->phy, p->phy_len);
	req.phy_len = p->phy_len;
	req.has_dev_eui = true;
	memcpy(req.dev_eui, fr.dev_eui, LW_EUI_LEN);
	memcpy(req.dev_addr, p->dev_addr, LW_DEVADDR_LEN);
	req.dl_settings = p->dl_settings;
	req.rx_delay = p->rx_delay;
	if (p->has_cflist) {
		req.has_cflist = true;
		memcpy(req.cflist, p->cflist, LW_CFLIST_LEN);
	}
	ret = call_exit(c, &req, &ans, &async);
	bi_msg_wipe(&ans);
	return ret;
}

/* cmd_appskey - AppSKeyReq; unwraps the AppSKey when a KEK (or --allow-plain-keys) is given */
static int cmd_appskey(const struct dc_params *p, struct dc_client *c, struct bi_kek *kek)
{
	struct bi_msg req, ans;
	struct lw_key key;
	uint8_t raw[LW_KEY_LEN];
	char hex[2 * LW_KEY_LEN + 1];
	bool async = false;
	int ret;

	memset(&ans, 0, sizeof(ans));
	memset(&key, 0, sizeof(key));
	exec__req_init(p, BI_APPSKEY_REQ, &req);
	req.has_dev_eui = true;
	memcpy(req.dev_eui, p->dev_eui, LW_EUI_LEN);
	memcpy(req.session_key_id, p->session_key_id, p->session_key_id_len);
	req.session_key_id_len = p->session_key_id_len;
	ret = call_exit(c, &req, &ans, &async);
	if (ret != DC_EXIT_OK || async || (kek == NULL && !p->allow_plain))
		goto out;
	if (!ans.app_s_key.present) {
		fprintf(stderr, "%s: the answer carries no AppSKey\n", DC_PROGRAM);
		ret = DC_EXIT_DEVICE;
		goto out;
	}
	ret = open_env(p, kek, "AppSKey", &ans.app_s_key, &key);
	if (ret != DC_EXIT_OK)
		goto out;
	if (ans.app_s_key.kek_label[0] != '\0')
		fprintf(stderr, "AppSKey unwrapped (KEKLabel %s)\n", ans.app_s_key.kek_label);
	else
		fprintf(stderr, "AppSKey received in plain (--allow-plain-keys)\n");
	if (p->show_keys) {
		lw_key_export(&key, raw);
		dj_hex_format(raw, LW_KEY_LEN, hex);
		fprintf(stderr, "AppSKey %s\n", hex);
	}
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(hex, sizeof(hex));
	lw_key_wipe(&key);
	bi_msg_wipe(&ans);
	return ret;
}

/* cmd_homens - HomeNSReq */
static int cmd_homens(const struct dc_params *p, struct dc_client *c)
{
	struct bi_msg req, ans;
	bool async;
	int ret;

	memset(&ans, 0, sizeof(ans));
	exec__req_init(p, BI_HOMENS_REQ, &req);
	req.has_dev_eui = true;
	memcpy(req.dev_eui, p->dev_eui, LW_EUI_LEN);
	ret = call_exit(c, &req, &ans, &async);
	bi_msg_wipe(&ans);
	return ret;
}

int exec_run(const struct dc_params *p)
{
	struct dc_client *c = NULL;
	struct bi_kek *kek = NULL;
	int ret;

	ret = load_kek(p, &kek);
	if (ret != DC_EXIT_OK)
		goto out;
	if (p->cmd == DC_CMD_BENCH) {
		ret = exec__bench(p, kek);
		goto out;
	}
	if (p->cmd == DC_CMD_SUBSCRIBE) {
		ret = exec__subscribe(p);
		goto out;
	}
	if (p->cmd == DC_CMD_LISTEN) {
		ret = exec__listen(p);
		goto out;
	}
	ret = exec__client(p, 1, &c);
	if (ret != DC_EXIT_OK)
		goto out;
	switch (p->cmd) {
	case DC_CMD_JOIN:
	case DC_CMD_REJOIN:
		ret = p->sim_path != NULL ? cmd_sim(p, c, kek) : cmd_raw(p, c);
		break;
	case DC_CMD_APPSKEY:
		ret = cmd_appskey(p, c, kek);
		break;
	case DC_CMD_HOMENS:
		ret = cmd_homens(p, c);
		break;
	default:
		ret = DC_EXIT_INTERNAL;
		break;
	}
out:
	dc_client_free(c);
	bi_kek_free(kek);
	exec__dane_free();
	return ret;
}
