/*
 * test_store_walvfs.c - unit tests of the SQLite store's writer VFS (js_store_sqlite_vfs.c),
 * with real SQLite: the same transactions written through it and through the default VFS give
 * the same write-ahead log (frame by frame: page numbers, commit sizes, page bytes; the salts
 * and checksums are random per log by design), every frame went down in one write (or, with
 * the whole commit held until its sync, one write per commit), and a copy of the files taken
 * with the connection still open (a crash) opens, checks, and holds every committed row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/dj_err.h"
#include "store/js_store_sqlite_internal.h"

#define PATH_MAX_LEN 512
#define WAL_HDR 32
#define FRAME_HDR 24
#define PAGE 4096
#define TXNS 40
#define ROWS 25
#define BLOB_LEN 300
#define CKPT_AT 20		/* a checkpoint here: the next commit restarts the log */

/* tmp_path - a path for \p name under DJ_TEST_TMPDIR (or /tmp) */
static void tmp_path(const char *name, char out[PATH_MAX_LEN])
{
	const char *d = getenv("DJ_TEST_TMPDIR");

	snprintf(out, PATH_MAX_LEN, "%s/walvfs-%ld-%s.db", d != NULL ? d : "/tmp", (long)getpid(),
		 name);
}

/* rm_db - remove a database and the files SQLite keeps beside it */
static void rm_db(const char *path)
{
	char side[PATH_MAX_LEN + 8];

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

/* exec - run SQL, which must succeed */
static void exec(sqlite3 *db, const char *sql)
{
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* workload - the same transactions every time: inserts, updates, deletes, one checkpoint;
 * with \p defer, the log's frames held until each commit's sync (js_store__sq_vfs_defer) */
static sqlite3 *workload(const char *path, const char *vfs, bool defer)
{
	unsigned char blob[BLOB_LEN];
	sqlite3_stmt *ins, *upd, *del;
	sqlite3 *db = NULL;
	int k = 0;

	rm_db(path);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 vfs), SQLITE_OK);
	exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0");
	exec(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB NOT NULL, w INTEGER NOT NULL);"
		 "CREATE INDEX t_w ON t(w)");
	if (defer)
		assert_int_equal(js_store__sq_vfs_defer(db), DJ_EOK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t(k, v, w) VALUES(?1, ?2, ?3)", -1,
					    &ins, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE t SET v=?2, w=w+1 WHERE k=?1", -1, &upd,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "DELETE FROM t WHERE k=?1", -1, &del, NULL),
			 SQLITE_OK);
	for (int t = 0; t < TXNS; t++) {
		exec(db, "BEGIN IMMEDIATE");
		for (int r = 0; r < ROWS; r++, k++) {
			for (int i = 0; i < BLOB_LEN; i++)
				blob[i] = (unsigned char)(k * 31 + i * 7);
			sqlite3_bind_int(ins, 1, k);
			sqlite3_bind_blob(ins, 2, blob, BLOB_LEN, SQLITE_STATIC);
			sqlite3_bind_int(ins, 3, (k * 7919) % 1000);
			assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
			sqlite3_reset(ins);
		}
		sqlite3_bind_int(upd, 1, k / 2);
		sqlite3_bind_blob(upd, 2, blob, BLOB_LEN / 2, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(upd), SQLITE_DONE);
		sqlite3_reset(upd);
		sqlite3_bind_int(del, 1, k / 3);
		assert_int_equal(sqlite3_step(del), SQLITE_DONE);
		sqlite3_reset(del);
		exec(db, "COMMIT");
		if (t == CKPT_AT)
			exec(db, "PRAGMA wal_checkpoint(PASSIVE)");
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(upd);
	sqlite3_finalize(del);
	return db;	/* open: the log stays as written */
}

/* slurp - a whole file */
static unsigned char *slurp(const char *path, long *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	*len = ftell(f);
	assert_true(*len >= 0);
	rewind(f);
	b = malloc((size_t)*len + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)*len, f), (size_t)*len);
	fclose(f);
	return b;
}

/* file_copy - copy \p from to \p to */
static void file_copy(const char *from, const char *to)
{
	long len;
	unsigned char *b = slurp(from, &len);
	FILE *f = fopen(to, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, (size_t)len, f), (size_t)len);
	assert_int_equal(fclose(f), 0);
	free(b);
}

/* digest - count, sums and a hash of every row, as one text */
static void digest(sqlite3 *db, char *out, size_t cap)
{
	sqlite3_stmt *st;
	uint64_t h = 1469598103934665603ull;
	long n = 0;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT k, v, w FROM t ORDER BY k", -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_blob(st, 1);
		int len = sqlite3_column_bytes(st, 1);

		h = (h ^ (uint64_t)sqlite3_column_int64(st, 0)) * 1099511628211ull;
		h = (h ^ (uint64_t)sqlite3_column_int64(st, 2)) * 1099511628211ull;
		for (int i = 0; i < len; i++)
			h = (h ^ v[i]) * 1099511628211ull;
		n++;
	}
	sqlite3_finalize(st);
	snprintf(out, cap, "%ld rows %016llx", n, (unsigned long long)h);
}

/* same_log - the logs at \p wa and \p wb hold the same frames; how many */
static long same_log(const char *wa, const char *wb)
{
	unsigned char *la, *lb;
	long na, nb, frames;

	la = slurp(wa, &na);
	lb = slurp(wb, &nb);
	assert_int_equal(na, nb);
	assert_true(na > WAL_HDR);
	assert_int_equal((na - WAL_HDR) % (FRAME_HDR + PAGE), 0);
	frames = (na - WAL_HDR) / (FRAME_HDR + PAGE);
	assert_memory_equal(la, lb, 16);	/* magic, version, page size, checkpoint seq. */
	for (long i = 0; i < frames; i++) {
		const unsigned char *fa = la + WAL_HDR + i * (FRAME_HDR + PAGE);
		const unsigned char *fb = lb + WAL_HDR + i * (FRAME_HDR + PAGE);

		assert_memory_equal(fa, fb, 8);	/* page number, database size at commit */
		assert_memory_equal(fa + FRAME_HDR, fb + FRAME_HDR, PAGE);
	}
	free(la);
	free(lb);
	return frames;
}

/* The same transactions give the same log through either VFS, each frame in one write. */
static void test_wal_same(void **state)
{
	char a[PATH_MAX_LEN], b[PATH_MAX_LEN], wa[PATH_MAX_LEN + 8], wb[PATH_MAX_LEN + 8];
	const char *vfs = js_store__sq_vfs();
	unsigned long before;
	sqlite3 *da, *db;
	long frames;

	(void)state;
	assert_non_null(vfs);
	tmp_path("default", a);
	tmp_path("joined", b);
	snprintf(wa, sizeof(wa), "%s-wal", a);
	snprintf(wb, sizeof(wb), "%s-wal", b);
	da = workload(a, NULL, false);
	before = js_store__sq_vfs_joined();
	db = workload(b, vfs, false);
	frames = same_log(wa, wb);
	/* the log was restarted after the checkpoint: fewer frames than written */
	assert_true(js_store__sq_vfs_joined() - before > (unsigned long)frames);
	sqlite3_close(da);
	sqlite3_close(db);
	rm_db(a);
	rm_db(b);
}

/* With each commit held until its sync: the same log, and about one write per commit where
 * frame by frame took one per frame. */
static void test_wal_defer_same(void **state)
{
	char a[PATH_MAX_LEN], b[PATH_MAX_LEN], wa[PATH_MAX_LEN + 8], wb[PATH_MAX_LEN + 8];
	const char *vfs = js_store__sq_vfs();
	unsigned long before, apart, held;
	sqlite3 *da, *db;

	(void)state;
	tmp_path("apart", a);
	tmp_path("held", b);
	snprintf(wa, sizeof(wa), "%s-wal", a);
	snprintf(wb, sizeof(wb), "%s-wal", b);
	before = js_store__sq_vfs_writes();
	da = workload(a, vfs, false);
	apart = js_store__sq_vfs_writes() - before;
	before = js_store__sq_vfs_writes();
	db = workload(b, vfs, true);
	held = js_store__sq_vfs_writes() - before;
	(void)same_log(wa, wb);
	/* TXNS commits of several frames each (346 writes frame by frame); held: one per commit,
	 * and a few more: the set-up's commits before defer (CREATE TABLE: the log's header and
	 * its frames one by one) and the log's header synced on its own when the commit after
	 * the checkpoint restarts it (46 in all) */
	assert_true(apart > 5 * (unsigned long)TXNS);
	assert_true(held <= (unsigned long)TXNS + 8);
	sqlite3_close(da);
	sqlite3_close(db);
	rm_db(a);
	rm_db(b);
}

/* Holding a commit is refused below synchronous=FULL (a commit need not sync the log there,
 * and readers would see frames not yet written) and on a log not opened through this VFS. */
static void test_wal_defer_refused(void **state)
{
	char a[PATH_MAX_LEN];
	sqlite3 *db;

	(void)state;
	tmp_path("refused", a);
	rm_db(a);
	assert_int_equal(sqlite3_open_v2(a, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 js_store__sq_vfs()), SQLITE_OK);
	exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE t(k)");
	assert_int_equal(js_store__sq_vfs_defer(db), DJ_EINVAL);
	exec(db, "PRAGMA synchronous=FULL");
	assert_int_equal(js_store__sq_vfs_defer(db), DJ_EOK);
	sqlite3_close(db);
	assert_int_equal(sqlite3_open_v2(a, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	exec(db, "PRAGMA synchronous=FULL; INSERT INTO t VALUES(1)");
	assert_int_equal(js_store__sq_vfs_defer(db), DJ_ENOENT);
	sqlite3_close(db);
	rm_db(a);
}

/* A copy taken with the writer still open (a crash: nothing checkpointed at close) holds every
 * committed row, and passes SQLite's integrity check; frame by frame or each commit held. */
static void crash_copy(bool defer)
{
	char a[PATH_MAX_LEN], b[PATH_MAX_LEN], c[PATH_MAX_LEN];
	char from[PATH_MAX_LEN + 8], to[PATH_MAX_LEN + 8], want[64], got[64];
	sqlite3 *da, *db, *dc;
	sqlite3_stmt *st;

	tmp_path("ref", a);
	tmp_path("live", b);
	tmp_path("crash", c);
	da = workload(a, NULL, false);
	digest(da, want, sizeof(want));
	db = workload(b, js_store__sq_vfs(), defer);
	rm_db(c);
	file_copy(b, c);
	snprintf(from, sizeof(from), "%s-wal", b);
	snprintf(to, sizeof(to), "%s-wal", c);
	file_copy(from, to);
	assert_int_equal(sqlite3_open_v2(c, &dc, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(dc, "PRAGMA integrity_check", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	digest(dc, got, sizeof(got));
	assert_string_equal(got, want);
	assert_int_equal(strncmp(got, "0 rows", 6) != 0, 1);
	sqlite3_close(dc);
	sqlite3_close(da);
	sqlite3_close(db);
	rm_db(a);
	rm_db(b);
	rm_db(c);
}

static void test_wal_crash_copy(void **state)
{
	(void)state;
	crash_copy(false);
}

static void test_wal_defer_crash_copy(void **state)
{
	(void)state;
	crash_copy(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wal_same),
		cmocka_unit_test(test_wal_defer_same),
		cmocka_unit_test(test_wal_defer_refused),
		cmocka_unit_test(test_wal_crash_copy),
		cmocka_unit_test(test_wal_defer_crash_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
