/*
 * ca_roll.h - the on-disk state of a TLSA rollover (RFC 7671 §8.1).
 *
 * DESCRIPTION
 *	A rollover runs in steps that each change the DNS once, and between them waits at least the
 *	TTL plus the resolvers' cache cap. The state file records which step is done, so that a run
 *	that was stopped (a crash, a reboot, an operator's ^C) continues where it was: re-running the
 *	same command, or "rollover --resume FILE", never repeats or skips a step. The file is small
 *	"key=value" text, rewritten atomically (temporary file, fsync, rename, fsync of the folder),
 *	and a lock (flock on FILE.lock) keeps two runs from working on it at once.
 *
 *	Steps: START -> PUBLISHED (current + next TLSA both in the DNS, confirmed secure; time
 *	recorded) -> [wait TTL + cache cap] -> SWITCHED (the server now uses the next key) ->
 *	DONE (the current TLSA retired).
 */
#ifndef DJ_CA_TOOLS_CA_ROLL_H
#define DJ_CA_TOOLS_CA_ROLL_H

#include <stddef.h>
#include <stdint.h>

#include "ca-tools/ca_name.h"
#include "common/dj_compiler.h"

#define CA_ROLL_VERSION 1
#define CA_ROLL_RDATA_MAX 1100	/* "U S M" + up to 512 bytes of data in hex */
#define CA_ROLL_PATH_MAX 1024

enum ca_roll_step {
	CA_ROLL_START = 0,
	CA_ROLL_PUBLISHED = 1,
	CA_ROLL_SWITCHED = 2,
	CA_ROLL_DONE = 3,
};

struct ca_roll_state {
	enum ca_roll_step step;
	char owner[CA_NAME_BUF];		/* the TLSA owner name */
	char zone[CA_NAME_BUF];
	char current[CA_ROLL_RDATA_MAX];	/* "U S M hex" of the record to retire */
	char next[CA_ROLL_RDATA_MAX];		/* "U S M hex" of the record to introduce */
	uint32_t ttl;				/* TTL of the new record */
	uint32_t cache_cap;			/* resolvers' cache cap, seconds */
	uint32_t min_wait;			/* operator's floor on the wait, seconds */
	int64_t published_at;			/* when PUBLISHED was confirmed (Unix time) */
	int64_t switched_at;
	/* How to reach the DNS again on --resume (paths, never secrets). */
	char ns[128];
	char tsig_file[CA_ROLL_PATH_MAX];
	char ta_file[CA_ROLL_PATH_MAX];
	char switch_cmd[CA_ROLL_PATH_MAX];	/* may be empty */
	unsigned timeout_ms;
};

/*! \brief The step's name ("start", "published", "switched", "done"). */
const char *ca_roll_step_name(enum ca_roll_step s);

/*!
 * \brief Read a state file. \retval DJ_EOK, DJ_ENOENT (no file), DJ_EMALFORMED (with \p err)
 */
int ca_roll_load(const char *path, struct ca_roll_state *out, char *err, size_t errlen)
	DJ_MUSTCHECK;

/*!
 * \brief Write the state atomically: PATH.tmp, fsync, rename over PATH, fsync the folder.
 * \retval DJ_EOK, DJ_EIO
 */
int ca_roll_save(const char *path, const struct ca_roll_state *s, char *err, size_t errlen)
	DJ_MUSTCHECK;

/*!
 * \brief Take the lock PATH.lock (non-blocking). *\p fd is closed by ca_roll_unlock().
 * \retval DJ_EOK, DJ_EBUSY (another run holds it), DJ_EIO
 */
int ca_roll_lock(const char *path, int *fd, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Release a lock of ca_roll_lock() (fd < 0 allowed). */
void ca_roll_unlock(int fd);

#endif /* DJ_CA_TOOLS_CA_ROLL_H */
