"""Serve the ``web/`` folder for development and tests (``python -m durably serve``).

Sends the MIME types the browser worker insists on and ``Cache-Control: no-cache`` (a
rebuilt wheel is never shadowed by a cached one); no COOP/COEP headers, since nothing
relies on ``SharedArrayBuffer``. ``127.0.0.1`` is a secure context for OPFS and locks.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from durably.errors import DurablyError

DEMO_PATH = "/demo/"
MANIFEST = Path("vendor") / "manifest.json"

MIME_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".py": "text/x-python; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}


class WebRootError(DurablyError):
    """The web root or its vendor files are missing; run ``make setup`` first."""


class WebRequestHandler(SimpleHTTPRequestHandler):
    """Static files from the web root, with our MIME types, no caching and quiet logs."""

    extensions_map: ClassVar[dict[str, str]] = {  # type: ignore[misc]
        **SimpleHTTPRequestHandler.extensions_map,
        **MIME_TYPES,
    }
    verbose: ClassVar[bool] = False
    # Keep-alive: a Pyodide boot fetches a dozen files; SimpleHTTPRequestHandler sends
    # Content-Length on every response, which HTTP/1.1 persistent connections need.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/":
            self.redirect_to_demo()
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if self.path.split("?", 1)[0] == "/":
            self.redirect_to_demo()
            return
        super().do_HEAD()

    def redirect_to_demo(self) -> None:
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", DEMO_PATH)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def end_headers(self) -> None:
        # Every response, including redirects and errors: the browser must revalidate.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            super().log_message(format, *args)


class WebServer(ThreadingHTTPServer):
    """A threading server that does not print tracebacks for connections the browser
    dropped (a reload or a closed tab cancels requests mid-response)."""

    daemon_threads = True
    verbose = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError) and not self.verbose:
            return
        super().handle_error(request, client_address)


def check_web_root(root: Path) -> Path:
    """Return the resolved web root, or raise :class:`WebRootError` saying what to do."""
    root = root.resolve()
    if not root.is_dir():
        raise WebRootError(f"web root {root} does not exist: run from the repository root")
    if not (root / MANIFEST).is_file():
        raise WebRootError(f"{root / MANIFEST} is missing: run `make setup` first")
    return root


def create_server(
    root: Path, host: str = "127.0.0.1", port: int = 8000, *, verbose: bool = False
) -> WebServer:
    """Bind a server for ``root`` (port 0 picks a free port; see ``server_address``)."""
    root = check_web_root(root)
    handler_class = type("BoundWebRequestHandler", (WebRequestHandler,), {"verbose": verbose})
    handler = functools.partial(handler_class, directory=str(root))
    server = WebServer((host, port), handler)
    server.verbose = verbose
    return server


def base_url(server: WebServer) -> str:
    """The ``http://host:port`` the server is really bound to."""
    host, port = server.server_address[:2]
    shown = host.decode() if isinstance(host, bytes) else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@contextmanager
def serving_in_thread(
    root: Path, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
) -> Iterator[str]:
    """Serve ``root`` on a background thread for the duration of the block; yield the base URL."""
    server = create_server(root, host, port, verbose=verbose)
    thread = threading.Thread(target=server.serve_forever, name="durably-serve", daemon=True)
    thread.start()
    try:
        yield base_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve(root: Path, host: str = "127.0.0.1", port: int = 8000, *, verbose: bool = False) -> None:
    """Serve ``root`` in the foreground until Ctrl-C, printing the demo URL first."""
    server = create_server(root, host, port, verbose=verbose)
    if threading.current_thread() is threading.main_thread():
        # A process manager's SIGTERM stops us as cleanly as Ctrl-C does.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:  # from the first line printed on: whoever reads it may interrupt us at once
        print(f"Serving {check_web_root(root)} at {base_url(server)}{DEMO_PATH}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.", flush=True)
    finally:
        server.server_close()
