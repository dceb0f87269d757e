// Lake and pipeline status: each service's readiness, checks and key figures, the time of the
// last commit to the lake, and the catalogue's tables (columns, partitions), from GET /v1/status
// every few seconds (GET /v1/tables when the server has no status endpoint).
// Test hooks: #status data-state, li[data-service][data-ready], details[data-table].

import { ApiError, getJson } from "./api.js";
import { el, formatAgo, formatClock, formatDecimal, formatInteger } from "./format.js";

const REFRESH_MS = 5000;

function readiness(ready) {
  if (ready === true) return { key: "true", text: "ready" };
  if (ready === false) return { key: "false", text: "not ready" };
  return { key: "unknown", text: "unreachable" };
}

function figureRows(figures = {}) {
  const rows = [];
  if (figures.rows_in_per_second !== undefined) rows.push(["rows in / s", formatDecimal(figures.rows_in_per_second)]);
  if (figures.consumer_lag !== undefined) rows.push(["consumer lag", formatInteger(figures.consumer_lag)]);
  if (figures.last_flush_at !== undefined) rows.push(["last flush", formatAgo(figures.last_flush_at), figures.last_flush_at]);
  if (figures.records_written !== undefined) rows.push(["records written", formatInteger(figures.records_written)]);
  for (const [name, value] of Object.entries(figures)) {
    if (["rows_in_per_second", "consumer_lag", "last_flush_at", "records_written", "error"].includes(name)) continue;
    rows.push([name.replaceAll("_", " "), typeof value === "number" ? formatDecimal(value) : String(value)]);
  }
  return rows;
}

const keyName = (key) => (typeof key === "string" ? key : key.name);

/** The status panel. `onQueryTable(sql)` puts a query of a table into the SQL console. */
export class StatusPanel {
  constructor(panel, { onQueryTable }) {
    this.panel = panel;
    this.note = panel.querySelector("#status-note");
    this.error = panel.querySelector("#status-error");
    this.services = panel.querySelector("#status-services");
    this.tables = panel.querySelector("#status-tables");
    this.commit = panel.querySelector("#status-lake-commit");
    this.onQueryTable = onQueryTable;
    this.hasStatusEndpoint = true;
    this.tablesSignature = null;
    this.timer = null;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.refresh();
    });
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      if (this.hasStatusEndpoint) {
        try {
          this.render(await getJson("/v1/status"));
        } catch (error) {
          if (!(error instanceof ApiError) || error.status !== 404) throw error;
          this.hasStatusEndpoint = false;
        }
      }
      if (!this.hasStatusEndpoint) {
        const catalogue = await getJson("/v1/tables");
        this.render({ generated_at: new Date().toISOString(), lake: { last_commit_at: null, tables: catalogue.tables || [] } });
      }
      this.error.hidden = true;
    } catch (error) {
      this.error.textContent = `Status could not be refreshed: ${error.message}`;
      this.error.hidden = false;
      if (this.panel.dataset.state === "loading") this.panel.dataset.state = "error";
    }
    if (document.visibilityState !== "hidden") this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
  }

  render(status) {
    this.panel.dataset.state = "ready";
    this.panel.dataset.updatedAt = status.generated_at || "";
    this.note.textContent = `updated ${formatClock(new Date())}, every ${REFRESH_MS / 1000} s`;
    this.renderServices(status.services);
    const lake = status.lake || {};
    this.commit.textContent = lake.last_commit_at
      ? `· last commit to the lake ${formatAgo(lake.last_commit_at)}`
      : this.hasStatusEndpoint ? "· no commit to the lake yet" : "";
    this.commit.title = lake.last_commit_at || "";
    this.renderTables(lake.tables || []);
  }

  renderServices(services) {
    if (!Array.isArray(services)) {
      this.services.replaceChildren(el("li", { className: "empty" }, "This server has no status endpoint (/v1/status)."));
      return;
    }
    this.services.replaceChildren(...services.map((service) => {
      const state = readiness(service.ready);
      const figures = service.figures || {};
      const checks = Object.entries(service.checks || {});
      return el("li", { className: "service", dataset: { service: service.name, ready: state.key } },
        el("div", { className: "service-head" },
          el("span", { className: "service-name" }, service.name),
          el("span", { className: "badge", dataset: { ready: state.key } }, state.text)),
        service.url ? el("div", { className: "service-url muted" }, service.url) : null,
        el("dl", { className: "figures" }, ...figureRows(figures).flatMap(([name, value, title]) => [
          el("dt", {}, name), el("dd", { title: title ?? "" }, value),
        ])),
        figures.error ? el("p", { className: "service-error" }, figures.error) : null,
        checks.length ? el("ul", { className: "checks" }, ...checks.map(([name, check]) => el("li", {
          className: check.ok ? "check-ok" : "check-failed",
          dataset: { check: name, ok: String(Boolean(check.ok)) },
        }, el("span", { className: "check-mark", attrs: { "aria-label": check.ok ? "ok" : "failed" } }, check.ok ? "✓" : "✗"),
        ` ${name}`, check.detail ? el("span", { className: "muted" }, ` — ${check.detail}`) : null))) : null);
    }));
  }

  renderTables(tables) {
    const signature = JSON.stringify(tables);
    if (signature === this.tablesSignature) return;
    this.tablesSignature = signature;
    const open = new Set([...this.tables.querySelectorAll("details[open]")].map((details) => details.dataset.table));
    const focusedTable = this.tables.contains(document.activeElement) ? document.activeElement.closest("details")?.dataset.table : null;
    if (!tables.length) {
      this.tables.replaceChildren(el("p", { className: "empty" }, "The catalogue has no table yet."));
      return;
    }
    this.tables.replaceChildren(...tables.map((table) => {
      const keys = (table.partition_keys || []).map(keyName);
      const query = el("button", { type: "button", className: "button-quiet" }, "Query");
      query.addEventListener("click", () => this.onQueryTable(`SELECT *\nFROM ${table.name}\nLIMIT 100`));
      const details = el("details", { dataset: { table: table.name }, open: open.has(table.name) },
        el("summary", {},
          el("span", { className: "table-name" }, table.name),
          el("span", { className: "muted" }, ` ${formatInteger(table.partitions)} partitions · ${formatInteger(table.files)} files`)),
        el("p", { className: "muted" }, `location ${table.location || "—"}`, keys.length ? ` · partitioned by ${keys.join(", ")}` : ""),
        el("ul", { className: "columns" }, ...(table.columns || []).map((column) => el("li", {},
          el("code", {}, column.name), " ", el("span", { className: "muted" }, column.type)))),
        query);
      return details;
    }));
    if (focusedTable) this.tables.querySelector(`details[data-table="${CSS.escape(focusedTable)}"] summary`)?.focus();
  }
}
