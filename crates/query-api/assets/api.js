// Calls to the query API (same origin): JSON helpers and the SQL query protocol
// (synchronous answer, or 202 and polling for slow queries).

/** An error answered by the API (`{"error": {kind, message, retryable}}`) or by the network. */
export class ApiError extends Error {
  constructor(message, { kind = "network", status = 0, retryable = true } = {}) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.status = status;
    this.retryable = retryable;
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: fall back to the status line below.
  }
  const detail = body && body.error;
  if (detail && typeof detail.message === "string") {
    return new ApiError(detail.message, {
      kind: detail.kind || "error",
      status: response.status,
      retryable: Boolean(detail.retryable),
    });
  }
  return new ApiError(`${response.status} ${response.statusText || "error"} from ${new URL(response.url).pathname}`, {
    kind: "http",
    status: response.status,
    retryable: response.status >= 500,
  });
}

async function send(path, init = {}) {
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(`cannot reach the query API (${error.message})`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

/** GET `path` and parse its JSON answer. */
export async function getJson(path, { signal } = {}) {
  const response = await send(path, { headers: { Accept: "application/json" }, signal });
  return response.json();
}

/** `path` with the query parameters of `params` that are set. */
export function withParams(path, params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    }, { once: true });
  });
}

/** Polls a 202 answer's status until the query ends; throws unless it SUCCEEDED. */
async function waitForQuery(accepted, { signal, onState }) {
  onState(accepted.state || "QUEUED");
  const statusUrl = accepted.status_url || `/v1/queries/${encodeURIComponent(accepted.query_id)}`;
  let status = accepted;
  let delay = 250;
  while (!TERMINAL.has(status.state)) {
    await sleep(delay, signal);
    delay = Math.min(delay * 1.5, 2000);
    status = await getJson(statusUrl, { signal });
    onState(status.state);
  }
  if (status.state !== "SUCCEEDED") {
    const detail = status.error || {};
    throw new ApiError(detail.message || `query ${status.state.toLowerCase()}`, {
      kind: detail.kind || status.state.toLowerCase(),
      retryable: Boolean(detail.retryable),
    });
  }
  return accepted.results_url || `/v1/queries/${encodeURIComponent(accepted.query_id)}/results`;
}

function postQuery(sql, accept, signal) {
  return send("/v1/query", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: accept },
    body: JSON.stringify({ sql }),
    signal,
  });
}

/**
 * Runs `sql` and resolves to `{query_id, columns, rows, stats}`. A query slower than the server's
 * synchronous wait answers 202: its status is then polled until it ends, and its results fetched.
 * `onState(state)` reports progress (`QUEUED`, `RUNNING`, ...).
 */
export async function runQuery(sql, { signal, onState = () => {} } = {}) {
  const response = await postQuery(sql, "application/json", signal);
  const body = await response.json();
  if (response.status !== 202) return body;
  const resultsUrl = await waitForQuery(body, { signal, onState });
  const results = await getJson(withParams(resultsUrl, { page_size: 1000 }), { signal });
  return { query_id: body.query_id, ...results };
}

/** One CSV field, quoted when it holds a comma, a quote or a line break. */
function csvField(value) {
  if (value === null || value === undefined) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** `{columns, rows}` as CSV text with a header line. */
export function toCsv({ columns, rows }) {
  const lines = [columns.map((column) => csvField(column.name)).join(",")];
  for (const row of rows) lines.push(row.map(csvField).join(","));
  return lines.join("\r\n") + "\r\n";
}

/**
 * Runs `sql` asking for CSV and resolves to a Blob of CSV text. For a slow (202) query the
 * results are asked for as CSV too; a server answering them as JSON gets them converted here.
 */
export async function runQueryCsv(sql, { signal, onState = () => {} } = {}) {
  const response = await postQuery(sql, "text/csv", signal);
  if (response.status !== 202) return response.blob();
  const resultsUrl = await waitForQuery(await response.json(), { signal, onState });
  const results = await send(resultsUrl, { headers: { Accept: "text/csv" }, signal });
  if ((results.headers.get("Content-Type") || "").startsWith("text/csv")) return results.blob();
  return new Blob([toCsv(await results.json())], { type: "text/csv" });
}
