"""The demo's service worker precaches every module the runtime and its UI load.

A module missing from `APP_FILES` in web/sw.js loads online but not offline, so the
app would fail only once the network is gone: this check catches it at once.
"""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
#: Modules for an app's own service worker, never loaded by the runtime itself.
NOT_LOADED_BY_THE_RUNTIME = {"durably/sw-precache.js"}


def precached_files() -> set[str]:
    source = (WEB / "sw.js").read_text()
    listing = re.search(r"const APP_FILES = \[(.*?)\];", source, re.S)
    assert listing is not None, "web/sw.js has no APP_FILES list"
    return set(re.findall(r'"([^"]+)"', listing.group(1)))


def test_every_runtime_module_is_precached() -> None:
    modules = {
        path.relative_to(WEB).as_posix() for path in (WEB / "durably").rglob("*.js")
    } - NOT_LOADED_BY_THE_RUNTIME
    missing = sorted(modules - precached_files())
    assert not missing, f"add these to APP_FILES in web/sw.js, or offline boot breaks: {missing}"


def test_every_precached_file_exists() -> None:
    for name in precached_files():
        path = WEB / name
        assert path.is_dir() if name.endswith("/") else path.is_file(), f"{name} does not exist"
