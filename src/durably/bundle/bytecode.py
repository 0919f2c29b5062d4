"""Precompiled bytecode for the wheels the browser worker installs.

Pyodide compiles every module it imports from source unless a ``__pycache__`` entry
matches, and compiling pydantic and durably costs a good part of the boot. So each
hash-checked wheel is repacked with ``__pycache__/*.pyc`` compiled by Pyodide's own
Python (the npm package under Node, ``compile_bytecode.mjs``): the magic number then
matches the runtime. Invariant: only wheels already checked against their pins (or our
own) are repacked; the sources stay in the wheel, so tracebacks still show code, and
the wheel's RECORD lists the added files with their hashes.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from durably.errors import DurablyError

COMPILER = Path(__file__).with_name("compile_bytecode.mjs")
# Fixed entry times: the same inputs give the same bytes, so re-running setup is a no-op.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class BytecodeError(DurablyError):
    """Compiling the wheels' bytecode failed; the message says why."""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _repack(original: Path, tree: Path, target: Path) -> None:
    """Write ``target``: ``original``'s entries in their order, then the .pyc files."""
    with zipfile.ZipFile(original) as source:
        names = source.namelist()
        record = next((n for n in names if n.endswith(".dist-info/RECORD")), None)
        known = set(names)
        added = sorted(
            p.relative_to(tree).as_posix()
            for p in tree.rglob("*.pyc")
            if p.relative_to(tree).as_posix() not in known
        )
        partial = target.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for name in names:
                data = source.read(name)
                if name == record:
                    lines = data.decode().rstrip("\n").split("\n")
                    lines += [_record_line(n, (tree / n).read_bytes()) for n in added]
                    data = ("\n".join(lines) + "\n").encode()
                out.writestr(zipfile.ZipInfo(name, ZIP_DATE), data, zipfile.ZIP_DEFLATED)
            for name in added:
                info = zipfile.ZipInfo(name, ZIP_DATE)
                out.writestr(info, (tree / name).read_bytes(), zipfile.ZIP_DEFLATED)
    partial.replace(target)


def compile_wheels(wheels: list[Path], out_dir: Path, pyodide_dir: Path) -> list[Path]:
    """Repack each wheel into ``out_dir`` (same file name) with Pyodide-compiled bytecode."""
    node = shutil.which("node")
    if node is None:
        raise BytecodeError("node is missing: it runs Pyodide to compile the wheels' bytecode")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="durably-bytecode-") as tmp:
        trees = []
        for i, wheel in enumerate(wheels):
            tree = Path(tmp) / str(i)
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(tree)
            trees.append(tree)
        result = subprocess.run(
            [node, str(COMPILER), str(pyodide_dir), *map(str, trees)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise BytecodeError(f"compiling bytecode with Pyodide failed:\n{result.stderr.strip()}")
        targets = []
        for wheel, tree in zip(wheels, trees, strict=True):
            target = out_dir / wheel.name
            _repack(wheel, tree, target)
            targets.append(target)
    return targets
