"""Python's sqlite3 on the OPFS filesystem (web/durably/opfs-fs.js), in real Chromium.

Each test drives web/testing/opfs-sqlite.html, whose module worker boots Pyodide, mounts
OPFS at /opfs and runs the Python it is sent.  ``open_db`` (defined in the worker) sets
``locking_mode=EXCLUSIVE`` before ``journal_mode=WAL``, as every connection must.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

DIRECTORY = "durably-test"
DATABASE = "test.db"
DB_PATH = f"/opfs/{DATABASE}"


class Harness:
    """The harness page's ``window.harness`` API, from Python."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.url = f"{base_url}/testing/opfs-sqlite.html"
        page.goto(self.url)

    def start(self) -> dict[str, Any]:
        report: dict[str, Any] = self.page.evaluate(
            "options => harness.start(options)",
            {"directoryName": DIRECTORY, "databaseName": DATABASE},
        )
        return report

    def run(self, code: str) -> Any:
        return self.page.evaluate("code => harness.run(code)", textwrap.dedent(code))

    def run_in_background(self, code: str) -> None:
        """Start Python without waiting; it is expected to be cut short by terminate()."""
        self.page.evaluate(
            "code => { window.backgroundRun = harness.run(code).catch(e => e.message); }",
            textwrap.dedent(code),
        )

    def reload(self) -> None:
        self.page.reload()

    def terminate(self) -> None:
        self.page.evaluate("harness.terminate()")

    def close_mount(self) -> None:
        self.page.evaluate("harness.close()")

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self.page.evaluate("harness.counters()")
        return counters

    def opfs_files(self) -> dict[str, int | None]:
        entries = self.page.evaluate("harness.listOpfs()")
        return {entry["path"]: entry["size"] for entry in entries if entry["kind"] == "file"}


def open_harness(context: BrowserContext, base_url: str) -> Harness:
    harness = Harness(context.new_page(), base_url)
    harness.start()
    return harness


def create_rows(harness: Harness, synchronous: str, count: int) -> None:
    harness.run(f"""
        db = open_db({DB_PATH!r}, {synchronous!r})
        db.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        for i in range({count}):
            db.execute("INSERT INTO items(name) VALUES (?)", (f"item {{i}}",))
        None
    """)


def read_back(harness: Harness) -> dict[str, Any]:
    result: dict[str, Any] = harness.run(f"""
        db = open_db({DB_PATH!r})
        {{
            "count": db.execute("SELECT count(*) FROM items").fetchone()[0],
            "last": db.execute("SELECT name FROM items ORDER BY id DESC LIMIT 1").fetchone()[0],
            "integrity": db.execute("PRAGMA integrity_check").fetchone()[0],
            "journal_mode": db.execute("PRAGMA journal_mode").fetchone()[0],
        }}
    """)
    return result


def test_boot_uses_only_our_origin(
    opfs_context: BrowserContext, server: str, record_requests: Any
) -> None:
    requests = record_requests(opfs_context)
    harness = Harness(opfs_context.new_page(), server)
    report = harness.start()
    assert report["phases"] == ["loading-python", "installing-packages"]
    assert report["syncFlushes"] is True
    assert report["paths"] == [DB_PATH, f"{DB_PATH}-wal", f"{DB_PATH}-journal"]
    assert any(url.endswith(".whl") for url in requests.urls)  # worker requests are seen
    assert requests.foreign(server) == []


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_committed_rows_survive_reload(
    opfs_context: BrowserContext, server: str, synchronous: str
) -> None:
    harness = open_harness(opfs_context, server)
    create_rows(harness, synchronous, 25)
    # The connection stays open: the reload is as abrupt as closing the tab, and the
    # WAL still holds every commit when the next page opens the database.
    harness.reload()
    harness.start()
    assert read_back(harness) == {
        "count": 25,
        "last": "item 24",
        "integrity": "ok",
        "journal_mode": "wal",
    }


def test_rows_survive_closing_the_page(opfs_context: BrowserContext, server: str) -> None:
    first = open_harness(opfs_context, server)
    create_rows(first, "NORMAL", 10)
    first.page.close()
    second = open_harness(opfs_context, server)
    assert read_back(second)["count"] == 10
    assert read_back(second)["integrity"] == "ok"


def test_existing_wal_database_reopens_after_reload(
    opfs_context: BrowserContext, server: str
) -> None:
    harness = open_harness(opfs_context, server)
    create_rows(harness, "NORMAL", 3)
    for round_ in range(3):  # each reload re-opens a WAL database that has a -wal file
        harness.reload()
        harness.start()
        assert harness.run("import os; os.path.getsize('/opfs/test.db-wal') > 0")
        harness.run(f"""
            db = open_db({DB_PATH!r})
            db.execute("INSERT INTO items(name) VALUES ('round {round_}')")
            None
        """)
    assert read_back(harness)["count"] == 6


def test_rollback_and_terminated_transaction_keep_committed_rows(
    opfs_context: BrowserContext, server: str
) -> None:
    harness = open_harness(opfs_context, server)
    create_rows(harness, "FULL", 50)
    rolled_back = harness.run("""
        db.execute("BEGIN")
        db.execute("DELETE FROM items")
        db.execute("ROLLBACK")
        db.execute("SELECT count(*) FROM items").fetchone()[0]
    """)
    assert rolled_back == 50
    # A second transaction writes far past the page cache, so uncommitted frames spill
    # into the WAL, and the worker is killed while it is still open.
    wal_before = harness.run("import os; os.path.getsize('/opfs/test.db-wal')")
    harness.run_in_background("""
        import time
        db.execute("PRAGMA cache_size=50")
        db.execute("BEGIN")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            db.execute("INSERT INTO items(name) VALUES (hex(randomblob(2000)))")
    """)
    harness.page.wait_for_timeout(1500)
    harness.terminate()
    harness.start()
    grown = harness.run(f"import os; os.path.getsize('/opfs/test.db-wal') > {wal_before}")
    assert grown, "the open transaction should have spilled into the WAL before terminate()"
    assert read_back(harness) == {
        "count": 50,
        "last": "item 49",
        "integrity": "ok",
        "journal_mode": "wal",
    }


def test_database_file_is_in_opfs(opfs_context: BrowserContext, server: str) -> None:
    harness = open_harness(opfs_context, server)
    create_rows(harness, "NORMAL", 100)
    # Seen from the page while the worker still has the database open: the commits are
    # already in the OPFS write-ahead log.
    wal_size = harness.opfs_files()[f"{DIRECTORY}/{DATABASE}-wal"]
    assert wal_size is not None and wal_size > 0
    harness.run("db.close(); None")  # checkpoints the WAL into the database and deletes it
    harness.close_mount()
    files = harness.opfs_files()
    size = files[f"{DIRECTORY}/{DATABASE}"]
    assert size is not None and size > 0
    assert files[f"{DIRECTORY}/{DATABASE}-wal"] == 0  # deleted = truncated, not removed


def test_deleted_files_do_not_reappear_after_reload(
    opfs_context: BrowserContext, server: str
) -> None:
    harness = open_harness(opfs_context, server)
    create_rows(harness, "FULL", 5)
    # A rollback journal is created and deleted by every commit in DELETE mode.
    exists = harness.run(f"""
        import os
        db.close()
        db = sqlite3.connect({DB_PATH!r}, isolation_level=None)
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("INSERT INTO items(name) VALUES ('via journal')")
        db.close()
        [os.path.exists(p) for p in ({DB_PATH!r}, {DB_PATH + "-wal"!r}, {DB_PATH + "-journal"!r})]
    """)
    assert exists == [True, False, False]
    harness.reload()
    harness.start()
    after = harness.run(f"""
        import os
        [os.path.exists(p) for p in ({DB_PATH!r}, {DB_PATH + "-wal"!r}, {DB_PATH + "-journal"!r})]
    """)
    assert after == [True, False, False]
    assert read_back(harness)["count"] == 6


def test_posix_behaviour_of_the_mount(opfs_context: BrowserContext, server: str) -> None:
    harness = open_harness(opfs_context, server)
    result = harness.run("""
        import errno, os
        outcome = {}
        # Two descriptors on one file: fstat on one sees the other's writes at once.
        writer = os.open("/opfs/test.db-journal", os.O_RDWR | os.O_CREAT)
        reader = os.open("/opfs/test.db-journal", os.O_RDONLY)
        os.pwrite(writer, b"x" * 5000, 0)
        outcome["live_size"] = os.fstat(reader).st_size
        os.close(writer); os.close(reader)
        # SQLite opens the directory and fsyncs it after creating or deleting a journal.
        directory = os.open("/opfs", os.O_RDONLY)
        os.fsync(directory)
        os.close(directory)
        outcome["listing"] = sorted(os.listdir("/opfs"))
        os.unlink("/opfs/test.db-journal")
        outcome["after_unlink"] = [os.path.exists("/opfs/test.db-journal"), os.listdir("/opfs")]
        for name, action in {
            "create_unknown": lambda: open("/opfs/other.txt", "w"),
            "mkdir": lambda: os.mkdir("/opfs/sub"),
            "rename": lambda: os.rename("/opfs/test.db-journal", "/opfs/test.db-wal"),
        }.items():
            try:
                action()
                outcome[name] = "no error"
            except OSError as error:
                outcome[name] = errno.errorcode[error.errno]
        try:
            sqlite3.connect("/opfs/other.db").execute("PRAGMA user_version")
        except sqlite3.OperationalError as error:
            outcome["sqlite_unknown"] = str(error)
        outcome
    """)
    assert result["live_size"] == 5000
    assert result["listing"] == ["test.db-journal"]
    assert result["after_unlink"] == [False, []]
    assert result["create_unknown"] == "EPERM"
    assert result["mkdir"] == "EPERM"
    assert result["rename"] in ("EPERM", "ENOENT")
    assert result["sqlite_unknown"] == "unable to open database file"
    counters = harness.counters()
    assert counters["flushes"] >= 3  # the directory fsync flushed every pooled handle
    assert counters["lastError"] is None


def test_stat_counts_blocks_in_512_byte_units(opfs_context: BrowserContext, server: str) -> None:
    # POSIX st_blocks counts 512-byte units whatever st_blksize is; tools that compute
    # disk usage as st_blocks * 512 must never see less than the file's size.
    harness = open_harness(opfs_context, server)
    result = harness.run("""
        import os
        fd = os.open("/opfs/test.db", os.O_RDWR | os.O_CREAT)
        os.pwrite(fd, b"x" * 5000, 0)
        os.close(fd)
        info = os.stat("/opfs/test.db")
        os.unlink("/opfs/test.db")
        {"size": info.st_size, "blocks": info.st_blocks, "blksize": info.st_blksize}
    """)
    assert result["size"] == 5000
    assert result["blocks"] * 512 >= result["size"], result
    assert result["blocks"] == 10, result  # ceil(5000 / 512)


WRITE_FAULTS = [
    ("bogus-count", "database or disk is full"),
    ("short-count", "database or disk is full"),
    ("quota", "database or disk is full"),
    ("io", "disk I/O error"),
]


def test_write_failures_become_sqlite_errors(opfs_context: BrowserContext, server: str) -> None:
    harness = open_harness(opfs_context, server)
    create_rows(harness, "FULL", 10)
    for fault, message in WRITE_FAULTS:
        harness.page.evaluate("mode => harness.injectWriteFault(mode)", fault)
        error = harness.run("""
            try:
                db.execute("INSERT INTO items(name) VALUES (hex(randomblob(20000)))")
                result = "no error"
            except sqlite3.Error as error:
                result = str(error)
            result
        """)
        harness.page.evaluate("harness.injectWriteFault(null)")
        assert error == message, fault
        assert harness.counters()["lastError"]["op"] == "write", fault
        # The failed write left the committed rows intact.
        harness.run("db.close(); None")
        assert read_back(harness)["count"] == 10, fault
    # ... and nothing any of the faults did shows in the next worker either.
    harness.run("db.close(); None")
    harness.reload()
    harness.start()
    assert read_back(harness) == {
        "count": 10,
        "last": "item 9",
        "integrity": "ok",
        "journal_mode": "wal",
    }


def test_second_tab_cannot_take_the_handles(opfs_context: BrowserContext, server: str) -> None:
    open_harness(opfs_context, server)
    second = Harness(opfs_context.new_page(), server)
    with pytest.raises(Exception, match="another tab or worker still holds it"):
        second.start()


def test_missing_sync_access_handles_are_named(opfs_context: BrowserContext, server: str) -> None:
    page = opfs_context.new_page()
    page.goto(f"{server}/testing/opfs-sqlite.html")
    # The page's main thread has OPFS but no FileSystemSyncAccessHandle (workers only).
    message = page.evaluate("""async () => {
        const { mountOpfs } = await import("/durably/opfs-fs.js");
        try { await mountOpfs({}); return "mounted"; } catch (error) { return error.message; }
    }""")
    assert message.startswith("FileSystemSyncAccessHandle is missing")


COMMITS = """
    db = open_db({path!r})
    db.execute("PRAGMA synchronous={mode}")
    db.execute("CREATE TABLE IF NOT EXISTS commits(id INTEGER PRIMARY KEY, note TEXT)")
    for i in range({count}):
        db.execute("INSERT INTO commits(note) VALUES (?)", ("x" * 40,))
"""


def test_full_flushes_at_every_commit_and_normal_does_not(
    opfs_context: BrowserContext, server: str
) -> None:
    """synchronous=FULL must reach OPFS at each commit (SQLite syncs with fdatasync, which
    the filesystem must route to flush); NORMAL leaves flushing to checkpoints."""
    harness = open_harness(opfs_context, server)
    count = 40
    flushes = {}
    for mode in ("FULL", "NORMAL"):
        before = harness.counters()["flushes"]
        harness.run(COMMITS.format(path=DB_PATH, mode=mode, count=count))
        flushes[mode] = harness.counters()["flushes"] - before
    assert flushes["FULL"] >= count, flushes
    assert flushes["NORMAL"] < count // 4, flushes
