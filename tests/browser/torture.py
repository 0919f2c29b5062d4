"""Crash torture: interrupt the owner tab at random moments and prove nothing is lost
and no finished step runs twice.

A mixed workload (web/testing/torture_jobs.py: good runs, runs that fail on purpose,
runs that catch a failing step) keeps running while a seeded RNG picks interruptions:

  reload          page.reload() while runs are in flight
  close-reopen    close the page, open a new one on the same database
  terminate       worker.terminate() (the worker dies mid-instruction), then reload
  browser-restart close the persistent context (the browser) and relaunch it on the
                  same profile directory

Some interruptions hit the next owner while it is still booting. Once every
interruption is done the workload settles and the checks run on the database file
itself, read by a separate worker after the runtime has closed it:

- ``PRAGMA integrity_check`` is ``ok``; every acknowledged trigger is stored;
- every run ended in the state its job dictates (completed / failed) with the right
  output or error, and no run is left pending or leased;
- every stored completed step was executed (the execution journal, an OPFS file
  outside the database, has a line for it) and executed exactly once, except a step
  that was in flight when its worker was killed: such a re-execution must be the last
  thing the killed worker did for that run, and is counted separately.

Run it on its own (``make torture``: ``python tests/browser/torture.py -n 50``); the
browser suite runs a quick version (tests/browser/test_reliability_torture.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ("reload", "close-reopen", "terminate", "browser-restart")
JOBS = ("torture-good", "torture-fail", "torture-recover")
JOB_WEIGHTS = (6, 2, 2)
#: maxConcurrentRuns of the test page: at most this many steps are in flight at a kill.
MAX_CONCURRENT_RUNS = 2
BOOT_TIMEOUT_MS = 180_000
SETTLE_TIMEOUT_S = 300

Launch = Callable[[Path], BrowserContext]


@dataclass
class Interruption:
    scenario: str
    during_boot: bool
    at_ms: int  # epoch ms when the interrupted worker was surely gone (the kill returned)
    recovered: bool = True
    error: str | None = None
    reexecutions: int = 0
    violations: int = 0


@dataclass
class Report:
    seed: int
    interruptions: list[Interruption] = field(default_factory=list)
    runs: int = 0
    executions: int = 0
    completed_steps: int = 0
    failures: list[str] = field(default_factory=list)
    final_failures: int = 0
    elapsed_s: float = 0.0

    def table(self) -> str:
        rows = [("scenario", "trials", "in-flight re-executions", "failures")]
        for scenario in SCENARIOS:
            hits = [i for i in self.interruptions if i.scenario == scenario]
            failures = sum((not i.recovered) + i.violations for i in hits)
            rows.append((scenario, str(len(hits)), str(sum(i.reexecutions for i in hits)),
                         str(failures)))  # fmt: skip
        rows.append(("final state checks", "1", "-", str(self.final_failures)))
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |"
                 for row in rows]  # fmt: skip
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)

    def summary(self) -> str:
        kills = len(self.interruptions)
        during_boot = sum(i.during_boot for i in self.interruptions)
        reexecuted = sum(i.reexecutions for i in self.interruptions)
        return (
            f"seed {self.seed}: {kills} interruptions ({during_boot} during boot), "
            f"{self.runs} runs, {self.completed_steps} completed steps, "
            f"{self.executions} step executions, {reexecuted} in-flight re-executions, "
            f"{len(self.failures)} failures, {self.elapsed_s:.0f} s"
        )


# -- driving the page -----------------------------------------------------------------


def page_url(base_url: str, database: str) -> str:
    return f"{base_url}/testing/reliability.html?db={database}"


def wait_owner(page: Page) -> None:
    """Wait until this page's runtime is the owner and serving (it may queue first)."""
    outcome = page.evaluate(
        """async () => {
            try {
                const d = await window.durablyReady;
                if (d.role !== "owner") await new Promise((resolve) => d.on("owner", resolve));
                await d.getJobs();
                return null;
            } catch (e) { return `${e.name}: ${e.message}`; }
        }"""
    )
    if outcome is not None:
        raise RuntimeError(f"the runtime did not start: {outcome}")


def trigger_batch(page: Page, inputs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    ids: list[str] = page.evaluate(
        """async (inputs) => {
            const d = await window.durablyReady;
            const ids = [];
            for (const [job, input] of inputs) ids.push((await d.trigger(job, input)).id);
            return ids;
        }""",
        inputs,
    )
    return ids


def active_runs(page: Page) -> int:
    count: int = page.evaluate(
        """async () => (await window.durablyReady).countRuns({ status: ["pending", "leased"] })"""
    )
    return count


def random_input(rng: random.Random, journal: str) -> tuple[str, dict[str, Any]]:
    job = rng.choices(JOBS, JOB_WEIGHTS)[0]
    steps = rng.randint(3, 12)
    return job, {
        "journal": journal,
        "steps": steps,
        "step_ms": rng.randint(10, 80),
        "fail_at": rng.randrange(steps),
    }


def read_database(context: BrowserContext, base_url: str, database: str, code: str) -> Any:
    """Open `database`'s file from a separate worker (web/testing/opfs-sqlite.html) and
    return the value `code` assigns to `result`; `db` is the open connection. The
    runtime must have closed the database first: the file has one owner at a time."""
    page = context.new_page()
    try:
        page.goto(f"{base_url}/testing/opfs-sqlite.html")
        page.evaluate(
            "options => harness.start(options)",
            {"directoryName": "durably", "databaseName": f"{database}.sqlite3"},
        )
        script = f"db = open_db('/opfs/{database}.sqlite3')\n{code}\ndb.close()\nresult\n"
        value = page.evaluate("code => harness.run(code)", script)
        page.evaluate("harness.close()")
        return value
    finally:
        page.close()


# -- the torture loop -------------------------------------------------------------------


class Torture:
    def __init__(self, launch: Launch, profile: Path, base_url: str, seed: int) -> None:
        self.launch = launch
        self.profile = profile
        self.base_url = base_url
        self.rng = random.Random(seed)
        self.database = f"torture-{seed}"
        self.report = Report(seed=seed)
        self.acknowledged: list[str] = []
        self.context = launch(profile)
        self.page: Page | None = None
        #: False while the page opened by the last interruption has not been waited for.
        self.booted = True
        self.started = time.monotonic()

    def log(self, message: str) -> None:
        print(f"  {time.monotonic() - self.started:6.1f} s  {message}", flush=True)

    def open_page(self, wait: bool = True) -> Page:
        self.page = self.context.new_page()
        self.page.goto(page_url(self.base_url, self.database))
        if wait:
            wait_owner(self.page)
        return self.page

    def top_up(self, target: int, cap: int) -> None:
        assert self.page is not None
        missing = target - active_runs(self.page)
        room = cap - len(self.acknowledged)
        count = max(0, min(missing, room))
        if count:
            inputs = [random_input(self.rng, self.database) for _ in range(count)]
            self.acknowledged += trigger_batch(self.page, inputs)

    def interrupt(self, scenario: str, during_boot: bool) -> Interruption:
        page = self.page
        assert page is not None
        kill = Interruption(scenario, during_boot, at_ms=0)
        if scenario == "reload":
            page.reload()
        elif scenario == "close-reopen":
            page.close()
            page = self.open_page(wait=False)
        elif scenario == "terminate":
            page.evaluate("async () => (await window.durablyReady)._worker.terminate()")
            page.reload()
        elif scenario == "browser-restart":
            self.context.close()
            self.context = self.launch(self.profile)
            page = self.open_page(wait=False)
        self.page = page
        kill.at_ms = int(time.time() * 1000)
        return kill

    def recover(self, kill: Interruption) -> None:
        assert self.page is not None
        try:
            wait_owner(self.page)
        except Exception as exc:  # a failed boot is a finding; a reload gets us going again
            kill.recovered = False
            kill.error = f"{kill.scenario}: {exc}"
            self.report.failures.append(kill.error)
            self.page.reload()
            wait_owner(self.page)

    def run(self, interruptions: int, runs_cap: int) -> Report:
        self.open_page()
        self.top_up(target=8, cap=runs_cap)
        for index in range(interruptions):
            assert self.page is not None
            # Interrupt at a random moment: mostly while runs execute, sometimes while the
            # owner is still booting (the previous interruption's page was not waited for).
            during_boot = not self.booted
            self.page.wait_for_timeout(self.rng.uniform(0, 4000 if during_boot else 2500))
            scenario = self.rng.choice(SCENARIOS)
            if during_boot and scenario == "terminate":
                scenario = "reload"  # terminate needs the client, which exists once booted
            kill = self.interrupt(scenario, during_boot)
            self.report.interruptions.append(kill)
            self.log(
                f"interruption {index + 1}: {scenario}{' (during boot)' if during_boot else ''}"
            )
            self.booted = index + 1 == interruptions or self.rng.random() >= 0.2
            if self.booted:
                self.recover(kill)
                self.top_up(target=6, cap=runs_cap)
        self.log("settling")
        self.settle()
        self.log("verifying")
        self.verify()
        self.context.close()
        self.report.elapsed_s = time.monotonic() - self.started
        return self.report

    def settle(self) -> None:
        assert self.page is not None
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while active_runs(self.page):
            if time.monotonic() > deadline:
                self.report.failures.append(f"runs still active after {SETTLE_TIMEOUT_S} s")
                break
            self.page.wait_for_timeout(250)
        self.page.evaluate("async () => (await window.durablyReady).close()")
        self.page.close()

    # -- checks -------------------------------------------------------------------------

    def read_back(self) -> tuple[dict[str, Any], list[str]]:
        """The database's rows and integrity, and the execution journal's lines."""
        data = read_database(self.context, self.base_url, self.database, """
result = {
    "integrity": [row[0] for row in db.execute("PRAGMA integrity_check")],
    "runs": [list(row) for row in db.execute(
        "SELECT id, job_name, input, status, output, error, completed_step_count"
        " FROM durably_runs")],
    "steps": [list(row) for row in db.execute(
        "SELECT run_id, name, status, output FROM durably_steps")],
}
""")  # fmt: skip
        page = self.context.new_page()
        page.goto(f"{self.base_url}/testing/opfs-sqlite.html")
        journal: str = page.evaluate(
            """async (name) => {
                const root = await navigator.storage.getDirectory();
                const directory = await root.getDirectoryHandle("durably-torture");
                const file = await directory.getFileHandle(`${name}.log`);
                for (let attempt = 0; ; attempt++) {
                    try { return await (await file.getFile()).text(); }
                    catch (e) { if (attempt > 100) throw e; await new Promise((r) => setTimeout(r, 50)); }
                }
            }""",
            self.database,
        )
        page.close()
        return data, journal.splitlines()

    def verify(self) -> None:
        data, lines = self.read_back()
        failures: list[str] = []
        if data["integrity"] != ["ok"]:
            failures.append(f"integrity_check: {data['integrity'][:5]}")
        runs = {row[0]: row for row in data["runs"]}
        self.report.runs = len(runs)
        lost = [run_id for run_id in self.acknowledged if run_id not in runs]
        if lost:
            failures.append(f"{len(lost)} acknowledged runs are missing: {lost[:3]}")
        steps: dict[str, dict[str, tuple[str, Any]]] = defaultdict(dict)
        for run_id, name, status, output in data["steps"]:
            steps[run_id][name] = (status, None if output is None else json.loads(output))
        for run_id, job, input_json, status, output, error, count in data["runs"]:
            failures += check_run(run_id, job, json.loads(input_json), status,
                                  None if output is None else json.loads(output), error,
                                  count, steps[run_id])  # fmt: skip
        failures += check_executions(lines, runs, steps, self.report)
        self.report.final_failures = len(failures) - sum(
            i.violations for i in self.report.interruptions
        )
        self.report.failures += failures


def check_executions(
    lines: list[str],
    runs: dict[str, Any],
    steps: dict[str, dict[str, tuple[str, Any]]],
    report: Report,
) -> list[str]:
    """Check the execution journal against the stored steps (see the module docstring);
    counts executions, completed steps and in-flight re-executions into `report`."""
    failures: list[str] = []
    journal = [line.split(" ") for line in lines if line]
    report.executions = len(journal)
    last_line_of: dict[tuple[str, str], int] = {}  # (instance, run) -> line number
    last_ms_of: dict[str, int] = {}
    executions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for number, (instance, run_id, name, ms) in enumerate(journal):
        if run_id not in runs:
            failures.append(f"journal line {number} names an unknown run {run_id}")
        last_line_of[instance, run_id] = number
        last_ms_of[instance] = int(ms)
        executions[run_id, name].append(number)
    extras_of: Counter[str] = Counter()
    for run_id, by_name in steps.items():
        for name, (status, _) in by_name.items():
            if status != "completed":
                continue
            report.completed_steps += 1
            seen = executions.get((run_id, name), [])
            if not seen:
                failures.append(f"run {run_id} step {name} is stored but never executed")
                continue
            for earlier, later in itertools.pairwise(seen):
                instance = journal[earlier][0]
                kill = kill_of(report.interruptions, last_ms_of[instance])
                problem = None
                if journal[later][0] == instance:
                    problem = "ran twice in one worker"
                elif last_line_of[instance, run_id] != earlier:
                    problem = "re-ran although its worker went on with the run afterwards"
                elif kill is None:
                    problem = "re-ran although no interruption ended its worker"
                extras_of[instance] += 1
                if extras_of[instance] > MAX_CONCURRENT_RUNS:
                    problem = f"more than {MAX_CONCURRENT_RUNS} steps re-ran after one kill"
                if problem is not None:
                    failures.append(f"run {run_id} step {name} {problem} (instance {instance})")
                    if kill is not None:
                        kill.violations += 1
                elif kill is not None:
                    kill.reexecutions += 1
    return failures


def kill_of(interruptions: list[Interruption], last_ms: int) -> Interruption | None:
    """The interruption that ended a worker whose last journal line is at `last_ms`."""
    for kill in interruptions:
        if kill.at_ms >= last_ms:
            return kill
    return None


def check_run(
    run_id: str,
    job: str,
    input: dict[str, Any],
    status: str,
    output: Any,
    error: str | None,
    count: int,
    steps: dict[str, tuple[str, Any]],
) -> list[str]:
    """What the job's definition says this run must have ended as."""
    n, fail_at = input["steps"], input["fail_at"]
    failures = []
    completed = {name: out for name, (state, out) in steps.items() if state == "completed"}
    if job == "torture-good":
        want_status, want_output = "completed", {"sum": sum(i * i for i in range(n)), "steps": n}
        want_steps = {f"s{i}": i * i for i in range(n)}
    elif job == "torture-recover":
        want_status, want_output = "completed", {"caught": 1, "steps": n}
        want_steps = {f"s{i}": i for i in range(n) if i != fail_at}
    elif job == "torture-fail":
        want_status, want_output = "failed", None
        want_steps = {f"s{i}": i for i in range(fail_at)}
        want_error = f"RuntimeError: intentional failure in step s{fail_at}"
        if error != want_error:
            failures.append(f"run {run_id} ({job}) error {error!r}, expected {want_error!r}")
    else:
        return [f"run {run_id} has an unexpected job {job!r}"]
    if status != want_status:
        failures.append(f"run {run_id} ({job}) ended {status}, expected {want_status}")
    if output != want_output:
        failures.append(f"run {run_id} ({job}) output {output!r}, expected {want_output!r}")
    if completed != want_steps or count != len(want_steps):
        failures.append(
            f"run {run_id} ({job}) completed steps {sorted(completed)} (count {count}), "
            f"expected {sorted(want_steps)}"
        )
    return failures


def run_torture(
    launch: Launch, profile: Path, base_url: str, interruptions: int, seed: int | None = None
) -> Report:
    """Run the torture with `interruptions` kills; the report lists every failure."""
    if seed is None:
        seed = random.SystemRandom().randrange(1_000_000)
    print(f"torture: seed {seed}, {interruptions} interruptions", flush=True)
    torture = Torture(launch, profile, base_url, seed)
    report = torture.run(interruptions, runs_cap=max(10, 4 * interruptions))
    print(report.table())
    print(report.summary(), flush=True)
    for failure in report.failures[:50]:
        print(f"FAILURE: {failure}")
    return report


# -- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--interruptions", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    from conftest import PLAYWRIGHT_CONFIG  # the browser tests' launch settings
    from playwright.sync_api import sync_playwright

    from durably.serve import serving_in_thread

    with sync_playwright() as playwright, serving_in_thread(REPO / "web") as base_url, \
            tempfile.TemporaryDirectory(prefix="durably-torture-") as tmp:  # fmt: skip

        def launch(profile: Path) -> BrowserContext:
            context = playwright.chromium.launch_persistent_context(
                profile, **PLAYWRIGHT_CONFIG.launch_options()
            )
            context.set_default_timeout(BOOT_TIMEOUT_MS)
            return context

        report = run_torture(launch, Path(tmp) / "profile", base_url, args.interruptions,
                             args.seed)  # fmt: skip
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
