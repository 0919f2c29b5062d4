"""Loading the application's job modules and collecting the jobs they define.

Job files are imported as submodules of a private package, `durably_jobs`, so one named
``json.py`` cannot replace a library. A module that fails, or a job name defined twice,
does not stop the others: its error is returned with the jobs that loaded (first wins).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import JobModuleError
from ..jobs import JobDefinition

#: The package every job file is loaded under; its `__path__` lists the job folders.
JOB_PACKAGE = "durably_jobs"


@dataclass(frozen=True)
class JobModule:
    #: What the page named (a URL), used in messages.
    source: str
    #: Module name to import (for a file: its name inside `JOB_PACKAGE`).
    module: str
    #: File to load it from, for a single-file module; None to import an installed one.
    path: str | None = None


def _job_package(folder: str) -> ModuleType:
    """The `durably_jobs` package, with `folder` first on its search path."""
    package = sys.modules.get(JOB_PACKAGE)
    if package is None:
        spec = importlib.machinery.ModuleSpec(JOB_PACKAGE, None, is_package=True)
        spec.submodule_search_locations = []
        package = importlib.util.module_from_spec(spec)
        sys.modules[JOB_PACKAGE] = package
    search_path = package.__path__
    if folder in search_path:
        search_path.remove(folder)
    # First, so a sibling import finds this app's file rather than an earlier folder's.
    search_path.insert(0, folder)
    return package


def _load_file(spec: JobModule, path: str) -> ModuleType:
    if not spec.module.isidentifier():
        raise JobModuleError(
            f"job module {spec.source}: {spec.module!r} is not a valid Python module name; "
            "name the file with letters, digits and underscores"
        )
    _job_package(os.path.dirname(os.path.abspath(path)))
    name = f"{JOB_PACKAGE}.{spec.module}"
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == path:
        return loaded  # already imported by a sibling: one module object, one set of jobs
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise JobModuleError(f"cannot load job module {spec.source}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _load(spec: JobModule) -> ModuleType:
    if spec.path is None:
        return importlib.import_module(spec.module)
    return _load_file(spec, spec.path)


def _hint(spec: JobModule, exc: BaseException) -> str:
    """Point a bare import of a sibling job file at the package form."""
    missing = getattr(exc, "name", None)
    if not isinstance(exc, ModuleNotFoundError) or spec.path is None or not missing:
        return ""
    sibling = os.path.join(os.path.dirname(spec.path), f"{missing}.py")
    if "." in missing or not os.path.isfile(sibling):
        return ""
    return f" (job files are modules of the package {JOB_PACKAGE}: write `from . import {missing}`)"


def _describe_failure(spec: JobModule, exc: BaseException) -> str:
    frames = list(traceback.extract_tb(exc.__traceback__))
    if spec.path is not None:
        frames = [f for f in frames if f.filename == spec.path] or frames
    where = ""
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        where = f" line {exc.lineno}:"
    elif frames:
        where = f" line {frames[-1].lineno}:"
    return (
        f"job module {spec.source} failed to load:{where} {type(exc).__name__}: {exc}"
        f"{_hint(spec, exc)}"
    )


def load_job_modules(
    specs: list[JobModule],
) -> tuple[list[JobDefinition[Any, Any]], list[dict[str, str]]]:
    """Import every module; returns the jobs they define and one error per problem."""
    jobs: list[JobDefinition[Any, Any]] = []
    #: Which module first defined each job name.
    defined_by: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    for spec in specs:
        try:
            module = _load(spec)
        except Exception as exc:
            errors.append({"module": spec.source, "message": _describe_failure(spec, exc)})
            continue
        found = [value for value in vars(module).values() if isinstance(value, JobDefinition)]
        if not found:
            errors.append(
                {
                    "module": spec.source,
                    "message": f"job module {spec.source} defines no jobs (define_job)",
                }
            )
        for job in found:
            if job in jobs:
                continue  # the same definition, imported by a second module
            first = defined_by.get(job.name)
            if first is not None:
                errors.append(
                    {
                        "module": spec.source,
                        "message": f"job {job.name!r} is defined in both {first} and "
                        f"{spec.source}; the one in {first} is used. Give each job its "
                        "own name.",
                    }
                )
                continue
            defined_by[job.name] = spec.source
            jobs.append(job)
    return jobs, errors
