// The notes app: imports run as durable jobs in a worker; the list shows every completed
// import's notes, and <durably-runs> shows progress, steps and logs.
import { DurablyClient } from "durably-pyodide";
import "durably-pyodide/ui";
import "./style.css";

const status = document.querySelector("#status");
const runs = document.querySelector("durably-runs");
const client = new DurablyClient({ database: "notes", jobs: [`${import.meta.env.BASE_URL}jobs/notes.py`] });
runs.connect(client);

async function showNotes(durably) {
  const done = await durably.getRuns({ jobName: "import-notes", status: "completed", limit: 50 });
  const list = document.querySelector("#notes");
  list.replaceChildren(
    ...done.flatMap((run) => run.output.notes).map((note) => {
      const item = document.createElement("li");
      item.textContent = `${note.title} — ${note.words} words${note.tags.length ? ` (#${note.tags.join(" #")})` : ""}`;
      return item;
    }),
  );
}

try {
  const durably = (window.durably = await client.ready);
  status.textContent = durably.role === "owner" ? "Ready" : "Another tab runs the imports";
  durably.on("run:complete", () => showNotes(durably));
  await showNotes(durably);
  document.querySelector("#import").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = document.querySelector("#text").value;
    const delay_ms = Number(document.querySelector("#delay").value) || 0;
    durably.trigger("import-notes", { text, batch_size: 1, delay_ms });
  });
  if (import.meta.env.PROD && "serviceWorker" in navigator) {
    await navigator.serviceWorker.register(`${import.meta.env.BASE_URL}sw.js`);
    status.textContent += " · works offline";
  }
} catch (error) {
  status.textContent = `Could not start: ${error.message}`;
}
