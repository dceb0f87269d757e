// Markets board: every symbol with its latest close, change vs the previous close, rows and date
// range; sortable; a row opens the chart (click, Enter or Space).

import { getJson, withParams } from "./api.js";
import {
  daysBefore, el, formatChange, formatInteger, formatPercent, formatPrice, trendClass,
} from "./format.js";

const RECENT_DATES = 5;
const REFRESH_MS = 30_000;

/** One symbol's state: catalogue figures plus the closes of its most recent trade dates. */
class Market {
  constructor(symbol) {
    this.symbol = symbol;
    this.first_date = null;
    this.last_date = null;
    this.rows = null;
    this.latest = null;
    this.recent = new Map(); // trade_date → close, the last RECENT_DATES dates
  }

  /** Takes a quote in; returns true when it changed the latest quote. */
  apply(quote) {
    this.recent.set(quote.trade_date, quote.close);
    if (this.recent.size > RECENT_DATES) {
      const dates = [...this.recent.keys()].sort();
      for (const date of dates.slice(0, dates.length - RECENT_DATES)) this.recent.delete(date);
    }
    if (!this.first_date || quote.trade_date < this.first_date) this.first_date = quote.trade_date;
    if (!this.last_date || quote.trade_date > this.last_date) this.last_date = quote.trade_date;
    if (this.latest && quote.trade_date < this.latest.trade_date) return false;
    this.latest = quote;
    return true;
  }

  /** The close of the latest known trade date before `date`, or null. */
  closeBefore(date) {
    let best = null;
    for (const [day, close] of this.recent) {
      if (day < date && (best === null || day > best[0])) best = [day, close];
    }
    return best ? best[1] : null;
  }

  get previousClose() {
    return this.latest ? this.closeBefore(this.latest.trade_date) : null;
  }

  get close() { return this.latest ? this.latest.close : null; }

  get change() {
    const previous = this.previousClose;
    return this.latest && previous !== null ? this.latest.close - previous : null;
  }

  get change_pct() {
    const previous = this.previousClose;
    return this.latest && previous ? (this.latest.close - previous) / previous : null;
  }
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  return a < b ? -1 : 1;
}

/** The board panel. `onSelect(symbol)` is called when a row is chosen, `onLoad()` after each load of the symbols. */
export class Board {
  constructor(root, { onSelect, onLoad = () => {} }) {
    this.root = root;
    this.body = root.querySelector("#board-body");
    this.note = root.querySelector("#board-note");
    this.error = root.querySelector("#board-error");
    this.onSelect = onSelect;
    this.onLoad = onLoad;
    this.markets = new Map();
    this.rows = new Map(); // symbol → <tr>
    this.sort = { key: "symbol", direction: 1 };
    this.selected = null;
    this.flash = new Map(); // symbol → trend of its last change, animated at the next render
    this.renderPending = false;
    this.loaded = false;
    for (const header of root.querySelectorAll("th[data-key] button")) {
      header.addEventListener("click", () => this.sortBy(header.parentElement.dataset.key));
    }
    this.body.addEventListener("click", (event) => this.choose(event.target.closest("tr")));
    this.body.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      this.choose(event.target.closest("tr"));
    });
  }

  market(symbol) {
    let market = this.markets.get(symbol);
    if (!market) {
      market = new Market(symbol);
      this.markets.set(symbol, market);
    }
    return market;
  }

  /** Loads the symbols and, for each, its closes of the last two weeks (for the change). */
  async load() {
    try {
      const answer = await getJson("/v1/symbols");
      const symbols = answer.symbols || [];
      for (const info of symbols) {
        const market = this.market(info.symbol);
        market.first_date = info.first_date;
        market.last_date = market.last_date && market.last_date > info.last_date ? market.last_date : info.last_date;
        market.rows = info.rows;
      }
      await Promise.all(symbols.filter((info) => info.last_date).map((info) => this.loadRecent(info)));
      this.loaded = true;
      this.error.hidden = true;
      this.root.dataset.state = "ready";
      this.onLoad();
    } catch (error) {
      this.error.textContent = `Symbols could not be loaded: ${error.message}`;
      this.error.hidden = false;
      this.root.dataset.state = this.loaded ? "ready" : "error";
    }
    this.scheduleRender();
    setTimeout(() => this.load(), REFRESH_MS);
  }

  async loadRecent(info) {
    const path = withParams(`/v1/symbols/${encodeURIComponent(info.symbol)}/quotes`, {
      from: daysBefore(info.last_date, 14),
      to: info.last_date,
    });
    const answer = await getJson(path);
    const market = this.market(info.symbol);
    for (const quote of answer.quotes || []) market.apply({ symbol: info.symbol, ...quote });
  }

  /**
   * Takes a quote from the stream (snapshot or live) in; returns the close of the trade date
   * before it, when known, so the ticker can show the change too.
   */
  applyQuote(quote, { flash = true } = {}) {
    const market = this.market(quote.symbol);
    const shownClose = market.latest ? market.latest.close : null;
    if (market.apply(quote)) {
      if (flash) this.flash.set(quote.symbol, shownClose === null ? "flat" : trendClass(quote.close - shownClose));
      this.scheduleRender();
    }
    return market.closeBefore(quote.trade_date);
  }

  /** Marks `symbol` as the one charted. */
  select(symbol) {
    this.selected = symbol;
    for (const [name, row] of this.rows) row.setAttribute("aria-selected", String(name === symbol));
  }

  /** The symbol a page without a choice should chart first. */
  firstSymbol() {
    return this.sorted()[0]?.symbol ?? null;
  }

  choose(row) {
    if (!row || !row.dataset.symbol) return;
    this.select(row.dataset.symbol);
    this.onSelect(row.dataset.symbol);
  }

  sortBy(key) {
    this.sort = { key, direction: this.sort.key === key ? -this.sort.direction : key === "symbol" ? 1 : -1 };
    for (const header of this.root.querySelectorAll("th[data-key]")) {
      if (header.dataset.key === key) header.setAttribute("aria-sort", this.sort.direction > 0 ? "ascending" : "descending");
      else header.removeAttribute("aria-sort");
    }
    this.render();
  }

  sorted() {
    const { key, direction } = this.sort;
    return [...this.markets.values()].sort((a, b) => {
      const order = compare(a[key], b[key]);
      return order === 0 ? compare(a.symbol, b.symbol) : order * direction;
    });
  }

  scheduleRender() {
    if (this.renderPending) return;
    this.renderPending = true;
    const run = () => {
      if (!this.renderPending) return;
      this.renderPending = false;
      this.render();
    };
    requestAnimationFrame(run);
    setTimeout(run, 250); // also when frames are throttled (hidden tab)
  }

  rowFor(market) {
    let row = this.rows.get(market.symbol);
    if (!row) {
      row = el("tr", { tabIndex: 0, dataset: { symbol: market.symbol }, attrs: { "aria-selected": String(market.symbol === this.selected) } });
      for (let cell = 0; cell < 7; cell += 1) row.append(el(cell === 0 ? "th" : "td", cell === 0 ? { scope: "row" } : {}));
      const classes = ["", "num", "num col-change", "num", "", "num col-rows", "col-since"];
      [...row.children].forEach((cell, index) => { if (classes[index]) cell.className = classes[index]; });
      this.rows.set(market.symbol, row);
    }
    return row;
  }

  render() {
    const focused = document.activeElement;
    const order = this.sorted();
    order.forEach((market, index) => {
      const row = this.rowFor(market);
      const cells = row.children;
      const trend = trendClass(market.change);
      cells[0].textContent = market.symbol;
      cells[1].textContent = formatPrice(market.close);
      cells[2].textContent = formatChange(market.change);
      cells[3].textContent = formatPercent(market.change_pct);
      cells[2].dataset.trend = trend;
      cells[3].dataset.trend = trend;
      cells[4].textContent = market.latest ? market.latest.trade_date : (market.last_date ?? "—");
      cells[5].textContent = formatInteger(market.rows);
      cells[6].textContent = market.first_date ?? "—";
      row.dataset.close = market.close ?? "";
      row.dataset.tradeDate = market.latest ? market.latest.trade_date : "";
      const flash = this.flash.get(market.symbol);
      if (flash) {
        row.classList.remove("flash-up", "flash-down", "flash-flat");
        void row.offsetWidth; // restart the animation
        row.classList.add(`flash-${flash}`);
      }
      if (this.body.children[index] !== row) this.body.insertBefore(row, this.body.children[index] ?? null);
    });
    this.flash.clear();
    if (focused && focused !== document.activeElement && this.body.contains(focused)) focused.focus({ preventScroll: true });
    this.root.dataset.symbols = String(order.length);
    this.note.textContent = order.length === 1 ? "1 symbol" : `${order.length} symbols`;
    if (!order.length && this.loaded) this.note.textContent = "no symbol in the lake yet";
  }
}
