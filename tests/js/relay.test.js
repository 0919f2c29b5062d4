// The tab relay (relay.js) between tabs of one app over a fake BroadcastChannel: each
// "tab" is a Relay whose local worker is a stub recording the requests it serves.

import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { Relay, relayChannelName } from "../../web/durably/relay.js";
import { FakeBroadcastChannel, tick } from "./fakes.js";

let tabs;

beforeEach(() => {
  FakeBroadcastChannel.reset();
  tabs = [];
});

afterEach(() => {
  for (const tab of tabs) tab.relay.close();
});

/** A tab whose worker answers with `answer(type, fields)` (a promise or a value). */
function openTab(tabId, { answer = (type, fields) => ({ type, fields, by: tabId }), ...options } = {}) {
  const tab = { served: [], events: [], states: [] };
  tab.relay = new Relay({
    database: "app",
    tabId,
    channel: new FakeBroadcastChannel(relayChannelName("app")),
    local: async (type, fields, timeoutMs) => {
      tab.served.push({ type, fields, timeoutMs });
      return answer(type, fields);
    },
    deliver: (event) => tab.events.push(event),
    onOwnerState: (state) => tab.states.push(state),
    ...options,
  });
  tabs.push(tab);
  return tab;
}

async function settle(turns = 6) {
  for (let i = 0; i < turns; i++) await tick();
}

const never = () => new Promise(() => {});

/** An owner tab and secondaries with the given ids, settled: the owner is known to all. */
async function tabsWithOwner(...secondaryIds) {
  const owner = openTab("owner");
  owner.relay.setRole("owner");
  const secondaries = secondaryIds.map((id) => {
    const tab = openTab(id);
    tab.relay.setRole("secondary");
    return tab;
  });
  await settle();
  return [owner, ...secondaries];
}

function sent(kind) {
  return FakeBroadcastChannel.log.filter((message) => message.kind === kind);
}

test("requests carry an id and the sender's tab id, and each response goes only to the asker", async () => {
  const [owner, a, b] = await tabsWithOwner("a", "b");
  const [fromA, fromB] = await Promise.all([
    a.relay.request("getRun", { runId: "ra" }, 1000),
    b.relay.request("getRun", { runId: "rb" }, 1000),
  ]);
  assert.deepEqual(fromA, { type: "getRun", fields: { runId: "ra" }, by: "owner" });
  assert.deepEqual(fromB, { type: "getRun", fields: { runId: "rb" }, by: "owner" });
  const requests = sent("request");
  assert.deepEqual(requests.map((r) => [r.from, r.to, r.id]), [["a", "owner", 1], ["b", "owner", 1]]);
  // Both asked with id 1: only the tab id tells the answers apart.
  assert.deepEqual(sent("response").map((r) => [r.from, r.to, r.id, r.result.fields.runId]), [["owner", "a", 1, "ra"], ["owner", "b", 1, "rb"]]);
  assert.equal(a.served.length + b.served.length, 0);
});

test("a relayed trigger gets an idempotency key of its own; the caller's key is kept", async () => {
  const [owner, a] = await tabsWithOwner("a");
  await a.relay.request("trigger", { job: "echo", input: {}, options: {} }, 1000);
  await a.relay.request("triggerAndWait", { job: "echo", input: {}, options: { idempotencyKey: "mine" } }, 0);
  await a.relay.request("getRuns", {}, 1000);
  assert.deepEqual(owner.served.map((s) => s.fields.options?.idempotencyKey), ["relay:a:1", "mine", undefined]);
  assert.equal(owner.served[1].timeoutMs, 0); // a wait without timeout is not cut short by the owner
});

test("errors cross as their name and message", async () => {
  openTab("owner", { answer: () => Promise.reject(Object.assign(new Error("run r1 not found"), { name: "NotFoundError" })) }).relay.setRole("owner");
  const a = openTab("a");
  a.relay.setRole("secondary");
  await settle();
  await assert.rejects(a.relay.request("getRun", { runId: "r1" }, 1000), { name: "NotFoundError", message: "run r1 not found" });
});

test("when the owner goes, reads and triggers are re-sent to the next owner and other calls reject with OwnerChangedError", async () => {
  const first = openTab("first", { answer: never }); // receives everything, answers nothing
  const next = openTab("next");
  const a = openTab("a");
  first.relay.setRole("owner");
  next.relay.setRole("secondary");
  a.relay.setRole("secondary");
  await settle();
  const read = a.relay.request("getRuns", {}, 5000);
  const trigger = a.relay.request("trigger", { job: "echo", input: {}, options: {} }, 5000);
  const cancel = a.relay.request("cancel", { runId: "r1" }, 5000);
  const cancelled = assert.rejects(cancel, { name: "OwnerChangedError", message: /may or may not have been applied/ });
  await settle();
  assert.deepEqual(first.served.map((s) => s.type), ["getRuns", "trigger", "cancel"]);

  first.relay.close(); // tells the others the owner is gone
  await settle();
  await cancelled; // its outcome is unknown: rejected at once, not re-sent
  assert.equal(a.relay.ownerTabId, null);
  next.relay.setRole("owner"); // the queued lock made "next" the owner: it announces itself
  const [runs, run] = await Promise.all([read, trigger]);
  assert.equal(runs.by, "next");
  assert.equal(run.by, "next");
  assert.deepEqual(next.served.map((s) => s.type), ["getRuns", "trigger"]);
  // The re-sent trigger has the key of the first attempt: the runtime returns the same run.
  assert.equal(next.served[1].fields.options.idempotencyKey, first.served[1].fields.options.idempotencyKey);
});

test("an owner that vanishes without a word is replaced when the next one announces itself", async () => {
  const first = openTab("first", { answer: never });
  const next = openTab("next");
  const a = openTab("a");
  first.relay.setRole("owner");
  a.relay.setRole("secondary");
  next.relay.setRole("secondary");
  await settle();
  const read = a.relay.request("getRun", { runId: "r1" }, 5000);
  const resumed = assert.rejects(a.relay.request("resume", { runId: "r1" }, 5000), { name: "OwnerChangedError" });
  await settle();
  // A crash: no owner-gone message, the tab is just gone.
  first.relay._channel.close();
  clearInterval(first.relay._ticker);
  next.relay.setRole("owner");
  assert.equal((await read).by, "next");
  await resumed;
});

test("a secondary that becomes the owner serves its own waiting calls locally", async () => {
  const first = openTab("first", { answer: never });
  const a = openTab("a");
  first.relay.setRole("owner");
  a.relay.setRole("secondary");
  await settle();
  const read = a.relay.request("getRuns", {}, 5000);
  await settle();
  first.relay.close();
  await settle();
  a.relay.setRole("owner");
  assert.equal((await read).by, "a");
  assert.deepEqual(a.served.map((s) => s.type), ["getRuns"]);
});

test("a call waiting for an owner that never comes rejects with OwnerChangedError", async () => {
  const a = openTab("a", { handoverTimeoutMs: 30 });
  a.relay.setRole("secondary");
  await assert.rejects(a.relay.request("getRuns", {}, 5000), { name: "OwnerChangedError", message: /no tab took over/ });
});

test("an owner that never answers makes the call reject with TimeoutError", async () => {
  openTab("owner", { answer: never }).relay.setRole("owner");
  const a = openTab("a");
  a.relay.setRole("secondary");
  await settle();
  await assert.rejects(a.relay.request("getRuns", {}, 30), { name: "TimeoutError" });
});

test("a request sent to a tab that is no longer the owner is sent again to the real one", async () => {
  const owner = openTab("owner");
  const stale = openTab("stale");
  const a = openTab("a");
  stale.relay.setRole("secondary");
  a.relay.setRole("secondary");
  await settle();
  a.relay.ownerTabId = "stale"; // a wrong belief, as after a lost message
  const read = a.relay.request("cancel", { runId: "r1" }, 5000);
  await settle();
  owner.relay.setRole("owner");
  assert.equal((await read).by, "owner"); // nothing was applied by "stale": safe to send again
  assert.deepEqual(stale.served, []);
});

test("the owner's events reach every other tab, and no tab echoes them", async () => {
  const [owner, a, b] = await tabsWithOwner("a", "b");
  const text = JSON.stringify({ type: "events", events: [{ type: "run:progress", runId: "r1", timestamp: 0 }] });
  owner.relay.publish(text);
  a.relay.publish(JSON.stringify({ type: "events", events: [{ type: "run:progress", runId: "ignored" }] })); // a secondary publishes nothing
  await settle();
  // One message per batch, carrying the worker's text as it is; each tab parses it once.
  assert.deepEqual(sent("events").map((message) => message.text), [text]);
  const expected = [{ type: "run:progress", runId: "r1", timestamp: "1970-01-01T00:00:00.000Z" }];
  assert.deepEqual(a.events, expected);
  assert.deepEqual(b.events, expected);
  assert.deepEqual(owner.events, []);
});

test("an event from an older owner, one object per message, is still delivered", async () => {
  const [owner, a] = await tabsWithOwner("a");
  owner.relay._post({ kind: "event", event: { type: "run:progress", runId: "r1", timestamp: "1970-01-01T00:00:00.000Z" } });
  await settle();
  assert.deepEqual(a.events, [{ type: "run:progress", runId: "r1", timestamp: "1970-01-01T00:00:00.000Z" }]);
});

test("a secondary notices missing heartbeats, and the owner's return", async () => {
  const owner = openTab("owner", { heartbeatMs: 10 });
  const a = openTab("a", { heartbeatMs: 10, unresponsiveAfterMs: 50 });
  owner.relay.setRole("owner");
  a.relay.setRole("secondary");
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(a.relay.responsive, true); // heard every 10 ms
  clearInterval(owner.relay._ticker); // frozen: no more heartbeats
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(a.relay.responsive, false);
  assert.deepEqual(a.states.at(-1), { ownerTabId: "owner", responsive: false, jobs: [] });
  owner.relay._announce(); // it thaws
  await settle();
  assert.equal(a.relay.responsive, true);
  assert.deepEqual(a.states.at(-1), { ownerTabId: "owner", responsive: true, jobs: [] });
});

test("a secondary finds the owner by asking, and the owner's jobs with it", async () => {
  const owner = openTab("owner");
  owner.relay.jobs = ["echo"];
  owner.relay.setRole("owner");
  await settle();
  const late = openTab("late"); // opened after the announcement
  late.relay.setRole("secondary");
  await settle();
  assert.equal(late.relay.ownerTabId, "owner");
  assert.deepEqual(late.relay.jobs, ["echo"]);
});

test("close rejects what is pending", async () => {
  openTab("owner", { answer: never }).relay.setRole("owner");
  const a = openTab("a");
  a.relay.setRole("secondary");
  await settle();
  const call = a.relay.request("getRuns", {}, 5000);
  a.relay.close();
  await assert.rejects(call, { message: /closed/ });
});

test("any message from the owner counts as a sign of life", async () => {
  const owner = openTab("owner", { heartbeatMs: 10 });
  const a = openTab("a", { heartbeatMs: 10, unresponsiveAfterMs: 50 });
  owner.relay.setRole("owner");
  a.relay.setRole("secondary");
  await settle();
  clearInterval(owner.relay._ticker); // no more heartbeats, but events keep coming
  const events = setInterval(() => owner.relay.publish({ type: "run:progress", runId: "r1" }), 10);
  await new Promise((resolve) => setTimeout(resolve, 150));
  clearInterval(events);
  assert.equal(a.relay.responsive, true);
});

test("an owner page that unloads says so: the others wait for the next owner", async () => {
  const [owner, a] = await tabsWithOwner("a");
  owner.relay.announceGone();
  await settle();
  assert.equal(a.relay.ownerTabId, null);
  assert.equal(a.relay.responsive, true);
});
