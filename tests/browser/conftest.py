"""Fixtures for the browser tests: the dev server, Chromium launch settings, OPFS-backed
contexts and a request recorder.

Launch settings come from ``playwright.config.py`` at the repository root.  Tests that
touch OPFS use ``opfs_context``: a persistent context with its own temporary profile,
because Playwright's ordinary contexts are off-the-record and keep OPFS in memory, which
would make both the durability checks and the timings meaningless.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, BrowserType, expect

# Playwright's 5 s default for `expect` is too short for what these tests wait on: a
# service worker install copies the whole runtime into Cache Storage, and two test
# processes on two cores each boot Python in several tabs. A passing assertion still
# returns as soon as it holds.
expect.set_options(timeout=60_000)

REPO = Path(__file__).resolve().parents[2]
WEB_ROOT = REPO / "web"
SERVER_START_TIMEOUT_S = 30


def load_playwright_config() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "playwright_config", REPO / "playwright.config.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLAYWRIGHT_CONFIG = load_playwright_config()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments, with Debian's Chromium and our flags."""
    return {**browser_type_launch_args, **PLAYWRIGHT_CONFIG.launch_options()}


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """Run ``python -m durably serve --port 0`` for the session; yield its base URL."""
    if not (WEB_ROOT / "vendor" / "manifest.json").is_file():
        pytest.fail("web/vendor/manifest.json is missing: run `make setup` first")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])
        ),
    }
    command = [sys.executable, "-m", "durably", "serve", "--host", "127.0.0.1", "--port", "0",
               "--root", str(WEB_ROOT)]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()  # "Serving <root> at http://HOST:PORT/demo/"
        if not first_line:
            pytest.fail(f"`{' '.join(command)}` exited with {process.wait(SERVER_START_TIMEOUT_S)}")
        demo_url = first_line.rsplit(" at ", 1)[1].strip()
        yield demo_url.removesuffix("/demo/")
    finally:
        process.terminate()
        try:
            process.wait(SERVER_START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def opfs_context(
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any], tmp_path: Path
) -> Iterator[BrowserContext]:
    """A browser context whose OPFS is on disk, in a fresh profile for this test."""
    context = browser_type.launch_persistent_context(
        tmp_path / "profile", **browser_type_launch_args
    )
    context.set_default_timeout(120_000)
    try:
        yield context
    finally:
        context.close()


class RequestLog:
    """Every request URL a context made, including those of its pages' workers."""

    def __init__(self, context: BrowserContext) -> None:
        self.urls: list[str] = []
        context.on("request", lambda request: self.urls.append(request.url))

    def foreign(self, base_url: str) -> list[str]:
        """URLs that went anywhere but ``base_url``'s host and port (data:/blob: stay local)."""
        local = urlsplit(base_url).netloc
        return [
            url
            for url in self.urls
            if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != local
        ]


@pytest.fixture
def record_requests() -> Callable[[BrowserContext], RequestLog]:
    """Return ``watch(context)``, which starts a :class:`RequestLog` for ``context``."""
    return RequestLog
