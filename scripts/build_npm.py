"""Build the ``durably-pyodide`` npm package into ``dist/`` (``make dist``).

Stages ``build/npm/``: the runtime's JavaScript (all of ``web/durably/``), the entry points
and Vite plugin from ``npm/``, an ``ui`` entry for the module defining ``<durably-runs>``,
and ``vendor/`` (the hash-checked Pyodide wheels, our wheel, manifest.json) laid out by the
same code as ``make setup``; then runs ``npm pack``. Pyodide itself is a pinned dependency,
not a copy: the Vite plugin reads its runtime files from ``node_modules/pyodide``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from setup_web import REPO, VENDOR, lay_out, pinned_pyodide_version

from durably.bundle.site import ui_module
from durably.bundle.vendor import SetupError

NAME = "durably-pyodide"
STAGE = REPO / "build" / "npm"
DIST = REPO / "dist"
WEB = REPO / "web" / "durably"
ENTRY_FILES = ["index.js", "index.d.ts", "ui.js", "ui.d.ts", "vite.js", "vite.d.ts"]


def package_json(version: str) -> dict[str, object]:
    return {
        "name": NAME,
        "version": version,
        "description": "Durable, resumable Python jobs in the browser (Pyodide, SQLite in OPFS).",
        "license": "MIT",
        "type": "module",
        "keywords": ["pyodide", "python", "durable", "jobs", "opfs", "sqlite", "offline", "vite"],
        "exports": {
            ".": {"types": "./index.d.ts", "default": "./index.js"},
            "./ui": {"types": "./ui.d.ts", "default": "./ui.js"},
            "./vite": {"types": "./vite.d.ts", "default": "./vite.js"},
            "./sw-precache.js": "./durably/sw-precache.js",
            "./durably/*": "./durably/*",
            "./package.json": "./package.json",
        },
        "files": [*ENTRY_FILES, "durably", "vendor", "README.md"],
        "dependencies": {"pyodide": pinned_pyodide_version()},
        "peerDependencies": {"vite": ">=6"},
        "peerDependenciesMeta": {"vite": {"optional": True}},
    }


def stage() -> None:
    if STAGE.exists():
        shutil.rmtree(STAGE)
    shutil.copytree(WEB, STAGE / "durably")
    for source in (REPO / "npm").iterdir():
        shutil.copyfile(source, STAGE / source.name)
    ui = ui_module(WEB)
    (STAGE / "ui.js").write_text(f'export * from "./durably/{ui}";\n')
    types = (WEB / ui).with_suffix(".d.ts")
    (STAGE / "ui.d.ts").write_text(
        f'export * from "./durably/{ui}";\n' if types.is_file() else "export {};\n"
    )
    lay_out(VENDOR)  # web/vendor doubles as the cache: pinned wheels are downloaded once
    (STAGE / "vendor" / "wheels").mkdir(parents=True)
    shutil.copyfile(VENDOR / "manifest.json", STAGE / "vendor" / "manifest.json")
    for wheel in (VENDOR / "wheels").glob("*.whl"):
        shutil.copyfile(wheel, STAGE / "vendor" / "wheels" / wheel.name)
    version = json.loads((REPO / "package.json").read_text())["version"]
    (STAGE / "package.json").write_text(json.dumps(package_json(version), indent=2) + "\n")


def pack() -> Path:
    DIST.mkdir(exist_ok=True)
    result = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", str(DIST)],
        cwd=STAGE, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SetupError(f"npm pack failed:\n{result.stderr.strip()}")
    tarball = DIST / json.loads(result.stdout)[0]["filename"]
    print(f"npm package: {tarball.relative_to(REPO)}")
    return tarball


def main() -> int:
    try:
        stage()
        pack()
    except SetupError as error:
        print(f"build_npm: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
