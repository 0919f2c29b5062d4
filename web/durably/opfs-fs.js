// An Emscripten filesystem for Pyodide whose files live in OPFS, written through
// FileSystemSyncAccessHandles, so Python's sqlite3 keeps its database in OPFS and a
// transaction is in OPFS the moment COMMIT returns (no in-memory copy, no "sync later").
//
// Layout.  One OPFS directory (`directoryName`, under navigator.storage.getDirectory())
// holds exactly the files SQLite needs for one database, under their SQLite names:
//     <databaseName>          the database
//     <databaseName>-wal      the write-ahead log
//     <databaseName>-journal  the rollback journal (used while switching journal modes)
// They appear flat under `mountPoint` (default /opfs).  SQLite must run with
// `PRAGMA locking_mode=EXCLUSIVE` (before anything else, on every connection), then
// `journal_mode=WAL` and `temp_store=MEMORY`: the WAL index then lives in heap memory,
// so no `-shm` file and no mmap are needed, and no temp files are created.
//
// Invariants.
// - Creating a sync access handle is async but SQLite's I/O is sync, so every handle is
//   opened up front (a pool of three) and kept until close(); opening, creating and
//   deleting a file only flip the pooled slot's `present` flag.
// - A pooled file exists iff its slot is `present`; at mount a slot is present iff its
//   OPFS file is non-empty.  unlink() truncates to 0, so a deleted journal or WAL can
//   never look hot after a reload, and an empty file means nothing to SQLite anyway.
// - Sizes are always read live from the handle (a stale size makes SQLite misjudge a
//   journal and report "disk I/O error" or "database disk image is malformed").
// - No JS exception crosses into Emscripten except FS.ErrnoError: DOM errors become
//   ENOSPC/EIO/... and are kept in `lastError` for diagnosis.
// - Emscripten's fcntl locks are no-ops; exclusion comes from the exclusive sync access
//   handles plus the caller's Web Lock.
//
// Durability.  handle.write() hands the bytes to the OS before it returns (Chromium
// writes the OPFS file from the worker's process, without a buffer of its own), so with
// `synchronous=NORMAL` a commit survives a crashed tab or browser once it returns.
// fsync (SQLite's sync, routed here by bootPyodide) calls handle.flush(), so with
// `synchronous=FULL` it also survives an OS crash or power loss.  Off-the-record
// (incognito) profiles keep OPFS in memory: there neither holds past the session.

const FILE_SUFFIXES = ["", "-wal", "-journal"];
const DIRECTORY_MODE = 0o40777;
const FILE_MODE = 0o100666;
const BLOCK_SIZE = 4096;
/** POSIX counts st_blocks in 512-byte units, whatever st_blksize says. */
const STAT_BLOCK_UNIT = 512;
// A handle of the previous page can be released a moment after a reload: retry
// createSyncAccessHandle on NoModificationAllowedError for about three seconds.
const OPEN_RETRY_DELAYS_MS = [25, 50, 100, 200, 400, 800, 1500];

/**
 * @typedef {object} OpfsMount
 * @property {string} mountPoint     Where the files appear in Pyodide's filesystem.
 * @property {string} directoryName  The OPFS directory holding them.
 * @property {string} databaseName   The database file's name.
 * @property {string} databasePath   `${mountPoint}/${databaseName}`: pass it to sqlite3.connect.
 * @property {string[]} paths        Every pooled file's path in Pyodide's filesystem.
 * @property {{reads: number, writes: number, flushes: number}} counters  I/O calls so far.
 * @property {number} openRetries  How often opening a handle had to wait for a previous
 *   page to release it (NoModificationAllowedError).
 * @property {() => void} flush  Flush every pooled handle now.
 * @property {boolean} syncFlushes  Whether SQLite's syncs reach handle.flush().  SQLite
 *   syncs with fdatasync(), which plain Emscripten ignores; bootPyodide() routes it to
 *   fsync.  When false, commits survive a crashed tab but not an OS crash.
 * @property {() => ({op: string, file: string, name: string, message: string} | null)} lastError
 * @property {() => void} close  Flush and close every handle and unmount.  Close the
 *   database connections first: their later I/O fails with EIO.
 */

/**
 * Mount an OPFS-backed filesystem into Pyodide for one SQLite database.
 *
 * Must run in a dedicated worker (sync access handles exist only there).
 *
 * @param {any} pyodide  The object returned by loadPyodide().
 * @param {object} [options]
 * @param {string} [options.directoryName="durably"]  OPFS directory (created if missing).
 * @param {string} [options.mountPoint="/opfs"]  Absolute path in Pyodide's filesystem.
 * @param {string} [options.databaseName="durably.db"]  Plain file name, no slashes.
 * @param {(op: string, file: string, detail?: unknown) => void} [options.trace]  Called on
 *   every filesystem operation (debugging only: it is on the I/O path).
 * @returns {Promise<OpfsMount>}
 * @throws {Error} naming the missing capability when OPFS or sync access handles are
 *   unavailable, or naming the file when a handle cannot be opened (another tab or
 *   worker holds it).
 */
export async function mountOpfs(
  pyodide,
  { directoryName = "durably", mountPoint = "/opfs", databaseName = "durably.db", trace } = {},
) {
  requireCapabilities();
  if (!databaseName || databaseName.includes("/")) {
    throw new Error(`databaseName must be a plain file name, got ${JSON.stringify(databaseName)}`);
  }
  const root = await navigator.storage.getDirectory();
  const directory = await root.getDirectoryHandle(directoryName, { create: true });

  // name -> {handle, present}: `handle` is open from here until close(); `present` is
  // whether the file exists for Emscripten (see the invariants above).
  /** @type {Map<string, {handle: FileSystemSyncAccessHandle, present: boolean}>} */
  const slots = new Map();
  let openRetries = 0;
  try {
    for (const suffix of FILE_SUFFIXES) {
      const name = databaseName + suffix;
      const file = await directory.getFileHandle(name, { create: true });
      const opened = await openSyncAccessHandle(file, `${directoryName}/${name}`);
      openRetries += opened.retries;
      slots.set(name, { handle: opened.handle, present: opened.handle.getSize() > 0 });
    }
  } catch (error) {
    for (const { handle } of slots.values()) handle.close();
    throw error;
  }

  const syncFlushes = pyodide.FS.fdatasyncReachesFsync === true;
  if (!syncFlushes) {
    console.warn(
      "OPFS mount: fdatasync() does not reach the filesystem (Pyodide not started by " +
        "bootPyodide), so SQLite's syncs will not flush; commits survive a crashed tab only",
    );
  }
  const state = { closed: false, lastError: null, counters: { reads: 0, writes: 0, flushes: 0 } };
  const fsType = createFilesystem(pyodide, slots, state, trace);
  const { FS } = pyodide;
  try {
    FS.mkdirTree(mountPoint);
    FS.mount(fsType, {}, mountPoint);
  } catch (error) {
    for (const { handle } of slots.values()) handle.close();
    throw new Error(`cannot mount OPFS at ${mountPoint}: ${describe(error)}`, { cause: error });
  }

  return {
    mountPoint,
    directoryName,
    databaseName,
    databasePath: `${mountPoint}/${databaseName}`,
    paths: [...slots.keys()].map((name) => `${mountPoint}/${name}`),
    counters: state.counters,
    openRetries,
    syncFlushes,
    flush() {
      if (state.closed) throw new Error("the OPFS mount is closed");
      for (const { handle } of slots.values()) handle.flush();
      state.counters.flushes += slots.size;
    },
    lastError: () => state.lastError,
    close() {
      if (state.closed) return;
      state.closed = true;
      const failures = [];
      for (const [name, { handle }] of slots) {
        try {
          handle.flush();
        } catch (error) {
          failures.push(`${name}: ${describe(error)}`);
        }
        handle.close();
      }
      try {
        FS.unmount(mountPoint);
      } catch {
        // Already unmounted, or Python still holds a path open: the handles are closed
        // either way, and any further I/O on the mount now fails with EIO.
      }
      if (failures.length) throw new Error(`flush on close failed: ${failures.join("; ")}`);
    },
  };
}

function requireCapabilities() {
  if (typeof navigator === "undefined" || typeof navigator.storage?.getDirectory !== "function") {
    throw new Error(
      "navigator.storage.getDirectory is missing: the Origin Private File System needs " +
        "a secure context (https or http://127.0.0.1) in a browser that supports it",
    );
  }
  if (
    typeof FileSystemSyncAccessHandle === "undefined" ||
    typeof FileSystemFileHandle?.prototype?.createSyncAccessHandle !== "function"
  ) {
    throw new Error(
      "FileSystemSyncAccessHandle is missing: OPFS sync access handles exist only in a " +
        "dedicated worker of a browser that supports them; refusing to keep data in memory",
    );
  }
}

async function openSyncAccessHandle(file, label) {
  for (let attempt = 0; ; attempt++) {
    try {
      return { handle: await file.createSyncAccessHandle(), retries: attempt };
    } catch (error) {
      if (error?.name !== "NoModificationAllowedError") {
        throw new Error(`cannot open ${label} in OPFS: ${describe(error)}`, { cause: error });
      }
      if (attempt >= OPEN_RETRY_DELAYS_MS.length) {
        throw new Error(
          `cannot open ${label} in OPFS: another tab or worker still holds it ` +
            `(NoModificationAllowedError after ${attempt + 1} attempts)`,
          { cause: error },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, OPEN_RETRY_DELAYS_MS[attempt]));
    }
  }
}

function describe(error) {
  return error?.name ? `${error.name}: ${error.message}` : String(error);
}

/** Build the Emscripten filesystem type ({mount}) over the pooled slots. */
function createFilesystem(pyodide, slots, state, trace) {
  const { FS, ERRNO_CODES } = pyodide;
  const errno = (code) => new FS.ErrnoError(ERRNO_CODES[code]);

  // Run one operation on `file`, turning any non-errno failure into an errno.
  function guard(op, file, action) {
    trace?.(op, file);
    if (state.closed) throw errno("EIO");
    try {
      return action();
    } catch (error) {
      if (error?.name === "ErrnoError") throw error;
      const name = error?.name ?? "Error";
      state.lastError = { op, file, name, message: String(error?.message ?? error) };
      trace?.(op, file, state.lastError);
      // QuotaExceededError: out of quota or disk.  Anything else (InvalidStateError on a
      // closed handle, an I/O error from the browser) is reported to SQLite as EIO.
      throw errno(error?.name === "QuotaExceededError" ? "ENOSPC" : "EIO");
    }
  }

  function attributes(node, size) {
    const time = new Date(node.timestamp);
    return {
      dev: 1, ino: node.id, mode: node.mode, nlink: 1, uid: 0, gid: 0, rdev: 0,
      size, blksize: BLOCK_SIZE, blocks: Math.ceil(size / STAT_BLOCK_UNIT),
      atime: time, mtime: time, ctime: time,
    };
  }

  function createNode(parent, name, mode) {
    const node = FS.createNode(parent, name, mode, 0);
    node.timestamp = Date.now();
    if (FS.isDir(mode)) {
      node.node_ops = directoryNodeOps;
      node.stream_ops = directoryStreamOps;
    } else {
      node.slot = slots.get(name);
      node.node_ops = fileNodeOps;
      node.stream_ops = fileStreamOps;
    }
    return node;
  }

  const refuse = (code) => () => {
    throw errno(code);
  };

  const directoryNodeOps = {
    getattr: (node) => attributes(node, BLOCK_SIZE),
    setattr(node, attr) {
      if (attr.mtime != null) node.timestamp = Number(attr.mtime);
    },
    lookup(parent, name) {
      if (!slots.get(name)?.present) throw errno("ENOENT");
      return createNode(parent, name, FILE_MODE);
    },
    // open(O_CREAT) of a pooled name takes its handle; any other name cannot be created.
    mknod(parent, name, mode) {
      const slot = slots.get(name);
      if (!slot || !FS.isFile(mode)) throw errno("EPERM");
      return guard("create", name, () => {
        slot.handle.truncate(0);
        slot.present = true;
        return createNode(parent, name, FILE_MODE);
      });
    },
    // Deleting = truncate to 0 and hide; the handle stays in the pool for the next create.
    unlink(parent, name) {
      const slot = slots.get(name);
      if (!slot?.present) throw errno("ENOENT");
      guard("unlink", name, () => {
        slot.handle.truncate(0);
        slot.present = false;
      });
    },
    readdir: () => [".", "..", ...[...slots.keys()].filter((name) => slots.get(name).present)],
    rename: refuse("EPERM"),
    rmdir: refuse("EPERM"),
    symlink: refuse("EPERM"),
  };

  const directoryStreamOps = {
    llseek: (stream, offset, whence) => seek(stream, offset, whence, 0),
    // SQLite fsyncs the directory after creating or deleting a journal so the change
    // survives an OS crash; here that means flushing every pooled handle.
    fsync: () =>
      guard("fsync", "/", () => {
        for (const slot of slots.values()) slot.handle.flush();
        state.counters.flushes += slots.size;
        return 0;
      }),
  };

  const fileNodeOps = {
    // The live size, never a cached one.
    getattr: (node) =>
      guard("stat", node.name, () => attributes(node, node.slot.handle.getSize())),
    setattr(node, attr) {
      if (attr.mtime != null) node.timestamp = Number(attr.mtime);
      if (attr.size != null) {
        guard("truncate", node.name, () => node.slot.handle.truncate(attr.size));
      }
      // chmod/chown are accepted and ignored: OPFS has no permissions to keep.
    },
  };

  const fileStreamOps = {
    llseek: (stream, offset, whence) =>
      seek(stream, offset, whence, () =>
        guard("seek", stream.node.name, () => stream.node.slot.handle.getSize()),
      ),
    read: (stream, buffer, offset, length, position) =>
      guard("read", stream.node.name, () => {
        state.counters.reads++;
        const view = buffer.subarray(offset, offset + length);
        return stream.node.slot.handle.read(view, { at: position });
      }),
    write: (stream, buffer, offset, length, position) =>
      guard("write", stream.node.name, () => {
        if (length === 0) return 0;
        state.counters.writes++;
        const view = buffer.subarray(offset, offset + length);
        const written = stream.node.slot.handle.write(view, { at: position });
        // At quota Chromium may return a short or bogus count (an error sentinel read as
        // unsigned) instead of throwing; SQLite must see a failed write, not success.
        if (written !== length) {
          const error = new Error(`wrote ${written} of ${length} bytes at ${position}`);
          error.name = "QuotaExceededError";
          throw error;
        }
        return written;
      }),
    fsync: (stream) =>
      guard("fsync", stream.node.name, () => {
        stream.node.slot.handle.flush();
        state.counters.flushes++;
        return 0;
      }),
  };

  function seek(stream, offset, whence, size) {
    let position = offset;
    if (whence === 1) position += stream.position;
    else if (whence === 2) position += typeof size === "function" ? size() : size;
    if (position < 0) throw errno("EINVAL");
    return position;
  }

  return {
    mount: () => createNode(null, "/", DIRECTORY_MODE),
  };
}
