"""Browser launch settings for the browser tests (imported by tests/browser/conftest.py).

Debian's Chromium is used as installed (``playwright install`` is not needed); set
``DURABLY_CHROMIUM`` to point at another Chromium build.  Pages are served from
127.0.0.1, a secure context, so OPFS and Web Locks are available without https.
"""

from __future__ import annotations

import os
from typing import Any

CHROMIUM = os.environ.get("DURABLY_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--headless",
]


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``BrowserType.launch`` / ``launch_persistent_context``."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS), "headless": True}
