/*
 * exec_owner.c - danejoin-devices: the ownership commands (enroll, publish, authcode,
 * transfer-request, transfer, ownership). docs/danejoin-devices.md is the manual and
 * docs/dns-records.md the record formats.
 *
 * Flags and messages only (STYLE.md rule 15): the rules are libdj_ownership's. Enrollment
 * input and CMS envelopes are dv_enroll's, the owner keys dv_ownerkey's (a keyring of
 * DNSSEC-validated _owner TLSA 3 1 0 lookups: insecure, bogus or absent means refused), and
 * the transfers, with their verdicts and crash-resumable steps, dv_transfer's.
 *
 * Security reasoning kept here.
 *  - Whole input first: a CSV, a CMS file, a request file or an auth-code file is read
 *    completely, and the library verifies every item, before the store or the DNS is
 *    touched; one bad item refuses the batch (DESIGN.md trust rule 6).
 *  - Our own signing key is checked against its published _owner record before we sign
 *    anything, so we never publish a link the JS would reject.
 *  - Auth codes are printed once into a 0600 file created here, stored only as PBKDF2 hashes,
 *    never logged; root keys from a CSV or a CMS file are wiped after sealing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "ca-tools/ca_update.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_authcode.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_csv.h"
#include "ownership/dv_enroll.h"
#include "ownership/dv_ownerkey.h"
#include "ownership/dv_records.h"
#include "ownership/dv_transfer.h"
#include "exec.h"
#include "owner_input.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "store/js_store_owner.h"

#define EUI_HEX (2 * LW_EUI_LEN + 1)
#define CRASH_ENV "DJ_DV_CRASH_AFTER_STEP"	/* tests: _exit after transfer step N */
#define CRASH_EXIT 70

/* One run of an ownership command. */
struct orun {
	const struct js_config *cfg;
	const struct dv_params *p;
	struct js_keystore *ks;
	struct js_store *store;
	char actor[JS_AUDIT_ACTOR_MAX];
	bool have_dns;
	struct ca_server srv;
	struct ca_tsig tsig;
	struct dv_keyring *ring;	/* the _owner keys of this run */
	char stub_addr[80];
	uint32_t ttl;
};


/* dns_setup - server, TSIG key, trust anchors and stub from the flags (those given) */
static int dns_setup(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	char err[256];
	unsigned long ttl;
	int rc;

	r->ttl = DV_TTL_DEFAULT;
	if (o->ttl != NULL) {
		if (!dj_cli_parse_ulong(o->ttl, 1, 86400, &ttl)) {
			errmsg("--ttl %.40s: expected 1 to 86400 seconds", o->ttl);
			return DV_EXIT_USAGE;
		}
		r->ttl = (uint32_t)ttl;
	}
	if (o->ns != NULL) {
		rc = ca_server_parse(o->ns, &r->srv, err, sizeof(err));
		if (rc != DJ_EOK) {
			errmsg("--ns: %s", err);
			return DV_EXIT_USAGE;
		}
		snprintf(r->stub_addr, sizeof(r->stub_addr), "%s@%u", r->srv.addr, r->srv.port);
	}
	if (o->tsig_file != NULL) {
		rc = ca_tsig_read(o->tsig_file, &r->tsig, err, sizeof(err));
		if (rc != DJ_EOK) {
			errmsg("--tsig-file: %s", err);
			return DV_EXIT_CONFIG;
		}
		r->have_dns = true;
	}
	if (o->lookup_via != NULL) {
		struct ca_server via;

		if (ca_server_parse(o->lookup_via, &via, err, sizeof(err)) != DJ_EOK) {
			errmsg("--lookup-via: %s", err);
			return DV_EXIT_USAGE;
		}
		snprintf(r->stub_addr, sizeof(r->stub_addr), "%s@%u", via.addr, via.port);
	}
	if (o->ta_file != NULL && access(o->ta_file, R_OK) != 0) {
		errmsg("--ta-file %s: cannot be read", o->ta_file);
		return DV_EXIT_CONFIG;
	}
	rc = dv_keyring_new(&(struct dv_keyring_props){
				    .ta_file = o->ta_file,
				    .stub_addr = r->stub_addr[0] != '\0' ? r->stub_addr : NULL,
			    }, &r->ring);
	return rc == DJ_EOK ? DV_EXIT_OK : oi_oom();
}

/* check_own_key - our signing key \p priv must be the _owner key published for \p zone */
static int check_own_key(struct orun *r, const char *flag, EVP_PKEY *priv, const char *zone)
{
	enum dv_key_status st;
	bool same = false;

	if (dv_ownerkey_matches(dv_keyring_get, r->ring, zone, priv, &st, &same) != DJ_EOK ||
	    st != DV_KEY_OK) {
		errmsg("zone %s %s; refusing to sign with %s", zone, dv_key_status_text(st),
			  flag);
		return st == DV_KEY_TEMPFAIL ? DV_EXIT_DNS : DV_EXIT_DENIED;
	}
	if (!same) {
		errmsg("the key in %s is not the _owner key published for %s", flag, zone);
		return DV_EXIT_DENIED;
	}
	return DV_EXIT_OK;
}


/* crash_hook - tests: end the process right after transfer step \p step was recorded
 * (dv_xfer_env.stepped) */
static int crash_hook(enum js_transfer_step step, void *arg)
{
	const char *v = getenv(CRASH_ENV);

	(void)arg;
	if (v != NULL && atoi(v) == (int)step) {
		fflush(stdout);
		_exit(CRASH_EXIT);
	}
	return DJ_EOK;
}

/* open_store - master key and store */
static int open_store(struct orun *r)
{
	return exec__open(r->cfg, r->p->config_path, &r->ks, &r->store);
}


/* ---- enroll / publish ------------------------------------------------------------------ */

/* publish_pending - publish the records of every unpublished owner row (dv_enroll_publish) */
static int publish_pending(struct orun *r, size_t *count)
{
	struct dv_pub *pub = NULL;
	char err[DV_XFER_ERR_MAX] = "";
	int rc, ex;

	*count = 0;
	if (dv_pub_new(&r->srv, &r->tsig, r->ttl, &pub) != DJ_EOK)
		return oi_oom();
	rc = dv_enroll_publish(r->store, pub, count, err, sizeof(err));
	if (rc == DJ_EOK) {
		ex = DV_EXIT_OK;
	} else if (rc == DJ_EACCES || rc == DJ_EAGAIN || rc == DJ_EIO || rc == DJ_EINVAL) {
		errmsg("DNS update failed: %s; the devices are enrolled but their records "
			  "are not all published: run '%s publish' to finish", err, DV_PROGRAM);
		ex = DV_EXIT_DNS;
	} else {
		errmsg("cannot publish: %s", dj_strerror(rc));
		ex = exec__fault_exit(rc);
	}
	dv_pub_free(pub);
	return ex;
}

static int cmd_publish(struct orun *r)
{
	size_t n = 0;
	int ex;

	ex = open_store(r);
	if (ex == DV_EXIT_OK)
		ex = publish_pending(r, &n);
	if (ex == DV_EXIT_OK)
		printf("published the records of %zu devices\n", n);
	return ex;
}

/* read_cms - the enrollment CSV inside the CMS file \p path, for the JS certificate */
static int read_cms(struct orun *r, const char *path, struct dv_csv **csv)
{
	const struct dv_owner_args *o = &r->p->own;
	const char *cert_path = o->js_cert != NULL ? o->js_cert : r->cfg->cert_file;
	const char *key_path = o->js_key != NULL ? o->js_key : r->cfg->key_file;
	char why[DV_ENROLL_WHY_MAX];
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int rc, ex;

	if (cert_path == NULL || key_path == NULL) {
		errmsg("%s is a CMS file: give --js-cert and --js-key (or [http] cert_file and "
		       "key_file in the configuration)", path);
		return DV_EXIT_USAGE;
	}
	rc = dv_enroll_recipient_read(cert_path, key_path, &cert, &key, why, sizeof(why));
	if (rc != DJ_EOK) {
		errmsg("%s", why);
		return DV_EXIT_CONFIG;
	}
	rc = dv_enroll_cms_file(path, cert, key, csv, why, sizeof(why));
	if (rc == DJ_ENOMEM)
		ex = oi_oom();
	else if (rc != DJ_EOK) {
		errmsg("%s; nothing was imported", why);
		ex = DV_EXIT_DATA;
	} else
		ex = DV_EXIT_OK;
	X509_free(cert);
	EVP_PKEY_free(key);
	return ex;
}

static int cmd_enroll(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	struct dv_csv *csv = NULL;
	struct js_device *devs = NULL;
	struct js_owner *owners = NULL;
	struct dv_link rights;
	EVP_PKEY *mkey = NULL;
	char zone[DV_ZONE_MAX], from[DV_ZONE_MAX], err[DV_CSV_ERR_MAX], eui[EUI_HEX];
	char why[DV_ENROLL_WHY_MAX];
	size_t i, failed = 0, published = 0;
	int rc, ex;

	memset(&rights, 0, sizeof(rights));
	ex = oi_zone_arg("--zone", o->zone, zone);
	if (ex == DV_EXIT_OK)
		ex = oi_zone_arg("--from-zone", o->from_zone != NULL ? o->from_zone : o->zone,
				 from);
	if (ex == DV_EXIT_OK)
		ex = oi_parse_rights(o->netids, o->as_ids, &rights);
	if (ex == DV_EXIT_OK)
		ex = oi_read_key(o->key, &mkey);
	if (ex != DV_EXIT_OK)
		goto out;
	/* the whole input before anything else */
	if (dv_enroll_is_der(r->p->input)) {
		ex = read_cms(r, r->p->input, &csv);
	} else {
		rc = dv_csv_parse_file(r->p->input, &csv, err, sizeof(err));
		if (rc != DJ_EOK) {
			errmsg("%s", rc == DJ_ENOMEM ? "out of memory" : err);
			ex = rc == DJ_ENOMEM ? DV_EXIT_INTERNAL : DV_EXIT_DATA;
		}
	}
	if (ex != DV_EXIT_OK)
		goto out;
	ex = check_own_key(r, "--key", mkey, from);
	if (ex != DV_EXIT_OK)
		goto out;
	ex = open_store(r);
	if (ex != DV_EXIT_OK)
		goto out;
	devs = calloc(csv->n, sizeof(*devs));
	owners = calloc(csv->n, sizeof(*owners));
	if (devs == NULL || owners == NULL) {
		ex = oi_oom();
		goto out;
	}
	rc = dv_enroll_build(r->ks, csv, &(struct dv_enroll_props){
				     .from_zone = from, .zone = zone, .rights = &rights,
				     .key = mkey,
				     .now = js_store_now(r->store),
			     }, devs, owners, why, sizeof(why));
	if (rc != DJ_EOK) {
		errmsg("%s", why);
		ex = rc == DJ_EMALFORMED ? DV_EXIT_DATA : exec__fault_exit(rc);
		goto out;
	}
	rc = js_store_owner_enroll(r->store, devs, owners, csv->n, r->actor, &failed);
	if (rc == DJ_EEXIST) {
		dj_hex_format(csv->rows[failed < csv->n ? failed : 0].dev_eui, LW_EUI_LEN, eui);
		errmsg("%s:%u: field dev_eui: device %s is already enrolled; nothing was "
			  "enrolled", r->p->input, csv->rows[failed < csv->n ? failed : 0].line, eui);
		ex = DV_EXIT_DATA;
		goto out;
	}
	if (rc != DJ_EOK) {
		errmsg("cannot enroll: %s; nothing was enrolled", dj_strerror(rc));
		ex = exec__fault_exit(rc);
		goto out;
	}
	printf("enrolled %zu devices (owner %s, chain signed by %s)\n", csv->n, zone, from);
	ex = publish_pending(r, &published);
	if (ex == DV_EXIT_OK)
		printf("published the records of %zu devices in %s\n", published, zone);
out:
	if (devs != NULL) {
		OPENSSL_cleanse(devs, csv->n * sizeof(*devs));
		free(devs);
	}
	for (i = 0; owners != NULL && i < csv->n; i++)
		free(owners[i].chain);
	free(owners);
	dv_csv_free(csv);
	EVP_PKEY_free(mkey);
	return ex;
}

/* ---- auth codes ------------------------------------------------------------------------ */

static int cmd_authcode(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	uint8_t (*euis)[LW_EUI_LEN] = NULL;
	struct js_authcode *recs = NULL;
	struct dv_xfer_report rep;
	EVP_PKEY *key = NULL;
	char zone[DV_ZONE_MAX], eui[EUI_HEX], (*codes)[DV_AUTHCODE_LEN + 1] = NULL;
	unsigned long ttl = DV_AUTHCODE_TTL_DEFAULT;
	size_t n = 0, i, failed = 0;
	FILE *out = NULL;
	int fd = -1, rc, ex;

	ex = oi_zone_arg("--zone", o->zone, zone);
	if (ex != DV_EXIT_OK)
		return ex;
	if (o->expires_in != NULL && !dj_cli_parse_ulong(o->expires_in, 1, DV_AUTHCODE_TTL_MAX, &ttl)) {
		errmsg("--expires-in %.40s: expected 1 to %d seconds", o->expires_in,
		       DV_AUTHCODE_TTL_MAX);
		return DV_EXIT_DATA;
	}
	ex = oi_device_list(r->p, &euis, &n);
	if (ex == DV_EXIT_OK)
		ex = oi_read_key(o->key, &key);
	if (ex == DV_EXIT_OK)
		ex = check_own_key(r, "--key", key, zone);
	if (ex == DV_EXIT_OK)
		ex = open_store(r);
	if (ex != DV_EXIT_OK)
		goto out;
	recs = calloc(n, sizeof(*recs));
	codes = calloc(n, sizeof(*codes));
	if (recs == NULL || codes == NULL) {
		ex = oi_oom();
		goto out;
	}
	rc = dv_transfer_authcodes(r->store, (const uint8_t (*)[LW_EUI_LEN])euis, n, zone,
				   js_store_now(r->store) + (int64_t)ttl, codes, recs, &rep);
	if (rc != DJ_EOK || rep.status != DV_XFER_OK) {
		errmsg("%s; no auth code was set", rep.why);
		ex = rc != DJ_EOK ? exec__fault_exit(rc) : DV_EXIT_DENIED;
		goto out;
	}
	/* the code file first (0600, new): a code that cannot be handed out is not stored */
	fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (out = fdopen(fd, "w")) == NULL) {
		errmsg("--out %s: cannot create (it must not exist yet): %s", o->out,
		       strerror(errno));
		ex = DV_EXIT_DATA;
		goto out;
	}
	fd = -1;
	rc = js_store_authcode_put(r->store, recs, n, r->actor, &failed);
	if (rc != DJ_EOK) {
		errmsg("cannot store the auth codes: %s; none was set", dj_strerror(rc));
		ex = rc == DJ_ENOENT ? DV_EXIT_DATA : exec__fault_exit(rc);
		goto out;
	}
	fprintf(out, "dev_eui,auth_code\n");
	for (i = 0; i < n; i++) {
		dj_hex_format(euis[i], LW_EUI_LEN, eui);
		fprintf(out, "%s,%s\n", eui, codes[i]);
	}
	if (fclose(out) != 0) {
		out = NULL;
		errmsg("--out %s: write error; the codes are set but lost: set them again",
		       o->out);
		ex = DV_EXIT_DATA;
		goto out;
	}
	out = NULL;
	printf("set %zu auth codes (valid for %lu s), written to %s\n", n, ttl, o->out);
	ex = DV_EXIT_OK;
out:
	if (out != NULL) {
		fclose(out);
		unlink(o->out);
	}
	if (fd >= 0)
		close(fd);
	if (codes != NULL) {
		OPENSSL_cleanse(codes, n * sizeof(*codes));
		free(codes);
	}
	if (recs != NULL) {
		OPENSSL_cleanse(recs, n * sizeof(*recs));
		free(recs);
	}
	free(euis);
	EVP_PKEY_free(key);
	return ex;
}

/* ---- transfers ------------------------------------------------------------------------- */

/* load_chain - the registry's owner row and decoded chain of a device */
static int load_chain(struct orun *r, const uint8_t *dev_eui, struct js_owner *own,
		      struct dv_chain *chain)
{
	char eui[EUI_HEX];
	int rc;

	dj_hex_format(dev_eui, LW_EUI_LEN, eui);
	rc = js_store_owner_get(r->store, dev_eui, own);
	if (rc == DJ_ENOENT) {
		errmsg("device %s is not enrolled with an owner (danejoin-devices enroll)", eui);
		return DV_EXIT_DATA;
	}
	if (rc != DJ_EOK) {
		errmsg("cannot read device %s: %s", eui, dj_strerror(rc));
		return exec__fault_exit(rc);
	}
	if (dv_chain_decode(own->chain, own->chain_len, chain) != DJ_EOK) {
		errmsg("device %s: the stored chain is malformed", eui);
		return DV_EXIT_STORE;
	}
	return DV_EXIT_OK;
}

/* report_exit - print a refusal or a fault of dv_transfer (\p where: the input item, or
 * NULL) and give its exit code */
static int report_exit(int rc, const struct dv_xfer_report *rep, const char *where)
{
	const char *at = where != NULL ? where : "", *sep = where != NULL ? ": " : "";

	if (rc != DJ_EOK && rep->dns_failed) {
		errmsg("DNS update failed: %s; the transfers are recorded and unfinished: run "
		       "'%s transfer' again (same flags) to finish them", rep->why, DV_PROGRAM);
		return DV_EXIT_DNS;
	}
	if (rc != DJ_EOK) {
		errmsg("%s", rep->why);
		return exec__fault_exit(rc);
	}
	switch (rep->status) {
	case DV_XFER_OK:
	case DV_XFER_ALREADY_DONE:
		return DV_EXIT_OK;
	case DV_XFER_MALFORMED:
	case DV_XFER_UNKNOWN:
		errmsg("%s%s%s", at, sep, rep->why);
		return DV_EXIT_DATA;
	case DV_XFER_TEMPFAIL:
		errmsg("%s%s%s; refused", at, sep, rep->why);
		return DV_EXIT_DNS;
	case DV_XFER_REPLAYED:
	case DV_XFER_STALE:
	case DV_XFER_DENIED:
		break;
	}
	errmsg("%s%s%s; refused", at, sep, rep->why);
	return DV_EXIT_DENIED;
}

static int cmd_transfer_request(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	uint8_t (*euis)[LW_EUI_LEN] = NULL;
	struct dv_xfer_report rep;
	struct dv_link rights;
	EVP_PKEY *key = NULL;
	char zone[DV_ZONE_MAX], to[DV_ZONE_MAX], eui[EUI_HEX], *b64 = NULL;
	size_t n = 0, i;
	FILE *out = NULL;
	int fd, rc, ex;

	memset(&rights, 0, sizeof(rights));
	ex = oi_zone_arg("--zone", o->zone, zone);
	if (ex == DV_EXIT_OK)
		ex = oi_zone_arg("--to-zone", o->to_zone, to);
	if (ex == DV_EXIT_OK)
		ex = oi_parse_rights(o->netids, o->as_ids, &rights);
	if (ex == DV_EXIT_OK)
		ex = oi_device_list(r->p, &euis, &n);
	if (ex == DV_EXIT_OK)
		ex = oi_read_key(o->key, &key);
	if (ex == DV_EXIT_OK)
		ex = open_store(r);
	if (ex != DV_EXIT_OK)
		goto out;
	fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (out = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		errmsg("--out %s: cannot create (it must not exist yet): %s", o->out,
		       strerror(errno));
		ex = DV_EXIT_DATA;
		goto out;
	}
	for (i = 0; i < n; i++) {
		rc = dv_transfer_request(r->store, euis[i], zone, to, &rights, key, &b64, &rep);
		if (rc == DJ_EOK && rep.status == DV_XFER_DENIED) {
			dj_hex_format(euis[i], LW_EUI_LEN, eui);
			errmsg("device %s is owned by %s, not by --zone %s", eui, rep.owner,
				  zone);
			ex = DV_EXIT_DENIED;
			goto out;
		}
		if (rc != DJ_EOK || rep.status != DV_XFER_OK) {
			ex = report_exit(rc, &rep, NULL);
			goto out;
		}
		fprintf(out, "%s\n", b64);
		free(b64);
		b64 = NULL;
	}
	if (fclose(out) != 0) {
		out = NULL;
		errmsg("--out %s: write error", o->out);
		ex = DV_EXIT_DATA;
		goto out;
	}
	out = NULL;
	printf("signed %zu transfer requests (%s -> %s) into %s\n", n, zone, to, o->out);
	ex = DV_EXIT_OK;
out:
	if (out != NULL) {
		fclose(out);
		unlink(o->out);
	}
	free(b64);
	free(euis);
	EVP_PKEY_free(key);
	return ex;
}

static int cmd_transfer(struct orun *r)
{
	const struct dv_owner_args *o = &r->p->own;
	const char *path = o->requests != NULL ? o->requests : o->auth_codes;
	struct dv_xfer_report rep;
	struct dv_xfer_env env;
	struct dv_pub *pub = NULL;
	struct dv_link rights;
	struct oi_lines in;
	EVP_PKEY *rkey = NULL;
	char to[DV_ZONE_MAX], where[300];
	double t0 = dj_clock_mono_s();
	int rc, ex;

	memset(&in, 0, sizeof(in));
	memset(&rights, 0, sizeof(rights));
	memset(&rep, 0, sizeof(rep));
	ex = DV_EXIT_OK;
	if (o->auth_codes != NULL) {
		ex = oi_zone_arg("--to-zone", o->to_zone, to);
		if (ex == DV_EXIT_OK)
			ex = oi_parse_rights(o->netids, o->as_ids, &rights);
		if (ex == DV_EXIT_OK)
			ex = oi_read_key(o->key, &rkey);
		if (ex == DV_EXIT_OK)
			ex = oi_lines_read(o->auth_codes, "dev_eui,auth_code", &in);
	} else if (o->requests != NULL) {
		ex = oi_lines_read(o->requests, NULL, &in);
	}
	if (ex == DV_EXIT_OK)
		ex = open_store(r);
	if (ex != DV_EXIT_OK)
		goto out;
	if (dv_pub_new(&r->srv, &r->tsig, r->ttl, &pub) != DJ_EOK) {
		ex = oi_oom();
		goto out;
	}
	memset(&env, 0, sizeof(env));
	env.store = r->store;
	env.actor = r->actor;
	env.key_fn = dv_keyring_get;
	env.key_arg = r->ring;
	env.stepped = crash_hook;
	dv_xfer_pub_dns(pub, &env.pub);
	/* unfinished transfers of an earlier run first */
	rc = dv_transfer_resume(&env, &rep);
	if (rc != DJ_EOK) {
		ex = report_exit(rc, &rep, NULL);
		goto out;
	}
	if (rep.resumed > 0)
		printf("finished %zu transfers left unfinished by an earlier run\n", rep.resumed);
	if (in.n == 0) {
		if (o->requests == NULL && o->auth_codes == NULL && rep.resumed == 0)
			printf("no unfinished transfers\n");
		goto out;
	}
	rc = dv_transfer_apply(&env, &(struct dv_xfer_batch){
				       .kind = o->requests != NULL ? DV_XFER_REQUESTS :
					       DV_XFER_AUTHCODES,
				       .n = in.n,
				       .line = (const char *const *)in.line,
				       .to_zone = to,
				       .rights = &rights,
				       .registry_key = rkey,
			       }, &rep);
	if (rc != DJ_EOK || rep.status != DV_XFER_OK) {
		snprintf(where, sizeof(where), "%.200s:%u", path, in.lineno[rep.item]);
		ex = report_exit(rc, &rep, rc == DJ_EOK ? where : NULL);
		if (rc == DJ_EOK)
			fprintf(stderr, "%s: nothing was transferred\n", DV_PROGRAM);
		goto out;
	}
	printf("transferred %zu devices", rep.transferred);
	if (rep.done_before > 0)
		printf(" (%zu already done earlier: nothing to do)", rep.done_before);
	printf(" in %.2f s\n", dj_clock_mono_s() - t0);
out:
	dv_pub_free(pub);
	oi_lines_free(&in);
	EVP_PKEY_free(rkey);
	return ex;
}

/* ---- ownership (show) ------------------------------------------------------------------ */

static int cmd_ownership(struct orun *r)
{
	struct dv_chain *chain = NULL;
	struct js_owner own;
	uint8_t eui[LW_EUI_LEN];
	char hex[2 * DV_NONCE_LEN + 1];
	size_t i, j;
	int ex;

	memset(&own, 0, sizeof(own));
	if (dj_hex_parse(r->p->input, eui, LW_EUI_LEN) != DJ_EOK) {
		errmsg("ownership: DevEUI argument: expected 16 hex digits");
		return DV_EXIT_DATA;
	}
	chain = calloc(1, sizeof(*chain));
	if (chain == NULL)
		return oi_oom();
	ex = open_store(r);
	if (ex == DV_EXIT_OK)
		ex = load_chain(r, eui, &own, chain);
	if (ex != DV_EXIT_OK)
		goto out;
	printf("owner:      %s\nserial:     %llu\npublished:  %s\n", own.zone,
	       (unsigned long long)own.serial, own.published ? "yes" : "no");
	for (i = 0; i < chain->n; i++) {
		const struct dv_link *l = &chain->links[i];

		dj_hex_format(l->nonce, DV_NONCE_LEN, hex);
		printf("link %llu:     %s -> %s  signed by %s (%s)  nonce %s  netids",
		       (unsigned long long)l->serial, l->from_zone, l->to_zone, l->signer_zone,
		       l->auth == DV_AUTH_MANUFACTURER ? "manufacturer" :
		       l->auth == DV_AUTH_SIGNED ? "signed request" : "auth code", hex);
		for (j = 0; j < l->n_net_ids; j++)
			printf("%s%02x%02x%02x", j > 0 ? "," : " ", l->net_ids[j][0],
			       l->net_ids[j][1], l->net_ids[j][2]);
		printf("  as_ids");
		for (j = 0; j < l->n_as_ids; j++)
			printf("%s%s", j > 0 ? "," : " ", l->as_ids[j]);
		printf("\n");
	}
out:
	js_owner_clear(&own);
	free(chain);
	return ex;
}

int exec_owner(const struct js_config *cfg, const struct dv_params *p)
{
	struct orun *r;
	int ex;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return oi_oom();
	r->cfg = cfg;
	r->p = p;
	exec__actor(r->actor, sizeof(r->actor));
	ex = dns_setup(r);
	if (ex != DV_EXIT_OK)
		goto out;
	switch (p->cmd) {
	case DV_CMD_ENROLL:
		ex = cmd_enroll(r);
		break;
	case DV_CMD_PUBLISH:
		ex = cmd_publish(r);
		break;
	case DV_CMD_AUTHCODE:
		ex = cmd_authcode(r);
		break;
	case DV_CMD_TRANSFER_REQUEST:
		ex = cmd_transfer_request(r);
		break;
	case DV_CMD_TRANSFER:
		ex = cmd_transfer(r);
		break;
	case DV_CMD_OWNERSHIP:
		ex = cmd_ownership(r);
		break;
	default:
		errmsg("internal error: command %d has no handler", (int)p->cmd);
		ex = DV_EXIT_INTERNAL;
		break;
	}
out:
	js_store_close(r->store);
	js_keystore_free(r->ks);
	dv_keyring_free(r->ring);
	ca_tsig_clear(&r->tsig);
	free(r);
	return ex;
}
