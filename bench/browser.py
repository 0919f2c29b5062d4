"""The browser workloads: the demo server, a headless Chromium with an on-disk profile
(ordinary Playwright contexts keep OPFS in memory), and web/testing/bench.html.

Every figure is measured next to its floor in the same browser: a step commit next
to a raw 4 KiB OPFS write+flush in the same worker, a boot next to a bare
`loadPyodide()` in the same page.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from durably.serve import serving_in_thread

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 300_000


@dataclass(frozen=True)
class Sizes:
    countdown_steps: int = 100
    countdown_reps: int = 3
    raw_writes: int = 300
    one_step_runs: int = 200
    ten_step_runs: int = 50
    wait_runs: int = 200
    progress_events: int = 5_000
    idle_seconds: float = 10.0
    memory_runs: int = 1_000
    scale_terminal: int = 10_000
    scale_pending: int = 1_000
    resume_steps: int = 20
    resume_after: int = 5
    resume_step_ms: int = 100
    warm_reps: int = 3
    takeover_reps: int = 3
    commit_rounds: int = 2
    storage_commits: int = 100
    storage_filler_kib: tuple[int, ...] = (64, 1024, 8192)
    #: Pending runs of a job no worker knows, under an idle claim poll.
    claim_pending: int = 50_000


QUICK = Sizes(
    countdown_steps=20,
    countdown_reps=1,
    raw_writes=50,
    one_step_runs=20,
    ten_step_runs=5,
    wait_runs=20,
    progress_events=200,
    idle_seconds=1.0,
    memory_runs=20,
    scale_terminal=300,
    scale_pending=30,
    resume_steps=6,
    resume_after=2,
    resume_step_ms=100,
    warm_reps=1,
    takeover_reps=1,
    commit_rounds=1,
    storage_commits=10,
    storage_filler_kib=(64,),
    claim_pending=50_000,
)


def _load_launch_options() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec((REPO / "playwright.config.py").read_text(), namespace)
    options: dict[str, Any] = namespace["launch_options"]()
    return options


class Browser:
    """Fresh on-disk profiles on demand, each a first visit."""

    def __init__(self, playwright: Playwright, base_url: str, root: Path) -> None:
        self._playwright = playwright
        self._options = _load_launch_options()
        self.base_url = base_url
        self._root = root
        self._count = 0

    def profile(self) -> BrowserContext:
        self._count += 1
        context = self._playwright.chromium.launch_persistent_context(
            self._root / f"profile-{self._count}", **self._options
        )
        context.set_default_timeout(TIMEOUT_MS)
        return context

    def open(
        self, context: BrowserContext, config: dict[str, Any] | None = None, *, new: bool = False
    ) -> Page:
        page = context.pages[0] if context.pages and not new else context.new_page()
        query = f"?config={quote(json.dumps(config))}" if config is not None else ""
        page.goto(f"{self.base_url}/testing/bench.html{query}")
        page.wait_for_function("() => window.bench !== undefined")
        return page


def call(page: Page, script: str, arg: Any = None) -> Any:
    """Evaluate `async (bench, arg) => ...` in the bench page."""
    return page.evaluate(f"async (arg) => ({script})(window.bench, arg)", arg)


def ready(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("() => window.benchReady")
    if result and result.get("jobErrors"):
        raise RuntimeError(f"job modules failed: {result['jobErrors']}")
    return result


def start(page: Page, config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = call(page, "(b, c) => b.start(c)", config)
    if result.get("jobErrors"):
        raise RuntimeError(f"job modules failed: {result['jobErrors']}")
    return result


def _median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 3) if baseline else float("nan")


def phase_breakdown(booted: dict[str, Any]) -> dict[str, int]:
    """Each boot phase's duration from the worker's own timeline (ms since its init).

    The lock-free phases (loadPyodide, wheels, jobs and imports) overlap the lock wait,
    so they do not add up to the total; `pageOverheadMs` is the worker's start-up and
    the init message's round trip, seen from the page.
    """
    t = booted.get("worker") or {}
    if not t:
        return {}

    def span(start: str, end: str) -> int | None:
        return (
            round(t[end] - t[start])
            if t.get(start) is not None and t.get(end) is not None
            else None
        )

    out = {
        "lockWaitMs": round(t["lockAcquiredMs"]),
        "manifestMs": span("waiting-for-lock", "loading-python"),
        "loadPyodideMs": span("loading-python", "installing-packages"),
        "wheelsMs": span("installing-packages", "loading-jobs"),
        "jobsAndImportsMs": round(t["preparedMs"] - t["loading-jobs"])
        if "loading-jobs" in t
        else None,
        "preparedMs": round(t["preparedMs"]),
        "databaseOpenMs": span("opening-database", "readyMs"),
        "workerReadyMs": round(t["readyMs"]),
        "pageOverheadMs": round(booted["readyMs"] - t["readyMs"]),
        "firstRequestMs": round(booted["firstRequestMs"]) if booted.get("firstRequestMs") else None,
        "snapshotRestored": t.get("snapshot"),
    }
    return {k: v for k, v in out.items() if v is not None}


def wait_for_snapshot(page: Page, timeout_s: float = 120.0) -> bool:
    """Wait until the runtime has cached its memory snapshot (made after a first boot)."""
    for _ in range(int(timeout_s * 10)):
        if call(page, "(b) => b.snapshotCached()"):
            return True
        page.wait_for_timeout(100)
    return False


# -- workloads --------------------------------------------------------------------------


def boot_times(browser: Browser, sizes: Sizes) -> dict[str, Any]:
    """Time to ready vs bare loadPyodide(): cold (first visit) and warm (cached)."""
    context = browser.profile()
    try:
        page = browser.open(context)
        cold = start(page, {"database": "boot"})
        snapshot_made = wait_for_snapshot(page)
        call(page, "(b) => b.close()")
        warm_ready, warm_bare, warm_phases = [], [], []
        for _ in range(sizes.warm_reps):
            page = browser.open(context)
            warm_bare.append(call(page, "(b) => b.bareBoot()")["ms"])
            page = browser.open(context)
            booted = start(page, {"database": "boot"})
            warm_ready.append(booted["readyMs"])
            warm_phases.append({"readyMs": booted["readyMs"], "phases": phase_breakdown(booted)})
            call(page, "(b) => b.close()")
    finally:
        context.close()
    context = browser.profile()
    try:
        cold_bare = call(browser.open(context), "(b) => b.bareBoot()")["ms"]
    finally:
        context.close()
    warm = _median(warm_ready)
    bare = _median(warm_bare)
    return {
        "snapshotMade": snapshot_made,
        "cold": {
            "readyMs": round(cold["readyMs"]),
            "bareBootMs": round(cold_bare),
            "ratio": ratio(cold["readyMs"], cold_bare),
            "phasesMs": phase_breakdown(cold),
        },
        "warm": {
            "readyMs": round(warm),
            "bareBootMs": round(bare),
            "ratio": ratio(warm, bare),
            "budget": 0.75,
            "phasesMs": sorted(warm_phases, key=lambda p: p["readyMs"])[len(warm_phases) // 2][
                "phases"
            ],
            "samples": {
                "readyMs": [round(v) for v in warm_ready],
                "bareBootMs": [round(v) for v in warm_bare],
            },
        },
    }


#: Step jobs timed next to the countdown: `anchor` (a tiny output, nothing else) and
#: `chatty` (a log line and a progress report inside each step), in bench_jobs.py.
STEP_JOBS = ("anchor", "chatty")


def step_commit(page: Page, sizes: Sizes) -> dict[str, Any]:
    """Countdown runs with step_ms=0, and anchor and chatty runs, between two raw
    write+flush measurements."""
    raw = [call(page, "(b, n) => b.raw(n)", sizes.raw_writes)["us"]]
    found: dict[str, Any] = {"runs": [], **{job: [] for job in STEP_JOBS}}
    for _ in range(sizes.countdown_reps):
        found["runs"].append(call(page, "(b, n) => b.countdown({steps: n})", sizes.countdown_steps))
        for job in STEP_JOBS:
            found[job].append(
                call(page, "(b, a) => b.stepJob(a)", {"job": job, "steps": sizes.countdown_steps})
            )
    raw.append(call(page, "(b, n) => b.raw(n)", sizes.raw_writes)["us"])
    return {"raw": raw, **found}


def summarize_step_jobs(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The countdown's row, with a row per step job of `STEP_JOBS` inside it."""
    budgets = {"anchor": 1.0, "chatty": 1.5}
    return {
        **summarize_steps(samples),
        **{job: {**summarize_steps(samples, job), "budget": budgets[job]} for job in STEP_JOBS},
    }


def summarize_steps(samples: list[dict[str, Any]], key: str = "runs") -> dict[str, Any]:
    runs = sorted((r for s in samples for r in s[key]), key=lambda r: r["msPerStep"])
    middle = runs[len(runs) // 2]
    floor_us = _median([us for s in samples for us in s["raw"]])
    return {
        "usPerStep": round(middle["msPerStep"] * 1000),
        "rawWriteFlushUs": round(floor_us),
        "ratio": ratio(middle["msPerStep"] * 1000, floor_us),
        "budget": 1.0,
        "opfsPerStep": {k: round(v, 2) for k, v in middle["io"].items()},
        "samplesUsPerStep": [round(r["msPerStep"] * 1000) for r in runs],
        "samplesRawUs": [round(us) for s in samples for us in s["raw"]],
    }


def throughput(page: Page, sizes: Sizes, *, wait: bool | str = False) -> dict[str, Any]:
    """Runs/s of one-step and ten-step runs triggered at once; with `wait`, one-step
    runs each awaited (`wait="sequential"`: one after another)."""

    def batch(count: int, steps: int) -> dict[str, Any]:
        result = call(
            page,
            "(b, a) => b.runBatch(a)",
            {"job": "bench-steps", "input": {"steps": steps}, "count": count, "wait": wait},
        )
        if result["failed"]:
            raise RuntimeError(f"{result['failed']} benchmark runs did not complete")
        return {
            "runs": count,
            "runsPerS": round(result["runsPerS"], 1),
            "opfsPerRun": {k: round(v, 1) for k, v in result["io"].items()},
        }

    out = {"oneStep": batch(sizes.one_step_runs, 1)}
    if wait == "sequential":
        out["oneStep"]["budgetRunsPerS"] = 300
    if not wait:
        out["tenStep"] = batch(sizes.ten_step_runs, 10)
    return out


def memory(page: Page, sizes: Sizes) -> dict[str, Any]:
    def snapshot() -> dict[str, Any]:
        heap: dict[str, Any] = call(page, "(b) => b.probe('heap')")
        # The worker's JS heap is not observable from a page (performance.memory is a
        # window API); the page's, where every event arrives, is.
        heap["pageJsHeapUsedBytes"] = page.evaluate("() => performance.memory?.usedJSHeapSize")
        return heap

    after_boot = snapshot()
    batch = {"job": "bench-steps", "input": {"steps": 1}, "count": sizes.memory_runs}
    snapshots = {"afterBoot": after_boot}
    for i in range(1, 4):
        call(page, "(b, a) => b.runBatch(a)", batch)
        snapshots[f"after{i * sizes.memory_runs}Runs"] = snapshot()
    first, last = snapshots[f"after{sizes.memory_runs}Runs"], snapshot()

    def per_run(key: str) -> float | None:
        if last.get(key) is None or first.get(key) is None:
            return None
        return round((last[key] - first[key]) / (2 * sizes.memory_runs), 2)

    return {
        **snapshots,
        "growthPerRunAfterFirstBatch": {
            key: per_run(key) for key in ("wasmHeapBytes", "pythonObjects", "pageJsHeapUsedBytes")
        },
    }


def scale(page: Page, sizes: Sizes) -> dict[str, Any]:
    seeded = call(
        page,
        "(b, a) => b.probe('seed', a)",
        {"terminal": sizes.scale_terminal, "pending": sizes.scale_pending},
    )
    size = call(page, "(b) => b.probe('size')")
    reps = 5

    def timed(name: str, query: dict[str, Any]) -> dict[str, Any]:
        result = call(
            page,
            "(b, a) => b.timed(a.name, a.query, a.reps)",
            {"name": name, "query": query, "reps": reps},
        )
        value = result["result"]
        return {
            "ms": round(result["ms"], 1),
            "rows": len(value) if isinstance(value, list) else value,
        }

    queries = {
        "getRunsByLabelAndStatus": timed(
            "getRuns", {"labels": {"user": "user-3"}, "status": "completed", "limit": 50}
        ),
        "getRunsByStatus": timed("getRuns", {"status": "failed", "limit": 50}),
        "getRunsNewest": timed("getRuns", {"limit": 50}),
        "countByLabelAndStatus": timed(
            "countRuns", {"labels": {"tenant": "tenant-2"}, "status": "completed"}
        ),
        "countByStatus": timed("countRuns", {"status": "pending"}),
        "countAll": timed("countRuns", {}),
    }
    purge = call(page, "(b, n) => b.purge({limit: n})", sizes.scale_terminal + 10_000)
    return {
        "storedRuns": size["runs"],
        "seedMs": round(seeded["ms"]),
        "bytesPerRun": round(size["bytesPerRun"]),
        "databaseBytes": size["databaseBytes"],
        "queriesMs": queries,
        "purge": {
            "runs": purge["purged"],
            "ms": round(purge["ms"]),
            "runsPerS": round(purge["runsPerS"]),
        },
    }


def resume(browser: Browser, context: BrowserContext, sizes: Sizes) -> dict[str, Any]:
    config = {"database": "resume"}
    page = browser.open(context, config)
    ready(page)
    wait_for_snapshot(page)  # a reload restores it, as on any later visit
    run = call(
        page,
        "(b, a) => b.trigger('countdown', a)",
        {"steps": sizes.resume_steps, "step_ms": sizes.resume_step_ms},
    )
    run_id = run["id"]
    page.wait_for_function(
        "([id, n]) => window.bench.events(id).filter((e) => e.type === 'step:complete')"
        ".length >= n",
        arg=[run_id, sizes.resume_after],
        polling=5,
    )
    page.reload()
    page.wait_for_function("() => window.bench !== undefined")
    booted = ready(page)
    completed_before = sizes.resume_after
    page.wait_for_function(
        "(id) => window.bench.events(id).some((e) => e.type === 'run:complete')", arg=run_id
    )
    events = call(page, "(b, id) => b.events(id)", run_id)
    first_start = next(e for e in events if e["type"] == "step:start")
    done = next(e for e in events if e["type"] == "run:complete")
    logs = call(page, "(b, id) => b.getLogs(id)", run_id)
    executions: dict[str, int] = {}
    for log in logs:
        executions[log["message"]] = executions.get(log["message"], 0) + 1
    rerun = sum(1 for i in range(completed_before) if executions.get(f"executing step-{i}", 0) > 1)
    remaining_ms = (sizes.resume_steps - first_start["stepIndex"]) * sizes.resume_step_ms
    bare = call(page, "(b) => b.bareBoot()")["ms"]
    return {
        "steps": sizes.resume_steps,
        "reloadedAfterSteps": completed_before,
        "resumedAtStep": first_start["stepIndex"],
        "reloadToReadyMs": round(booted["started"] + booted["readyMs"]),
        "bootPhasesMs": phase_breakdown(booted),
        "reloadToNextStepMs": round(first_start["t"]),
        "readyToNextStepMs": round(first_start["t"] - booted["started"] - booted["readyMs"]),
        "reloadToCompleteMs": round(done["t"]),
        "remainingStepTimeMs": remaining_ms,
        "bareBootMs": round(bare),
        "overBareBootMs": round(first_start["t"] - bare),
        "reloadToNextStepOverBare": ratio(first_start["t"], bare),
        "budgetOverBare": 1.0,
        "completedStepsRerun": rerun,
    }


def takeover(browser: Browser, context: BrowserContext, sizes: Sizes) -> dict[str, Any]:
    """The owner tab closes mid-run: how soon a warm secondary runs the run's next step."""
    samples = []
    for rep in range(sizes.takeover_reps):
        config = {"database": f"takeover-{rep}"}
        owner = browser.open(context, config, new=True)
        if ready(owner)["role"] != "owner":
            raise RuntimeError("the first tab did not become the owner")
        wait_for_snapshot(owner)
        standby = browser.open(context, config, new=True)
        if ready(standby)["role"] != "secondary":
            raise RuntimeError("the second tab did not become secondary")
        while not call(standby, "(b) => b.ping()")["prepared"]:  # a warm standby
            standby.wait_for_timeout(50)
        run = call(
            owner,
            "(b, a) => b.trigger('countdown', a)",
            {"steps": sizes.resume_steps, "step_ms": sizes.resume_step_ms},
        )
        owner.wait_for_function(
            "([id, n]) => window.bench.events(id).filter((e) => e.type === 'step:complete')"
            ".length >= n",
            arg=[run["id"], sizes.resume_after],
            polling=5,
        )
        closed_at = call(owner, "(b) => b.epoch()")
        owner.close()
        # The standby also received the owner's events (relayed): the step it runs
        # itself is the first to start after the close.
        standby.wait_for_function(
            "([id, closed]) => window.bench.events(id)"
            ".some((e) => e.type === 'step:start' && e.epoch > closed)",
            arg=[run["id"], closed_at],
            polling=5,
        )
        events = call(standby, "(b, id) => b.events(id)", run["id"])
        first_step = next(e for e in events if e["type"] == "step:start" and e["epoch"] > closed_at)
        standby_boot = call(standby, "(b) => b.boot()")
        samples.append(
            {
                "closeToNextStepMs": first_step["epoch"] - closed_at,
                "resumedAtStep": first_step["stepIndex"],
                "standbyBoot": standby_boot.get("worker"),
            }
        )
        standby.close()
    best = sorted(samples, key=lambda x: x["closeToNextStepMs"])
    return {
        "closeToNextStepMs": round(_median([x["closeToNextStepMs"] for x in samples])),
        "budgetMs": 500,
        "samplesMs": [round(x["closeToNextStepMs"]) for x in samples],
        "resumedAtStep": best[len(best) // 2]["resumedAtStep"],
        "standbyWorkerMs": best[len(best) // 2]["standbyBoot"],
    }


def snapshot_experiment(browser: Browser, context: BrowserContext, sizes: Sizes) -> dict[str, Any]:
    """A restored boot against a plain one, each installing the wheels and importing
    the runtime (ADR 0007: the runtime restores the same snapshot)."""
    page = browser.open(context)
    found = call(page, "(b, n) => b.snapshotExperiment({reps: n})", sizes.takeover_reps)

    def medians(samples: list[dict[str, float]]) -> dict[str, int]:
        return {key: round(_median([s[key] for s in samples])) for key in samples[0]}

    plain, restored = medians(found["plain"]), medians(found["restored"])
    return {
        "snapshotBytes": found["bytes"],
        "makeMs": {k: round(v) for k, v in found["make"].items()},
        "plainMs": plain,
        "restoredMs": restored,
        "restoredOverPlain": ratio(restored["total"], plain["total"]),
    }


def run_boot(sizes: Sizes, log: Any = print) -> dict[str, Any]:
    """Only the start-up workloads: boot (cold, warm), takeover and resume after reload."""
    results: dict[str, Any] = {}
    with (
        serving_in_thread(REPO / "web") as base_url,
        sync_playwright() as playwright,
        tempfile.TemporaryDirectory(prefix="durably-bench-") as root,
    ):
        browser = Browser(playwright, base_url, Path(root))
        log("boot: cold and warm, against bare loadPyodide()")
        results["boot"] = boot_times(browser, sizes)
        context = browser.profile()
        try:
            log("takeover: the owner tab closes mid-run")
            results["takeover"] = takeover(browser, context, sizes)
            log("resume after reload")
            results["resume"] = resume(browser, context, sizes)
            log("memory snapshot experiment")
            results["snapshotExperiment"] = snapshot_experiment(browser, context, sizes)
        finally:
            context.close()
    return results


def storage_comparison(browser: Browser, context: BrowserContext, sizes: Sizes) -> dict[str, Any]:
    """Per-commit cost: our filesystem vs mountNativeFS with syncfs after every commit."""
    page = browser.open(context)
    out = {}
    for kib in sizes.storage_filler_kib:
        result = call(
            page,
            "(b, a) => b.compareStorage(a)",
            {"commits": sizes.storage_commits, "fillerKiB": kib},
        )
        out[f"database{kib}KiB"] = {
            "oursUsPerCommit": round(result["oursUsPerCommit"]),
            "nativeFsSyncfsUsPerCommit": round(result["nativeFsUsPerCommit"]),
            "nativeFsWithoutSyncUsPerCommit": round(result["nativeFsNoSyncUsPerCommit"]),
            "nativeFsOverOurs": round(result["ratio"], 2),
        }
    return out


def run_browser(sizes: Sizes, log: Any = print) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with (
        serving_in_thread(REPO / "web") as base_url,
        sync_playwright() as playwright,
        tempfile.TemporaryDirectory(prefix="durably-bench-") as root,
    ):
        browser = Browser(playwright, base_url, Path(root))
        log("boot: cold and warm, against bare loadPyodide()")
        results["boot"] = boot_times(browser, sizes)
        context = browser.profile()
        try:
            # FULL and NORMAL alternate, so a change in the machine's load hits both.
            samples: dict[str, list[dict[str, Any]]] = {"FULL": [], "NORMAL": []}
            for round_ in range(sizes.commit_rounds):
                for synchronous in ("FULL", "NORMAL"):
                    log(f"step commit, synchronous={synchronous} (round {round_ + 1})")
                    page = browser.open(context)
                    database = f"steps-{synchronous.lower()}"
                    start(page, {"database": database, "synchronous": synchronous})
                    if round_ == 0 and synchronous == "FULL":
                        log("memory")
                        results["memory"] = memory(page, sizes)
                    samples[synchronous].append(step_commit(page, sizes))
                    if round_ == 0 and synchronous == "FULL":
                        log("idle cost")
                        results["idle"] = call(
                            page, "(b, s) => b.idle({seconds: s})", sizes.idle_seconds
                        )
                        log("event delivery")
                        results["events"] = call(
                            page, "(b, n) => b.progressBurst({count: n})", sizes.progress_events
                        )
                    call(page, "(b) => b.close()")
            modes = {mode: summarize_step_jobs(found) for mode, found in samples.items()}
            full, normal = modes["FULL"]["usPerStep"], modes["NORMAL"]["usPerStep"]
            results["stepCommit"] = {**modes, "fullOverNormal": ratio(full, normal)}
            results["throughput"] = {}
            for concurrency in (1, 4):
                log(f"throughput, maxConcurrentRuns={concurrency}")
                page = browser.open(context)
                start(
                    page,
                    {"database": f"throughput-{concurrency}", "maxConcurrentRuns": concurrency},
                )
                results["throughput"][f"maxConcurrentRuns{concurrency}"] = throughput(page, sizes)
                if concurrency == 1:
                    log("triggerAndWait throughput")
                    results["throughput"]["triggerAndWait"] = throughput(page, sizes, wait=True)
                    log("triggerAndWait one after another")
                    results["throughput"]["triggerAndWaitSequential"] = throughput(
                        page, sizes, wait="sequential"
                    )
                call(page, "(b) => b.close()")
            log("scale")
            page = browser.open(context)
            start(page, {"database": "scale"})
            results["scale"] = scale(page, sizes)
            call(page, "(b) => b.close()")
            log("resume after reload")
            results["resume"] = resume(browser, context, sizes)
            log("takeover: the owner tab closes mid-run")
            results["takeover"] = takeover(browser, context, sizes)
            log("storage: ours vs mountNativeFS + syncfs")
            results["storageComparison"] = storage_comparison(browser, context, sizes)
        finally:
            context.close()
    return results


def idle_claim_poll(page: Page, sizes: Sizes) -> dict[str, Any]:
    """One idle claim poll with `claim_pending` pending runs of a job no worker knows."""
    seeded = call(
        page, "(b, a) => b.probe('seed', a)", {"terminal": 0, "pending": sizes.claim_pending}
    )
    poll = call(page, "(b) => b.probe('claim-poll')")
    return {"pendingOfOtherJob": seeded["seeded"], "ms": round(poll["ms"], 3)}


def run_steps(sizes: Sizes, log: Any = print) -> dict[str, Any]:
    """Only the step figures: step commit (countdown, anchor, chatty) under FULL, and
    one-step runs triggered and awaited one after another, in one fresh profile."""
    results: dict[str, Any] = {}
    with (
        serving_in_thread(REPO / "web") as base_url,
        sync_playwright() as playwright,
        tempfile.TemporaryDirectory(prefix="durably-bench-") as root,
    ):
        browser = Browser(playwright, base_url, Path(root))
        context = browser.profile()
        try:
            samples = []
            for round_ in range(sizes.commit_rounds):
                log(f"step commit, synchronous=FULL (round {round_ + 1})")
                page = browser.open(context)
                start(page, {"database": "steps-full", "synchronous": "FULL"})
                samples.append(step_commit(page, sizes))
                call(page, "(b) => b.close()")
            results["stepCommit"] = {"FULL": summarize_step_jobs(samples)}
            log("triggerAndWait one after another")
            page = browser.open(context)
            start(page, {"database": "throughput-1", "maxConcurrentRuns": 1})
            results["triggerAndWaitSequential"] = throughput(page, sizes, wait="sequential")
            results["rawAfterUs"] = round(call(page, "(b, n) => b.raw(n)", sizes.raw_writes)["us"])
            log("idle claim poll over pending runs of another job")
            results["idleClaimPoll"] = idle_claim_poll(page, sizes)
            call(page, "(b) => b.close()")
        finally:
            context.close()
    return results
