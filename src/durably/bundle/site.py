"""``python -m durably bundle``: lay out a static site that runs durably jobs offline.

Everything the browser loads is written under one directory, so any static file server
works (no special headers: nothing needs ``SharedArrayBuffer``)::

    OUTDIR/durably/              the runtime's JavaScript (client, worker, UI, ...)
    OUTDIR/vendor/               Pyodide, the hash-checked wheels, our wheel, manifest.json
    OUTDIR/jobs/                 the job modules given with --jobs
    OUTDIR/sw.js                 a service worker precaching every file below
    OUTDIR/durably-precache.json every file with its sha256 (written last)
    OUTDIR/index.html            a minimal page, written only if there is none
"""

from __future__ import annotations

import html
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from durably.bundle.sources import build_installed_wheel, find_pyodide, runtime_sources
from durably.bundle.vendor import SetupError, content_version, lay_out_vendor, sha256_of

PRECACHE = "durably-precache.json"
SERVICE_WORKER = "sw.js"
NOT_PRECACHED = {PRECACHE, SERVICE_WORKER}

SW_TEMPLATE = """\
// Written by `python -m durably bundle`: precaches every file durably-precache.json lists.
importScripts("durably/sw-precache.js");
durablyPrecache({ manifest: "durably-precache.json" });
"""


def ui_module(web_dir: Path) -> str:
    """The module defining <durably-runs>, relative to the runtime's directory."""
    for path in sorted(web_dir.rglob("*.js")):
        if 'customElements.define("durably-runs"' in path.read_text():
            return path.relative_to(web_dir).as_posix()
    raise SetupError(f"no module in {web_dir} defines <durably-runs>")


def index_html(jobs: Sequence[str], ui: str) -> str:
    job_urls = json.dumps([f"./jobs/{name}" for name in jobs])
    return f"""<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>durably</title>
<!-- Written by `python -m durably bundle`; replace it with your app. -->
<form id="trigger">
  <label>Job <select id="job" name="job"></select></label>
  <label>Input (JSON) <input id="input" name="input" value="{{}}"></label>
  <button>Run</button>
</form>
<durably-runs page-size="10"></durably-runs>
<script type="module">
  import {{ DurablyClient }} from "./durably/client.js";
  import "./durably/{html.escape(ui)}";
  const runs = document.querySelector("durably-runs");
  const client = new DurablyClient({{ database: "app", jobs: {job_urls} }});
  runs.connect(client);
  const durably = (window.durably = await client.ready);
  for (const name of durably.jobs) document.querySelector("#job").add(new Option(name, name));
  document.querySelector("#trigger").addEventListener("submit", (event) => {{
    event.preventDefault();
    const form = new FormData(event.target);
    durably.trigger(form.get("job"), JSON.parse(form.get("input")));
  }});
  await navigator.serviceWorker?.register("./sw.js");
</script>
</html>
"""


def write_precache(out_dir: Path) -> list[dict[str, object]]:
    """List every file under ``out_dir`` (but the list and the service worker) with its hash."""
    files = [
        {
            "url": path.relative_to(out_dir).as_posix(),
            "sha256": sha256_of(path),
            "bytes": path.stat().st_size,
        }
        for path in sorted(out_dir.rglob("*"))
        if path.is_file() and path.relative_to(out_dir).as_posix() not in NOT_PRECACHED
    ]
    skip = [out_dir / name for name in NOT_PRECACHED]
    precache = {"version": content_version(out_dir, skip), "files": files}
    (out_dir / PRECACHE).write_text(json.dumps(precache, indent=1) + "\n")
    return files


def bundle(
    out_dir: Path,
    jobs: Sequence[Path],
    *,
    pyodide: Path | None = None,
    wheels: Sequence[Path] = (),
) -> list[dict[str, object]]:
    """Lay out ``out_dir`` (see the module docstring); return the precached files."""
    sources = runtime_sources()
    for job in jobs:
        if not job.is_file():
            raise SetupError(f"job module {job} does not exist")
    version, url, integrity = sources.pyodide_pin()
    pyodide_dir = find_pyodide(pyodide, version, url, integrity)
    out_dir.mkdir(parents=True, exist_ok=True)

    runtime = out_dir / "durably"
    if runtime.exists():
        shutil.rmtree(runtime)
    shutil.copytree(sources.web_dir, runtime, ignore=shutil.ignore_patterns("*.d.ts"))
    with tempfile.TemporaryDirectory(prefix="durably-wheel-") as tmp:
        lay_out_vendor(
            out_dir / "vendor",
            pyodide_source=pyodide_dir,
            pyodide_version=version,
            requirements=sources.requirements,
            our_wheel=build_installed_wheel(Path(tmp)),
            wheel_seeds=wheels,
        )
    job_dir = out_dir / "jobs"
    job_dir.mkdir(exist_ok=True)
    for job in jobs:
        shutil.copyfile(job, job_dir / job.name)
    if not (out_dir / "index.html").exists():
        names = [job.name for job in jobs]
        (out_dir / "index.html").write_text(index_html(names, ui_module(sources.web_dir)))
    (out_dir / SERVICE_WORKER).write_text(SW_TEMPLATE)
    files = write_precache(out_dir)
    print(f"bundle: {out_dir} ({len(files)} files, open index.html over http(s))")
    return files
