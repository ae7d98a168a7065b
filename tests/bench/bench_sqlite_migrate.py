#!/usr/bin/env python3
# bench_sqlite_migrate.py - how long the SQLite store's migrations 7 and 8 take on a file of
# schema 6 holding AUDIT audit rows and SESSIONS sessions, and how large the WAL grows (issue
# 15, docs/performance.md step 9). Prints figures only.
#
#   python3 tests/bench/bench_sqlite_migrate.py AUDIT SESSIONS
#
# The SQL below is that of joinserver/store/js_store_sqlite_schema.c, migrations 1, 2, 7 and 8
# (copied: keep it in step). Uses Python's sqlite3 module (the system libsqlite3), WAL,
# synchronous=FULL, foreign_keys=ON, each migration one transaction as migrate() runs it.
import os, sqlite3, sys, tempfile, time
na, ns = int(sys.argv[1]), int(sys.argv[2])
M7 = """DROP INDEX IF EXISTS audit_dev_eui;
CREATE TABLE sessions_v7( session_id BLOB NOT NULL, dev_eui BLOB NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, session_token BLOB NOT NULL, PRIMARY KEY(dev_eui, session_id));
INSERT INTO sessions_v7(session_id, dev_eui, created_at, expires_at, session_token) SELECT session_id, dev_eui, created_at, expires_at, session_token FROM sessions;
DROP TABLE sessions; ALTER TABLE sessions_v7 RENAME TO sessions;
CREATE INDEX sessions_expires ON sessions(expires_at);"""
M8 = """CREATE TABLE audit_v8( id INTEGER PRIMARY KEY, at INTEGER NOT NULL, dev_eui BLOB, event TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL);
INSERT INTO audit_v8(id, at, dev_eui, event, actor, detail) SELECT id, at, dev_eui, event, actor, detail FROM audit ORDER BY id;
DROP TABLE audit; ALTER TABLE audit_v8 RENAME TO audit;"""
tmp = tempfile.TemporaryDirectory()
p = os.path.join(tmp.name, "js.db")
db = sqlite3.connect(p, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL"); db.execute("PRAGMA foreign_keys=ON")
db.executescript("""
CREATE TABLE devices( dev_eui BLOB PRIMARY KEY, join_eui BLOB NOT NULL, mac_version INTEGER NOT NULL, root_token BLOB NOT NULL, created_at INTEGER NOT NULL, version INTEGER NOT NULL, dev_nonce_last INTEGER NOT NULL, join_nonce_last INTEGER NOT NULL, rjcount1_last INTEGER NOT NULL, dn_hist BLOB, sess_token BLOB);
CREATE TABLE sessions( session_id BLOB PRIMARY KEY, dev_eui BLOB NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, session_token BLOB NOT NULL);
CREATE INDEX sessions_dev_eui ON sessions(dev_eui);
CREATE TABLE audit( id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, dev_eui BLOB, event TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX audit_dev_eui ON audit(dev_eui);
CREATE INDEX sessions_expires ON sessions(expires_at);
""")
now = 1700000000
ndev = max(1, ns // 2)
db.execute("BEGIN")
for i in range(ndev):
    db.execute("INSERT INTO devices VALUES(?,?,4,?,?,0,-1,-1,-1,X'',NULL)", (i.to_bytes(8, "big"), bytes(8), os.urandom(56), now))
for k in range(ns):
    e = (k % ndev).to_bytes(8, "big")
    db.execute("INSERT INTO sessions VALUES(?,?,?,?,?)", (e + (k // ndev).to_bytes(3, "big"), e, now, now + 86400, os.urandom(60)))
for k in range(na):
    db.execute("INSERT INTO audit(at, dev_eui, event, actor, detail) VALUES(?,?,?,?,?)",
               (now + k, (k % ndev).to_bytes(8, "big"), "join-accept", "ns1.test",
                "join_eui=0000000000000000 mac=1.1 dev_nonce=%d join_nonce=%d keys=nwk,app" % (k, k)))
db.execute("COMMIT")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
size = os.path.getsize(p)
for name, sql in (("7", M7), ("8", M8)):
    t = time.monotonic()
    db.executescript("BEGIN IMMEDIATE;" + sql + "COMMIT;")
    print(f"migration {name}: {time.monotonic() - t:.2f} s, WAL {os.path.getsize(p + '-wal') / 1e6:.0f} MB"
          f" (file {size / 1e6:.0f} MB: {na} audit rows, {ns} sessions)")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
assert db.execute("SELECT count(*) FROM audit").fetchone()[0] == na
assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == ns
