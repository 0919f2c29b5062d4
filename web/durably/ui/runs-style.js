// The stylesheet of <durably-runs>, inside its shadow root.
//
// Everything a page may want to change is a custom property on the host (colours,
// font, radius, bar height) or a named part (`durably-runs::part(badge)`); the rest is
// layout. Colours meet WCAG AA contrast on the default background.

export const RUNS_STYLE = `
:host {
  --durably-font: system-ui, -apple-system, "Segoe UI", sans-serif;
  --durably-mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  --durably-fg: #1f2328;
  --durably-muted: #59636e;
  --durably-bg: #ffffff;
  --durably-subtle: #f6f8fa;
  --durably-border: #d1d9e0;
  --durably-accent: #0969da;
  --durably-radius: 6px;
  --durably-bar-height: 6px;
  --durably-details-height: 14rem;
  --durably-pending: #59636e;
  --durably-leased: #0969da;
  --durably-completed: #1a7f37;
  --durably-failed: #cf222e;
  --durably-cancelled: #9a6700;
  --durably-warning-bg: #fff8c5;
  --durably-warning-border: #d4a72c;
  display: block;
  font: 14px/1.45 var(--durably-font);
  color: var(--durably-fg);
  background: var(--durably-bg);
}
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }

.visually-hidden {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}

/* boot indicator, warnings, errors */
.boot, .banner, .message {
  display: flex; align-items: center; gap: .6rem;
  margin: 0 0 .75rem; padding: .55rem .75rem;
  border: 1px solid var(--durably-border); border-radius: var(--durably-radius);
  background: var(--durably-subtle);
}
.boot .spinner {
  flex: none; width: 14px; height: 14px; border-radius: 50%;
  border: 2px solid var(--durably-border); border-top-color: var(--durably-accent);
  animation: spin .8s linear infinite;
}
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) {
  .boot .spinner { animation-duration: 3s; }
  .fill, .toggle::before { transition: none; }
  .progress.indeterminate .fill { animation: none; }
}
.boot progress { flex: 0 0 8rem; margin-left: auto; }
.banner { background: var(--durably-warning-bg); border-color: var(--durably-warning-border); }
.banner strong { flex: none; }
.banner.unresponsive { border-color: var(--durably-failed); }
.message.error { border-color: var(--durably-failed); color: var(--durably-failed); background: var(--durably-bg); }
.message button { margin-left: auto; }

/* storage: persistence notice, quota warning, backup */
.storage-notice {
  display: flex; align-items: center; gap: .6rem; margin: 0 0 .5rem; padding: .3rem .6rem;
  font-size: .8rem; color: var(--durably-muted); border-left: 3px solid var(--durably-border);
}
.storage-notice.warning { color: inherit; border-left-color: var(--durably-warning-border); background: var(--durably-warning-bg); }
.storage-notice button { margin-left: auto; font-size: .8rem; }
.storage-actions { display: flex; align-items: center; gap: .6rem; margin: 0 0 .5rem; font-size: .8rem; }
.storage-status { color: var(--durably-muted); }

/* toolbar: filters and pager */
.toolbar {
  display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; margin-bottom: .4rem;
}
.toolbar label { display: flex; align-items: center; gap: .4rem; font-size: .85rem; color: var(--durably-muted); }
.pager { display: flex; align-items: center; gap: .4rem; margin-left: auto; font-size: .85rem; color: var(--durably-muted); }

select, button {
  font: inherit; color: inherit; background: var(--durably-bg);
  border: 1px solid var(--durably-border); border-radius: var(--durably-radius);
  padding: .2rem .55rem; min-height: 1.9rem;
}
button { cursor: pointer; }
button:hover:not(:disabled, [aria-disabled="true"]) { background: var(--durably-subtle); }
button:disabled, button[aria-disabled="true"] { opacity: .55; cursor: default; }
button:focus-visible, select:focus-visible {
  outline: 2px solid var(--durably-accent); outline-offset: 1px;
}
button.danger { color: var(--durably-failed); }

/* the runs table */
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: middle; padding: .4rem .5rem; border-bottom: 1px solid var(--durably-border); }
th { font-size: .75rem; font-weight: 600; text-transform: uppercase; letter-spacing: .03em; color: var(--durably-muted); }
td.time, th.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.empty { color: var(--durably-muted); text-align: center; padding: 1.5rem; }
tr.run.expanded > td { border-bottom-color: transparent; }

.toggle {
  display: inline-flex; align-items: center; gap: .35rem; border: 0; padding: .1rem .2rem;
  background: none; font-weight: 600; text-align: left;
}
.toggle::before {
  content: ""; width: .45rem; height: .45rem; flex: none;
  border-right: 2px solid currentColor; border-bottom: 2px solid currentColor;
  transform: rotate(-45deg); transition: transform .15s;
}
.toggle[aria-expanded="true"]::before { transform: rotate(45deg); }
.run-id { font: .72rem var(--durably-mono); color: var(--durably-muted); margin-left: .3rem; }
.labels { display: flex; flex-wrap: wrap; gap: .25rem; padding-left: 1rem; margin-top: .15rem; }
.label {
  font-size: .72rem; padding: 0 .35rem; border-radius: 999px;
  border: 1px solid var(--durably-border); color: var(--durably-muted);
}

.badge {
  --c: var(--durably-pending);
  display: inline-block; padding: .05rem .5rem; border-radius: 999px;
  font-size: .78rem; font-weight: 600; white-space: nowrap;
  color: var(--c); background: color-mix(in srgb, var(--c) 12%, transparent);
  border: 1px solid color-mix(in srgb, var(--c) 35%, transparent);
}
.badge.leased, .badge.running { --c: var(--durably-leased); }
.badge.completed { --c: var(--durably-completed); }
.badge.failed, .badge.error { --c: var(--durably-failed); }
.badge.cancelled, .badge.warn { --c: var(--durably-cancelled); }
.badge.info { --c: var(--durably-muted); }

.progress { display: grid; gap: .2rem; min-width: 9rem; }
.track {
  height: var(--durably-bar-height); border-radius: 999px; overflow: hidden;
  background: color-mix(in srgb, var(--durably-border) 60%, transparent);
}
.fill {
  height: 100%; width: 100%; transform-origin: left; transform: scaleX(0);
  background: var(--durably-leased); transition: transform .2s ease-out;
}
.progress.completed .fill { background: var(--durably-completed); }
.progress.failed .fill { background: var(--durably-failed); }
.progress.cancelled .fill { background: var(--durably-cancelled); }
.progress.indeterminate .fill { transform: scaleX(.3); animation: slide 1.2s ease-in-out infinite; }
@keyframes slide { from { margin-left: -30%; } to { margin-left: 100%; } }
.progress-text {
  font-size: .78rem; color: var(--durably-muted); font-variant-numeric: tabular-nums;
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 16rem;
}
.error-text { display: block; font-size: .78rem; color: var(--durably-failed); max-width: 16rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }

.actions { white-space: nowrap; text-align: right; }
.actions button + button { margin-left: .3rem; }
.actions button { font-size: .8rem; min-height: 1.7rem; }

/* expanded details: steps and logs */
tr.details-row > td { padding: 0 .5rem .75rem 1.5rem; }
.details {
  display: grid; grid-template-columns: minmax(15rem, 1fr) minmax(16rem, 1.6fr); gap: .5rem 1.25rem;
  padding: .6rem .75rem; border: 1px solid var(--durably-border); border-radius: var(--durably-radius);
  background: var(--durably-subtle);
}
.details h3 { margin: 0 0 .3rem; font-size: .75rem; text-transform: uppercase; letter-spacing: .03em; color: var(--durably-muted); }
.details section.wide { grid-column: 1 / -1; }
.details table { font-size: .82rem; }
.details .badge { font-size: .7rem; padding: 0 .4rem; font-weight: 500; }
.details th, .details td { padding: .2rem .4rem; white-space: nowrap; }
.details .none { color: var(--durably-muted); font-size: .82rem; margin: 0; }
.scroll, .logs { max-height: var(--durably-details-height); overflow: auto; }
.logs { list-style: none; margin: 0; padding: 0; font-size: .82rem; }
.logs li { display: flex; flex-wrap: wrap; gap: .1rem .5rem; padding: .15rem 0; border-bottom: 1px dashed var(--durably-border); }
.logs li:last-child { border-bottom: 0; }
.logs time, .logs .step { color: var(--durably-muted); font-variant-numeric: tabular-nums; }
.logs .text { white-space: pre-wrap; overflow-wrap: anywhere; }
pre, code.data {
  font: .78rem/1.4 var(--durably-mono); white-space: pre-wrap; overflow-wrap: anywhere; margin: 0;
}
code.data { flex-basis: 100%; color: var(--durably-muted); }
pre { max-height: 10rem; overflow: auto; padding: .35rem .5rem; background: var(--durably-bg); border: 1px solid var(--durably-border); border-radius: var(--durably-radius); }
pre.error { color: var(--durably-failed); }

@media (max-width: 720px) {
  .details { grid-template-columns: 1fr; }
  th.time:nth-of-type(4), td.time.started { display: none; }
}
`;
