"""Lay out everything the browser worker loads under ``web/vendor/``.

The browser never reaches past our own origin, so this script gathers the pinned Pyodide
runtime (from ``node_modules/pyodide``, installed by ``npm ci``), the hash-checked wheels
listed in ``requirements/pyodide-wheels.txt`` and a wheel of this repository, then writes
``web/vendor/manifest.json``.  Re-running it is cheap: files whose content already matches
are left alone and pinned wheels are downloaded only when one is missing or altered.

Layout (all git-ignored)::

    web/vendor/pyodide/     pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm, ...
    web/vendor/wheels/      micropip, pydantic and friends, durably-<version>-py3-none-any.whl
    web/vendor/manifest.json
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NODE_PYODIDE = REPO / "node_modules" / "pyodide"
REQUIREMENTS = REPO / "requirements" / "pyodide-wheels.txt"
VENDOR = REPO / "web" / "vendor"
PYODIDE_DIR = VENDOR / "pyodide"
WHEELS_DIR = VENDOR / "wheels"
MANIFEST = VENDOR / "manifest.json"

# The runtime files loadPyodide() fetches; the npm package ships no package wheels.
PYODIDE_FILES = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
# The Pyodide wheel tags pip must select (Pyodide 314 runs CPython 3.14).
PYODIDE_PLATFORM = "pyemscripten_2026_0_wasm32"
PYODIDE_PYTHON = "3.14"
OUR_PROJECT = "durably"


class SetupError(Exception):
    """A step failed; the message tells the user what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normalize(name: str) -> str:
    """PEP 503 name, with ``_`` as wheel file names spell it."""
    return name.lower().replace("-", "_").replace(".", "_")


def read_requirements() -> list[tuple[str, set[str]]]:
    """Return ``(normalized name, allowed sha256 set)`` per pinned line, in file order."""
    pins: list[tuple[str, set[str]]] = []
    for raw in REQUIREMENTS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.split("==", 1)[0].strip()
        hashes = {part.split("sha256:", 1)[1] for part in line.split() if "sha256:" in part}
        if "==" not in line or not hashes:
            raise SetupError(f"{REQUIREMENTS.name}: every line needs ==version and --hash: {raw}")
        pins.append((normalize(name), hashes))
    return pins


def check_node_pyodide() -> str:
    """Return the installed Pyodide version, or fail if ``npm ci`` has not run (or is stale)."""
    package_json = NODE_PYODIDE / "package.json"
    if not package_json.is_file():
        raise SetupError("node_modules/pyodide is missing: run `npm ci` first")
    installed: str = json.loads(package_json.read_text())["version"]
    wanted = json.loads((REPO / "package.json").read_text())["dependencies"]["pyodide"]
    if installed != wanted:
        raise SetupError(
            f"node_modules has pyodide {installed}, package.json pins {wanted}: run `npm ci`"
        )
    missing = [name for name in PYODIDE_FILES if not (NODE_PYODIDE / name).is_file()]
    if missing:
        raise SetupError(f"node_modules/pyodide lacks {', '.join(missing)}: run `npm ci`")
    return installed


def copy_if_changed(source: Path, target: Path) -> bool:
    """Copy unless the target already has the same bytes; return whether it copied."""
    same_size = target.is_file() and target.stat().st_size == source.stat().st_size
    if same_size and sha256_of(target) == sha256_of(source):
        return False
    shutil.copyfile(source, target)
    return True


def lay_out_pyodide() -> None:
    PYODIDE_DIR.mkdir(parents=True, exist_ok=True)
    copied = [
        name for name in PYODIDE_FILES if copy_if_changed(NODE_PYODIDE / name, PYODIDE_DIR / name)
    ]
    for stale in PYODIDE_DIR.iterdir():
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.name not in PYODIDE_FILES:
            stale.unlink()
    print(f"pyodide runtime: {len(copied)} of {len(PYODIDE_FILES)} files updated")


def wheel_name(path: Path) -> str:
    return normalize(path.name.split("-", 1)[0])


def match_pinned_wheels(pins: list[tuple[str, set[str]]]) -> dict[str, Path] | None:
    """Map each pin to a present wheel whose hash it allows, or None if any is missing."""
    present: dict[str, Path] = {}
    by_name = {wheel_name(path): path for path in WHEELS_DIR.glob("*.whl")}
    for name, hashes in pins:
        path = by_name.get(name)
        if path is None or sha256_of(path) not in hashes:
            return None
        present[name] = path
    return present


def fetch_pinned_wheels(pins: list[tuple[str, set[str]]]) -> dict[str, Path]:
    """Download the pinned wheels (pip verifies every hash) unless they are already here."""
    WHEELS_DIR.mkdir(parents=True, exist_ok=True)
    present = match_pinned_wheels(pins)
    if present is not None:
        print(f"pinned wheels: all {len(pins)} present and hash-checked")
        return present
    with tempfile.TemporaryDirectory(prefix="durably-wheels-") as tmp:
        run_pip(
            "download", "--require-hashes", "--no-deps", "--only-binary=:all:",
            "--platform", PYODIDE_PLATFORM, "--python-version", PYODIDE_PYTHON,
            "-r", str(REQUIREMENTS), "-d", tmp,
        )  # fmt: skip
        pinned_names = {name for name, _ in pins}
        for old in WHEELS_DIR.glob("*.whl"):
            if wheel_name(old) in pinned_names:
                old.unlink()
        for new in Path(tmp).glob("*.whl"):
            shutil.move(str(new), WHEELS_DIR / new.name)
    present = match_pinned_wheels(pins)
    if present is None:
        raise SetupError("pip download did not produce every pinned wheel")
    print(f"pinned wheels: downloaded {len(pins)}")
    return present


def build_our_wheel() -> Path:
    """Build this repository's wheel (always: the source changes) and drop older ones."""
    with tempfile.TemporaryDirectory(prefix="durably-build-") as tmp:
        run_pip("wheel", "--no-deps", str(REPO), "-w", tmp)
        built = list(Path(tmp).glob(f"{OUR_PROJECT}-*.whl"))
        if len(built) != 1:
            raise SetupError(f"expected one {OUR_PROJECT} wheel from pip wheel, got {built}")
        target = WHEELS_DIR / built[0].name
        changed = copy_if_changed(built[0], target)
    for stale in WHEELS_DIR.glob(f"{OUR_PROJECT}-*.whl"):
        if stale != target:
            stale.unlink()
    print(f"{target.name}: {'rebuilt' if changed else 'unchanged'}")
    return target


def run_pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = "\n".join(
            line
            for line in (result.stderr + result.stdout).splitlines()
            if not line.startswith("WARNING: Location")  # noise from local mirrors
        )
        raise SetupError(f"`pip {args[0]}` failed (exit {result.returncode}):\n{detail.strip()}")


def vendor_version() -> str:
    """A content hash over every vendor file except the manifest; changes when any asset does."""
    digest = hashlib.sha256()
    for path in sorted(p for p in VENDOR.rglob("*") if p.is_file() and p != MANIFEST):
        digest.update(path.relative_to(VENDOR).as_posix().encode() + b"\0")
        digest.update(sha256_of(path).encode() + b"\n")
    return digest.hexdigest()[:16]


def write_manifest(
    pyodide_version: str, pins: list[tuple[str, set[str]]], pinned: dict[str, Path], ours: Path
) -> None:
    micropip = pinned.pop("micropip", None)
    if micropip is None:
        raise SetupError(f"{REQUIREMENTS.name} must pin micropip")
    # Install order: the requirements file's order, our wheel last.
    wheels = [pinned[name].name for name, _ in pins if name in pinned] + [ours.name]
    for unlisted in WHEELS_DIR.glob("*.whl"):  # e.g. a wheel dropped from the requirements
        if unlisted.name not in wheels and unlisted != micropip:
            unlisted.unlink()
    manifest = {
        "pyodideVersion": pyodide_version,
        "pyodideFiles": list(PYODIDE_FILES),
        "micropip": micropip.name,
        "wheels": wheels,
        "version": vendor_version(),
    }
    text = json.dumps(manifest, indent=2) + "\n"
    if not MANIFEST.is_file() or MANIFEST.read_text() != text:
        MANIFEST.write_text(text)
    print(f"manifest: version {manifest['version']}, {len(wheels)} wheels")


def main() -> int:
    try:
        pyodide_version = check_node_pyodide()
        pins = read_requirements()
        lay_out_pyodide()
        pinned = fetch_pinned_wheels(pins)
        ours = build_our_wheel()
        write_manifest(pyodide_version, pins, pinned, ours)
    except SetupError as error:
        print(f"setup_web: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
