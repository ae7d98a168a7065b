/*
 * exec.c - danejoin-devices: the work of each command.
 *
 * Order matters for "bad input changes nothing" (DESIGN.md trust rule 6): an import checks the
 * whole CSV file before the key store or the database is opened, and adds every device in one
 * transaction. Raw root keys exist only between the CSV parse and js_keystore_seal_root(); the
 * parsed rows are wiped by dv_csv_free(). Nothing printed here contains a key or a token: show
 * says which root keys a device has, never their value (DESIGN.md trust rule 5).
 *
 * A master key change (rewrap) is one SQLite transaction in js_store_rewrap(), and the store
 * records the key check value of the new key in that same transaction: a crash leaves either
 * the old store (old key works) or the new one (new key works), and a program started with the
 * wrong key is refused by js_store_open() with DJ_EMASTERKEY.
 */
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/dj_cli.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_csv.h"
#include "ownership/dv_enroll.h"
#include "events/ev_event.h"
#include "exec.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "store/js_store_owner.h"

#define EUI_HEX_LEN (2 * LW_EUI_LEN + 1)
#define TIME_TEXT_LEN 32

/* One run: the configuration, the key store and the store, opened for a command. */
struct run {
	const struct js_config *cfg;
	const char *config_path;
	struct js_keystore *ks;
	struct js_store *store;
	char actor[JS_AUDIT_ACTOR_MAX];
};

/* errmsg - print "danejoin-devices: message" on stderr */

/* fault_exit - the exit code of an unexpected library error: internal or store */
static int fault_exit(int rc)
{
	switch (rc) {
	case DJ_ENOMEM:
	case DJ_EINVAL:
	case DJ_ECRYPTO:
	case DJ_ERROR:
		return DV_EXIT_INTERNAL;
	default:
		return DV_EXIT_STORE;
	}
}

/* set_actor - "cli:" + the login name, or the uid when there is no name */
static void set_actor(char *actor, size_t len)
{
	const char *name = getlogin();
	struct passwd *pw;

	if (name == NULL || name[0] == '\0') {
		pw = getpwuid(getuid());
		name = pw != NULL ? pw->pw_name : NULL;
	}
	if (name != NULL && name[0] != '\0')
		snprintf(actor, len, "cli:%s", name);
	else
		snprintf(actor, len, "cli:uid=%lu", (unsigned long)getuid());
}

/* key_file_error - explain why a master key file cannot be used; returns the exit code */
static int key_file_error(const struct run *r, const char *path, int rc, bool configured)
{
	struct stat st;

	switch (rc) {
	case DJ_ENOENT:
		if (configured)
			errmsg("master key file %s does not exist; run '%s --config %s init' to "
			       "create it", path, DV_PROGRAM, r->config_path);
		else
			errmsg("master key file %s does not exist", path);
		return DV_EXIT_STORE;
	case DJ_EFILEMODE:
		if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			errmsg("master key file %s is a symbolic link; refusing to use it (it is "
			       "opened with O_NOFOLLOW: name the file itself)", path);
		else if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
			errmsg("master key file %s has mode %04o, which gives group or others "
			       "access; refusing to use it (chmod 600 %s)", path,
			       (unsigned)(st.st_mode & 07777), path);
		else
			errmsg("master key file %s is not a regular file", path);
		return DV_EXIT_STORE;
	case DJ_EMALFORMED:
		errmsg("master key file %s does not hold a master key (32 raw bytes or 64 hex "
		       "digits)", path);
		return DV_EXIT_STORE;
	default:
		errmsg("master key file %s: %s", path, dj_strerror(rc));
		return fault_exit(rc);
	}
}

/* load_keystore - read a master key file and make a key store of it */
static int load_keystore(const struct run *r, const char *path, bool configured,
			 struct js_keystore **out)
{
	uint8_t key[JS_MASTER_KEY_LEN];
	int rc;

	*out = NULL;
	rc = js_keystore_read_master(path, key);
	if (rc != DJ_EOK)
		return key_file_error(r, path, rc, configured);
	rc = js_keystore_new(key, out);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc != DJ_EOK) {
		errmsg("cannot create the key store: %s", dj_strerror(rc));
		return fault_exit(rc);
	}
	return DV_EXIT_OK;
}

/* open_store - open the configured store, checking that it belongs to r->ks's master key */
/*
 * transfer_event - the ownership event of a finished transfer (js_transfer_event_fn): the
 * zones and serial from the transfer, the JoinEUI and the rights from the chain's new link.
 */
static int transfer_event(const struct js_transfer *t, int64_t time_ms, uint8_t *buf, size_t cap,
			  size_t *len, void *arg)
{
	struct ev_transfer e;
	struct dv_chain *c;
	const struct dv_link *l;
	int rc;

	(void)arg;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return DJ_ENOMEM;
	memset(&e, 0, sizeof(e));
	memcpy(e.dev_eui, t->dev_eui, LW_EUI_LEN);
	e.from_zone = t->from_zone;
	e.to_zone = t->to_zone;
	e.serial = t->serial;
	e.time_ms = time_ms;
	rc = dv_chain_decode(t->chain, t->chain_len, c);
	if (rc == DJ_EOK && c->n > 0) {
		l = &c->links[c->n - 1];
		e.has_join_eui = true;
		memcpy(e.join_eui, l->join_eui, LW_EUI_LEN);
		e.n_net_ids = l->n_net_ids < EV_RIGHTS_MAX ? l->n_net_ids : EV_RIGHTS_MAX;
		memcpy(e.net_ids, l->net_ids, e.n_net_ids * LW_NETID_LEN);
		e.n_as_ids = l->n_as_ids < EV_RIGHTS_MAX ? l->n_as_ids : EV_RIGHTS_MAX;
		for (size_t i = 0; i < e.n_as_ids; i++)
			e.as_ids[i] = l->as_ids[i];
	}
	/* a chain that does not decode here was checked when the transfer began: the event
	 * still tells the move, without the rights */
	rc = ev_encode_transfer(&e, buf, cap, len);
	free(c);
	return rc;
}

static int open_store(struct run *r)
{
	struct js_store_props props;
	uint8_t kcv[JS_KCV_LEN];
	int rc;

	js_keystore_kcv(r->ks, kcv);
	memset(&props, 0, sizeof(props));
	props.path = r->cfg->store_path;
	props.conninfo = r->cfg->store_conninfo;	/* set: PostgreSQL */
	props.kcv = kcv;
	props.devnonce_history = r->cfg->devnonce_history;
	props.batch_max = r->cfg->batch_max;
	props.outbox_max = r->cfg->mqtt ? r->cfg->mqtt_outbox_max : 0;
	rc = js_store_open(&props, &r->store);
	switch (rc) {
	case DJ_EOK:
		/* with [mqtt], danejoind publishes the outbox: transfers put their events there */
		if (r->cfg->mqtt)
			js_store_set_transfer_event(r->store, transfer_event, NULL);
		return DV_EXIT_OK;
	case DJ_EMASTERKEY:
		errmsg("the master key in %s is not the key of store %s (after a rewrap, point "
		       "[keys] master_key_file at the new key file)", r->cfg->master_key_file,
		       r->cfg->store_path);
		return DV_EXIT_STORE;
	case DJ_ESCHEMA:
		errmsg("store %s was written by a newer danejoin", r->cfg->store_path);
		return DV_EXIT_STORE;
	default:
		errmsg("cannot open store %s: %s", r->cfg->store_path, dj_strerror(rc));
		return fault_exit(rc);
	}
}

/* run_open - read the configured master key and open the store */
static int run_open(struct run *r)
{
	int ex;

	ex = load_keystore(r, r->cfg->master_key_file, true, &r->ks);
	if (ex != DV_EXIT_OK)
		return ex;
	return open_store(r);
}

/* run_close - close what run_open opened (either may be NULL) */
static void run_close(struct run *r)
{
	js_store_close(r->store);
	r->store = NULL;
	js_keystore_free(r->ks);
	r->ks = NULL;
}

/* format_time - Unix seconds as ISO 8601 UTC */
static void format_time(int64_t t, char out[TIME_TEXT_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, TIME_TEXT_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, TIME_TEXT_LEN, "%lld", (long long)t);
}

/* print_safe - print a stored string with control characters replaced by '?' */
static void print_safe(const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, stdout);
}

/* cmd_init - create the master key file if missing, then the store */
static int cmd_init(struct run *r)
{
	struct stat st;
	bool created = false;
	int rc, ex;

	if (stat(r->cfg->master_key_file, &st) != 0) {
		/* A new key can never open an existing store: refuse rather than lock it away. */
		if (r->cfg->store_conninfo == NULL && stat(r->cfg->store_path, &st) == 0) {
			errmsg("store %s exists but master key file %s does not; refusing to "
			       "create a new key that could not open it", r->cfg->store_path,
			       r->cfg->master_key_file);
			return DV_EXIT_STORE;
		}
		rc = js_keystore_create_master(r->cfg->master_key_file);
		if (rc != DJ_EOK) {
			errmsg("cannot create master key file %s: %s", r->cfg->master_key_file,
			       dj_strerror(rc));
			return fault_exit(rc);
		}
		created = true;
	}
	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		return ex;
	printf("master key file %s: %s\n", r->cfg->master_key_file,
	       created ? "created (mode 0600)" : "exists, kept");
	printf("store %s: ready\n", r->cfg->store_path);
	return DV_EXIT_OK;
}

/* The import's state for its device producer: the parsed file, the keystore, the progress bar. */
struct import_ctx {
	struct run *r;
	const struct dv_csv *csv;
	int64_t now;
	bool bar;			/* stderr is a terminal: draw a progress bar there */
	unsigned pct;			/* last percentage drawn */
	bool seal_failed;		/* the producer's error was the sealing's */
};

/* import_bar - "importing [#####.....]  50% 500000/1000000 devices" on stderr, in place */
static void import_bar(size_t done, size_t n)
{
	char bar[41];
	size_t k = n > 0 ? done * (sizeof(bar) - 1) / n : 0;

	memset(bar, '#', k);
	memset(bar + k, '.', sizeof(bar) - 1 - k);
	bar[sizeof(bar) - 1] = '\0';
	fprintf(stderr, "\rimporting [%s] %3u%% %zu/%zu devices", bar,
		(unsigned)(n > 0 ? done * 100 / n : 100), done, n);
	fflush(stderr);
}

/* import_get - device i of the file, its root keys sealed (js_store_devices_import producer) */
static int import_get(size_t i, struct js_device *d, void *arg)
{
	struct import_ctx *c = arg;
	int rc = dv_enroll_seal_row(c->r->ks, &c->csv->rows[i], c->now, d);

	if (rc != DJ_EOK) {
		c->seal_failed = true;
		return rc;
	}
	if (c->bar && (i + 1 == c->csv->n || (unsigned)((i + 1) * 100 / c->csv->n) != c->pct)) {
		c->pct = (unsigned)((i + 1) * 100 / c->csv->n);
		import_bar(i + 1, c->csv->n);
	}
	return DJ_EOK;
}

/* cmd_import - check the whole CSV file, then seal every device's keys and add all in one
 * transaction, one device at a time (memory stays flat for a million devices) */
static int cmd_import(struct run *r, const char *csv_path, bool forget_nonces)
{
	struct dv_csv *csv = NULL;
	struct import_ctx c;
	char err[DV_CSV_ERR_MAX], eui[EUI_HEX_LEN];
	size_t failed = 0;
	int rc, ex;

	rc = dv_csv_parse_file(csv_path, &csv, err, sizeof(err));
	if (rc != DJ_EOK) {
		if (rc == DJ_ENOMEM) {
			errmsg("out of memory");
			ex = DV_EXIT_INTERNAL;
		} else {
			errmsg("%s", err);
			ex = DV_EXIT_DATA;
		}
		goto out;
	}
	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		goto out;
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.csv = csv;
	c.now = js_store_now(r->store);
	c.bar = csv->n > 0 && isatty(STDERR_FILENO);
	c.pct = 101;
	rc = js_store_devices_import_flags(r->store, csv->n, import_get, &c, r->actor,
					   forget_nonces ? JS_IMPORT_FORGET_NONCES : 0, &failed);
	if (c.bar)
		fputc('\n', stderr);
	if (rc == DJ_EEXIST) {
		if (failed >= csv->n)
			failed = 0;
		dj_hex_format(csv->rows[failed].dev_eui, LW_EUI_LEN, eui);
		errmsg("%s:%u: field dev_eui: device %s is already enrolled; nothing was imported",
		       csv_path, csv->rows[failed].line, eui);
		ex = DV_EXIT_DATA;
		goto out;
	}
	if (rc != DJ_EOK && c.seal_failed) {
		errmsg("%s:%u: cannot seal the root keys: %s; nothing was imported", csv_path,
		       csv->rows[failed < csv->n ? failed : 0].line, dj_strerror(rc));
		ex = fault_exit(rc);
		goto out;
	}
	if (rc != DJ_EOK) {
		errmsg("cannot add the devices to store %s: %s; nothing was imported",
		       r->cfg->store_path, dj_strerror(rc));
		ex = fault_exit(rc);
		goto out;
	}
	printf("imported %zu devices\n", csv->n);
	ex = DV_EXIT_OK;
out:
	dv_csv_free(csv);
	return ex;
}

/* nonce_text - "-" for "none yet" (-1), else the number */
static void nonce_text(int64_t v, char *out, size_t len)
{
	if (v < 0)
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%lld", (long long)v);
}

/* devnonce_state - one-line DevNonce state: the counter, or how many random ones were used */
static void devnonce_state(const struct js_device *d, char *out, size_t len)
{
	if (lw_version_devnonce_is_counter(d->mac_version)) {
		if (d->st.dev_nonce_last < 0)
			snprintf(out, len, "counter, none yet");
		else
			snprintf(out, len, "counter, last %d", (int)d->st.dev_nonce_last);
	} else {
		snprintf(out, len, "random, %u used", (unsigned)d->st.hist_len);
	}
}

/* list_one - js_store_device_foreach callback of cmd_list */
static int list_one(const struct js_device *d, void *arg)
{
	char dev[EUI_HEX_LEN], join[EUI_HEX_LEN], jn[24], dn[48];
	size_t *count = arg;

	dj_hex_format(d->dev_eui, LW_EUI_LEN, dev);
	dj_hex_format(d->join_eui, LW_EUI_LEN, join);
	nonce_text(d->st.join_nonce_last, jn, sizeof(jn));
	devnonce_state(d, dn, sizeof(dn));
	printf("%-16s  %-16s  %-5s  %-10s  %s\n", dev, join, lw_version_str(d->mac_version), jn,
	       dn);
	(*count)++;
	return 0;
}

/* cmd_list - one line per device */
static int cmd_list(struct run *r)
{
	size_t count = 0;
	int rc, ex;

	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		return ex;
	printf("%-16s  %-16s  %-5s  %-10s  %s\n", "DEV_EUI", "JOIN_EUI", "MAC", "JOIN_NONCE",
	       "DEV_NONCE");
	rc = js_store_device_foreach(r->store, list_one, &count);
	if (rc != DJ_EOK) {
		errmsg("cannot read store %s: %s", r->cfg->store_path, dj_strerror(rc));
		return fault_exit(rc);
	}
	return DV_EXIT_OK;
}

/* get_device - read one device, with a clear message when it is not enrolled */
static int get_device(struct run *r, const uint8_t *dev_eui, struct js_device *d)
{
	char eui[EUI_HEX_LEN];
	int rc;

	rc = js_store_device_get(r->store, dev_eui, d);
	if (rc == DJ_EOK)
		return DV_EXIT_OK;
	dj_hex_format(dev_eui, LW_EUI_LEN, eui);
	if (rc == DJ_ENOENT) {
		errmsg("no device %s in store %s", eui, r->cfg->store_path);
		return DV_EXIT_DATA;
	}
	errmsg("cannot read device %s: %s", eui, dj_strerror(rc));
	return fault_exit(rc);
}

/* cmd_show - every attribute and the nonce state of one device; never a key or a token */
static int cmd_show(struct run *r, const uint8_t *dev_eui)
{
	struct js_device *d = NULL;
	char dev[EUI_HEX_LEN], join[EUI_HEX_LEN], t[TIME_TEXT_LEN], n[24];
	int ex;

	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		goto out;
	d = calloc(1, sizeof(*d));	/* large (nonce history): not on the stack */
	if (d == NULL) {
		errmsg("out of memory");
		ex = DV_EXIT_INTERNAL;
		goto out;
	}
	ex = get_device(r, dev_eui, d);
	if (ex != DV_EXIT_OK)
		goto out;
	dj_hex_format(d->dev_eui, LW_EUI_LEN, dev);
	dj_hex_format(d->join_eui, LW_EUI_LEN, join);
	format_time(d->created_at, t);
	printf("dev_eui:          %s\n", dev);
	printf("join_eui:         %s\n", join);
	printf("mac_version:      %s\n", lw_version_str(d->mac_version));
	printf("root_keys:        %s (sealed under the master key)\n",
	       d->mac_version >= LW_V1_1 ? "AppKey, NwkKey" : "AppKey");
	printf("created_at:       %s\n", t);
	printf("state_version:    %llu\n", (unsigned long long)d->st.version);
	nonce_text(d->st.join_nonce_last, n, sizeof(n));
	printf("join_nonce_last:  %s\n", n);
	if (lw_version_devnonce_is_counter(d->mac_version)) {
		printf("dev_nonce_rule:   counter (strictly increasing)\n");
		nonce_text(d->st.dev_nonce_last, n, sizeof(n));
		printf("dev_nonce_last:   %s\n", n);
	} else {
		printf("dev_nonce_rule:   random (history of %u)\n",
		       js_store_devnonce_history(r->store));
		printf("dev_nonces_used:  %u\n", (unsigned)d->st.hist_len);
	}
	nonce_text(d->st.rjcount1_last, n, sizeof(n));
	printf("rjcount1_last:    %s\n", n);
	printf("session:          %s\n", d->st.sess_token_len > 0 ? "issued" : "none");
	ex = DV_EXIT_OK;
out:
	if (d != NULL) {
		OPENSSL_cleanse(d, sizeof(*d));
		free(d);
	}
	return ex;
}

/* cmd_delete - remove one device and its sessions (audited by the store) */
static int cmd_delete(struct run *r, const uint8_t *dev_eui)
{
	char eui[EUI_HEX_LEN];
	int rc, ex;

	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		return ex;
	dj_hex_format(dev_eui, LW_EUI_LEN, eui);
	rc = js_store_device_delete(r->store, dev_eui, r->actor);
	if (rc == DJ_ENOENT) {
		errmsg("no device %s in store %s", eui, r->cfg->store_path);
		return DV_EXIT_DATA;
	}
	if (rc != DJ_EOK) {
		errmsg("cannot delete device %s: %s", eui, dj_strerror(rc));
		return fault_exit(rc);
	}
	printf("deleted device %s\n", eui);
	return DV_EXIT_OK;
}

/* cmd_reset_nonces - forget used DevNonces and RJcount1 of one device or of all */
static int cmd_reset_nonces(struct run *r, const struct dv_params *p)
{
	char eui[EUI_HEX_LEN];
	uint64_t count = 0;
	int rc, ex;

	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		return ex;
	dj_hex_format(p->dev_eui, LW_EUI_LEN, eui);
	rc = js_store_reset_nonces(r->store, p->all ? NULL : p->dev_eui, r->actor, &count);
	if (rc == DJ_ENOENT) {
		errmsg("no device %s in store %s", eui, r->cfg->store_path);
		return DV_EXIT_DATA;
	}
	if (rc != DJ_EOK) {
		errmsg("cannot reset nonces: %s", dj_strerror(rc));
		return fault_exit(rc);
	}
	printf("reset the DevNonce and RJcount1 state of %llu devices\n",
	       (unsigned long long)count);
	return DV_EXIT_OK;
}

/* cmd_rewrap - re-wrap every token under a new master key, in one transaction */
static int cmd_rewrap(struct run *r, const char *new_path)
{
	struct js_keystore *new_ks = NULL;
	uint8_t kcv_old[JS_KCV_LEN], kcv_new[JS_KCV_LEN];
	uint64_t count = 0;
	int rc, ex;

	/* Check the new key before the store is touched. */
	ex = load_keystore(r, new_path, false, &new_ks);
	if (ex != DV_EXIT_OK)
		goto out;
	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		goto out;
	js_keystore_kcv(r->ks, kcv_old);
	js_keystore_kcv(new_ks, kcv_new);
	if (CRYPTO_memcmp(kcv_old, kcv_new, JS_KCV_LEN) == 0) {
		errmsg("%s holds the current master key; nothing to do", new_path);
		ex = DV_EXIT_STORE;
		goto out;
	}
	rc = js_store_rewrap(r->store, r->ks, new_ks, r->actor, &count);
	if (rc != DJ_EOK) {
		errmsg("rewrap failed, the store is unchanged: %s", dj_strerror(rc));
		ex = fault_exit(rc);
		goto out;
	}
	printf("re-wrapped %llu keys of store %s under the master key in %s.\n",
	       (unsigned long long)count, r->cfg->store_path, new_path);
	printf("Now set\n    [keys]\n    master_key_file = %s\nin %s (and restart danejoind): "
	       "the old key no longer opens this store.\n", new_path, r->config_path);
	ex = DV_EXIT_OK;
out:
	js_keystore_free(new_ks);
	return ex;
}

/* audit_one - js_store_audit_foreach callback of cmd_audit */
static int audit_one(const struct js_audit_entry *e, void *arg)
{
	char t[TIME_TEXT_LEN], eui[EUI_HEX_LEN];

	(void)arg;
	format_time(e->at, t);
	if (e->has_dev_eui)
		dj_hex_format(e->dev_eui, LW_EUI_LEN, eui);
	else
		snprintf(eui, sizeof(eui), "-");
	printf("%s  #%lld  %-16s  ", t, (long long)e->id, eui);
	print_safe(e->event);
	fputs("  ", stdout);
	print_safe(e->actor);
	if (e->detail[0] != '\0') {
		fputs("  ", stdout);
		print_safe(e->detail);
	}
	fputc('\n', stdout);
	return 0;
}

/* cmd_audit - print the audit log, of all devices or of one */
static int cmd_audit(struct run *r, const struct dv_params *p)
{
	int rc, ex;

	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		return ex;
	rc = js_store_audit_foreach(r->store, p->has_dev_eui ? p->dev_eui : NULL, audit_one, NULL);
	if (rc != DJ_EOK) {
		errmsg("cannot read the audit log: %s", dj_strerror(rc));
		return fault_exit(rc);
	}
	return DV_EXIT_OK;
}

/* cmd_restore_guard - after a backup was restored, raise every JoinNonce past what the lost
 * part of the history may have issued */
static int cmd_restore_guard(struct run *r, uint32_t bump)
{
	uint64_t count = 0;
	int rc, ex;

	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		return ex;
	rc = js_store_bump_join_nonces(r->store, bump, r->actor, &count);
	if (rc == DJ_ERANGE) {
		errmsg("--bump %u would take a JoinNonce past %u, the end of the 24-bit counter; "
		       "nothing was changed (choose a smaller margin)", bump,
		       (unsigned)LW_JOINNONCE_MAX);
		return DV_EXIT_DATA;
	}
	if (rc != DJ_EOK) {
		errmsg("restore-guard failed, the store is unchanged: %s", dj_strerror(rc));
		return fault_exit(rc);
	}
	printf("raised the last JoinNonce of %llu devices and tombstones by %u\n",
	       (unsigned long long)count, bump);
	return DV_EXIT_OK;
}

/* check_line - one line of the integrity report */
static void check_line(const char *line, void *arg)
{
	(void)arg;
	print_safe(line);
	fputc('\n', stdout);
}

/* cmd_check - PRAGMA integrity_check of the store, printed; non-zero exit on problems */
static int cmd_check(struct run *r)
{
	/* PostgreSQL: never the conninfo (it may hold secrets), the backend's name */
	const char *name = r->cfg->store_conninfo != NULL ? "(PostgreSQL)" : r->cfg->store_path;
	int rc, ex;

	ex = run_open(r);
	if (ex != DV_EXIT_OK)
		return ex;
	rc = js_store_check(r->store, true, check_line, NULL);
	if (rc == DJ_EMALFORMED) {
		errmsg("store %s fails its integrity check (see above): restore a backup, then run "
		       "restore-guard", name);
		return DV_EXIT_STORE;
	}
	if (rc != DJ_EOK) {
		errmsg("cannot check store %s: %s", name, dj_strerror(rc));
		return fault_exit(rc);
	}
	return DV_EXIT_OK;
}

int exec_run(const struct js_config *cfg, const struct dv_params *p)
{
	struct run r;
	int ex;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.config_path = p->config_path;
	set_actor(r.actor, sizeof(r.actor));

	switch (p->cmd) {
	case DV_CMD_INIT:
		ex = cmd_init(&r);
		break;
	case DV_CMD_IMPORT:
		ex = cmd_import(&r, p->csv_path, p->forget_nonces);
		break;
	case DV_CMD_LIST:
		ex = cmd_list(&r);
		break;
	case DV_CMD_SHOW:
		ex = cmd_show(&r, p->dev_eui);
		break;
	case DV_CMD_DELETE:
		ex = cmd_delete(&r, p->dev_eui);
		break;
	case DV_CMD_RESET_NONCES:
		ex = cmd_reset_nonces(&r, p);
		break;
	case DV_CMD_REWRAP:
		ex = cmd_rewrap(&r, p->new_master_key);
		break;
	case DV_CMD_AUDIT:
		ex = cmd_audit(&r, p);
		break;
	case DV_CMD_RESTORE_GUARD:
		ex = cmd_restore_guard(&r, p->bump);
		break;
	case DV_CMD_CHECK:
		ex = cmd_check(&r);
		break;
	default:
		errmsg("internal error: command %d has no handler", (int)p->cmd);
		ex = DV_EXIT_INTERNAL;
		break;
	}
	run_close(&r);
	return ex;
}

int exec__open(const struct js_config *cfg, const char *config_path, struct js_keystore **ks,
	       struct js_store **store)
{
	struct run r;
	int ex;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.config_path = config_path;
	ex = run_open(&r);
	if (ex != DV_EXIT_OK) {
		run_close(&r);
		return ex;
	}
	*ks = r.ks;
	*store = r.store;
	return DV_EXIT_OK;
}

int exec__fault_exit(int rc)
{
	return fault_exit(rc);
}

void exec__actor(char *actor, size_t len)
{
	set_actor(actor, len);
}
