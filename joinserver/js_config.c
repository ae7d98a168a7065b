/*
 * js_config.c - INI configuration: a table of known keys, validated as they are read.
 *
 * Every key the programs understand is one row of key_table below; a section is known when
 * some row names it. Adding a key (or a section) is adding a row. Anything not in the table
 * is an error, never ignored: a misspelt "master_key_fle" must not leave the default in force
 * unnoticed (DESIGN.md trust rule 6).
 *
 * libinih as packaged does not pass line numbers to the handler, so the file is fed through
 * our own fgets-style reader, which counts lines, refuses over-long lines (longer than inih's
 * line buffer, which inih would otherwise split into two), checks section headers (inih reports
 * nothing for an empty section), and stops the parse at the first error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>

#include "dj_err.h"
#include "dj_hex.h"
#include "js_config.h"
#include "js_store.h"

enum key_type {
	KT_PATH,	/* a file name; relative names are taken from the config file's directory */
	KT_UINT,	/* unsigned, range-checked */
	KT_INT64,	/* int64_t, range-checked */
	KT_HEX,		/* exactly hex_len bytes of hex */
};

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;		/* into struct js_config */
	long long min, max;	/* KT_UINT, KT_INT64 */
	size_t hex_len;		/* KT_HEX */
	bool required;
};

#define CFG_OFF(field) offsetof(struct js_config, field)

/* key_table - every known [section] key; keep config/danejoin.conf.example in step */
static const struct key_def key_table[] = {
	{ "store", "path", KT_PATH, CFG_OFF(store_path), 0, 0, 0, true },
	{ "store", "devnonce_history", KT_UINT, CFG_OFF(devnonce_history), JS_DEVNONCE_HIST_MIN,
	  JS_DEVNONCE_HIST_MAX, 0, false },
	{ "store", "batch_max", KT_UINT, CFG_OFF(batch_max), JS_CONFIG_BATCH_MIN,
	  JS_CONFIG_BATCH_MAX, 0, false },
	{ "keys", "master_key_file", KT_PATH, CFG_OFF(master_key_file), 0, 0, 0, true },
	{ "join", "net_id", KT_HEX, CFG_OFF(net_id), 0, 0, LW_NETID_LEN, false },
	{ "join", "session_lifetime", KT_INT64, CFG_OFF(session_lifetime), JS_CONFIG_SESSION_MIN,
	  JS_CONFIG_SESSION_MAX, 0, false },
};

#define N_KEYS DJ_ARRAY_LEN(key_table)

struct parse_ctx {
	const char *path;
	FILE *fp;
	char *dir;		/* the config file's directory, for relative paths */
	int line;
	struct js_config cfg;
	bool seen[N_KEYS];
	int rc;			/* the first error, DJ_EOK so far */
	char *err;
	size_t errlen;
};

/* fail - record the first error as "FILE:LINE: message" (line 0: "FILE: message") */
static void DJ_PRINTF(4, 5) fail(struct parse_ctx *c, int rc, int line, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (c->rc != DJ_EOK)
		return;
	c->rc = rc;
	if (c->err == NULL || c->errlen == 0)
		return;
	if (line > 0)
		n = snprintf(c->err, c->errlen, "%s:%d: ", c->path, line);
	else
		n = snprintf(c->err, c->errlen, "%s: ", c->path);
	if (n < 0 || (size_t)n >= c->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* section_known - whether some row of key_table belongs to section \p name */
static bool section_known(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < N_KEYS; i++)
		if (strlen(key_table[i].section) == len &&
		    memcmp(key_table[i].section, name, len) == 0)
			return true;
	return false;
}

/* check_section_line - catch an unknown [section] even when no key follows it */
static void check_section_line(struct parse_ctx *c, const char *s)
{
	const char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '[')
		return;
	s++;
	end = strchr(s, ']');
	if (end == NULL) {
		fail(c, DJ_ECONFIG, c->line, "syntax error: '[' without ']'");
		return;
	}
	if (!section_known(s, (size_t)(end - s)))
		fail(c, DJ_ECONFIG, c->line, "[%.*s]: unknown section", (int)(end - s), s);
}

/* reader - fgets for inih that counts lines and stops the parse at the first error */
static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *c = stream;
	size_t len;
	const char *s = str;

	if (c->rc != DJ_EOK)
		return NULL;
	if (fgets(str, num, c->fp) == NULL) {
		if (ferror(c->fp))
			fail(c, DJ_EIO, 0, "read error");
		return NULL;
	}
	c->line++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && !feof(c->fp)) {
		fail(c, DJ_ECONFIG, c->line, "line longer than %d characters", num - 2);
		return NULL;
	}
	if (c->line == 1 && (unsigned char)s[0] == 0xef && (unsigned char)s[1] == 0xbb &&
	    (unsigned char)s[2] == 0xbf)
		s += 3;		/* UTF-8 BOM: inih skips it too */
	check_section_line(c, s);
	return c->rc == DJ_EOK ? str : NULL;
}

/* parse_path - store \p value as a path, relative ones anchored at the config directory */
static int parse_path(struct parse_ctx *c, const char *value, char **dst)
{
	char *p;
	size_t n;

	if (value[0] == '\0')
		return DJ_EMALFORMED;
	if (value[0] == '/' || strcmp(c->dir, ".") == 0) {
		p = strdup(value);
	} else {
		n = strlen(c->dir) + 1 + strlen(value) + 1;
		p = malloc(n);
		if (p != NULL)
			snprintf(p, n, "%s/%s", c->dir, value);
	}
	if (p == NULL)
		return DJ_ENOMEM;
	free(*dst);
	*dst = p;
	return DJ_EOK;
}

/* parse_int - a plain decimal integer (no sign, no spaces) within [min, max] */
static int parse_int(const char *value, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (value[0] < '0' || value[0] > '9')
		return DJ_EMALFORMED;
	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return DJ_EMALFORMED;
	*out = v;
	return DJ_EOK;
}

/* set_value - validate \p value for key \p k and store it in the config being built */
static void set_value(struct parse_ctx *c, const struct key_def *k, const char *value)
{
	char *base = (char *)&c->cfg + k->offset;
	long long v;
	int rc;

	switch (k->type) {
	case KT_PATH:
		rc = parse_path(c, value, (char **)(void *)base);
		if (rc == DJ_ENOMEM)
			fail(c, rc, c->line, "out of memory");
		else if (rc != DJ_EOK)
			fail(c, DJ_ECONFIG, c->line, "[%s] %s: expected a file name", k->section,
			     k->name);
		break;
	case KT_UINT:
	case KT_INT64:
		if (parse_int(value, k->min, k->max, &v) != DJ_EOK) {
			fail(c, DJ_ECONFIG, c->line,
			     "[%s] %s: expected an integer from %lld to %lld", k->section,
			     k->name, k->min, k->max);
			break;
		}
		if (k->type == KT_UINT)
			*(unsigned *)(void *)base = (unsigned)v;
		else
			*(int64_t *)(void *)base = (int64_t)v;
		break;
	case KT_HEX:
		if (dj_hex_parse(value, (uint8_t *)base, k->hex_len) != DJ_EOK)
			fail(c, DJ_ECONFIG, c->line, "[%s] %s: expected %zu hex digits", k->section,
			     k->name, 2 * k->hex_len);
		break;
	}
}

/* handler - inih callback: find the key in key_table and validate its value */
static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *c = user;
	size_t i;

	if (c->rc != DJ_EOK)
		return 0;
	if (section[0] == '\0') {
		fail(c, DJ_ECONFIG, c->line, "%s: key outside any [section]", name);
		return 0;
	}
	for (i = 0; i < N_KEYS; i++)
		if (strcmp(key_table[i].section, section) == 0 &&
		    strcmp(key_table[i].name, name) == 0)
			break;
	if (i == N_KEYS) {
		fail(c, DJ_ECONFIG, c->line, "[%s] %s: unknown key", section, name);
		return 0;
	}
	if (c->seen[i]) {
		fail(c, DJ_ECONFIG, c->line,
		     "[%s] %s: set twice (or continued on an indented line)", section, name);
		return 0;
	}
	c->seen[i] = true;
	set_value(c, &key_table[i], value);
	return c->rc == DJ_EOK;
}

/* dir_of - the directory part of \p path ("." when there is none), allocated */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

void js_config_defaults(struct js_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->devnonce_history = JS_DEVNONCE_HIST_DEFAULT;
	cfg->batch_max = JS_BATCH_DEFAULT;
	cfg->session_lifetime = JS_CONFIG_SESSION_DEFAULT;
}

void js_config_free(struct js_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->store_path);
	free(cfg->master_key_file);
	js_config_defaults(cfg);
}

int js_config_load(const char *path, struct js_config *out, char *err, size_t errlen)
{
	struct parse_ctx c;
	struct stat st;
	size_t i;
	int ret;

	memset(&c, 0, sizeof(c));
	c.path = path;
	c.err = err;
	c.errlen = errlen;
	js_config_defaults(&c.cfg);
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	c.dir = dir_of(path);
	if (c.dir == NULL) {
		fail(&c, DJ_ENOMEM, 0, "out of memory");
		goto out;
	}
	c.fp = fopen(path, "r");
	if (c.fp == NULL) {
		ret = errno;
		fail(&c, ret == ENOENT ? DJ_ENOENT : ret == EACCES ? DJ_EACCES : DJ_EIO, 0,
		     "cannot open: %s", strerror(ret));
		goto out;
	}
	if (fstat(fileno(c.fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		fail(&c, DJ_EIO, 0, "not a regular file");
		goto out;
	}
	ret = ini_parse_stream(reader, &c, handler, &c);
	if (c.rc != DJ_EOK)
		goto out;
	if (ret == -2) {
		fail(&c, DJ_ENOMEM, 0, "out of memory");
		goto out;
	}
	if (ret != 0) {
		fail(&c, DJ_ECONFIG, ret, "syntax error: expected [section] or key = value");
		goto out;
	}
	for (i = 0; i < N_KEYS; i++)
		if (key_table[i].required && !c.seen[i]) {
			fail(&c, DJ_ECONFIG, 0, "[%s] %s: required key is missing",
			     key_table[i].section, key_table[i].name);
			goto out;
		}
	*out = c.cfg;
	js_config_defaults(&c.cfg);	/* ownership moved to *out */
out:
	if (c.fp != NULL)
		fclose(c.fp);
	free(c.dir);
	js_config_free(&c.cfg);
	return c.rc;
}
