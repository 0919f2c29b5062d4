"""Loading the application's job modules and collecting the jobs they define.

A module that fails to import does not stop the others: its error, naming the
module and the line, is returned alongside the jobs that did load.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import JobModuleError
from ..jobs import JobDefinition


@dataclass(frozen=True)
class JobModule:
    #: What the page named (a URL), used in messages.
    source: str
    #: Module name to import.
    module: str
    #: File to load it from, for a single-file module; None to import an installed one.
    path: str | None = None


def _load(spec: JobModule) -> ModuleType:
    if spec.path is None:
        return importlib.import_module(spec.module)
    module_spec = importlib.util.spec_from_file_location(spec.module, spec.path)
    if module_spec is None or module_spec.loader is None:
        raise JobModuleError(f"cannot load job module {spec.source}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[spec.module] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.module]
        raise
    return module


def _describe_failure(spec: JobModule, exc: BaseException) -> str:
    frames = list(traceback.extract_tb(exc.__traceback__))
    if spec.path is not None:
        frames = [f for f in frames if f.filename == spec.path] or frames
    where = ""
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        where = f" line {exc.lineno}:"
    elif frames:
        where = f" line {frames[-1].lineno}:"
    return f"job module {spec.source} failed to load:{where} {type(exc).__name__}: {exc}"


def load_job_modules(
    specs: list[JobModule],
) -> tuple[list[JobDefinition[Any, Any]], list[dict[str, str]]]:
    """Import every module; returns the jobs they define and one error per failed module."""
    jobs: list[JobDefinition[Any, Any]] = []
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
        jobs.extend(job for job in found if job not in jobs)
    return jobs, errors
