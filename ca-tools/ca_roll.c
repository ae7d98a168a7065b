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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "ca-tools/ca_roll.h"
#include "common/dj_err.h"

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

int ca_roll_load(const char *path, struct ca_roll_state *out, char *err, size_t errlen)
{
	char line[CA_ROLL_PATH_MAX + 64], *eq, *v;
	struct ca_roll_state s;
	FILE *f;
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
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			dj_errbuf(err, errlen, "%s:%d: line too long", path, lineno);
			goto out;
		}
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL) {
			dj_errbuf(err, errlen, "%s:%d: expected key=value", path, lineno);
			goto out;
		}
		*eq = '\0';
		v = eq + 1;
		ok = 1;
		if (strcmp(line, "version") == 0) {
			ok = set_num(v, 1000, &n);
			version = (int)n;
		} else if (strcmp(line, "step") == 0) {
			ok = 0;
			for (i = 0; i <= CA_ROLL_DONE; i++)
				if (strcmp(v, step_names[i]) == 0) {
					s.step = (enum ca_roll_step)i;
					ok = 1;
				}
		} else if (strcmp(line, "owner") == 0) {
			ok = set_str(s.owner, sizeof(s.owner), v);
		} else if (strcmp(line, "zone") == 0) {
			ok = set_str(s.zone, sizeof(s.zone), v);
		} else if (strcmp(line, "current") == 0) {
			ok = set_str(s.current, sizeof(s.current), v);
		} else if (strcmp(line, "next") == 0) {
			ok = set_str(s.next, sizeof(s.next), v);
		} else if (strcmp(line, "ttl") == 0) {
			ok = set_num(v, UINT32_MAX, &n);
			s.ttl = (uint32_t)n;
		} else if (strcmp(line, "cache_cap") == 0) {
			ok = set_num(v, UINT32_MAX, &n);
			s.cache_cap = (uint32_t)n;
		} else if (strcmp(line, "min_wait") == 0) {
			ok = set_num(v, UINT32_MAX, &n);
			s.min_wait = (uint32_t)n;
		} else if (strcmp(line, "published_at") == 0) {
			ok = set_num(v, INT64_MAX, &n);
			s.published_at = (int64_t)n;
		} else if (strcmp(line, "switched_at") == 0) {
			ok = set_num(v, INT64_MAX, &n);
			s.switched_at = (int64_t)n;
		} else if (strcmp(line, "ns") == 0) {
			ok = set_str(s.ns, sizeof(s.ns), v);
		} else if (strcmp(line, "tsig_file") == 0) {
			ok = set_str(s.tsig_file, sizeof(s.tsig_file), v);
		} else if (strcmp(line, "ta_file") == 0) {
			ok = set_str(s.ta_file, sizeof(s.ta_file), v);
		} else if (strcmp(line, "switch_cmd") == 0) {
			ok = set_str(s.switch_cmd, sizeof(s.switch_cmd), v);
		} else if (strcmp(line, "timeout_ms") == 0) {
			ok = set_num(v, 3600000, &n);
			s.timeout_ms = (unsigned)n;
		} else {
			dj_errbuf(err, errlen, "%s:%d: unknown key '%.40s'", path, lineno, line);
			goto out;
		}
		if (!ok) {
			dj_errbuf(err, errlen, "%s:%d: bad value for %s", path, lineno, line);
			goto out;
		}
	}
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
