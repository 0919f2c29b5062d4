"""The start-up figures: boot phases next to a bare `loadPyodide()` in the same page,
cold and warm; resume after a reload; takeover by a warm standby tab; and the memory
snapshot next to a plain boot."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import BrowserContext, Page

from .pages import Browser, Sizes, call, median, opened_browser, ratio, ready, start


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
    warm = median(warm_ready)
    bare = median(warm_bare)
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
        "closeToNextStepMs": round(median([x["closeToNextStepMs"] for x in samples])),
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
        return {key: round(median([s[key] for s in samples])) for key in samples[0]}

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
    with opened_browser() as browser:
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
