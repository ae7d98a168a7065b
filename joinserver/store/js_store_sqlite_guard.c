/*
 * js_store_sqlite_guard.c - the SQLite backend noticing what it cannot survive.
 *
 * DESCRIPTION
 *	- The files under the open store: SQLite keeps writing into its open descriptors, so a
 *	  database or write-ahead log unlinked or replaced under a running daemon takes every
 *	  later commit with it (into an inode nobody will read again) while the joins are answered
 *	  Success. Before each commit the paths are stat()ed (two system calls per transaction,
 *	  which carries a whole group of joins) and compared with the identities seen at open; a
 *	  difference refuses that commit and every later change, logged once. When only the log
 *	  went, a checkpoint copies what the still-open log holds into the database file, so that
 *	  what was already answered is not lost with it. The identity is read with statx() asking
 *	  for the inode number only: a stat() that reports the times makes the kernel (Linux 6.13
 *	  and later, multigrain timestamps) give the file's next write a fine-grained mtime, and
 *	  on ext4 without a journal every fdatasync then also writes the inode's block: one more
 *	  synchronous write per commit (docs/performance.md, step 17).
 *	- A full disk: counted, logged once when it begins and once when writes succeed again;
 *	  every change in between is refused (the join engine then answers with an error).
 *	- A daemon's open (props->verify): PRAGMA quick_check before anything reads the tables,
 *	  and a real write, so that an unwritable file refuses the start instead of every join.
 *	- Checkpoints run on a thread of their own (js_store_sqlite_ckpt.c), and
 *	  journal_size_limit truncates the log when the writer restarts it after them, so that it
 *	  does not keep the size of its largest burst.
 */
#define _GNU_SOURCE	/* statx() */
#include "store/js_store_sqlite_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/dj_err.h"
#include "common/dj_log.h"

#define SQ_WAL_SUFFIX "-wal"
#define SQ_JOURNAL_SIZE_LIMIT (64 * 1024 * 1024)	/* bytes the log keeps after a checkpoint */
#define SQ_CHECK_LINE_MAX 512
#define SQ_PRIMARY_CODE(rc) ((rc) & 0xff)	/* an extended result code's primary code */

/* file_id - the device and inode of \p path, without asking for its times (see above) */
static int file_id(const char *path, dev_t *dev, ino_t *ino)
{
	struct statx sx;
	struct stat st;

	if (statx(AT_FDCWD, path, 0, STATX_INO, &sx) == 0) {
		if ((sx.stx_mask & STATX_INO) != 0) {
			*dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
			*ino = (ino_t)sx.stx_ino;
			return 0;
		}
	} else if (errno != ENOSYS && errno != EPERM) {	/* EPERM: seccomp without statx */
		return -1;
	}
	if (stat(path, &st) != 0)
		return -1;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/* same_file - \p path is the file of identity \p dev / \p ino (false: gone or another) */
static bool same_file(const char *path, dev_t dev, ino_t ino, bool *gone)
{
	dev_t d;
	ino_t i;

	if (file_id(path, &d, &i) != 0) {
		*gone = errno == ENOENT;
		return false;
	}
	*gone = false;
	return d == dev && i == ino;
}

/* remember_wal - record the identity of the log once it exists */
static void remember_wal(struct js_store__sq *q)
{
	if (!q->wal_known && file_id(q->wal_path, &q->wal_dev, &q->wal_ino) == 0)
		q->wal_known = true;
}

int js_store__sq_guard_open(struct js_store *s, const char *path)
{
	struct js_store__sq *q = s->be;
	char sql[64];
	size_t n = strlen(path) + sizeof(SQ_WAL_SUFFIX);

	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%d", SQ_JOURNAL_SIZE_LIMIT);
	if (js_store__sq_exec(q->w, sql) != DJ_EOK)
		return DJ_ESQL;
	q->path = strdup(path);
	q->wal_path = malloc(n);
	if (q->path == NULL || q->wal_path == NULL)
		return DJ_ENOMEM;
	snprintf(q->wal_path, n, "%s%s", path, SQ_WAL_SUFFIX);
	if (file_id(path, &q->db_dev, &q->db_ino) != 0) {
		dj_err("store: %s: %s", path, strerror(errno));
		return DJ_EIO;
	}
	remember_wal(q);
	return DJ_EOK;
}

int js_store__sq_guard_check(struct js_store *s)
{
	struct js_store__sq *q = s->be;
	bool gone = false;

	if (q->path == NULL)
		return DJ_EOK;	/* not opened yet (schema set-up) */
	if (q->files_bad)
		return DJ_EIO;
	if (!same_file(q->path, q->db_dev, q->db_ino, &gone)) {
		q->files_bad = true;
		q->wal_lost = false;
	} else if (q->wal_known && !same_file(q->wal_path, q->wal_dev, q->wal_ino, &gone)) {
		q->files_bad = true;
		q->wal_lost = true;
	} else {
		remember_wal(q);
		return DJ_EOK;
	}
	js_store__files_replaced(s);
	dj_err("store: %s was %s while the store is open: every change is refused from now on, "
	       "joins are answered with an error; restart after checking the files",
	       q->wal_lost ? q->wal_path : q->path, gone ? "unlinked" : "replaced");
	return DJ_EIO;
}

void js_store__sq_guard_rescue(struct js_store *s)
{
	struct js_store__sq *q = s->be;
	int logged = 0, done = 0;

	if (!q->wal_lost)
		return;
	q->wal_lost = false;	/* once */
	/* the open log still holds what was committed: copy it into the database file */
	if (sqlite3_wal_checkpoint_v2(q->w, NULL, SQLITE_CHECKPOINT_FULL, &logged, &done) ==
	    SQLITE_OK && logged == done)
		dj_err("store: the %d pages of the lost write-ahead log were copied into %s",
		       done, q->path);
	else
		dj_err("store: copying the lost write-ahead log into %s failed (%d of %d pages): "
		       "%s", q->path, done, logged, sqlite3_errmsg(q->w));
}

bool js_store__sq_is_full(sqlite3 *db)
{
	return SQ_PRIMARY_CODE(sqlite3_extended_errcode(db)) == SQLITE_FULL ||
	       sqlite3_system_errno(db) == ENOSPC;
}

void js_store__sq_fault(struct js_store *s, int ret, bool full)
{
	struct js_store__sq *q = s->be;

	if (ret == DJ_EOK && !q->disk_full)
		return;
	js_store__fault(s, ret == DJ_EOK, full);
	if (full && !q->disk_full)
		dj_err("store: the disk holding %s is full: every change is refused, joins are "
		       "answered with an error, until space is freed", q->path);
	else if (ret == DJ_EOK && q->disk_full)
		dj_notice("store: writes to %s succeed again", q->path);
	if (ret == DJ_EOK || full)
		q->disk_full = full;
}

/* one_line - \p in with control characters (SQLite's report lines hold newlines) as spaces */
static const char *one_line(const char *in, char out[SQ_CHECK_LINE_MAX])
{
	size_t i = 0;

	for (; in[i] != '\0' && i + 1 < SQ_CHECK_LINE_MAX; i++)
		out[i] = (unsigned char)in[i] < ' ' ? ' ' : in[i];
	out[i] = '\0';
	return out;
}

/* check_run - run one check pragma, each report line to \p cb; DJ_EMALFORMED unless "ok" */
static int check_run(sqlite3 *db, bool full, void (*cb)(const char *line, void *arg), void *arg)
{
	char buf[SQ_CHECK_LINE_MAX];
	sqlite3_stmt *st = NULL;
	int ret = DJ_EOK, rows = 0, rc;

	if (sqlite3_prepare_v2(db, full ? "PRAGMA integrity_check" : "PRAGMA quick_check", -1,
			       &st, NULL) != SQLITE_OK) {
		cb(sqlite3_errmsg(db), arg);
		return DJ_EMALFORMED;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		const char *line = t != NULL ? (const char *)t : "";

		if (rows++ > 0 || strcmp(line, "ok") != 0)
			ret = DJ_EMALFORMED;
		cb(one_line(line, buf), arg);
	}
	if (rc != SQLITE_DONE) {
		cb(sqlite3_errmsg(db), arg);	/* a page too broken to walk */
		ret = DJ_EMALFORMED;
	}
	sqlite3_finalize(st);
	return ret;
}

int js_store__sq_check(struct js_store *s, bool full, void (*cb)(const char *line, void *arg),
		       void *arg)
{
	struct js_store__sq *q = s->be;
	int ret;

	pthread_mutex_lock(&q->wlock);
	ret = check_run(q->w, full, cb, arg);
	pthread_mutex_unlock(&q->wlock);
	return ret;
}

/* first_line - a check callback keeping the first problem reported */
static void first_line(const char *line, void *arg)
{
	char *out = arg;

	if (out[0] == '\0' && strcmp(line, "ok") != 0)
		snprintf(out, SQ_CHECK_LINE_MAX, "%s", line);
}

int js_store__sq_verify_sound(sqlite3 *db, const char *path)
{
	char first[SQ_CHECK_LINE_MAX] = "";

	if (check_run(db, false, first_line, first) == DJ_EOK)
		return DJ_EOK;
	dj_err("store: %s fails its integrity check (PRAGMA quick_check): %s; run "
	       "danejoin-devices check, and restore a backup", path, first);
	return DJ_EMALFORMED;
}

int js_store__sq_verify_writable(struct js_store *s, const char *path)
{
	struct js_store__sq *q = s->be;
	int ret = DJ_EACCES;

	if (sqlite3_db_readonly(q->w, "main") != 1 &&
	    sqlite3_exec(q->w, "BEGIN IMMEDIATE; UPDATE meta SET v=v WHERE k='instance'; COMMIT",
			 NULL, NULL, NULL) == SQLITE_OK)
		return DJ_EOK;
	if (sqlite3_get_autocommit(q->w) == 0)
		(void)sqlite3_exec(q->w, "ROLLBACK", NULL, NULL, NULL);
	if (js_store__sq_is_full(q->w))
		ret = DJ_ENOSPC;
	dj_err("store: %s cannot be written (%s): refusing to start; check the mode and owner "
	       "of the file, of its -wal and -shm files and of their directory, and the free space",
	       path, sqlite3_db_readonly(q->w, "main") == 1 ? "opened read-only"
							     : sqlite3_errmsg(q->w));
	return ret;
}
