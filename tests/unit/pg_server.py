"""A PostgreSQL server for the tests, provisioned in one place.

In order: the server `DURABLY_TEST_POSTGRES_URL` names, if it answers; else one on
127.0.0.1:5432, if it answers; else a throwaway cluster (Debian's `postgresql`, installed
with apt-get when missing) started by a non-root user in a temporary folder on a free port,
stopped and deleted afterwards. `DURABLY_TEST_POSTGRES=cluster` skips the first two.
Tests get a fresh database (``durably_test_<random>``) that is dropped at the end; each
test works in its own schema of it.

``python tests/unit/pg_server.py`` provisions, prints the URL and cleans up (a check of
this file's fallback path: run it with ``DURABLY_TEST_POSTGRES=cluster``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def with_options(url: str, options: str, dbname: str | None = None) -> str:
    """`url` (a postgresql:// URL) with server `options` added, and another database."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    query["options"] = [" ".join([*query.get("options", []), options])]
    path = f"/{dbname}" if dbname else parts.path
    return urllib.parse.urlunsplit(
        parts._replace(
            path=path, query=urllib.parse.urlencode(query, doseq=True, quote_via=urllib.parse.quote)
        )
    )


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    """A PostgreSQL server binary: Debian keeps them off PATH, per major version."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = candidates[0] if candidates else shutil.which(name)
    if found is None:
        raise FileNotFoundError(name)
    return found


class Cluster:
    """A throwaway cluster owned by a non-root user (initdb refuses root), trust auth."""

    def __init__(self) -> None:
        try:
            _bin("initdb")
        except FileNotFoundError:
            subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True)
        self.user = "postgres"
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", self.user], check=True)
        self.dir = Path(tempfile.mkdtemp(prefix="durably-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        shutil.chown(self.dir, self.user)
        self._as_user(
            _bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_user(self, *argv: str) -> None:
        command = list(argv) if os.geteuid() != 0 else ["runuser", "-u", self.user, "--", *argv]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._as_user(
            _bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options,
            "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._as_user(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class TestDatabase:
    """A fresh database on the first server that answers (see the module docstring)."""

    def __init__(self) -> None:
        self.cluster: Cluster | None = None
        admin = None
        if os.environ.get("DURABLY_TEST_POSTGRES") != "cluster":
            for url in (os.environ.get("DURABLY_TEST_POSTGRES_URL"), DEFAULT_URL):
                if url and answers(url):
                    admin = url
                    break
        if admin is None:
            self.cluster = Cluster()
            admin = self.cluster.url
        self.admin_url = admin
        self.name = f"durably_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        # Commits need not wait for the disk: the tests check what is visible, and the
        # server restart test stops the server cleanly.
        self.url = with_options(admin, "-c synchronous_commit=off", dbname=self.name)
        self._schemas = 0

    @property
    def source(self) -> str:
        return "throwaway cluster" if self.cluster else self.admin_url

    def new_schema(self) -> str:
        self._schemas += 1
        return f"t{os.getpid()}_{self._schemas}"

    def drop(self) -> None:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.admin_url, autocommit=True) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        if self.cluster is not None:
            self.cluster.destroy()


_database: TestDatabase | None = None


def database() -> TestDatabase:
    """The session's test database, provisioned on first use."""
    global _database
    if _database is None:
        _database = TestDatabase()
    return _database


def shutdown() -> None:
    global _database
    if _database is not None:
        _database.drop()
        _database = None


if __name__ == "__main__":
    started = time.perf_counter()
    db = database()
    print(f"{db.url} on {db.source} in {time.perf_counter() - started:.1f}s")
    assert answers(db.url)
    shutdown()
    print("dropped")
