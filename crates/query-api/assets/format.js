// Number, date and size formatting shared by the panels, plus a tiny DOM helper.

const price = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const signedPrice = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
  signDisplay: "exceptZero",
});
const percent = new Intl.NumberFormat("en-US", {
  style: "percent",
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
  signDisplay: "exceptZero",
});
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });
const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

/** A price with two decimals and thousands separators; a dash when unknown. */
export const formatPrice = (value) => (isNumber(value) ? price.format(value) : "—");
/** A signed change (+12.30, −4.10). */
export const formatChange = (value) => (isNumber(value) ? signedPrice.format(value) : "—");
/** A signed ratio as a percentage (0.0123 → +1.23%). */
export const formatPercent = (ratio) => (isNumber(ratio) ? percent.format(ratio) : "—");
/** A large count in compact form (1.74B). */
export const formatCompact = (value) => (isNumber(value) ? compact.format(value) : "—");
/** A whole number with separators. */
export const formatInteger = (value) => (isNumber(value) ? integer.format(value) : "—");
/** A number with at most two decimals. */
export const formatDecimal = (value) => (isNumber(value) ? decimal.format(value) : "—");

/** A byte count in B, KiB, MiB, GiB. */
export function formatBytes(bytes) {
  if (!isNumber(bytes)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Milliseconds as "12 ms" or "1.4 s". */
export function formatDuration(ms) {
  if (!isNumber(ms)) return "—";
  return ms < 1000 ? `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** How long ago an RFC 3339 instant was, relative to `now` ("4 s ago", "3 min ago"). */
export function formatAgo(instant, now = Date.now()) {
  if (!instant) return "never";
  const then = Date.parse(instant);
  if (Number.isNaN(then)) return String(instant);
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** The local wall-clock time of a Date as HH:MM:SS. */
export const formatClock = (date) => date.toLocaleTimeString("en-GB", { hour12: false });

/** `ratio`'s sign as a CSS class: "up", "down" or "flat". */
export const trendClass = (value) => (!isNumber(value) || value === 0 ? "flat" : value > 0 ? "up" : "down");

/** An ISO date (YYYY-MM-DD) `days` days before `isoDate`. */
export function daysBefore(isoDate, days) {
  const date = new Date(`${isoDate}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() - days);
  return date.toISOString().slice(0, 10);
}

/**
 * Creates an element: `el("td", {className: "num", dataset: {x: 1}}, "text", child)`.
 * Properties go through assignment (so text is never parsed as HTML); `dataset` and `attrs` merge.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "attrs") for (const [name, attr] of Object.entries(value)) node.setAttribute(name, attr);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
