// Candlestick chart with a volume pane (TradingView Lightweight Charts, vendored), for one symbol
// at a day/week/month/year interval over an optional date range. The container exposes what it
// holds for tests: data-symbol, data-interval, data-from, data-to, data-state (idle|loading|ready|
// empty|error), data-candles (bars the chart holds), data-first and data-last (their periods).

import { ApiError, getJson, withParams } from "./api.js";
import { formatCompact, formatPrice } from "./format.js";

const INTERVALS = ["day", "week", "month", "year"];
const LIVE_REFRESH_MS = 2000;

function cssColor(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

const finite = (value) => typeof value === "number" && Number.isFinite(value);

/** The chart panel. */
export class Chart {
  constructor(panel, { onChange = () => {} } = {}) {
    this.panel = panel;
    this.container = panel.querySelector("#chart");
    this.error = panel.querySelector("#chart-error");
    this.note = panel.querySelector("#chart-note");
    this.legend = panel.querySelector("#chart-legend");
    this.label = panel.querySelector("#chart-symbol-label");
    this.fromInput = panel.querySelector("#chart-from");
    this.toInput = panel.querySelector("#chart-to");
    this.onChange = onChange;
    this.view = { symbol: null, interval: "day", from: "", to: "" };
    this.request = null;
    this.refreshTimer = null;
    this.lastRefresh = 0;
    this.candles = [];
    this.bindControls();
    this.createChart();
  }

  bindControls() {
    for (const radio of this.panel.querySelectorAll("input[name=interval]")) {
      radio.addEventListener("change", () => radio.checked && this.show({ interval: radio.value }));
    }
    for (const input of [this.fromInput, this.toInput]) {
      input.addEventListener("change", () => this.show({ from: this.fromInput.value, to: this.toInput.value }));
    }
    this.panel.querySelector("#chart-fit").addEventListener("click", () => this.chart?.timeScale().fitContent());
    this.panel.querySelector("#chart-controls").addEventListener("submit", (event) => event.preventDefault());
    this.container.tabIndex = 0;
    this.container.addEventListener("keydown", (event) => this.onKey(event));
  }

  createChart() {
    const charts = window.LightweightCharts;
    if (!charts) {
      this.fail("the charting library did not load (/assets/vendor/lightweight-charts.standalone.production.js)");
      return;
    }
    const text = cssColor("--text-muted", "#9aa4b2");
    const line = cssColor("--grid", "#1e2a36");
    this.up = cssColor("--up", "#26a69a");
    this.down = cssColor("--down", "#ef5350");
    this.chart = charts.createChart(this.container, {
      autoSize: true,
      layout: {
        background: { type: "solid", color: cssColor("--panel", "#111a23") },
        textColor: text,
        fontFamily: getComputedStyle(document.body).fontFamily,
        attributionLogo: true,
        panes: { separatorColor: line, separatorHoverColor: line },
      },
      grid: { vertLines: { color: line }, horzLines: { color: line } },
      rightPriceScale: { borderColor: line },
      timeScale: { borderColor: line },
      localization: { locale: "en-US" },
    });
    this.candleSeries = this.chart.addSeries(charts.CandlestickSeries, {
      upColor: this.up, downColor: this.down, wickUpColor: this.up, wickDownColor: this.down, borderVisible: false,
    });
    this.volumeSeries = null;
    this.chart.subscribeCrosshairMove((param) => this.showLegend(param));
  }

  /** Adds the volume pane, or removes it when the candles shown carry no volume (old data). */
  showVolume(wanted) {
    if (wanted && !this.volumeSeries) {
      this.volumeSeries = this.chart.addSeries(window.LightweightCharts.HistogramSeries, {
        priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false,
      }, 1);
      const panes = this.chart.panes();
      panes[0].setStretchFactor(3);
      panes[1]?.setStretchFactor(1);
    } else if (!wanted && this.volumeSeries) {
      this.chart.removeSeries(this.volumeSeries);
      this.volumeSeries = null;
    }
  }

  /** Changes what is shown (any of symbol, interval, from, to) and loads it. */
  show(changes) {
    const next = { ...this.view, ...changes };
    if (!INTERVALS.includes(next.interval)) next.interval = "day";
    if (next.from && next.to && next.from > next.to) {
      this.fail(`the range starts (${next.from}) after it ends (${next.to})`);
      return;
    }
    const fit = next.symbol !== this.view.symbol || next.interval !== this.view.interval
      || next.from !== this.view.from || next.to !== this.view.to;
    this.view = next;
    this.syncControls();
    this.onChange({ ...this.view });
    this.load({ fit });
  }

  syncControls() {
    const { symbol, interval, from, to } = this.view;
    for (const radio of this.panel.querySelectorAll("input[name=interval]")) radio.checked = radio.value === interval;
    this.fromInput.value = from;
    this.toInput.value = to;
    this.label.textContent = symbol ? `· ${symbol}` : "";
    this.container.setAttribute("aria-label", symbol
      ? `Candlestick chart of ${symbol} by ${interval}; arrow keys pan, + and − zoom, Home shows everything`
      : "Candlestick chart; choose a symbol on the markets board");
  }

  /** Sets the date inputs' bounds to a symbol's known range. */
  setBounds(firstDate, lastDate) {
    for (const input of [this.fromInput, this.toInput]) {
      if (firstDate) input.min = firstDate;
      if (lastDate) input.max = lastDate;
    }
  }

  async load({ fit }) {
    const { symbol, interval, from, to } = this.view;
    if (!symbol || !this.chart) return;
    this.request?.abort();
    const request = new AbortController();
    this.request = request;
    Object.assign(this.container.dataset, { state: "loading", symbol, interval, from, to });
    const path = withParams(`/v1/symbols/${encodeURIComponent(symbol)}/candles`, { interval, from, to });
    try {
      const answer = await getJson(path, { signal: request.signal });
      if (request.signal.aborted) return;
      this.setCandles(answer.candles || [], fit);
    } catch (error) {
      if (error.name === "AbortError") return;
      this.fail(error instanceof ApiError ? error.message : String(error));
    } finally {
      if (this.request === request) this.request = null;
    }
  }

  setCandles(candles, fit) {
    const valid = candles.filter((c) => c.period && [c.open, c.high, c.low, c.close].every(finite));
    valid.sort((a, b) => (a.period < b.period ? -1 : a.period > b.period ? 1 : 0));
    // The library refuses two bars at one time: keep the last answer for a period.
    const unique = valid.filter((c, index) => index + 1 === valid.length || valid[index + 1].period !== c.period);
    this.candles = unique;
    this.candleSeries.setData(unique.map((c) => ({ time: c.period, open: c.open, high: c.high, low: c.low, close: c.close })));
    // Old data has no volume: no pane then, rather than a flat line on a meaningless scale.
    this.showVolume(unique.some((c) => c.volume));
    this.volumeSeries?.setData(unique.map((c) => ({
      time: c.period,
      value: finite(c.volume) ? c.volume : 0,
      color: c.close >= c.open ? `${this.up}80` : `${this.down}80`,
    })));
    if (fit) this.chart.timeScale().fitContent();
    this.error.hidden = true;
    const held = this.candleSeries.data().length;
    Object.assign(this.container.dataset, {
      state: held ? "ready" : "empty",
      candles: String(held),
      first: unique[0]?.period ?? "",
      last: unique[unique.length - 1]?.period ?? "",
    });
    const skipped = candles.length - unique.length;
    const noVolume = unique.filter((c) => !c.volume).length;
    this.note.textContent = [
      `${held} candle${held === 1 ? "" : "s"}`,
      skipped ? `${skipped} without prices or repeated skipped` : "",
      noVolume && noVolume === held ? "no volume recorded" : noVolume ? `${noVolume} without volume` : "",
    ].filter(Boolean).join(" · ");
    this.showLegend(null);
  }

  fail(message) {
    this.error.textContent = `Chart: ${message}`;
    this.error.hidden = false;
    this.container.dataset.state = "error";
  }

  showLegend(param) {
    let candle = this.candles[this.candles.length - 1];
    if (param && param.time && this.candleSeries) {
      const bar = param.seriesData.get(this.candleSeries);
      if (bar) candle = this.candles.find((c) => c.period === param.time) ?? { period: param.time, ...bar };
    }
    if (!candle) {
      this.legend.textContent = "";
      return;
    }
    this.legend.textContent = `${candle.period}  O ${formatPrice(candle.open)}  H ${formatPrice(candle.high)}  `
      + `L ${formatPrice(candle.low)}  C ${formatPrice(candle.close)}  V ${candle.volume ? formatCompact(candle.volume) : "—"}`;
  }

  /** A live quote arrived: reload the candles (at most every 2 s) if it falls in the range shown. */
  noteQuote(quote) {
    const { symbol, from, to } = this.view;
    if (quote.symbol !== symbol || (from && quote.trade_date < from) || (to && quote.trade_date > to)) return;
    if (this.refreshTimer) return;
    const wait = Math.max(0, this.lastRefresh + LIVE_REFRESH_MS - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.lastRefresh = Date.now();
      this.load({ fit: false });
    }, wait);
  }

  onKey(event) {
    if (!this.chart) return;
    const scale = this.chart.timeScale();
    const range = scale.getVisibleLogicalRange();
    if (!range) return;
    const width = range.to - range.from;
    const step = Math.max(1, width * 0.1);
    let next = null;
    if (event.key === "ArrowLeft") next = { from: range.from - step, to: range.to - step };
    else if (event.key === "ArrowRight") next = { from: range.from + step, to: range.to + step };
    else if (event.key === "+" || event.key === "=") next = { from: range.from + step, to: range.to - step };
    else if (event.key === "-" || event.key === "_") next = { from: range.from - step, to: range.to + step };
    else if (event.key === "Home") {
      scale.fitContent();
      event.preventDefault();
      return;
    }
    if (!next || next.to - next.from < 2) return;
    event.preventDefault();
    scale.setVisibleLogicalRange(next);
  }
}
