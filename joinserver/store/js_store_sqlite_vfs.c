/*
 * js_store_sqlite_vfs.c - a VFS over SQLite's default ("unix") that writes each write-ahead-log
 * frame with one system call instead of two.
 *
 * DESCRIPTION
 *	SQLite writes a WAL frame as its 24-byte header, then its page: two pwrite64 per frame,
 *	~2.5 per JoinReq under load and ~18 per JoinReq at a low rate (issue 15). This VFS opens
 *	every file with the default VFS; only the log's file gets methods of its own, where a
 *	write of exactly a frame header is held back, and the write that follows it at the next
 *	offset (its page) goes down joined with it, in one write of the same bytes at the same
 *	offset. A held header is written first by any other call on the file (read, sync,
 *	truncate, size, lock, file control, close) and by a write elsewhere, so every call below
 *	sees the file exactly as without this VFS; only the number of writes changes. The database
 *	file and the shared memory file are the default VFS's own files, untouched.
 *
 * SECURITY
 *	Durability is unchanged: SQLite syncs the log before a COMMIT returns, and the sync writes
 *	a held header first; an error of that write is the sync's error, so the COMMIT fails.
 *	A frame is published to readers (the wal-index) only after its page was written, which is
 *	when its header goes down too.
 */
#include "store/js_store_sqlite_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SQ_VFS_NAME "danejoin-walframe"
#define SQ_FRAME_HDR 24			/* a WAL frame header's bytes */

/* A file of this VFS: the log's (wal) wraps the default VFS's file at real. */
struct wfile {
	sqlite3_file base;
	sqlite3_file *real;
	unsigned char *join;		/* header + page, grown on demand */
	int join_cap;
	int held_len;			/* 0, or SQ_FRAME_HDR: a header not yet written */
	sqlite3_int64 held_off;
	unsigned char held[SQ_FRAME_HDR];
};

static sqlite3_vfs *root;		/* the default VFS */
static sqlite3_vfs vfs;
static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static int vfs_rc = SQLITE_ERROR;
static atomic_ulong joined;		/* frames written with one call (tests) */

/* flush - write a held header */
static int flush(struct wfile *f)
{
	int rc;

	if (f->held_len == 0)
		return SQLITE_OK;
	rc = f->real->pMethods->xWrite(f->real, f->held, f->held_len, f->held_off);
	f->held_len = 0;
	return rc;
}

/* w_write - hold a frame header; write it joined with the page that follows it */
static int w_write(sqlite3_file *p, const void *buf, int amt, sqlite3_int64 off)
{
	struct wfile *f = (struct wfile *)p;
	int rc, n;

	if (f->held_len > 0 && off == f->held_off + f->held_len) {
		n = f->held_len + amt;
		if (n > f->join_cap) {
			unsigned char *j = realloc(f->join, (size_t)n);

			if (j == NULL)
				goto apart;
			f->join = j;
			f->join_cap = n;
		}
		memcpy(f->join, f->held, (size_t)f->held_len);
		memcpy(f->join + f->held_len, buf, (size_t)amt);
		f->held_len = 0;
		atomic_fetch_add_explicit(&joined, 1, memory_order_relaxed);
		return f->real->pMethods->xWrite(f->real, f->join, n, f->held_off);
	}
apart:
	rc = flush(f);
	if (rc != SQLITE_OK)
		return rc;
	if (amt == SQ_FRAME_HDR) {
		memcpy(f->held, buf, SQ_FRAME_HDR);
		f->held_off = off;
		f->held_len = SQ_FRAME_HDR;
		return SQLITE_OK;
	}
	return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int w_close(sqlite3_file *p)
{
	struct wfile *f = (struct wfile *)p;
	int rc = flush(f);
	int rc2 = f->real->pMethods->xClose(f->real);

	free(f->join);
	f->join = NULL;
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
