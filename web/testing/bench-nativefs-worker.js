// Storage comparison for the benchmarks: the same SQLite commits on our OPFS filesystem
// (opfs-fs.js, synchronous=FULL: in OPFS when COMMIT returns) and on
// `pyodide.mountNativeFS` (files mirrored in memory, written back by syncfs(), here
// called after every commit so that nothing is lost on a tab crash either).
// Replies {ok, result | error} to one message {commits, fillerKiB}.

import { bootPyodide } from "../durably/pyodide-boot.js";
import { mountOpfs } from "../durably/opfs-fs.js";

const CODE = `
import sqlite3, time

def prepare(path, filler_kib, exclusive):
    db = sqlite3.connect(path, isolation_level=None)
    if exclusive:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS filler (body BLOB)")
    db.execute("BEGIN")
    for _ in range(filler_kib):
        db.execute("INSERT INTO filler VALUES (zeroblob(1024))")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db

async def commits(db, count, sync=None):
    started = time.perf_counter()
    for i in range(count):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (body) VALUES (?)", ("x" * 200,))
        db.execute("UPDATE t SET body = ? WHERE id = 1", (str(i),))
        db.execute("COMMIT")
        if sync is not None:
            await sync()
    return (time.perf_counter() - started) * 1e6 / count
`;

let pyodide = null;

async function removeDirectory(name) {
  const root = await navigator.storage.getDirectory();
  try {
    await root.removeEntry(name, { recursive: true });
  } catch (error) {
    if (error.name !== "NotFoundError") throw error;
  }
}

async function compare({ commits, fillerKiB }) {
  pyodide ??= (await bootPyodide()).pyodide;
  const ns = pyodide.toPy({});
  await pyodide.runPythonAsync(CODE, { globals: ns });
  const prepare = ns.get("prepare");
  const run = ns.get("commits");
  const result = { commits, fillerKiB };

  await removeDirectory("bench-ours");
  const mount = await mountOpfs(pyodide, { directoryName: "bench-ours", databaseName: "c.db", mountPoint: "/bench-ours" });
  let db = prepare(mount.databasePath, fillerKiB, true);
  result.oursUsPerCommit = await run(db, commits);
  db.close();
  db.destroy();
  mount.close();

  await removeDirectory("bench-native");
  const root = await navigator.storage.getDirectory();
  const directory = await root.getDirectoryHandle("bench-native", { create: true });
  pyodide.FS.mkdirTree("/bench-native");
  const native = await pyodide.mountNativeFS("/bench-native", directory);
  db = prepare("/bench-native/c.db", fillerKiB, true);
  await native.syncfs();
  result.nativeFsUsPerCommit = await run(db, commits, native.syncfs);
  // Without syncfs after each commit nothing reaches OPFS until the next sync.
  result.nativeFsNoSyncUsPerCommit = await run(db, commits);
  db.close();
  db.destroy();
  await native.syncfs();
  pyodide.FS.unmount("/bench-native");
  prepare.destroy();
  run.destroy();
  ns.destroy();
  await removeDirectory("bench-ours");
  await removeDirectory("bench-native");
  result.ratio = result.nativeFsUsPerCommit / result.oursUsPerCommit;
  return result;
}

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ ok: true, result: await compare(data) });
  } catch (error) {
    self.postMessage({ ok: false, error: `${error?.name}: ${error?.message ?? error}` });
  }
};
