"""Where the bundle command finds what it lays out.

An installed wheel carries the runtime's JavaScript (``web/durably/**``), the Pyodide wheel
pins and the npm lock that pins Pyodide under ``durably/_web/``; a source checkout (an
editable install) reads the same files from the repository. Pyodide's runtime files are too
big for the wheel: they come from an npm ``pyodide`` package directory, or are downloaded
once from the npm registry and checked against the lock's pinned integrity hash.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from email.message import Message
from importlib import metadata
from pathlib import Path

from durably.bundle.vendor import OUR_PROJECT, PYODIDE_FILES, SetupError, check_pyodide_dir

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../durably
PACKAGED = PACKAGE_DIR / "_web"
CHECKOUT = PACKAGE_DIR.parent.parent  # src/durably -> the repository, for editable installs
NPM_REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class RuntimeSources:
    """The files of the runtime that ship with the Python package."""

    web_dir: Path  # the runtime's JavaScript: client.js, worker.js, ...
    requirements: Path  # hash-pinned Pyodide wheels
    package_lock: Path  # pins Pyodide's version, tarball URL and integrity

    def pyodide_pin(self) -> tuple[str, str, str]:
        """Return the pinned Pyodide ``(version, tarball url, integrity)``."""
        lock = json.loads(self.package_lock.read_text())
        entry = lock["packages"]["node_modules/pyodide"]
        version: str = entry["version"]
        url: str = entry.get("resolved") or f"{NPM_REGISTRY}/pyodide/-/pyodide-{version}.tgz"
        return version, url, entry["integrity"]


def runtime_sources() -> RuntimeSources:
    """The packaged runtime files, or the checkout's when running from source."""
    for root, web, requirements in (
        (PACKAGED, PACKAGED / "durably", PACKAGED / "pyodide-wheels.txt"),
        (CHECKOUT, CHECKOUT / "web" / "durably", CHECKOUT / "requirements" / "pyodide-wheels.txt"),
    ):
        lock = root / "package-lock.json"
        if (web / "worker.js").is_file() and requirements.is_file() and lock.is_file():
            return RuntimeSources(web, requirements, lock)
    raise SetupError("this durably installation lacks its web runtime files; reinstall the wheel")


def find_pyodide(explicit: Path | None, version: str, url: str, integrity: str) -> Path:
    """An npm ``pyodide`` directory of the pinned version: given, found, or downloaded."""
    if explicit is not None:
        check_pyodide_dir(explicit, version)
        return explicit
    for parent in [Path.cwd(), *Path.cwd().parents]:
        candidate = parent / "node_modules" / "pyodide"
        if (candidate / "package.json").is_file():
            try:
                check_pyodide_dir(candidate, version)
            except SetupError:
                continue
            return candidate
    return download_pyodide(version, url, integrity)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "durably"


def download_pyodide(version: str, url: str, integrity: str) -> Path:
    """Fetch the npm tarball once, check its pinned sha512 and unpack the runtime files."""
    target = cache_dir() / f"pyodide-{version}"
    if (target / "package.json").is_file():
        check_pyodide_dir(target, version)
        return target
    algorithm, _, expected = integrity.partition("-")
    print(f"downloading pyodide {version} from {url}")
    with urllib.request.urlopen(url, timeout=300) as response:
        data = response.read()
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise SetupError(f"{url} does not match the pinned integrity {integrity}")
    staging = target.with_name(target.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in (*PYODIDE_FILES, "package.json"):
            member = archive.extractfile(f"package/{name}")
            if member is None:
                raise SetupError(f"{url} lacks {name}")
            (staging / name).write_bytes(member.read())
    staging.rename(target)
    return target


def build_installed_wheel(out_dir: Path) -> Path:
    """Zip the installed ``durably`` package into a wheel the Pyodide worker installs.

    Pure Python, so the files installed here are the files Pyodide needs; ``_web`` (the
    JavaScript, served separately) and caches are left out. Timestamps are fixed, so the
    same sources give the same bytes (and the same precache hashes).
    """
    version = metadata.version(OUR_PROJECT)
    meta = Message()
    meta["Metadata-Version"] = "2.1"
    meta["Name"] = OUR_PROJECT
    meta["Version"] = version
    meta["Summary"] = metadata.metadata(OUR_PROJECT)["Summary"] or ""
    for requirement in metadata.requires(OUR_PROJECT) or []:
        if "extra ==" not in requirement:
            meta["Requires-Dist"] = requirement
    dist_info = f"{OUR_PROJECT}-{version}.dist-info"
    files: list[tuple[str, bytes]] = []
    for path in sorted(PACKAGE_DIR.rglob("*")):
        relative = path.relative_to(PACKAGE_DIR)
        if path.is_dir() or relative.parts[0] == "_web" or "__pycache__" in relative.parts:
            continue
        if path.suffix == ".pyc":
            continue
        files.append((f"{OUR_PROJECT}/{relative.as_posix()}", path.read_bytes()))
    files.append((f"{dist_info}/METADATA", meta.as_bytes()))
    files.append(
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: durably bundle\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        )
    )
    record = [f"{name},sha256={_urlsafe_digest(data)},{len(data)}" for name, data in files] + [
        f"{dist_info}/RECORD,,"
    ]
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{OUR_PROJECT}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(2020, 2, 2, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return wheel


def _urlsafe_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
