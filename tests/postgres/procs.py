"""Helpers of the worker-process tests: a test schema and real worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from pg_server import with_options

HERE = Path(__file__).parent


class Schema:
    """One test's schema: its URL (search_path set) and a connection to read it."""

    def __init__(self, base_url: str, name: str) -> None:
        self.name = name
        self.url = with_options(base_url, f"-c search_path={name}")
        self.conn = psycopg.connect(self.url, autocommit=True)
        self.conn.execute(f"CREATE SCHEMA {name}")
        self.conn.execute(
            "CREATE TABLE history (id BIGSERIAL PRIMARY KEY, run_id TEXT, step TEXT, "
            "key TEXT, pid INT, at TIMESTAMPTZ)"
        )

    def rows(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()


class Workers:
    """Real worker processes on one database; stopped (killed) when the test ends."""

    def __init__(self, url: str, log_dir: Path) -> None:
        self.url = url
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *options: str, concurrency: int = 2) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "DURABLY_TEST_URL": self.url,
        }
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "durably", "worker", "--database", self.url,
             "--jobs", "pg_jobs", "--concurrency", str(concurrency), *options],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.log_dir / f"worker-{self.procs.index(proc)}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.alive():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.kill()
        for proc in self.procs:
            proc.wait()
