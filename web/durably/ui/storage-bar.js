// The storage bar of <durably-runs>: keeps the user's data in view. A small notice while
// the origin's storage is not persisted (the browser may then evict the database under
// storage pressure) with a button that asks to persist it, a warning when usage nears
// the quota, and "Download backup". It owns its DOM and its clicks; the element only
// places it and tells it which client to use.

import { el, setText } from "./dom.js";

/** Usage at or above this share of the quota is warned about. */
export const QUOTA_WARNING_RATIO = 0.8;

/** `<database>-<YYYY-MM-DD>.sqlite3`: the backup's file name. */
export function backupFileName(database, date = new Date()) {
  const day = `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
  return `${database}-${day}.sqlite3`;
}

function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
}

export class StorageBar {
  /** The connected client; null until one is ready. */
  #client = null;

  constructor() {
    this.persistText = el("span", { text: "Storage is not persistent: the browser may delete the job database when the device runs low on space." });
    this.persistButton = el("button", { text: "Keep data", part: "button", attrs: { type: "button", "data-storage": "persist" } });
    this.persistNotice = el("div", { className: "storage-notice", part: "storage-notice", attrs: { role: "status", hidden: "" } }, this.persistText, this.persistButton);
    this.quotaText = el("span");
    this.quotaWarning = el("div", { className: "storage-notice warning", part: "storage-warning", attrs: { role: "alert", hidden: "" } }, this.quotaText);
    this.backupButton = el("button", { text: "Download backup", part: "button", attrs: { type: "button", "data-storage": "backup" } });
    this.status = el("span", { className: "storage-status", attrs: { "aria-live": "polite" } });
    this.actions = el("div", { className: "storage-actions", part: "storage", attrs: { hidden: "" } }, this.backupButton, this.status);
    this.node = el("div", { className: "storage" }, this.persistNotice, this.quotaWarning, this.actions);
    this.persistButton.addEventListener("click", () => this.#persist());
    this.backupButton.addEventListener("click", () => this.#backup());
  }

  /** Show the storage state of `client` (null: hide everything). */
  connect(client) {
    this.#client = client;
    this.actions.hidden = !client || client.role !== "owner";
    return this.refresh();
  }

  /** Read the storage figures again and update the notices. */
  async refresh() {
    const client = this.#client;
    if (!client) {
      this.persistNotice.hidden = true;
      this.quotaWarning.hidden = true;
      return;
    }
    let info;
    try {
      info = await client.storageInfo();
    } catch {
      return; // closed or failed: the element shows that already
    }
    if (client !== this.#client) return;
    this.persistNotice.hidden = info.persisted;
    const nearFull = info.usage != null && info.quota > 0 && info.usage / info.quota >= QUOTA_WARNING_RATIO;
    this.quotaWarning.hidden = !nearFull;
    if (nearFull) {
      setText(this.quotaText, `Storage is nearly full: ${megabytes(info.usage)} of ${megabytes(info.quota)} used (${Math.round((100 * info.usage) / info.quota)} %). Download a backup and purge old runs.`);
    }
  }

  async #persist() {
    const client = this.#client;
    if (!client) return;
    this.persistButton.disabled = true;
    try {
      const persisted = await client.requestPersistence();
      if (!persisted) setText(this.persistText, "The browser declined to make storage persistent; download backups to keep the job data safe.");
    } finally {
      this.persistButton.disabled = false;
      await this.refresh();
    }
  }

  async #backup() {
    const client = this.#client;
    if (!client) return;
    this.backupButton.disabled = true;
    setText(this.status, "Preparing backup…");
    try {
      const blob = await client.exportDatabase();
      const url = URL.createObjectURL(blob);
      const link = el("a", { attrs: { href: url, download: backupFileName(client.database) } });
      this.node.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setText(this.status, `Backup downloaded (${megabytes(blob.size)}).`);
    } catch (error) {
      setText(this.status, `Backup failed: ${error.message}`);
    } finally {
      this.backupButton.disabled = false;
    }
  }
}
