/*
 * js_store_sqlite_vfs.c - a VFS over SQLite's default ("unix") that writes a commit's
 * write-ahead-log frames with one system call instead of two per frame.
 *
 * DESCRIPTION
 *	SQLite writes a WAL frame as its 24-byte header, then its page: two pwrite64 per frame,
 *	~2.5 per JoinReq under load and ~18 per JoinReq at a low rate (issue 15). This VFS opens
 *	every file with the default VFS; only the log's file gets methods of its own, which keep
 *	a run of writes back: bytes that follow each other in the file, held in memory and
 *	written in one call at the run's offset. A frame header is always held for the page that
 *	follows it (the two go down in one write). On the writer's log, once
 *	js_store__sq_vfs_defer() found it under synchronous=FULL, the run goes on over the whole
 *	commit, and is written when SQLite syncs the log at COMMIT: one write per commit (and
 *	one more for a frame SQLite overwrites in place within its transaction). The run is
 *	written first by any other call on the file (read, sync, truncate, size, lock, file
 *	control, close), by a write elsewhere, and before it would pass SQ_RUN_MAX bytes, so every
 *	call below sees the file exactly as without this VFS; only the number of writes changes.
 *	The database file and the shared memory file are the default VFS's own files, untouched.
 *
 * SECURITY
 *	Durability is unchanged: SQLite syncs the log before a COMMIT returns, and the sync writes
 *	the run first; an error of that write is the sync's error, so the COMMIT fails. Frames
 *	are published to readers (the wal-index header, which the other connections read) only
 *	after that sync: under synchronous=FULL SQLite syncs every commit before it updates the
 *	wal-index, which is why the long run is only kept on a log found under FULL; elsewhere
 *	only a header waits, and only for its own page. A crash loses the run with the process,
 *	as it would lose writes not yet synced: that commit had not returned, nothing was
 *	answered from it, and SQLite's recovery ignores a transaction without its commit frame.
 */
#include "store/js_store_sqlite_internal.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/dj_err.h"

#define SQ_VFS_NAME "danejoin-walframe"
#define SQ_FRAME_HDR 24			/* a WAL frame header's bytes */
/* bytes held at most: the default VFS takes at most 0x1ffff bytes in one write (os_unix.c's
 * seekAndWriteFd keeps the length's low 17 bits), 31 frames of 4 KiB pages */
#define SQ_RUN_MAX 0x1ffff

/* A file of this VFS: the log's (wal) wraps the default VFS's file at real. */
struct wfile {
	sqlite3_file base;
	sqlite3_file *real;
	unsigned char *run;		/* held bytes: the file's from run_off on, not written yet */
	int run_cap;
	int run_len;
	sqlite3_int64 run_off;
	bool defer;			/* hold the whole commit until the sync (see above) */
};

static sqlite3_vfs *root;		/* the default VFS */
static sqlite3_vfs vfs;
static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static int vfs_rc = SQLITE_ERROR;
static atomic_ulong joined;		/* write calls that went down inside another (tests) */
static atomic_ulong writes;		/* writes made on the log's file (tests) */

static const sqlite3_io_methods wal_methods;

/* real_write - one write on the default VFS's file */
static int real_write(struct wfile *f, const void *buf, int amt, sqlite3_int64 off)
{
	atomic_fetch_add_explicit(&writes, 1, memory_order_relaxed);
	return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

/* flush - write the held run */
static int flush(struct wfile *f)
{
	int n = f->run_len;

	if (n == 0)
		return SQLITE_OK;
	f->run_len = 0;
	return real_write(f, f->run, n, f->run_off);
}

/* hold - append \p amt bytes to the run (false: no memory for them) */
static bool hold(struct wfile *f, const void *buf, int amt, sqlite3_int64 off)
{
	int n = f->run_len + amt;

	if (n > f->run_cap) {
		int cap = f->run_cap > 0 ? f->run_cap : 2 * (SQ_FRAME_HDR + 4096);
		unsigned char *r;

		while (cap < n)
			cap *= 2;
		if (cap > SQ_RUN_MAX)
			cap = SQ_RUN_MAX;
		r = realloc(f->run, (size_t)cap);
		if (r == NULL)
			return false;
		f->run = r;
		f->run_cap = cap;
	}
	if (f->run_len == 0)
		f->run_off = off;
	else
		atomic_fetch_add_explicit(&joined, 1, memory_order_relaxed);
	memcpy(f->run + f->run_len, buf, (size_t)amt);
	f->run_len = n;
	return true;
}

/* w_write - join contiguous writes into the run; see the top of the file for when it goes */
static int w_write(sqlite3_file *p, const void *buf, int amt, sqlite3_int64 off)
{
	struct wfile *f = (struct wfile *)p;
	int rc;

	if (f->run_len > 0 &&
	    (off != f->run_off + f->run_len || f->run_len + amt > SQ_RUN_MAX)) {
		rc = flush(f);
		if (rc != SQLITE_OK)
			return rc;
	}
	if (f->run_len == 0 && !f->defer && amt != SQ_FRAME_HDR)
		return real_write(f, buf, amt, off);	/* nothing to join it with */
	if (amt > SQ_RUN_MAX || !hold(f, buf, amt, off)) {
		rc = flush(f);
		return rc != SQLITE_OK ? rc : real_write(f, buf, amt, off);
	}
	if (!f->defer && amt != SQ_FRAME_HDR)
		return flush(f);			/* a header and its page: one write */
	return SQLITE_OK;
}

static int w_close(sqlite3_file *p)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);
	int rc2 = f->real->pMethods->xClose(f->real);

	free(f->run);
	f->run = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int w_read(sqlite3_file *p, void *buf, int amt, sqlite3_int64 off)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int w_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int w_sync(sqlite3_file *p, int flags)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int w_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int w_lock(sqlite3_file *p, int level)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, level);
}

static int w_unlock(sqlite3_file *p, int level)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xUnlock(f->real, level);
}

static int w_check_reserved(sqlite3_file *p, int *out)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int w_file_control(sqlite3_file *p, int op, void *arg)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int w_sector_size(sqlite3_file *p)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xSectorSize(f->real);
}

static int w_device_characteristics(sqlite3_file *p)
{
	struct wfile *f = (struct wfile *)p;

	return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* version 1: the log's file has no shared memory and is never mapped */
static const sqlite3_io_methods wal_methods = {
	.iVersion = 1,
	.xClose = w_close,
	.xRead = w_read,
	.xWrite = w_write,
	.xTruncate = w_truncate,
	.xSync = w_sync,
	.xFileSize = w_file_size,
	.xLock = w_lock,
	.xUnlock = w_unlock,
	.xCheckReservedLock = w_check_reserved,
	.xFileControl = w_file_control,
	.xSectorSize = w_sector_size,
	.xDeviceCharacteristics = w_device_characteristics,
};

/* v_open - the log: the default VFS's file behind wal_methods; any other file: its own */
static int v_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *p, int flags,
		  int *out_flags)
{
	struct wfile *f = (struct wfile *)p;
	int rc;

	(void)v;
	if ((flags & SQLITE_OPEN_WAL) == 0)
		return root->xOpen(root, name, p, flags, out_flags);	/* fits: szOsFile */
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = root->xOpen(root, name, f->real, flags, out_flags);
	if (rc == SQLITE_OK)
		f->base.pMethods = &wal_methods;	/* else NULL: SQLite will not close it */
	return rc;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	(void)v;
	return root->xDelete(root, name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return root->xAccess(root, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return root->xFullPathname(root, name, n, out);
}

static void *v_dl_open(sqlite3_vfs *v, const char *name)
{
	(void)v;
	return root->xDlOpen(root, name);
}

static void v_dl_error(sqlite3_vfs *v, int n, char *msg)
{
	(void)v;
	root->xDlError(root, n, msg);
}

static void (*v_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	(void)v;
	return root->xDlSym(root, h, sym);
}

static void v_dl_close(sqlite3_vfs *v, void *h)
{
	(void)v;
	root->xDlClose(root, h);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return root->xRandomness(root, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return root->xSleep(root, us);
}

static int v_current_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return root->xCurrentTime(root, out);
}

static int v_last_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return root->xGetLastError(root, n, out);
}

static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return root->xCurrentTimeInt64(root, out);
}

/* vfs_register - once per process: this VFS over the default one, not made the default */
static void vfs_register(void)
{
	root = sqlite3_vfs_find(NULL);
	if (root == NULL || root->iVersion < 2 || root->xCurrentTimeInt64 == NULL)
		return;
	vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = root->szOsFile + (int)sizeof(struct wfile),
		.mxPathname = root->mxPathname,
		.zName = SQ_VFS_NAME,
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_full_pathname,
		.xDlOpen = v_dl_open,
		.xDlError = v_dl_error,
		.xDlSym = v_dl_sym,
		.xDlClose = v_dl_close,
		.xRandomness = v_randomness,
		.xSleep = v_sleep,
		.xCurrentTime = v_current_time,
		.xGetLastError = v_last_error,
		.xCurrentTimeInt64 = v_current_time64,
	};
	vfs_rc = sqlite3_vfs_register(&vfs, 0);
}

const char *js_store__sq_vfs(void)
{
	pthread_once(&vfs_once, vfs_register);
	return vfs_rc == SQLITE_OK ? SQ_VFS_NAME : NULL;
}

unsigned long js_store__sq_vfs_joined(void)
{
	return atomic_load_explicit(&joined, memory_order_relaxed);
}

unsigned long js_store__sq_vfs_writes(void)
{
	return atomic_load_explicit(&writes, memory_order_relaxed);
}

int js_store__sq_vfs_defer(sqlite3 *db)
{
	sqlite3_file *file = NULL;
	sqlite3_stmt *st = NULL;
	int level = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		level = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (level < 2)		/* below FULL a commit need not sync the log: keep frames apart */
		return DJ_EINVAL;
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) != SQLITE_OK ||
	    file == NULL || file->pMethods != &wal_methods)
		return DJ_ENOENT;	/* no log open, or not through this VFS */
	((struct wfile *)file)->defer = true;
	return DJ_EOK;
}
