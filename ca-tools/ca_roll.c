/*
 * ca_roll.c - rollover state: parse, atomic save, lock.
 *
 * Atomicity: a crash while saving leaves either the old or the new state file, never a torn
 * one: the new content is written to PATH.tmp and fsync'ed, then renamed over PATH (rename(2)
 * is atomic), then the folder is fsync'ed so the rename itself is durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "ca-tools/ca_roll.h"
#include "common/dj_err.h"
#include "common/dj_lines.h"

static const char *const step_names[] = { "start", "published", "switched", "done" };

const char *ca_roll_step_name(enum ca_roll_step s)
{
	return s <= CA_ROLL_DONE ? step_names[s] : "?";
}

/* set_str - copy a value into a fixed field; false if it does not fit */
static int set_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (n >= cap)
		return 0;
	memcpy(dst, v, n + 1);
	return 1;
}

/* set_num - parse an unsigned decimal into *out (bounded by max) */
static int set_num(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (*v < '0' || *v > '9')
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n > max)
		return 0;
	*out = n;
	return 1;
}

#define VERSION_MAX 1000
#define TIMEOUT_MS_MAX 3600000u	/* an hour */
#define F(name) offsetof(struct ca_roll_state, name), sizeof(((struct ca_roll_state *)0)->name)

/* The keys of a state file beyond version and step: where each goes, and its bound. */
enum key_kind { K_STR, K_U32, K_I64, K_UINT };

struct key {
	const char *name;
	enum key_kind kind;
	size_t off, size;	/* of the field in struct ca_roll_state */
	uint64_t max;		/* numbers */
};

static const struct key keys[] = {
	{ "owner", K_STR, F(owner), 0 },
	{ "zone", K_STR, F(zone), 0 },
	{ "current", K_STR, F(current), 0 },
	{ "next", K_STR, F(next), 0 },
	{ "ttl", K_U32, F(ttl), UINT32_MAX },
	{ "cache_cap", K_U32, F(cache_cap), UINT32_MAX },
	{ "min_wait", K_U32, F(min_wait), UINT32_MAX },
	{ "published_at", K_I64, F(published_at), INT64_MAX },
	{ "switched_at", K_I64, F(switched_at), INT64_MAX },
	{ "ns", K_STR, F(ns), 0 },
	{ "tsig_file", K_STR, F(tsig_file), 0 },
	{ "ta_file", K_STR, F(ta_file), 0 },
	{ "switch_cmd", K_STR, F(switch_cmd), 0 },
	{ "timeout_ms", K_UINT, F(timeout_ms), TIMEOUT_MS_MAX },
};

/* key_find - the entry of \p name in keys[], or NULL */
static const struct key *key_find(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* set_field - parse \p v into the field of \p s that \p k names; false if it does not fit */
static int set_field(struct ca_roll_state *s, const struct key *k, const char *v)
{
	char *field = (char *)s + k->off;
	uint64_t n;
	uint32_t u32;
	int64_t i64;
	unsigned u;

	if (k->kind == K_STR)
		return set_str(field, k->size, v);
	if (!set_num(v, k->max, &n))
		return 0;
	switch (k->kind) {
	case K_U32:
		u32 = (uint32_t)n;
		memcpy(field, &u32, sizeof(u32));
		break;
	case K_I64:
		i64 = (int64_t)n;
		memcpy(field, &i64, sizeof(i64));
		break;
	case K_UINT:
		u = (unsigned)n;
		memcpy(field, &u, sizeof(u));
		break;
	case K_STR:
		break;
	}
	return 1;
}

int ca_roll_load(const char *path, struct ca_roll_state *out, char *err, size_t errlen)
{
	char line[CA_ROLL_PATH_MAX + 64], *eq, *v;
	struct ca_roll_state s;
	FILE *f;
	const struct key *k;
	int lineno = 0, ok, version = 0, rc = DJ_EMALFORMED;
	uint64_t n;
	size_t i;

	memset(&s, 0, sizeof(s));
	f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return DJ_ENOENT;
		dj_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		return DJ_EIO;
	}
	while ((rc = dj_lines_next(f, line, sizeof(line), path, &lineno, err, errlen)) == 1) {
		rc = DJ_EMALFORMED;
		eq = strchr(line, '=');
		if (eq == NULL) {
			dj_errbuf(err, errlen, "%s:%d: expected key=value", path, lineno);
			goto out;
		}
		*eq = '\0';
		v = eq + 1;
		ok = 1;
		if (strcmp(line, "version") == 0) {
			ok = set_num(v, VERSION_MAX, &n);
			version = (int)n;
		} else if (strcmp(line, "step") == 0) {
			ok = 0;
			for (i = 0; i <= CA_ROLL_DONE; i++)
				if (strcmp(v, step_names[i]) == 0) {
					s.step = (enum ca_roll_step)i;
					ok = 1;
				}
		} else if ((k = key_find(line)) != NULL) {
			ok = set_field(&s, k, v);
		} else {
			dj_errbuf(err, errlen, "%s:%d: unknown key '%.40s'", path, lineno, line);
			goto out;
		}
		if (!ok) {
			dj_errbuf(err, errlen, "%s:%d: bad value for %s", path, lineno, line);
			goto out;
		}
	}
	if (rc != 0)
		goto out;	/* a line too long */
	rc = DJ_EMALFORMED;
	if (version != CA_ROLL_VERSION || s.owner[0] == '\0' || s.current[0] == '\0' ||
	    s.next[0] == '\0' || s.zone[0] == '\0' || s.ns[0] == '\0') {
		dj_errbuf(err, errlen, "%s: not a complete version-%d rollover state", path,
			  CA_ROLL_VERSION);
		goto out;
	}
	*out = s;
	rc = DJ_EOK;
out:
	fclose(f);
	return rc;
}

int ca_roll_save(const char *path, const struct ca_roll_state *s, char *err, size_t errlen)
{
	char tmp[CA_ROLL_PATH_MAX + 8], dir[CA_ROLL_PATH_MAX];
	FILE *f = NULL;
	int fd, dfd, rc = DJ_EIO;

	if (strlen(path) >= CA_ROLL_PATH_MAX) {
		dj_errbuf(err, errlen, "state file path too long");
		return DJ_EINVAL;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		dj_errbuf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return DJ_EIO;
	}
	fprintf(f, "# danejoin-ca rollover state; written atomically, do not edit while running\n");
	fprintf(f, "version=%d\nstep=%s\nowner=%s\nzone=%s\ncurrent=%s\nnext=%s\n",
		CA_ROLL_VERSION, ca_roll_step_name(s->step), s->owner, s->zone, s->current, s->next);
	fprintf(f, "ttl=%" PRIu32 "\ncache_cap=%" PRIu32 "\nmin_wait=%" PRIu32 "\n", s->ttl,
		s->cache_cap, s->min_wait);
	fprintf(f, "published_at=%" PRId64 "\nswitched_at=%" PRId64 "\n", s->published_at,
		s->switched_at);
	fprintf(f, "ns=%s\ntsig_file=%s\nta_file=%s\nswitch_cmd=%s\ntimeout_ms=%u\n", s->ns,
		s->tsig_file, s->ta_file, s->switch_cmd, s->timeout_ms);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		dj_errbuf(err, errlen, "%s: %s", tmp, strerror(errno));
		fclose(f);
		goto out;
	}
	if (fclose(f) != 0) {
		dj_errbuf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) != 0) {
		dj_errbuf(err, errlen, "rename %s: %s", path, strerror(errno));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return DJ_EOK;
out:
	(void)unlink(tmp);
	return rc;
}

int ca_roll_lock(const char *path, int *fd, char *err, size_t errlen)
{
	char lock[CA_ROLL_PATH_MAX + 8];

	*fd = -1;
	snprintf(lock, sizeof(lock), "%s.lock", path);
	*fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		dj_errbuf(err, errlen, "%s: %s", lock, strerror(errno));
		return DJ_EIO;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		dj_errbuf(err, errlen, "%s: another rollover run holds the lock", lock);
		close(*fd);
		*fd = -1;
		return DJ_EBUSY;
	}
	return DJ_EOK;
}

void ca_roll_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
