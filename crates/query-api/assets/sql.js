// SQL console: an editor (Ctrl+Enter or Cmd+Enter runs it), the result as a table, the engine's
// stats, errors inline, and "Download CSV" (the same query again, asked for as text/csv).
// Test hooks on #sql-result: data-state (idle|running|done|error), data-rows (rows answered),
// data-rendered (rows in the table), data-query-id, data-runs (queries finished, either way).

import { runQuery, runQueryCsv } from "./api.js";
import { el, formatBytes, formatDuration, formatInteger } from "./format.js";

const RENDER_LIMIT = 1000;

function cellText(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** The SQL panel. */
export class SqlConsole {
  constructor(panel) {
    this.panel = panel;
    this.form = panel.querySelector("#sql-form");
    this.editor = panel.querySelector("#sql-editor");
    this.runButton = panel.querySelector("#sql-run");
    this.cancelButton = panel.querySelector("#sql-cancel");
    this.csvButton = panel.querySelector("#sql-csv");
    this.stats = panel.querySelector("#sql-stats");
    this.error = panel.querySelector("#sql-error");
    this.result = panel.querySelector("#sql-result");
    this.table = panel.querySelector("#sql-table");
    this.running = null;
    this.runs = 0;
    this.lastSql = null;
    this.lastQueryId = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    this.editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.run();
      }
    });
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.csvButton.addEventListener("click", () => this.downloadCsv());
  }

  /** Puts `sql` in the editor and focuses it (used by the status panel's table names). */
  insert(sql) {
    this.editor.value = sql;
    this.editor.focus();
    this.panel.scrollIntoView({ block: "nearest" });
  }

  cancel() {
    this.running?.abort();
  }

  async run() {
    const sql = this.editor.value.trim();
    if (!sql) {
      this.showError("Type a query first.");
      return;
    }
    this.running?.abort();
    const request = new AbortController();
    this.running = request;
    const started = performance.now();
    this.result.dataset.state = "running";
    this.runButton.disabled = true;
    this.cancelButton.hidden = false;
    this.error.hidden = true;
    this.stats.textContent = "running…";
    try {
      const answer = await runQuery(sql, {
        signal: request.signal,
        onState: (state) => { this.stats.textContent = `${state.toLowerCase()}…`; },
      });
      this.render(answer, performance.now() - started);
      this.lastSql = sql;
      this.lastQueryId = answer.query_id ?? null;
      this.csvButton.disabled = false;
    } catch (error) {
      if (error.name === "AbortError") {
        this.stats.textContent = "cancelled";
        this.result.dataset.state = "idle";
      } else {
        this.showError(error.kind && error.kind !== "network" ? `${error.message} (${error.kind})` : error.message);
      }
    } finally {
      if (this.running === request) {
        this.runs += 1;
        this.result.dataset.runs = String(this.runs);
        this.running = null;
        this.runButton.disabled = false;
        this.cancelButton.hidden = true;
      }
    }
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = false;
    this.stats.textContent = "";
    this.table.replaceChildren();
    Object.assign(this.result.dataset, { state: "error", rows: "0", rendered: "0" });
  }

  render(answer, roundTripMs) {
    const columns = answer.columns || [];
    const rows = answer.rows || [];
    const shown = rows.slice(0, RENDER_LIMIT);
    const head = el("thead", {}, el("tr", {}, ...columns.map((column) => el("th", {
      scope: "col",
      title: column.type,
      dataset: { column: column.name, type: column.type },
      className: /int|double|real|float|decimal|numeric/.test(column.type || "") ? "num" : "",
    }, column.name, el("span", { className: "col-type" }, column.type)))));
    const numeric = columns.map((column) => /int|double|real|float|decimal|numeric/.test(column.type || ""));
    const body = el("tbody");
    for (const row of shown) {
      body.append(el("tr", {}, ...row.map((value, index) => {
        const text = cellText(value);
        return text === null
          ? el("td", { className: "null" }, "NULL")
          : el("td", { className: numeric[index] ? "num" : "" }, text);
      })));
    }
    this.table.replaceChildren(head, body);
    Object.assign(this.result.dataset, {
      state: "done",
      rows: String(rows.length),
      rendered: String(shown.length),
      queryId: answer.query_id ?? "",
    });
    this.stats.textContent = this.statsText(answer.stats || {}, rows.length, shown.length, roundTripMs, answer.query_id);
  }

  statsText(stats, rowCount, shownCount, roundTripMs, queryId) {
    const parts = [];
    if (stats.engine) parts.push(stats.engine);
    parts.push(`${formatInteger(rowCount)} row${rowCount === 1 ? "" : "s"}${stats.truncated ? " (truncated by the server's row limit)" : ""}`);
    if (shownCount < rowCount) parts.push(`first ${formatInteger(shownCount)} shown, download CSV for all`);
    parts.push(`${formatDuration(stats.elapsed_ms)} in the engine, ${formatDuration(roundTripMs)} round trip`);
    if (typeof stats.bytes_scanned === "number") parts.push(`${formatBytes(stats.bytes_scanned)} scanned`);
    if (typeof stats.files_scanned === "number") parts.push(`${formatInteger(stats.files_scanned)} files`);
    if (typeof stats.partitions_scanned === "number") parts.push(`${formatInteger(stats.partitions_scanned)} partitions`);
    if (typeof stats.tail_rows === "number") parts.push(`${formatInteger(stats.tail_rows)} from the live tail`);
    if (queryId) parts.push(`id ${queryId}`);
    return parts.join(" · ");
  }

  async downloadCsv() {
    if (!this.lastSql) return;
    const label = this.csvButton.textContent;
    this.csvButton.disabled = true;
    this.csvButton.textContent = "Preparing CSV…";
    try {
      const blob = await runQueryCsv(this.lastSql);
      const url = URL.createObjectURL(blob);
      const link = el("a", { href: url, download: `stockstream-${this.lastQueryId || Date.now()}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      this.error.textContent = `CSV download failed: ${error.message}`;
      this.error.hidden = false;
    } finally {
      this.csvButton.disabled = false;
      this.csvButton.textContent = label;
    }
  }
}
