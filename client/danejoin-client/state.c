/*
 * state.c - danejoin-client: the simulator's non-volatile state file (see state.h).
 *
 * The file holds a session key (SNwkSIntKey) for Rejoin-requests of types 0 and 2, so it is
 * treated like a secret: created 0600 through a temporary file and rename (a crash leaves the
 * old or the new state, never half of one), refused when group- or other-readable, and every
 * buffer that held it is wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "state.h"

#define ST_LINE_MAX 256
#define ST_MODE_SECRET 0600

struct st_entry {
	uint8_t dev_eui[LW_EUI_LEN];
	uint32_t dev_nonce_next;
	int64_t join_nonce_last;
	uint16_t rjcount0, rjcount1;
	bool joined, opt_neg;
	uint8_t net_id[LW_NETID_LEN];
	uint8_t dev_addr[LW_DEVADDR_LEN];
	uint8_t snwk[LW_KEY_LEN];
};

struct st_file {
	struct st_entry *e;
	size_t n, cap;
};

/* find - the entry of \p dev_eui, or NULL */
static struct st_entry *find(const struct st_file *s, const uint8_t dev_eui[LW_EUI_LEN])
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->e[i].dev_eui, dev_eui, LW_EUI_LEN) == 0)
			return &s->e[i];
	return NULL;
}

/* add - a new zeroed entry for \p dev_eui */
static struct st_entry *add(struct st_file *s, const uint8_t dev_eui[LW_EUI_LEN])
{
	struct st_entry *e;

	if (s->n == s->cap) {
		size_t cap = s->cap * 2 + 16;

		e = calloc(cap, sizeof(*e));
		if (e == NULL)
			return NULL;
		if (s->n > 0)
			memcpy(e, s->e, s->n * sizeof(*e));
		if (s->e != NULL)
			OPENSSL_clear_free(s->e, s->cap * sizeof(*s->e));
		s->e = e;
		s->cap = cap;
	}
	e = &s->e[s->n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->dev_eui, dev_eui, LW_EUI_LEN);
	e->join_nonce_last = -1;
	return e;
}

/* parse_line - one device line into \p e */
static int parse_line(char *line, struct st_entry *e)
{
	char *f[9], *save = NULL, *t;
	unsigned long v;
	int n = 0, ret = DJ_EMALFORMED;

	for (t = strtok_r(line, " \t\r\n", &save); t != NULL; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == 9)
			goto out;
		f[n++] = t;
	}
	if (n != 5 && n != 9)
		goto out;
	if (dj_hex_parse(f[0], e->dev_eui, LW_EUI_LEN) != DJ_EOK)
		goto out;
	v = strtoul(f[1], &t, 10);
	if (*t != '\0' || v > 0x10000)
		goto out;
	e->dev_nonce_next = (uint32_t)v;
	if (strcmp(f[2], "-") == 0) {
		e->join_nonce_last = -1;
	} else {
		v = strtoul(f[2], &t, 10);
		if (*t != '\0' || v > LW_JOINNONCE_MAX)
			goto out;
		e->join_nonce_last = (int64_t)v;
	}
	v = strtoul(f[3], &t, 10);
	if (*t != '\0' || v > 0xffff)
		goto out;
	e->rjcount0 = (uint16_t)v;
	v = strtoul(f[4], &t, 10);
	if (*t != '\0' || v > 0xffff)
		goto out;
	e->rjcount1 = (uint16_t)v;
	if (n == 9) {
		if ((strcmp(f[5], "0") != 0 && strcmp(f[5], "1") != 0) ||
		    dj_hex_parse(f[6], e->net_id, LW_NETID_LEN) != DJ_EOK ||
		    dj_hex_parse(f[7], e->dev_addr, LW_DEVADDR_LEN) != DJ_EOK ||
		    dj_hex_parse(f[8], e->snwk, LW_KEY_LEN) != DJ_EOK)
			goto out;
		e->joined = true;
		e->opt_neg = f[5][0] == '1';
	}
	ret = DJ_EOK;
out:
	return ret;
}

int st_load(const char *path, struct st_file **out, char *err, size_t errlen)
{
	struct st_file *s = NULL;
	struct st_entry tmp, *e;
	struct stat sb;
	char line[ST_LINE_MAX];
	unsigned lineno = 0;
	FILE *f = NULL;
	int fd = -1, ret = DJ_ENOMEM;

	memset(&tmp, 0, sizeof(tmp));
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			ret = DJ_EOK;
			goto done;
		}
		ret = DJ_EIO;
		snprintf(err, errlen, "state %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		ret = DJ_EIO;
		snprintf(err, errlen, "state %s: not a regular file", path);
		goto out;
	}
	if ((sb.st_mode & 077) != 0) {
		ret = DJ_EFILEMODE;
		snprintf(err, errlen, "state %s: readable by group or others (mode %03o); it "
			 "holds a session key: chmod 600", path, (unsigned)(sb.st_mode & 0777));
		goto out;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		ret = DJ_EIO;
		snprintf(err, errlen, "state %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (lineno == 1) {
			if (strncmp(line, ST_HEADER, strlen(ST_HEADER)) != 0) {
				ret = DJ_EMALFORMED;
				snprintf(err, errlen, "state %s:1: not a danejoin-client state file",
					 path);
				goto out;
			}
			continue;
		}
		if (parse_line(line, &tmp) != DJ_EOK || find(s, tmp.dev_eui) != NULL) {
			ret = DJ_EMALFORMED;
			snprintf(err, errlen, "state %s:%u: malformed or duplicate line", path,
				 lineno);
			goto out;
		}
		ret = DJ_ENOMEM;
		e = add(s, tmp.dev_eui);
		if (e == NULL)
			goto out;
		*e = tmp;
	}
	if (ferror(f)) {
		ret = DJ_EIO;
		snprintf(err, errlen, "state %s: read error", path);
		goto out;
	}
	ret = DJ_EOK;
done:
	*out = s;
	s = NULL;
out:
	if (ret == DJ_ENOMEM)
		snprintf(err, errlen, "out of memory");
	OPENSSL_cleanse(line, sizeof(line));
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	st_free(s);
	return ret;
}

void st_apply(const struct st_file *s, struct lw_sim_device *d)
{
	const struct st_entry *e = find(s, d->dev_eui);

	if (e == NULL)
		return;
	d->dev_nonce_next = e->dev_nonce_next;
	d->join_nonce_last = e->join_nonce_last;
	d->rjcount0 = e->rjcount0;
	d->rjcount1 = e->rjcount1;
	if (e->joined) {
		d->joined = true;
		d->opt_neg = e->opt_neg;
		memcpy(d->net_id, e->net_id, LW_NETID_LEN);
		memcpy(d->dev_addr, e->dev_addr, LW_DEVADDR_LEN);
		lw_key_set(&d->keys.s_nwk_s_int_key, e->snwk);
	}
}

int st_update(struct st_file *s, const struct lw_sim_device *d)
{
	struct st_entry *e = find(s, d->dev_eui);

	if (e == NULL)
		e = add(s, d->dev_eui);
	if (e == NULL)
		return DJ_ENOMEM;
	e->dev_nonce_next = d->dev_nonce_next;
	e->join_nonce_last = d->join_nonce_last;
	e->rjcount0 = d->rjcount0;
	e->rjcount1 = d->rjcount1;
	e->joined = d->joined;
	e->opt_neg = d->opt_neg;
	memcpy(e->net_id, d->net_id, LW_NETID_LEN);
	memcpy(e->dev_addr, d->dev_addr, LW_DEVADDR_LEN);
	if (d->joined)
		lw_key_export(&d->keys.s_nwk_s_int_key, e->snwk);
	return DJ_EOK;
}

int st_save(const struct st_file *s, const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8], eui[2 * LW_EUI_LEN + 1], jn[24];
	char nid[2 * LW_NETID_LEN + 1], da[2 * LW_DEVADDR_LEN + 1], key[2 * LW_KEY_LEN + 1];
	FILE *f = NULL;
	int fd = -1, ret = DJ_EIO, n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, "state %s: path too long", path);
		goto out;
	}
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, ST_MODE_SECRET);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "state %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	fprintf(f, "%s\n", ST_HEADER);
	for (size_t i = 0; i < s->n; i++) {
		const struct st_entry *e = &s->e[i];

		dj_hex_format_upper(e->dev_eui, LW_EUI_LEN, eui);
		if (e->join_nonce_last < 0)
			snprintf(jn, sizeof(jn), "-");
		else
			snprintf(jn, sizeof(jn), "%lld", (long long)e->join_nonce_last);
		fprintf(f, "%s %u %s %u %u", eui, (unsigned)e->dev_nonce_next, jn,
			(unsigned)e->rjcount0, (unsigned)e->rjcount1);
		if (e->joined) {
			dj_hex_format_upper(e->net_id, LW_NETID_LEN, nid);
			dj_hex_format_upper(e->dev_addr, LW_DEVADDR_LEN, da);
			dj_hex_format(e->snwk, LW_KEY_LEN, key);
			fprintf(f, " %d %s %s %s", e->opt_neg ? 1 : 0, nid, da, key);
		}
		fputc('\n', f);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(err, errlen, "state %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		snprintf(err, errlen, "state %s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "state %s: %s", path, strerror(errno));
		goto out;
	}
	ret = DJ_EOK;
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (ret != DJ_EOK)
		(void)unlink(tmp);
	return ret;
}

void st_free(struct st_file *s)
{
	if (s == NULL)
		return;
	if (s->e != NULL)
		OPENSSL_clear_free(s->e, s->cap * sizeof(*s->e));
	free(s);
}
