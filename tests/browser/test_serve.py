"""``python -m durably serve``: headers the browser tests rely on, start-up errors, Ctrl-C.

These talk HTTP directly (no browser) to the server the browser tests use.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from http.client import HTTPResponse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch(url: str) -> HTTPResponse:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        response: HTTPResponse = opener.open(url, timeout=10)
    except urllib.error.HTTPError as error:
        return error  # type: ignore[return-value]  # an HTTPError is a response too
    return response


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/vendor/pyodide/pyodide.mjs", "text/javascript"),
        ("/durably/opfs-fs.js", "text/javascript"),
        ("/vendor/pyodide/pyodide.asm.wasm", "application/wasm"),
        ("/vendor/pyodide/python_stdlib.zip", "application/zip"),
        ("/vendor/manifest.json", "application/json"),
        ("/testing/opfs-sqlite.html", "text/html"),
    ],
)
def test_mime_types_and_no_cache(server: str, path: str, content_type: str) -> None:
    response = fetch(server + path)
    assert response.status == 200
    assert response.headers["Content-Type"].split(";")[0] == content_type
    assert response.headers["Cache-Control"] == "no-cache"
    # No cross-origin isolation: nothing here needs SharedArrayBuffer.
    assert "Cross-Origin-Opener-Policy" not in response.headers
    assert "Cross-Origin-Embedder-Policy" not in response.headers


def test_wheels_are_served_as_zip(server: str) -> None:
    manifest = fetch(f"{server}/vendor/manifest.json").read().decode()
    wheel = manifest.split('"micropip": "', 1)[1].split('"', 1)[0]
    response = fetch(f"{server}/vendor/wheels/{wheel}")
    assert response.headers["Content-Type"] == "application/zip"


def test_root_redirects_to_the_demo(server: str) -> None:
    response = fetch(server + "/")
    assert response.status == 302
    assert response.headers["Location"] == "/demo/"


def test_missing_file_is_not_cached(server: str) -> None:
    response = fetch(server + "/no-such-file.js")
    assert response.status == 404
    assert response.headers["Cache-Control"] == "no-cache"


def run_durably(*args: str, cwd: Path = REPO) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "durably", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_missing_vendor_files_say_what_to_run(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    process = run_durably("serve", "--port", "0", cwd=tmp_path)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "make setup" in stderr


def test_ctrl_c_stops_cleanly() -> None:
    process = run_durably("serve", "--port", "0")
    assert process.stdout is not None
    first_line = process.stdout.readline()
    assert first_line.startswith("Serving ") and first_line.rstrip().endswith("/demo/")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "Stopped." in stdout
    assert "Traceback" not in stderr
