#!/usr/bin/env python3
# bench_sqlite_migrate.py - how long the SQLite store's migrations 7 and 8 take on a file of
# schema 6 holding AUDIT audit rows and SESSIONS sessions (SESSIONS / 2 devices), how large the
# WAL grows and how much free disk the upgrade needs (issue 15, docs/performance.md step 9).
# Prints figures only.
#
#   python3 tests/bench/bench_sqlite_migrate.py AUDIT SESSIONS [BUILD_DIR]
#	BUILD_DIR: default $DJ_BUILD_DIR, else build/ in the source tree
#
# The migrations timed are the store's own (js_store_sqlite_schema.c): `danejoin-devices -v
# show` opens a schema-6 file, which migrates it, one transaction per version, and says
# "schema migrated to version N" on stderr as each commits; a step's time runs from the
# previous line (the first: from the start of the program). The file is made by the project:
# `danejoin-devices init` and `import` (the devices, one audit row each), then taken back to
# schema 6 by the SQL of tests/unit/test_store.c's SQ_BACK_TO_6 (schema 6's tables, a fixed
# historical shape) and filled with sessions and audit rows in that shape (Python's sqlite3
# module). The WAL is sampled every millisecond while the program runs (the store checkpoints
# and removes it on close).
import os, sqlite3, subprocess, sys, tempfile, threading, time

if len(sys.argv) not in (3, 4):
    sys.exit("usage: bench_sqlite_migrate.py AUDIT SESSIONS [BUILD_DIR]")
na, ns = int(sys.argv[1]), int(sys.argv[2])
src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = sys.argv[3] if len(sys.argv) == 4 else os.environ.get("DJ_BUILD_DIR", os.path.join(src, "build"))
dev = os.path.join(build, "devices", "danejoin-devices")
if not os.access(dev, os.X_OK):
    sys.exit(f"bench_sqlite_migrate: {dev}: no such program (give the build directory)")
ndev = max(1, ns // 2)
if na < ndev:
    sys.exit(f"bench_sqlite_migrate: AUDIT {na} is below the {ndev} devices' import rows")

# schema 6's sessions and audit tables (tests/unit/test_store.c SQ_BACK_TO_6)
BACK_TO_6 = """
CREATE TABLE s6(session_id BLOB PRIMARY KEY, dev_eui BLOB NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, session_token BLOB NOT NULL);
INSERT INTO s6 SELECT session_id, dev_eui, created_at, expires_at, session_token FROM sessions;
DROP TABLE sessions; ALTER TABLE s6 RENAME TO sessions;
CREATE INDEX sessions_dev_eui ON sessions(dev_eui);
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE TABLE a6(id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, dev_eui BLOB, event TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL);
INSERT INTO a6 SELECT id, at, dev_eui, event, actor, detail FROM audit;
DROP TABLE audit; ALTER TABLE a6 RENAME TO audit;
CREATE INDEX audit_dev_eui ON audit(dev_eui);
PRAGMA user_version=6;
"""

tmp = tempfile.TemporaryDirectory()
os.chdir(tmp.name)
p = "js.db"
with open("dj.conf", "w") as f:
    f.write("[store]\npath = js.db\n[keys]\nmaster_key_file = master.key\n"
            "[js]\njoin_euis = 70b3d57ed0000000/48\n")
with open("devices.csv", "w") as f:
    f.write("dev_eui,join_eui,mac_version,app_key,nwk_key\n")
    for i in range(ndev):
        f.write(f"{i + 4096:016x},70b3d57ed0000001,1.1,{os.urandom(16).hex()},{os.urandom(16).hex()}\n")
for cmd in (["init"], ["import", "devices.csv"]):
    subprocess.run([dev, "--config", "dj.conf"] + cmd, check=True, stdout=subprocess.DEVNULL)

db = sqlite3.connect(p, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL"); db.execute("PRAGMA foreign_keys=ON")
db.executescript("BEGIN;" + BACK_TO_6 + "COMMIT;")
euis = [r[0] for r in db.execute("SELECT dev_eui FROM devices ORDER BY dev_eui")]
assert len(euis) == ndev
now = 1700000000
db.execute("BEGIN")
for k in range(ns):
    e = euis[k % ndev]
    db.execute("INSERT INTO sessions VALUES(?,?,?,?,?)", (e + (k // ndev + 1).to_bytes(3, "big"), e, now, now + 86400, os.urandom(60)))
for k in range(na - ndev):
    db.execute("INSERT INTO audit(at, dev_eui, event, actor, detail) VALUES(?,?,?,?,?)",
               (now + k, euis[k % ndev], "join-accept", "ns1.test",
                "join_eui=0000000000000000 mac=1.1 dev_nonce=%d join_nonce=%d keys=nwk,app" % (k, k)))
db.execute("COMMIT")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
assert not os.path.exists(p + "-wal")
size = os.path.getsize(p)

peak = {"wal": 0, "all": 0}
running = True


def sample():
    while running:
        s = [os.path.getsize(f) if os.path.exists(f) else 0 for f in (p, p + "-wal", p + "-shm")]
        peak["wal"] = max(peak["wal"], s[1])
        peak["all"] = max(peak["all"], sum(s))
        time.sleep(0.001)


th = threading.Thread(target=sample)
th.start()
t0 = time.monotonic()
proc = subprocess.Popen([dev, "-v", "--config", "dj.conf", "show", euis[0].hex()],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
steps, last = [], t0
for line in proc.stderr:
    if "schema migrated to version" in line:
        t = time.monotonic()
        steps.append((line.split()[-1], t - last))
        last = t
rc = proc.wait()
t1 = time.monotonic()
running = False
th.join()
if rc != 0 or [v for v, _ in steps] != ["7", "8"]:
    sys.exit(f"bench_sqlite_migrate: danejoin-devices show exited {rc} after migrations {steps}")
print(f"schema-6 file {size / 1e6:.0f} MB: {ndev} devices, {ns} sessions, {na} audit rows")
for v, s in steps:
    print(f"migration {v}: {s:.2f} s")
print(f"danejoin-devices show, migrating: {t1 - t0:.2f} s; WAL at most {peak['wal'] / 1e6:.0f} MB;"
      f" free disk needed {(peak['all'] - size) / 1e6:.0f} MB (file, WAL and shm at most, less the file)")
db = sqlite3.connect(p)
assert db.execute("PRAGMA user_version").fetchone()[0] == 8
assert db.execute("SELECT count(*) FROM audit").fetchone()[0] == na
assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == ns
