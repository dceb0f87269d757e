// Live quotes: the Server-Sent Events stream (`GET /v1/stream/quotes`) and the ticker list.
//
// The browser's EventSource reconnects by itself after a network error and resends the last
// event id as Last-Event-ID, so the server resumes after it. When the server drops a slow client
// (`event: dropped`) or refuses the stream, the page opens a new stream after a pause: that one
// starts with a fresh snapshot, and the ticker marks the gap.

import { el, formatChange, formatClock, formatCompact, formatInteger, formatPercent, formatPrice, trendClass } from "./format.js";

const MAX_ROWS = 200;
const SEEN_KEYS = 2000;
const RETRY_MS = [1000, 2000, 5000, 10000, 30000];

/** The SSE connection. Callbacks: onState(state, detail), onSnapshot(quotes), onQuote(quote, eventId), onGap(reason). */
export class QuoteStream {
  constructor(url, callbacks) {
    this.url = url;
    this.callbacks = callbacks;
    this.source = null;
    this.failures = 0;
    this.retryTimer = null;
    this.delivered = false; // whether the current connection delivered its snapshot
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.source?.close();
    const source = new EventSource(this.url);
    this.source = source;
    this.delivered = false;
    this.callbacks.onState("connecting");
    source.addEventListener("open", () => this.callbacks.onState("connecting", "waiting for the snapshot"));
    source.addEventListener("snapshot", (event) => {
      const body = this.parse(event);
      if (!body) return;
      this.failures = 0;
      this.delivered = true;
      this.callbacks.onSnapshot(Array.isArray(body.quotes) ? body.quotes : []);
      this.callbacks.onState("live");
    });
    source.addEventListener("quote", (event) => {
      const quote = this.parse(event);
      if (quote) this.callbacks.onQuote(quote, event.lastEventId);
    });
    source.addEventListener("dropped", (event) => {
      const body = this.parse(event) || {};
      const reason = body.reason || "no reason given";
      source.close();
      this.callbacks.onState("dropped", reason);
      if (this.delivered) this.callbacks.onGap(`dropped by the server (${reason})`);
      this.retry();
    });
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CONNECTING) {
        this.callbacks.onState("reconnecting", "resuming after the last quote received");
        return;
      }
      this.callbacks.onState("error", "the quote stream is unavailable; retrying");
      if (this.delivered) this.callbacks.onGap("closed");
      this.retry();
    });
  }

  parse(event) {
    try {
      return JSON.parse(event.data);
    } catch {
      this.callbacks.onState("error", `unreadable ${event.type} event from the server`);
      return null;
    }
  }

  retry() {
    const delay = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
    this.failures += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}

const STATE_TEXT = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  dropped: "dropped",
  error: "offline",
};

/** The ticker panel and the header's stream badge. */
export class Ticker {
  constructor(panel, badge) {
    this.panel = panel;
    this.list = panel.querySelector("#ticker-list");
    this.note = panel.querySelector("#ticker-note");
    this.empty = panel.querySelector("#ticker-empty");
    this.pauseButton = panel.querySelector("#ticker-pause");
    this.badge = badge;
    this.badgeText = badge.querySelector("#stream-badge-text");
    this.pending = [];
    this.seen = new Set();
    this.received = 0;
    this.lastAt = null;
    this.paused = false;
    this.flushPending = false;
    this.state = "connecting";
    this.detail = "";
    this.pauseButton.addEventListener("click", () => this.togglePause());
  }

  setState(state, detail = "") {
    this.state = state;
    this.detail = detail;
    this.panel.dataset.stream = state;
    this.badge.dataset.state = state;
    this.badgeText.textContent = STATE_TEXT[state] ?? state;
    this.updateNote();
  }

  updateNote() {
    const parts = [STATE_TEXT[this.state] ?? this.state];
    if (this.detail) parts.push(this.detail);
    parts.push(`${formatInteger(this.received)} quote${this.received === 1 ? "" : "s"} received`);
    if (this.lastAt) parts.push(`last at ${formatClock(this.lastAt)}`);
    if (this.paused && this.pending.length) parts.push(`${formatInteger(this.pending.length)} waiting (paused)`);
    this.note.textContent = parts.join(" · ");
  }

  /** Queues a live quote for display; `previousClose` gives its change. Repeats are ignored. */
  add(quote, previousClose, eventId) {
    const key = `${quote.partition}:${quote.offset}`;
    if (quote.partition !== undefined && quote.offset !== undefined) {
      if (this.seen.has(key)) return;
      this.seen.add(key);
      if (this.seen.size > SEEN_KEYS) this.seen.delete(this.seen.values().next().value);
    }
    this.received += 1;
    this.lastAt = new Date();
    this.panel.dataset.received = String(this.received);
    if (eventId) this.panel.dataset.lastEventId = eventId;
    this.pending.push({ quote, previousClose, eventId, at: this.lastAt });
    if (this.pending.length > MAX_ROWS) this.pending.splice(0, this.pending.length - MAX_ROWS);
    this.scheduleFlush();
  }

  /** Marks a gap in the list (quotes between the two sides may be missing). */
  gap(reason) {
    this.pending.push({ gap: reason, at: new Date() });
    this.scheduleFlush();
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseButton.setAttribute("aria-pressed", String(this.paused));
    this.pauseButton.textContent = this.paused ? "Resume" : "Pause";
    if (!this.paused) this.scheduleFlush();
    this.updateNote();
  }

  scheduleFlush() {
    if (this.flushPending) return;
    this.flushPending = true;
    const run = () => {
      if (!this.flushPending) return;
      this.flushPending = false;
      this.flush();
    };
    requestAnimationFrame(run);
    setTimeout(run, 250); // also when frames are throttled (hidden tab)
  }

  flush() {
    this.updateNote();
    if (this.paused || !this.pending.length) return;
    const fragment = document.createDocumentFragment();
    for (const item of this.pending.reverse()) fragment.append(item.gap ? this.gapRow(item) : this.row(item));
    this.pending = [];
    this.list.prepend(fragment);
    while (this.list.children.length > MAX_ROWS) this.list.lastElementChild.remove();
    this.empty.hidden = this.list.children.length > 0;
  }

  row({ quote, previousClose, eventId, at }) {
    const change = typeof previousClose === "number" ? quote.close - previousClose : null;
    const ratio = change !== null && previousClose ? change / previousClose : null;
    const trend = trendClass(change);
    return el("li", {
      className: `tick tick-${trend}`,
      dataset: {
        symbol: quote.symbol,
        tradeDate: quote.trade_date,
        close: quote.close,
        partition: quote.partition ?? "",
        offset: quote.offset ?? "",
        eventId: eventId ?? "",
      },
    },
    el("time", { className: "tick-time", dateTime: at.toISOString() }, formatClock(at)),
    el("span", { className: "tick-symbol" }, quote.symbol),
    el("span", { className: "tick-date" }, quote.trade_date),
    el("span", { className: "tick-close num" }, formatPrice(quote.close)),
    el("span", { className: "tick-change num", dataset: { trend } }, change === null ? "—" : `${formatChange(change)} (${formatPercent(ratio)})`),
    el("span", { className: "tick-volume num", title: "volume" }, quote.volume ? formatCompact(quote.volume) : "—"));
  }

  gapRow({ gap, at }) {
    return el("li", { className: "tick-gap", dataset: { gap: "true" } },
      el("time", { className: "tick-time", dateTime: at.toISOString() }, formatClock(at)),
      el("span", {}, `Stream ${gap}; reconnecting with a fresh snapshot — quotes in between are not listed here.`));
  }
}
