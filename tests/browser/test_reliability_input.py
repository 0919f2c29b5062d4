"""Bad input through the page client, in real Chromium: every case ends in a clear,
named error, stores nothing, and leaves the runtime serving. Also: broken and
cross-origin job modules, a fuzz of raw protocol messages, and request fields that
look like code (they are data: nothing in a message is evaluated)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from helpers import boot_outcome, call, call_error, open_reliability_page
from playwright.sync_api import BrowserContext, Page

LIMITS = {"maxInputBytes": 2000, "maxLabels": 3, "maxLabelLength": 20}


def serving(page: Page) -> bool:
    result = call(
        page, '(d) => d.triggerAndWait("echo", { text: "still here" }, { timeout: 60000 })'
    )
    return bool(result["output"] == {"text": "still here"})


# Each case: (the call, what the error must start with, words it must contain). Unknown
# jobs, NaN and numeric labels are in test_runtime.py::test_bad_requests_...
BAD_CALLS: list[tuple[str, str, list[str]]] = [
    ('(d) => d.trigger("echo", { text: 42 })', "ValidationError:", ["echo", "text"]),
    ('(d) => d.trigger("echo", {})', "ValidationError:", ["text"]),
    ('(d) => d.trigger("echo", { text: "x", extra: -Infinity })', "ValidationError:", ["Infinity"]),
    ('(d) => d.trigger("echo", { text: "x", extra: 10n })', "ValidationError:", ["BigInt"]),
    ('(d) => d.trigger("echo", { text: "x", extra: () => 1 })', "ValidationError:", ["cannot be sent"]),
    ('(d) => d.trigger("echo", { text: "x", extra: Symbol("s") })', "ValidationError:", ["cannot be sent"]),
    ('(d) => { const a = { text: "x" }; a.self = a; return d.trigger("echo", a); }',
     "ValidationError:", ["circular"]),
    ('(d) => d.trigger("echo", { text: "x".repeat(5000) })', "ValidationError:", ["bytes", "limit is 2000"]),
    ('(d) => d.trigger("echo", { text: "x" }, { labels: { a: "1", b: "2", c: "3", d: "4" } })',
     "ValidationError:", ["4 labels", "limit is 3"]),
    ('(d) => d.trigger("echo", { text: "x" }, { labels: { a: "y".repeat(21) } })',
     "ValidationError:", ["label", "20"]),
    ('(d) => d.trigger("echo", { text: "x" }, { labels: { n: null } })', "ValidationError:", ["'options.labels.n'"]),
    ('(d) => d.trigger("echo", { text: "x" }, { labels: ["a"] })', "ValidationError:", ["labels"]),
    ('(d) => d.trigger("echo", { text: "x" }, { idempotencyKey: 7 })', "ValidationError:", ["idempotency"]),
    ('(d) => d.trigger("echo", { text: "x" }, { colour: "red" })', "ValidationError:", ["colour"]),
    ('(d) => d.trigger(42, { text: "x" })', "ValidationError:", ["job"]),
    ('(d) => d.getRun({ id: 1 })', "ValidationError:", ["runId"]),
    ('(d) => d.cancel("no-such-run")', "NotFoundError:", ["no-such-run"]),
]  # fmt: skip


def test_bad_input_is_refused_by_name_stores_nothing_and_keeps_serving(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_reliability_page(opfs_context, server, "bad-input", limits=LIMITS)
    assert boot_outcome(page)["role"] == "owner"
    problems = []
    for script, prefix, words in BAD_CALLS:
        error = call_error(page, script)
        if not error.startswith(prefix) or not all(w in error for w in words):
            problems.append(f"{script}\n    -> {error}\n    expected {prefix} with {words}")
    assert not problems, "\n".join(problems)
    assert call(page, "(d) => d.countRuns()") == 0
    # Just under the limits is fine.
    ok = call(
        page,
        """(d) => d.triggerAndWait("echo", { text: "x".repeat(1900) },
            { labels: { a: "1", b: "2", c: "y".repeat(20) }, timeout: 60000 })""",
    )
    assert ok["output"] == {"text": "x" * 1900}

    # A step output that is not JSON fails that run, naming the step; nothing else changes.
    run = call(page, '(d) => d.trigger("unserialisable", {})')
    failed = call(
        page, "(d, id) => d.waitForRun(id, { timeout: 60000 }).catch(() => d.getRun(id))", run["id"]
    )
    assert failed["status"] == "failed"
    assert failed["error"].startswith("SerializationError:") and "'bad'" in failed["error"], failed
    steps = call(page, "(d, id) => d.getSteps(id)", run["id"])
    assert [(s["name"], s["status"]) for s in steps] == [("ok", "completed"), ("bad", "failed")]
    assert serving(page)
    assert call(page, "(d) => d.countRuns()") == 3


def test_broken_and_foreign_job_modules_do_not_stop_the_others(
    opfs_context: BrowserContext, server: str, record_requests: Callable[..., Any]
) -> None:
    requests = record_requests(opfs_context)
    port = urlsplit(server).port
    foreign = f"http://localhost:{port}/testing/reliability_jobs.py"  # another origin
    page = open_reliability_page(
        opfs_context,
        server,
        "modules",
        jobs=["./broken_jobs.py", foreign, "./reliability_jobs.py", "./missing_jobs.py"],
    )
    info = boot_outcome(page)
    assert info.get("role") == "owner", info
    assert "echo" in info["jobs"] and "never-registered" not in info["jobs"]
    errors = {e["module"].rsplit("/", 1)[-1]: e["message"] for e in info["jobErrors"]}
    assert set(errors) == {"broken_jobs.py", "reliability_jobs.py", "missing_jobs.py"}, errors
    broken = errors["broken_jobs.py"]
    assert "line 11" in broken and "broken on purpose" in broken, broken
    assert "not on this page's origin" in errors["reliability_jobs.py"], errors
    assert "HTTP 404" in errors["missing_jobs.py"], errors
    assert serving(page)
    # Python itself is code too: a vendorUrl on another origin is refused before any fetch.
    other = open_reliability_page(
        opfs_context, server, "vendor", vendorUrl=f"http://localhost:{port}/vendor"
    )
    refused = boot_outcome(other).get("error", "")
    assert refused.startswith("ValidationError: vendorUrl") and "origin" in refused, refused
    assert not [url for url in requests.urls if url.startswith("http://localhost")]


def test_job_modules_cannot_shadow_libraries_and_a_duplicate_job_is_reported(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_reliability_page(
        opfs_context,
        server,
        "shadow",
        jobs=["./reliability_jobs.py", "./json.py", "./job_helpers.py"],
    )
    info = boot_outcome(page)
    assert info.get("role") == "owner", info
    assert {"echo", "named-like-json"} <= set(info["jobs"]), info
    [duplicate] = info["jobErrors"]
    assert duplicate["module"].endswith("/job_helpers.py"), duplicate
    assert "reliability_jobs.py" in duplicate["message"] and "'echo'" in duplicate["message"]
    done = call(page, "(d) => d.triggerAndWait('named-like-json', null, { timeout: 30000 })")
    assert done["output"] == {"dumps": "[1]", "stdlib": True, "module": "durably_jobs.json",
                              "helper": "hello from a sibling"}  # fmt: skip
    echoed = call(page, "(d) => d.triggerAndWait('echo', { text: 'x' }, { timeout: 30000 })")
    assert echoed["output"] == {"text": "x"}  # the first definition is the one used


def test_bad_fields_and_options_reject_with_validation_errors_naming_them(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_reliability_page(opfs_context, server, "fields", jobs=["./reliability_jobs.py"])
    assert boot_outcome(page).get("role") == "owner"
    for script, field in [
        ("(d) => d.getRuns({ jobName: [{}] })", "'getRuns: field 'jobName.0'"),
        ("(d) => d.purgeRuns({ olderThan: 1e20 })", "'purgeRuns: field 'olderThan'"),
        ("(d) => d.getRuns({ limit: 2 ** 64 })", "'getRuns: field 'limit'"),
        ("(d) => d.getRuns({ jobname: 'echo' })", "getRuns: unknown field(s) 'jobname'"),
        ("(d) => d.trigger('echo', { text: 'x' }, { labels: { a: 1 } })", "'options.labels.a'"),
    ]:
        error = call_error(page, script)
        assert error.startswith("ValidationError: ") and field.strip("'") in error, error
    assert serving(page)
    for options, field in [({"limits": "x"}, "options.limits"),
                           ({"limits": {"maxInputBytes": "x"}}, "options.limits.maxInputBytes"),
                           ({"leaseMs": -1}, "options.leaseMs")]:  # fmt: skip
        other = open_reliability_page(opfs_context, server, "bad-options", **options)
        refused = boot_outcome(other).get("error", "")
        assert refused.startswith("ValidationError: ") and field in refused, refused
        other.close()


FUZZ = """async ({ count, seed }) => {
    const d = await window.durablyReady;
    let state = seed;
    const random = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
    const pick = (items) => items[Math.floor(random() * items.length)];
    const types = ["trigger", "triggerAndWait", "waitForRun", "getRun", "getRuns", "countRuns",
        "getSteps", "getLogs", "cancel", "retrigger", "deleteRun", "purgeRuns", "getJobs", "ping",
        "init", "", "TRIGGER", "__proto__", "constructor", "eval", "runPython", 7, null, true, ["x"]];
    const fields = ["job", "input", "options", "runId", "timeout", "status", "jobName", "labels",
        "limit", "offset", "olderThan", "config", "id", "type", "__proto__", "code"];
    function value(depth) {
        switch (Math.floor(random() * (depth > 2 ? 9 : 12))) {
            case 0: return null;
            case 1: return undefined;
            case 2: return Math.floor(random() * 2e9) - 1e9;
            case 3: return pick([NaN, Infinity, -0, 1.5, 2 ** 60, -1]);
            case 4: return pick(["", "echo", "x".repeat(Math.floor(random() * 300)), "\\u0000\\ud800", "__import__('js').close()"]);
            case 5: return random() < 0.5;
            case 6: return pick([10n, new Date(0), /re/g, new Uint8Array(3)]);
            case 7: return pick(["completed", ["pending", 3], { text: "x" }]);
            case 8: return "2020-01-01T00:00:00Z";
            case 9: return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
            default: {
                const object = {};
                for (let i = Math.floor(random() * 4); i > 0; i--) object[pick(fields)] = value(depth + 1);
                return object;
            }
        }
    }
    const responses = new Map();
    let anonymous = 0;
    const original = d._onMessage.bind(d);
    d._onMessage = (data) => {
        // The runtime answers with JSON text, the worker itself with objects.
        const message = typeof data === "string" ? JSON.parse(data) : data;
        if (message && typeof message === "object" && "ok" in message && typeof message.id === "string" && message.id.startsWith("fuzz-")) {
            responses.set(message.id, (responses.get(message.id) ?? 0) + 1);
        } else if (message && "ok" in message && message.id === null) {
            anonymous++;
        } else {
            original(data);
        }
    };
    let withId = 0, withoutId = 0;
    for (let i = 0; i < count; i++) {
        let message;
        const shape = random();
        if (shape < 0.08) {  // mostly not a request object at all
            message = value(2);
            if (message && typeof message === "object") delete message.id;
        } else {
            message = value(3);
            // Only a plain object keeps its properties through postMessage (a Date does not).
            if (Object.prototype.toString.call(message) !== "[object Object]") message = { payload: message };
            const type = pick(types);
            if (type === "close") continue;
            message.type = type;
            if (shape < 0.2) message.id = pick([undefined, null, 1.5, true, {}, [], NaN]);
            else message.id = `fuzz-${i}`;
        }
        const usable = message && typeof message === "object" && typeof message.id === "string";
        usable ? withId++ : withoutId++;
        d._port.postMessage(message);
    }
    const deadline = Date.now() + 90000;
    while ((responses.size < withId || anonymous < withoutId) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));  // any duplicate arrives by now
    d._onMessage = original;
    const duplicates = [...responses.values()].filter((n) => n !== 1).length;
    return { withId, withoutId, answered: responses.size, anonymous, duplicates,
             ping: await d._request("ping", {}) };
}"""


def test_random_protocol_messages_each_get_exactly_one_answer(
    opfs_context: BrowserContext, server: str
) -> None:
    page = open_reliability_page(opfs_context, server, "fuzz")
    assert boot_outcome(page)["role"] == "owner"
    crashed: list[str] = []
    page.on("pageerror", lambda error: crashed.append(str(error)))
    result = page.evaluate(FUZZ, {"count": 3000, "seed": 20251122})
    assert result["withId"] + result["withoutId"] == 3000
    assert result["answered"] == result["withId"], result
    assert result["anonymous"] == result["withoutId"], result
    assert result["duplicates"] == 0, result
    assert result["ping"]["state"] == "ready", result
    assert not crashed, crashed
    assert serving(page)


def test_code_in_request_fields_is_data(opfs_context: BrowserContext, server: str) -> None:
    page = open_reliability_page(opfs_context, server, "code-as-data")
    assert boot_outcome(page)["role"] == "owner"
    payload = {
        "python": "__import__('js').close()",
        "js": "self.close(); postMessage({ok: true})",
        "template": "${globalThis.close()}",
        "__proto__x": {"constructor": "eval"},
        "job": "'); import os; os._exit(1); ('",
    }
    result = call(
        page,
        '(d, input) => d.triggerAndWait("code-as-data", input, { labels: { code: "exec(1)" }, timeout: 60000 })',
        payload,
    )
    assert result["output"] == payload
    run = call(page, "(d, id) => d.getRun(id)", result["id"])
    assert run["input"] == payload and run["labels"] == {"code": "exec(1)"}
    for script, prefix in [
        ("(d) => d.trigger(\"echo'); import os; os._exit(1); ('\", {})", "NotFoundError:"),
        ('(d) => d._request("runPython", { code: "import js; js.close()" })', "ProtocolError:"),
        ('(d) => d._request("eval", { code: "self.close()" })', "ProtocolError:"),
        ("(d) => d.getRun(\"x' OR '1'='1\")", None),
    ]:
        if prefix is None:
            assert call(page, script) is None  # SQL in a value is a value, too
        else:
            assert call_error(page, script).startswith(prefix)
    assert call(page, '(d) => d._request("ping", {})')["state"] == "ready"
    assert serving(page)
