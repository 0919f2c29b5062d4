"""The browser workloads (start-up ones in startup.py), served by the demo server to
web/testing/bench.html in a headless Chromium with an on-disk profile (pages.py).

Every figure is measured next to its floor in the same browser: a step commit next
to a raw 4 KiB OPFS write+flush in the same worker, a boot next to a bare
`loadPyodide()` in the same page.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import BrowserContext, Page

from .pages import Browser, Sizes, call, median, opened_browser, ratio, start
from .startup import boot_times, resume, takeover

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
    floor_us = median([us for s in samples for us in s["raw"]])
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
    with opened_browser() as browser:
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
    with opened_browser() as browser:
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
