"""Wheels repacked with bytecode compiled by Pyodide's own Python (durably.bundle.bytecode)."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from durably.bundle.bytecode import _repack, compile_wheels

REPO = Path(__file__).resolve().parents[2]
NODE_PYODIDE = REPO / "node_modules" / "pyodide"


def make_wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("demo/__init__.py", "VALUE = 42\n")
        wheel.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
        wheel.writestr("demo-1.0.dist-info/RECORD", "demo/__init__.py,sha256=x,11\n")
    return path


def test_repack_keeps_every_entry_and_lists_the_bytecode_in_record(tmp_path: Path) -> None:
    original = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl")
    tree = tmp_path / "tree"
    pyc = tree / "demo" / "__pycache__" / "__init__.cpython-314.pyc"
    pyc.parent.mkdir(parents=True)
    pyc.write_bytes(b"bytecode")
    target = tmp_path / "out.whl"
    _repack(original, tree, target)
    with zipfile.ZipFile(target) as repacked:
        names = repacked.namelist()
        assert names[:3] == zipfile.ZipFile(original).namelist()
        assert names[3:] == ["demo/__pycache__/__init__.cpython-314.pyc"]
        assert repacked.read("demo/__init__.py") == b"VALUE = 42\n"  # sources stay
        record = repacked.read("demo-1.0.dist-info/RECORD").decode().splitlines()
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"bytecode").digest()).rstrip(b"=")
    assert record[-1] == f"demo/__pycache__/__init__.cpython-314.pyc,sha256={digest.decode()},8"
    first = target.read_bytes()
    _repack(original, tree, target)
    assert target.read_bytes() == first  # same inputs, same bytes: setup can be re-run


@pytest.mark.skipif(
    not (NODE_PYODIDE / "pyodide.mjs").is_file(), reason="needs npm's Pyodide (make setup)"
)
def test_bytecode_is_compiled_by_the_runtime_python_and_never_checked_against_mtime(
    tmp_path: Path,
) -> None:
    original = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl")
    [served] = compile_wheels([original], tmp_path / "served", NODE_PYODIDE)
    version = json.loads((NODE_PYODIDE / "package.json").read_text())["version"]
    tag = f"cpython-3{int(version.split('.')[0]) % 100}"  # Pyodide 314 runs CPython 3.14
    with zipfile.ZipFile(served) as wheel:
        data = wheel.read(f"demo/__pycache__/__init__.{tag}.pyc")
    # PEP 552 flags: 0b01 = hash-based, 0b10 clear = not checked against the source.
    assert int.from_bytes(data[4:8], "little") == 0b01
