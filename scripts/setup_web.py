"""Lay out everything the browser worker loads under ``web/vendor/`` (``make setup``).

The browser never reaches past our own origin, so this gathers the pinned Pyodide runtime
(from ``node_modules/pyodide``, installed by ``npm ci``), the hash-checked wheels listed in
``requirements/pyodide-wheels.txt`` and a wheel of this repository, then writes
``web/vendor/manifest.json``.  The work itself is ``durably.bundle.vendor``, shared with
``make dist`` and ``python -m durably bundle``.  Re-running it is cheap: files whose
content already matches are left alone and pinned wheels are downloaded only when one is
missing or altered.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from durably.bundle.vendor import OUR_PROJECT, SetupError, lay_out_vendor, run_pip

REPO = Path(__file__).resolve().parent.parent
NODE_PYODIDE = REPO / "node_modules" / "pyodide"
REQUIREMENTS = REPO / "requirements" / "pyodide-wheels.txt"
VENDOR = REPO / "web" / "vendor"
# The pinned wheels as downloaded (hash-checked); web/vendor serves them repacked with bytecode.
PINNED_WHEELS = REPO / "build" / "pinned-wheels"


def pinned_pyodide_version() -> str:
    version: str = json.loads((REPO / "package.json").read_text())["dependencies"]["pyodide"]
    return version


def build_our_wheel(out_dir: Path) -> Path:
    """Build this repository's wheel (always: the source changes)."""
    run_pip("wheel", "--no-deps", str(REPO), "-w", str(out_dir))
    built = list(out_dir.glob(f"{OUR_PROJECT}-*.whl"))
    if len(built) != 1:
        raise SetupError(f"expected one {OUR_PROJECT} wheel from pip wheel, got {built}")
    return built[0]


def lay_out(vendor: Path) -> dict[str, object]:
    """Lay out ``vendor`` from this checkout (also used by ``scripts/build_npm.py``)."""
    if not (NODE_PYODIDE / "package.json").is_file():
        raise SetupError("node_modules/pyodide is missing: run `npm ci` first")
    with tempfile.TemporaryDirectory(prefix="durably-build-") as tmp:
        return lay_out_vendor(
            vendor,
            pyodide_source=NODE_PYODIDE,
            pyodide_version=pinned_pyodide_version(),
            requirements=REQUIREMENTS,
            our_wheel=build_our_wheel(Path(tmp)),
            pinned_dir=PINNED_WHEELS,
        )


def main() -> int:
    try:
        lay_out(VENDOR)
    except SetupError as error:
        print(f"setup_web: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
