// stockstream dashboard: wires the panels together. Served by stockstream-query-api at `/`,
// every file from /assets/ (embedded in the binary); nothing comes from elsewhere.
//
//   board.js   markets board (GET /v1/symbols, .../quotes)       chart.js   candles + volume
//   ticker.js  live quotes (SSE GET /v1/stream/quotes)            sql.js     SQL console
//   status.js  lake and pipeline status (GET /v1/status)          api.js     HTTP helpers
//
// The chart's symbol, interval and range live in the URL (?symbol=HSI&interval=month&from=&to=)
// so a view can be bookmarked or shared.

import { Board } from "./board.js";
import { Chart } from "./chart.js";
import { SqlConsole } from "./sql.js";
import { StatusPanel } from "./status.js";
import { QuoteStream, Ticker } from "./ticker.js";

function viewFromUrl() {
  const params = new URLSearchParams(location.search);
  return {
    symbol: params.get("symbol") || null,
    interval: params.get("interval") || "day",
    from: params.get("from") || "",
    to: params.get("to") || "",
  };
}

function viewToUrl(view) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(view)) if (value) params.set(name, value);
  const search = params.toString();
  history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}${location.hash}`);
}

function start() {
  const wanted = viewFromUrl();
  const chart = new Chart(document.getElementById("chart-panel"), { onChange: viewToUrl });
  const board = new Board(document.getElementById("board"), {
    onSelect: (symbol) => {
      const market = board.markets.get(symbol);
      chart.setBounds(market?.first_date, market?.last_date);
      chart.show({ symbol, from: "", to: "" });
    },
    // The first successful load opens the chart of the URL's symbol, else of the first row.
    onLoad: () => {
      if (chart.view.symbol) return;
      const symbol = wanted.symbol && board.markets.has(wanted.symbol) ? wanted.symbol : board.firstSymbol();
      if (!symbol) return;
      const market = board.markets.get(symbol);
      board.select(symbol);
      chart.setBounds(market?.first_date, market?.last_date);
      chart.show({ ...wanted, symbol });
    },
  });
  const sql = new SqlConsole(document.getElementById("sql"));
  const status = new StatusPanel(document.getElementById("status"), { onQueryTable: (text) => sql.insert(text) });
  const ticker = new Ticker(document.getElementById("ticker"), document.getElementById("stream-badge"));

  const stream = new QuoteStream("/v1/stream/quotes", {
    onState: (state, detail) => ticker.setState(state, detail),
    onSnapshot: (quotes) => {
      for (const quote of quotes) board.applyQuote(quote, { flash: false });
    },
    onQuote: (quote, eventId) => {
      const previousClose = board.applyQuote(quote);
      ticker.add(quote, previousClose, eventId);
      chart.noteQuote(quote);
    },
    onGap: (reason) => ticker.gap(reason),
  });
  stream.connect();

  board.load();
  status.refresh();
}

start();
