/*
 * js_store_sqlite_ckpt.c - the SQLite backend's checkpointer: a thread with a connection of its
 * own that copies the write-ahead log into the database file, off the commit path.
 *
 * DESCRIPTION
 *	Under wal_autocheckpoint the writer checkpoints inside the COMMIT that takes the log past
 *	1000 pages: that batch's answers wait for ~1000 pages copied and the database file's fsync
 *	(the p99 of issue 15). Here the writer's WAL hook only wakes the checkpointer when the log
 *	holds SQ_CKPT_PAGES frames, and the checkpointer runs PASSIVE checkpoints on its own
 *	connection while the committer goes on committing. The log can be restarted (written
 *	again from its start) only once every frame is copied, and under load the writer has
 *	committed more during a pass: the checkpointer copies that in a further pass (each one
 *	shorter) until at most SQ_CKPT_TAIL frames are left, and that tail the writer copies
 *	itself after its next commit, with a RESTART checkpoint that also restarts the log (it
 *	waits up to ~1 ms for readers on older snapshots). When the log
 *	holds SQ_CKPT_BOUND_PAGES frames all the same and no pass is running (a reader pinned the
 *	log), the writer checkpoints inline as before.
 *	journal_size_limit (js_store_sqlite_guard.c) truncates it when the writer restarts it.
 *
 * SECURITY
 *	- Durability is not touched: a COMMIT is durable when it returns (synchronous=FULL on the
 *	  writer). The checkpointer's connection is synchronous=FULL too, so a checkpoint syncs the
 *	  log before copying and the database file before the log may be reused.
 *	- The checkpointer only copies committed pages; it never writes a row.
 *	- Its connection reads once at open, so that it holds the log file open from the start: it
 *	  never opens (creates) a new log beside the one the guard watches.
 */
#include "store/js_store_sqlite_internal.h"

#include "common/dj_err.h"
#include "common/dj_log.h"
#include "common/dj_thread.h"

#include <time.h>

#define SQ_CKPT_PAGES 1000		/* log frames that wake the checkpointer */
#define SQ_CKPT_BOUND_PAGES 4000	/* log frames at which the writer checkpoints inline */
#define SQ_CKPT_TAIL 64			/* frames left that the writer copies itself */
#define SQ_CKPT_PASSES 4		/* passes per wake-up, each over what the last left */
#define SQ_TAIL_SPINS 40		/* the writer's restart: waits of SQ_TAIL_WAIT_NS for readers */
#define SQ_TAIL_WAIT_NS 25000

/* tail_busy - the writer's busy handler during its restart: a reader still on an older
 * snapshot ends within microseconds (a device read); wait a little, never a millisecond tick */
static int tail_busy(void *arg, int n)
{
	struct timespec ts = { 0, SQ_TAIL_WAIT_NS };

	(void)arg;
	if (n >= SQ_TAIL_SPINS)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

/* tail_restart - the writer, after a checkpointer's run: copy what is left and restart the log
 * now (RESTART: every reader reads the database file only, so the next commit writes the log
 * from its first frame). Without it the restart waited for a BEGIN that found every frame
 * copied, which under load the next commit seldom did: the log stayed past SQ_CKPT_PAGES and
 * every commit woke the checkpointer for one commit's frames and two fsyncs (issue 15). */
static void tail_restart(sqlite3 *db, const char *name)
{
	sqlite3_busy_handler(db, tail_busy, NULL);
	/* SQLITE_BUSY: a reader outlasted the waits; frames were copied all the same, and the
	 * next run of the checkpointer ends with another restart */
	(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	sqlite3_busy_timeout(db, SQ_BUSY_TIMEOUT_MS);
}

/* wal_hook - after each of the writer's commits: copy a tail, wake the checkpointer, or bound
 * the log */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct js_store__sq *q = arg;
	bool inline_ckpt = frames >= SQ_CKPT_BOUND_PAGES, tail = false;

	pthread_mutex_lock(&q->ck_lock);
	if (q->ck_tail) {
		q->ck_tail = false;
		tail = true;
	} else if (!inline_ckpt && frames >= SQ_CKPT_PAGES && !q->ck_want) {
		q->ck_want = true;
		pthread_cond_signal(&q->ck_cond);
	}
	pthread_mutex_unlock(&q->ck_lock);
	if (tail) {
		tail_restart(db, name);
		return SQLITE_OK;
	}
	/* SQLITE_BUSY while the checkpointer runs: a later commit tries again */
	if (inline_ckpt)
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

/* ckpt_run - PASSIVE passes until at most SQ_CKPT_TAIL frames are left (the writer committed
 * meanwhile), SQ_CKPT_PASSES at most; true when they ran (the writer then copies the rest and
 * restarts the log: tail_restart()) */
static bool ckpt_run(struct js_store__sq *q)
{
	int logged = 0, done = 0, rc;

	for (int i = 0; i < SQ_CKPT_PASSES; i++) {
		rc = sqlite3_wal_checkpoint_v2(q->ck, NULL, SQLITE_CHECKPOINT_PASSIVE, &logged,
					       &done);
		if (rc != SQLITE_OK) {
			if (rc != SQLITE_BUSY)
				(void)js_store__sq_fail(q->ck, "checkpoint");
			return false;
		}
		if (logged - done <= SQ_CKPT_TAIL)
			break;
	}
	return true;
}

/* ckpt_main - the checkpointer thread: a checkpoint per wake-up until asked to stop */
static void *ckpt_main(void *arg)
{
	struct js_store__sq *q = arg;
	bool tail;

	dj_thread_name("checkpointer");	/* /proc/PID/task/TID/comm, top -H */
	pthread_mutex_lock(&q->ck_lock);
	for (;;) {
		while (!q->ck_want && !q->ck_stop)
			pthread_cond_wait(&q->ck_cond, &q->ck_lock);
		if (q->ck_stop)
			break;
		pthread_mutex_unlock(&q->ck_lock);
		tail = ckpt_run(q);
		pthread_mutex_lock(&q->ck_lock);
		q->ck_want = false;	/* set until the pass ends: one pass at a time */
		q->ck_tail = tail;
		q->ck_runs++;
		pthread_cond_broadcast(&q->ck_cond);	/* js_store__sq_ckpt_wait() */
	}
	pthread_mutex_unlock(&q->ck_lock);
	return NULL;
}

int js_store__sq_ckpt_open(struct js_store *s, const char *path)
{
	struct js_store__sq *q = s->be;

	if (pthread_mutex_init(&q->ck_lock, NULL) != 0)
		return DJ_ENOMEM;
	if (pthread_cond_init(&q->ck_cond, NULL) != 0) {
		pthread_mutex_destroy(&q->ck_lock);
		return DJ_ENOMEM;
	}
	q->ck_init = true;
	if (sqlite3_open_v2(path, &q->ck, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return js_store__sq_fail(q->ck, "open checkpointer");
	/* the log is open from here on (SECURITY) */
	if (js_store__sq_exec(q->ck, "PRAGMA synchronous=FULL") != DJ_EOK ||
	    js_store__sq_exec(q->ck, "PRAGMA wal_autocheckpoint=0") != DJ_EOK ||
	    js_store__sq_exec(q->ck, "SELECT count(*) FROM meta") != DJ_EOK)
		return DJ_ESQL;
	if (pthread_create(&q->ck_thread, NULL, ckpt_main, q) != 0)
		return DJ_ENOMEM;
	q->ck_started = true;
	sqlite3_wal_hook(q->w, wal_hook, q);	/* replaces the writer's wal_autocheckpoint */
	return DJ_EOK;
}

void js_store__sq_ckpt_close(struct js_store__sq *q)
{
	if (q->ck_started) {
		sqlite3_wal_hook(q->w, NULL, NULL);
		pthread_mutex_lock(&q->ck_lock);
		q->ck_stop = true;
		pthread_cond_broadcast(&q->ck_cond);
		pthread_mutex_unlock(&q->ck_lock);
		pthread_join(q->ck_thread, NULL);
		q->ck_started = false;
	}
	sqlite3_close(q->ck);
	q->ck = NULL;
	if (q->ck_init) {
		pthread_cond_destroy(&q->ck_cond);
		pthread_mutex_destroy(&q->ck_lock);
		q->ck_init = false;
	}
}

uint64_t js_store__sq_ckpt_wait(struct js_store *s, uint64_t n)
{
	struct js_store__sq *q = s->be;
	uint64_t runs;

	pthread_mutex_lock(&q->ck_lock);
	while (q->ck_runs < n && q->ck_started)
		pthread_cond_wait(&q->ck_cond, &q->ck_lock);
	runs = q->ck_runs;
	pthread_mutex_unlock(&q->ck_lock);
	return runs;
}
