"""The wheel carries what ``python -m durably bundle`` needs, with complete metadata."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from durably.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            *isolation,
            str(REPO),
            "-w",
            str(out),
        ],
        check=True,
    )
    (built,) = out.glob("durably-*.whl")
    return built


def test_wheel_has_types_runtime_files_and_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    assert "durably/py.typed" in names
    packaged = [
        "durably/worker.js",
        "durably/sw-precache.js",
        "pyodide-wheels.txt",
        "package-lock.json",
    ]
    assert {f"durably/_web/{name}" for name in packaged} <= names
    assert metadata["Summary"] and metadata["License-Expression"] == "MIT"
    assert "Typing :: Typed" in metadata.get_all("Classifier", [])
    assert metadata["Description-Content-Type"] == "text/markdown"


def test_an_installed_wheel_finds_its_packaged_runtime_files(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)
    script = "from durably.bundle.sources import runtime_sources as r; print(r().web_dir)"
    found = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found) == tmp_path / "durably" / "_web" / "durably"


def test_help_lists_every_command() -> None:
    help_text = build_parser().format_help()
    assert "serve" in help_text and "bundle" in help_text
