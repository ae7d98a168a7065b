#!/usr/bin/env python3
# bench_sqlite_pages.py - the WAL frames (pages written) per join transaction of the SQLite
# store's schema, by B-tree (issue 15, docs/performance.md step 7). Prints figures only.
#
#   python3 tests/bench/bench_sqlite_pages.py LAYOUT BATCH HISTBYTES
#	LAYOUT: base (the schema of migrations 1-3), wr (sessions WITHOUT ROWID), wrdev (devices
#	and sessions WITHOUT ROWID), noaidx (base without the index audit_dev_eui), skey (noaidx,
#	sessions keyed PRIMARY KEY(dev_eui, session_id) without sessions_dev_eui: migration 7),
#	skey-noai (skey, audit without AUTOINCREMENT); BATCH joins per transaction; HISTBYTES the dn_hist blob
#	(0 for 1.0.4/1.1 devices, 2048 for a 1.0.x device with 1024 DevNonces remembered)
#
# 20000 devices with two sessions each, then 200 transactions of BATCH joins on random devices
# (the CAS update, the session row, the audit row: what commit_one() does); each frame of the
# log is attributed to its B-tree with the dbstat table taken before the joins ("new page":
# pages added since, mostly the rightmost leaves of audit and sessions_expires).
# Uses Python's sqlite3 module (the system libsqlite3).
import os, random, sqlite3, struct, sys, tempfile
layout, batch, hist = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
NDEV, NSESS_PER, TX = 20000, 2, 200
LAYOUTS = ("base", "wr", "wrdev", "noaidx", "skey", "skey-noai")
if layout not in LAYOUTS:
    sys.exit("usage: bench_sqlite_pages.py " + "|".join(LAYOUTS) + " BATCH HISTBYTES")
wr = " WITHOUT ROWID" if layout in ("wr", "wrdev") else ""
devwr = " WITHOUT ROWID" if layout == "wrdev" else ""
skey = layout.startswith("skey")
sess_key = "session_id BLOB NOT NULL" if skey else "session_id BLOB PRIMARY KEY"
sess_pk = ", PRIMARY KEY(dev_eui, session_id)" if skey else ""
sess_idx = "" if skey else "CREATE INDEX sessions_dev_eui ON sessions(dev_eui);"
audit_idx = "" if layout in ("noaidx", "skey", "skey-noai") else "CREATE INDEX audit_dev_eui ON audit(dev_eui);"
autoinc = "" if layout == "skey-noai" else " AUTOINCREMENT"
tmp = tempfile.TemporaryDirectory()
p = os.path.join(tmp.name, "f.db")
for s in ("", "-wal", "-shm"):
    if os.path.exists(p + s): os.unlink(p + s)
db = sqlite3.connect(p, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL"); db.execute("PRAGMA foreign_keys=ON")
db.executescript(f"""
CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB);
CREATE TABLE devices( dev_eui BLOB PRIMARY KEY, join_eui BLOB NOT NULL, mac_version INTEGER NOT NULL, root_token BLOB NOT NULL, created_at INTEGER NOT NULL, version INTEGER NOT NULL, dev_nonce_last INTEGER NOT NULL, join_nonce_last INTEGER NOT NULL, rjcount1_last INTEGER NOT NULL, dn_hist BLOB, sess_token BLOB){devwr};
CREATE TABLE sessions( {sess_key}, dev_eui BLOB NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, session_token BLOB NOT NULL{sess_pk}){wr};
{sess_idx}
CREATE TABLE audit( id INTEGER PRIMARY KEY{autoinc}, at INTEGER NOT NULL, dev_eui BLOB, event TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL);
{audit_idx}
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE TABLE outbox( id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, body BLOB NOT NULL);
""")
rnd = random.Random(1)
euis = [rnd.randbytes(8) for _ in range(NDEV)]
jn = {}
now = 1700000000
def join(e, t):
    n = jn.get(e, 0) + 1; jn[e] = n
    db.execute("UPDATE devices SET version=version+1, dev_nonce_last=?1, join_nonce_last=?2, rjcount1_last=?3, dn_hist=?4, sess_token=?5 WHERE dev_eui=?6",
               (n, n, -1, rnd.randbytes(hist) if hist else b"", rnd.randbytes(60), e))
    db.execute("INSERT OR REPLACE INTO sessions(session_id, dev_eui, created_at, expires_at, session_token) VALUES(?1,?2,?3,?4,?5)",
               (e + n.to_bytes(3, "big"), e, t, t + 86400, rnd.randbytes(60)))
    db.execute("INSERT INTO audit(at, dev_eui, event, actor, detail) VALUES(?1,?2,?3,?4,?5)",
               (t, e, "join-accept", "ns1.test", "join_eui=0000000000000000 mac=1.1 dev_nonce=%d join_nonce=%d keys=nwk,app" % (n, n)))
db.execute("BEGIN")
for e in euis:
    db.execute("INSERT INTO devices VALUES(?,?,?,?,?,0,-1,-1,-1,X'',NULL)", (e, bytes(8), 4, rnd.randbytes(56), now))
db.execute("COMMIT")
for k in range(NSESS_PER):
    db.execute("BEGIN")
    for e in euis: join(e, now)
    db.execute("COMMIT")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.execute("PRAGMA wal_autocheckpoint=0")
# page -> btree
own = {}
for name, pageno in db.execute("SELECT name, pageno FROM dbstat"): own[pageno] = name
own[1] = own.get(1, "sqlite_schema") + "(page 1)"
off = 32; FS = 24 + 4096
wal = p + "-wal"
counts = {}; frames = 0
for i in range(TX):
    db.execute("BEGIN IMMEDIATE")
    for j in range(batch): join(rnd.choice(euis), now + i)
    db.execute("COMMIT")
data = open(wal, "rb").read()
nfr = (len(data) - 32) // FS
for f in range(nfr):
    pg = struct.unpack(">I", data[32 + f*FS: 36 + f*FS])[0]
    nm = own.get(pg, "new page %d" % pg)
    if nm.startswith("new page"): nm = "new page"
    counts[nm] = counts.get(nm, 0) + 1
joins = TX * batch
print(f"layout={layout} batch={batch} hist={hist}B: {nfr/TX:.2f} frames per commit, {nfr/joins:.2f} per join")
for k, v in sorted(counts.items(), key=lambda x: -x[1]):
    print(f"   {k:24s} {v/joins:6.2f}/join")
