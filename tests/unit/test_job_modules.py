"""Loading job modules the way the browser worker does: one bad module (or a job name
defined twice) never stops the others, and a job file can never replace the standard
library, pydantic or durably."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pydantic

import durably
from durably.browser.bridge import open_bridge
from durably.browser.loader import JobModule, load_job_modules


def job_file(folder: Path, name: str, job_name: str, body: str = "", result: str = "'ok'") -> Path:
    path = folder / f"{name}.py"
    path.write_text(
        f"{body}\n"
        "from durably import define_job\n"
        f"@define_job(name={job_name!r})\n"
        "async def job(step, input):\n"
        f"    return {result}\n"
    )
    return path


def spec(path: Path) -> JobModule:
    return JobModule(source=f"/app/{path.name}", module=path.stem, path=str(path))


async def test_a_job_name_defined_twice_is_reported_and_the_first_is_kept(tmp_path: Path) -> None:
    first = job_file(tmp_path, "first_jobs", "dup", result="'first'")
    second = job_file(tmp_path, "second_jobs", "dup", result="'second'")
    other = job_file(tmp_path, "other_jobs", "other")
    posted: list[str] = []
    config = {
        "databasePath": str(tmp_path / "app.sqlite3"),
        "options": {"pollingIntervalMs": 50},
        "jobModules": [
            {"source": f"/app/{p.name}", "module": p.stem, "path": str(p)}
            for p in (first, second, other)
        ],
    }
    bridge = await open_bridge(json.dumps(config), posted.append)
    try:
        info = json.loads(bridge.info_json())
        assert info["jobs"] == ["dup", "other"]
        [error] = info["jobErrors"]
        assert error["module"] == "/app/second_jobs.py"
        assert "/app/first_jobs.py" in error["message"]
        assert "/app/second_jobs.py" in error["message"] and "'dup'" in error["message"]
        run = await bridge.durably.jobs["dup"].trigger_and_wait(None, timeout=5)
        assert run.output == "first"
    finally:
        await bridge.close()


def test_job_files_named_like_libraries_do_not_replace_them(tmp_path: Path) -> None:
    stdlib_json, real_pydantic, real_durably = sys.modules["json"], pydantic, durably
    specs = [
        spec(job_file(tmp_path, "json", "as-json")),
        spec(job_file(tmp_path, "pydantic", "as-pydantic")),
        spec(job_file(tmp_path, "durably", "as-durably")),
        # A later module that uses the real libraries.
        spec(
            job_file(
                tmp_path,
                "uses_libraries",
                "uses",
                body="import json, pydantic",
                result="json.dumps(pydantic.VERSION is not None)",
            )
        ),
    ]
    jobs, errors = load_job_modules(specs)
    assert errors == []
    assert sorted(job.name for job in jobs) == ["as-durably", "as-json", "as-pydantic", "uses"]
    assert sys.modules["json"] is stdlib_json
    assert sys.modules["pydantic"] is real_pydantic
    assert sys.modules["durably"] is real_durably
    assert sys.modules["durably_jobs.json"].__file__ == str(tmp_path / "json.py")


def test_job_files_import_each_other_within_their_package(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("def greet(name):\n    return f'hello {name}'\n")
    shared = job_file(tmp_path, "shared_jobs", "shared")
    main = job_file(tmp_path, "main_jobs", "main",
                    body="from .helpers import greet\nfrom . import shared_jobs",
                    result="greet(input)")  # fmt: skip
    # The sibling is imported by main_jobs first and listed too: loaded once, no duplicate.
    jobs, errors = load_job_modules([spec(main), spec(shared)])
    assert errors == []
    assert sorted(job.name for job in jobs) == ["main", "shared"]
    assert "helpers" not in sys.modules


def test_a_bare_import_of_a_sibling_says_how_to_import_it(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text("X = 1\n")
    bare = job_file(tmp_path, "bare_jobs", "bare", body="import tools")
    jobs, errors = load_job_modules([spec(bare)])
    assert jobs == []
    [error] = errors
    assert "ModuleNotFoundError" in error["message"]
    assert "from . import tools" in error["message"]


def test_a_file_name_that_is_not_a_module_name_is_reported(tmp_path: Path) -> None:
    path = job_file(tmp_path, "my-jobs", "dashed")
    jobs, errors = load_job_modules([spec(path)])
    assert jobs == []
    assert "not a valid Python module name" in errors[0]["message"]
