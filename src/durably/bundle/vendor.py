"""Lay out the runtime's vendor directory: the pinned Pyodide files, hash-checked wheels, manifest.

One implementation serves every way the runtime is shipped: ``make setup`` (``web/vendor``),
``make dist`` (the npm package's wheels) and ``python -m durably bundle`` (a static site).
Invariant: a wheel lands in a vendor directory only after its sha256 matched a pin (or it is
our own wheel), and ``manifest.json`` is written last, naming exactly the files present.
With bytecode (``make setup``), the pinned wheels are kept as downloaded in a separate
directory, checked there, and only then repacked with precompiled ``.pyc`` files into the
vendor directory (``durably.bundle.bytecode``); the manifest records, for each served wheel,
its own sha256 and that of the pinned wheel it was made from.

Layout::

    <vendor>/pyodide/       pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm, ...
    <vendor>/wheels/        micropip, pydantic and friends, durably-<version>-py3-none-any.whl
    <vendor>/manifest.json
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from durably.bundle.bytecode import compile_wheels
from durably.errors import DurablyError

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

Pins = list[tuple[str, set[str]]]


class SetupError(DurablyError):
    """A step of laying out the runtime failed; the message tells the user what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normalize(name: str) -> str:
    """PEP 503 name, with ``_`` as wheel file names spell it."""
    return name.lower().replace("-", "_").replace(".", "_")


def read_requirements(requirements: Path) -> Pins:
    """Return ``(normalized name, allowed sha256 set)`` per pinned line, in file order."""
    pins: Pins = []
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.split("==", 1)[0].strip()
        hashes = {part.split("sha256:", 1)[1] for part in line.split() if "sha256:" in part}
        if "==" not in line or not hashes:
            raise SetupError(f"{requirements.name}: every line needs ==version and --hash: {raw}")
        pins.append((normalize(name), hashes))
    return pins


def check_pyodide_dir(source: Path, wanted: str) -> str:
    """Return the Pyodide version in ``source`` (an npm ``pyodide`` package) if it is ``wanted``."""
    package_json = source / "package.json"
    if not package_json.is_file():
        raise SetupError(f"{source} is not the npm pyodide package (no package.json)")
    installed: str = json.loads(package_json.read_text())["version"]
    if installed != wanted:
        raise SetupError(f"{source} has pyodide {installed}, the runtime pins {wanted}")
    missing = [name for name in PYODIDE_FILES if not (source / name).is_file()]
    if missing:
        raise SetupError(f"{source} lacks {', '.join(missing)}")
    return installed


def copy_if_changed(source: Path, target: Path) -> bool:
    """Copy unless the target already has the same bytes; return whether it copied."""
    same_size = target.is_file() and target.stat().st_size == source.stat().st_size
    if same_size and sha256_of(target) == sha256_of(source):
        return False
    shutil.copyfile(source, target)
    return True


def lay_out_pyodide(source: Path, vendor: Path) -> None:
    """Copy the runtime files from ``source`` into ``vendor/pyodide``, dropping anything else."""
    target_dir = vendor / "pyodide"
    target_dir.mkdir(parents=True, exist_ok=True)
    copied = [n for n in PYODIDE_FILES if copy_if_changed(source / n, target_dir / n)]
    for stale in target_dir.iterdir():
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.name not in PYODIDE_FILES:
            stale.unlink()
    print(f"pyodide runtime: {len(copied)} of {len(PYODIDE_FILES)} files updated")


def wheel_name(path: Path) -> str:
    return normalize(path.name.split("-", 1)[0])


def match_pinned_wheels(pins: Pins, wheels_dir: Path) -> dict[str, Path] | None:
    """Map each pin to a present wheel whose hash it allows, or None if any is missing."""
    present: dict[str, Path] = {}
    by_name = {wheel_name(path): path for path in wheels_dir.glob("*.whl")}
    for name, hashes in pins:
        path = by_name.get(name)
        if path is None or sha256_of(path) not in hashes:
            return None
        present[name] = path
    return present


def seed_pinned_wheels(pins: Pins, wheels_dir: Path, sources: Iterable[Path]) -> None:
    """Copy into ``wheels_dir`` the wheels of ``sources`` whose hash a pin allows."""
    allowed = dict(pins)
    for source in sources:
        for path in source.glob("*.whl"):
            hashes = allowed.get(wheel_name(path))
            if hashes and sha256_of(path) in hashes:
                copy_if_changed(path, wheels_dir / path.name)


def fetch_pinned_wheels(
    pins: Pins, requirements: Path, wheels_dir: Path, seeds: Iterable[Path] = ()
) -> dict[str, Path]:
    """Download the pinned wheels (pip verifies every hash) unless they are already here."""
    wheels_dir.mkdir(parents=True, exist_ok=True)
    seed_pinned_wheels(pins, wheels_dir, seeds)
    present = match_pinned_wheels(pins, wheels_dir)
    if present is not None:
        print(f"pinned wheels: all {len(pins)} present and hash-checked")
        return present
    with tempfile.TemporaryDirectory(prefix="durably-wheels-") as tmp:
        run_pip(
            "download", "--require-hashes", "--no-deps", "--only-binary=:all:",
            "--platform", PYODIDE_PLATFORM, "--python-version", PYODIDE_PYTHON,
            "-r", str(requirements), "-d", tmp,
        )  # fmt: skip
        pinned_names = {name for name, _ in pins}
        for old in wheels_dir.glob("*.whl"):
            if wheel_name(old) in pinned_names:
                old.unlink()
        for new in Path(tmp).glob("*.whl"):
            shutil.move(str(new), wheels_dir / new.name)
    present = match_pinned_wheels(pins, wheels_dir)
    if present is None:
        raise SetupError("pip download did not produce every pinned wheel")
    print(f"pinned wheels: downloaded {len(pins)}")
    return present


def place_our_wheel(built: Path, wheels_dir: Path) -> Path:
    """Copy our freshly built wheel into ``wheels_dir`` and drop older versions of it."""
    target = wheels_dir / built.name
    changed = copy_if_changed(built, target)
    for stale in wheels_dir.glob(f"{OUR_PROJECT}-*.whl"):
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


def content_version(root: Path, skip: Iterable[Path] = ()) -> str:
    """A content hash over every file under ``root`` except ``skip``."""
    skipped = set(skip)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in skipped):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(sha256_of(path).encode() + b"\n")
    return digest.hexdigest()[:16]


def write_manifest(
    vendor: Path,
    pyodide_version: str,
    pins: Pins,
    pinned: dict[str, Path],
    ours: Path,
    bytecode: dict[str, dict[str, str]] | None = None,
) -> dict[str, object]:
    """Write ``vendor/manifest.json`` (install order: the requirements', ours last)."""
    pinned = dict(pinned)
    micropip = pinned.pop("micropip", None)
    if micropip is None:
        raise SetupError("the Pyodide requirements must pin micropip")
    wheels = [pinned[name].name for name, _ in pins if name in pinned] + [ours.name]
    for unlisted in (vendor / "wheels").glob("*.whl"):  # e.g. a wheel dropped from the pins
        if unlisted.name not in wheels and unlisted != micropip:
            unlisted.unlink()
    manifest_path = vendor / "manifest.json"
    manifest: dict[str, object] = {
        "pyodideVersion": pyodide_version,
        "pyodideFiles": list(PYODIDE_FILES),
        "micropip": micropip.name,
        "wheels": wheels,
        "version": content_version(vendor, skip=[manifest_path]),
    }
    if bytecode is not None:
        manifest["bytecode"] = bytecode
    text = json.dumps(manifest, indent=2) + "\n"
    if not manifest_path.is_file() or manifest_path.read_text() != text:
        manifest_path.write_text(text)
    print(f"manifest: version {manifest['version']}, {len(wheels)} wheels")
    return manifest


def lay_out_vendor(
    vendor: Path,
    *,
    pyodide_source: Path,
    pyodide_version: str,
    requirements: Path,
    our_wheel: Path,
    wheel_seeds: Iterable[Path] = (),
    pinned_dir: Path | None = None,
) -> dict[str, object]:
    """Fill ``vendor`` with everything the worker loads; return the manifest written.

    With ``pinned_dir``, the pinned wheels are kept (and checked) there and the vendor
    directory serves them, and ours, repacked with bytecode compiled by the Pyodide in
    ``pyodide_source``; without it, the wheels are served as downloaded.
    """
    check_pyodide_dir(pyodide_source, pyodide_version)
    pins = read_requirements(requirements)
    lay_out_pyodide(pyodide_source, vendor)
    wheels_dir = vendor / "wheels"
    if pinned_dir is None:
        pinned = fetch_pinned_wheels(pins, requirements, wheels_dir, wheel_seeds)
        ours = place_our_wheel(our_wheel, wheels_dir)
        return write_manifest(vendor, pyodide_version, pins, pinned, ours)
    # Earlier layouts served the pinned wheels as downloaded: reuse those that still match.
    pinned = fetch_pinned_wheels(pins, requirements, pinned_dir, [*wheel_seeds, wheels_dir])
    ours = place_our_wheel(our_wheel, pinned_dir)
    sources = [*pinned.values(), ours]
    served = compile_wheels(sources, wheels_dir, pyodide_source)
    print(f"bytecode: {len(served)} wheels repacked with .pyc compiled by Pyodide")
    record = {
        target.name: {"pinnedSha256": sha256_of(source), "sha256": sha256_of(target)}
        for source, target in zip(sources, served, strict=True)
    }
    by_name = {wheel_name(path): wheels_dir / path.name for path in pinned.values()}
    return write_manifest(
        vendor, pyodide_version, pins, by_name, wheels_dir / ours.name, bytecode=record
    )
