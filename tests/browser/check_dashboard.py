"""Browser test of the stockstream dashboard: opens BASE_URL in headless Chromium (Debian's
chromium + chromedriver, driven by selenium) and checks what a user sees against the API's own
answers. Checks, in order:

  load       the page loads every asset from its own origin, the board lists every symbol of
             GET /v1/symbols, the quote stream is live, the status panel and first chart render
  keyboard   Tab reaches the board rows, interval, date range, chart, SQL editor and Run button
  chart      choosing SYMBOL (Enter on its board row) at INTERVAL: the chart holds as many candles
             as GET /v1/symbols/SYMBOL/candles?interval=INTERVAL answers, same first and last period
  sql_error  a query naming a missing column shows the API's error message inline
  sql        SQL typed into the console and run with Ctrl+Enter shows the columns and every row,
             value for value, that POST /v1/query answers; Download CSV saves the same rows
  live       (only when asked) a quote produced after the page went live appears in the ticker
             within --live-timeout seconds (3) of being acknowledged, and on the board
  layout     nothing is wider than the viewport (no sideways scrolling, at phone width too)
  console    no error was logged to the browser console (besides the 400 that sql_error causes)

How the live quote gets produced (choose one; without either the live check is skipped):
  --live SYMBOL:DATE --produce-command CMD
        once the stream is live, CMD runs in a shell with LIVE_SYMBOL, LIVE_DATE and BASE_URL in
        its environment; it must produce that quote and exit 0 once the broker acknowledged it
  --produce-via-stdin
        once the stream is live, one line {"event": "ready"} is printed on stdout; the caller
        produces a quote and writes one line "SYMBOL DATE" (or {"symbol": .., "trade_date": ..})
        on stdin once it is acknowledged
The 3 s start when the command exits or the line is read.

Output: one JSON line on stdout summing up every check (the last line), progress on stderr.
Exit status: 0 all checks passed, 1 a check failed, 2 the browser or the server is missing.

usage: check_dashboard.py BASE_URL [--symbol HSI] [--interval month] [--sql SQL]
           [--live SYMBOL:DATE --produce-command CMD | --produce-via-stdin] [--live-timeout 3]
           [--width 1280] [--height 900] [--screenshot PNG] [--timeout 20]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from selenium.common.exceptions import JavascriptException, TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser, BrowserSetupError  # noqa: E402

DEFAULT_SQL = ("SELECT trade_date, open, high, low, close, volume\n"
               "FROM quotes\nWHERE symbol = 'HSI' AND trade_date BETWEEN '2009-12-01' AND '2009-12-31'\n"
               "ORDER BY trade_date")
ERROR_SQL = "SELECT no_such_column FROM quotes"
KEYBOARD_TARGETS = {
    "board row": "#board-body tr[data-symbol]",
    "interval": "#chart-interval input",
    "date range": "#chart-from",
    "chart": "#chart",
    "SQL editor": "#sql-editor",
    "Run button": "#sql-run",
}

# Which of KEYBOARD_TARGETS the focused element is, and whether it shows that it has the focus
# (an outline or a shadow on it, on its label for the visually hidden radio inputs). A date input
# that is the active element without matching :focus has the focus in its calendar button, which
# Chromium rings itself.
FOCUS_PROBE = """
const [targets] = arguments;
const e = document.activeElement;
const matches = Object.entries(targets).filter(([, selector]) => e && e.matches(selector)).map(([name]) => name);
let shown = e;
if (e && e.matches('.segmented input')) shown = document.querySelector(`label[for="${e.id}"]`);
if (e && e.matches('input[type=date]') && !e.matches(':focus')) shown = null;
const style = shown && shown !== document.body ? getComputedStyle(shown) : null;
const styled = !style || (style.outlineStyle !== 'none' && style.outlineWidth !== '0px') || style.boxShadow !== 'none';
return {matches, styled, html: e ? e.outerHTML.slice(0, 120) : ''};
"""

# The text of every cell of the SQL result table, row by row.
TABLE_CELLS = "return [...document.querySelectorAll('#sql-table tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))"
# Up to five elements reaching past the viewport's right edge, outside the scrolling tables and the chart.
TOO_WIDE = """
return [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-scroll, .chart'))
  .slice(0, 5)
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''))
"""


class CheckFailed(Exception):
    """A check saw something other than what the API says should be there."""


class SetupError(Exception):
    """The server does not answer, or the test was asked for something impossible."""


class Api:
    """The query API, asked directly, for the figures the page must agree with."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    def request(self, path: str, body: dict | None = None, accept: str = "application/json"):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, headers={"Accept": accept})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            try:
                return error.code, json.load(error)
            except ValueError:
                return error.code, None

    def get(self, path: str):
        status, body = self.request(path)
        if status != 200:
            raise CheckFailed(f"GET {path} answered {status}: {body}")
        return body


class Run:
    """One run of every check against one page; results go to `checks`."""

    def __init__(self, args, api: Api, browser: Browser):
        self.args = args
        self.api = api
        self.browser = browser
        self.driver = browser.driver
        self.checks: list[dict] = []
        self.allowed_errors: list[str] = []

    # Helpers

    @contextmanager
    def check(self, name: str):
        record = {"name": name, "ok": False}
        started = time.monotonic()
        try:
            yield record
            record["ok"] = True
        except CheckFailed as error:
            record["detail"] = str(error)
        except TimeoutException as error:
            record["detail"] = f"timed out: {error.msg or 'condition not met'}"
        except (WebDriverException, JavascriptException) as error:
            record["detail"] = f"browser error: {error.msg or error}"
        record["seconds"] = round(time.monotonic() - started, 3)
        self.checks.append(record)
        state = "ok" if record["ok"] else f"FAILED: {record.get('detail')}"
        print(f"check_dashboard: {name} {state} ({record['seconds']} s)", file=sys.stderr, flush=True)

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, description: str, script: str, *args, timeout: float | None = None, poll: float = 0.05):
        """Evaluates `script` until it returns something truthy; answers that."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.args.timeout)
        while True:
            value = self.js(script, *args)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise CheckFailed(f"waited {timeout or self.args.timeout} s for {description}; last saw {value!r}")
            time.sleep(poll)

    def wait_for_stream(self) -> None:
        """Waits for the page's quote stream to deliver its snapshot."""
        try:
            self.wait("the quote stream's snapshot", "return document.querySelector('#ticker').dataset.stream === 'live'")
        except CheckFailed as error:
            ticker = self.data("#ticker")
            raise CheckFailed(f"{error} (the stream is {ticker.get('stream')}: {self.text('#ticker-note')})") from None

    def text(self, selector: str) -> str:
        return self.js("const n = document.querySelector(arguments[0]); return n ? n.textContent : ''", selector)

    def data(self, selector: str) -> dict:
        return self.js("const n = document.querySelector(arguments[0]); return n ? Object.assign({}, n.dataset) : null;", selector) or {}

    # Checks

    def check_load(self) -> bool:
        with self.check("load") as record:
            started = time.monotonic()
            self.driver.get(self.api.base_url + "/")
            self.wait("the document to load", "return document.readyState === 'complete'")
            if not self.js("return typeof window.LightweightCharts === 'object'"):
                raise CheckFailed("the charting library (window.LightweightCharts) did not load")
            self.wait("the markets board", "return document.querySelector('#board').dataset.state === 'ready'")
            self.wait_for_stream()
            self.wait("the status panel", "return document.querySelector('#status').dataset.state === 'ready'")
            self.wait("the first chart", "return ['ready', 'empty'].includes(document.querySelector('#chart').dataset.state)")
            record["load_seconds"] = round(time.monotonic() - started, 3)
            expected = {s["symbol"] for s in self.api.get("/v1/symbols")["symbols"]}
            shown = set(self.js("return [...document.querySelectorAll('#board-body tr')].map(r => r.dataset.symbol)"))
            if not expected <= shown:
                raise CheckFailed(f"the board lacks symbols {sorted(expected - shown)} that /v1/symbols lists")
            record["symbols"] = len(shown)
            foreign = self.js("""
                return performance.getEntriesByType('resource').map(e => e.name)
                  .filter(u => !u.startsWith(location.origin + '/') && !u.startsWith('data:'))""")
            if foreign:
                raise CheckFailed(f"the page loaded resources from elsewhere: {foreign}")
            record["resources"] = self.js("return performance.getEntriesByType('resource').length")
        return self.checks[-1]["ok"]

    def check_keyboard(self) -> None:
        with self.check("keyboard") as record:
            self.js("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
            self.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
            reached: dict[str, int] = {}
            for press in range(1, 151):
                focus = self.js(FOCUS_PROBE, KEYBOARD_TARGETS)
                for name in focus["matches"]:
                    reached.setdefault(name, press)
                if not focus["styled"]:
                    raise CheckFailed(f"the focused element {focus['html']} shows no focus style")
                if len(reached) == len(KEYBOARD_TARGETS):
                    break
                self.driver.switch_to.active_element.send_keys(Keys.TAB)
            missing = [name for name in KEYBOARD_TARGETS if name not in reached]
            if missing:
                raise CheckFailed(f"Tab never reached: {', '.join(missing)}")
            record["tab_presses"] = reached

    def check_chart(self) -> None:
        symbol, interval = self.args.symbol, self.args.interval
        with self.check("chart") as record:
            row = self.driver.find_element(By.CSS_SELECTOR, f"#board-body tr[data-symbol='{symbol}']")
            self.js("arguments[0].focus()", row)
            row.send_keys(Keys.ENTER)
            self.driver.find_element(By.CSS_SELECTOR, f"label[for='interval-{interval}']").click()
            self.wait(f"the {symbol} {interval} chart", """const d = document.querySelector('#chart').dataset;
                return d.symbol === arguments[0] && d.interval === arguments[1] && ['ready', 'empty', 'error'].includes(d.state)""",
                      symbol, interval)
            shown = self.data("#chart")
            if shown.get("state") == "error":
                raise CheckFailed(f"the chart shows an error: {self.text('#chart-error')}")
            candles = self.api.get(f"/v1/symbols/{quote(symbol)}/candles?interval={interval}")["candles"]
            record.update(api_candles=len(candles), chart_candles=int(shown.get("candles", -1)))
            if record["chart_candles"] != len(candles):
                raise CheckFailed(f"the chart holds {shown.get('candles')} candles, the API answers {len(candles)}")
            if candles and (shown.get("first"), shown.get("last")) != (candles[0]["period"], candles[-1]["period"]):
                raise CheckFailed(f"the chart spans {shown.get('first')}..{shown.get('last')}, the API "
                                  f"{candles[0]['period']}..{candles[-1]['period']}")
            if self.js("return new URLSearchParams(location.search).get('interval')") != interval:
                raise CheckFailed("the URL does not record the chart's interval")

    def run_sql_in_page(self, sql: str) -> dict:
        runs = int(self.data("#sql-result").get("runs", "0"))
        editor = self.driver.find_element(By.ID, "sql-editor")
        editor.click()
        editor.send_keys(Keys.CONTROL, "a")
        editor.send_keys(Keys.DELETE)
        editor.send_keys(sql)
        typed = self.js("return document.querySelector('#sql-editor').value")
        if typed != sql:
            raise CheckFailed(f"the editor holds {typed!r} after typing {sql!r}")
        editor.send_keys(Keys.CONTROL, Keys.ENTER)
        self.wait("the query to finish", "return Number(document.querySelector('#sql-result').dataset.runs) > arguments[0]", runs)
        return self.data("#sql-result")

    def check_sql(self) -> None:
        sql = self.args.sql
        with self.check("sql") as record:
            status, expected = self.api.request("/v1/query", {"sql": sql})
            if status != 200:
                raise CheckFailed(f"POST /v1/query answered {status} for the test query: {expected}")
            shown = self.run_sql_in_page(sql)
            if shown.get("state") != "done":
                raise CheckFailed(f"the console shows {shown.get('state')}: {self.text('#sql-error')}")
            names = [c["name"] for c in expected["columns"]]
            headers = self.js("return [...document.querySelectorAll('#sql-table thead th')].map(th => th.dataset.column)")
            if headers != names:
                raise CheckFailed(f"the result table's columns are {headers}, the API's {names}")
            cells = self.js(TABLE_CELLS)
            rows = expected["rows"]
            record.update(api_rows=len(rows), table_rows=len(cells), stats=self.text("#sql-stats"))
            if len(cells) != len(rows) or int(shown.get("rows", -1)) != len(rows):
                raise CheckFailed(f"the table shows {len(cells)} rows (data-rows {shown.get('rows')}), the API answers {len(rows)}")
            for index, (row, want) in enumerate(zip(cells, rows, strict=True)):
                if len(row) != len(want):
                    raise CheckFailed(f"row {index + 1} has {len(row)} cells, the API's {len(want)}")
                for text, value, name in zip(row, want, names, strict=True):
                    if not same_value(text, value):
                        raise CheckFailed(f"row {index + 1}, column {name}: the table shows {text!r}, the API answers {value!r}")
            self.check_csv(names, len(expected["rows"]), record)

    def check_csv(self, names: list[str], rows: int, record: dict) -> None:
        self.driver.find_element(By.ID, "sql-csv").click()
        path = self.browser.wait_for_download(".csv", self.args.timeout)
        if path is None:
            raise CheckFailed(f"Download CSV saved no .csv file within {self.args.timeout} s")
        with open(path, newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
        if not lines or lines[0] != names:
            raise CheckFailed(f"the CSV's header is {lines[:1]}, expected {names}")
        if len(lines) - 1 != rows:
            raise CheckFailed(f"the CSV holds {len(lines) - 1} rows, the query answers {rows}")
        record["csv"] = {"file": path.name, "rows": len(lines) - 1}

    def check_sql_error(self) -> None:
        with self.check("sql_error") as record:
            status, answer = self.api.request("/v1/query", {"sql": ERROR_SQL})
            if status < 400 or not (answer or {}).get("error", {}).get("message"):
                raise CheckFailed(f"POST /v1/query of {ERROR_SQL!r} answered {status} {answer}, not an error")
            self.browser.drain_log()
            shown = self.run_sql_in_page(ERROR_SQL)
            message = "" if self.js("return document.querySelector('#sql-error').hidden") else self.text("#sql-error")
            wanted = answer["error"]["message"]
            if shown.get("state") != "error" or wanted not in message:
                raise CheckFailed(f"the console shows state {shown.get('state')} and {message!r}, not the API's error {wanted!r}")
            record["message"] = message
            # The browser logs the 400 answer itself as a failed resource load: expected here.
            for entry in self.browser.drain_log():
                if entry.source == "network" and "/v1/query" in entry.message and f" {status} " in entry.message:
                    self.allowed_errors.append(entry.message)

    def check_live(self) -> None:
        with self.check("live") as record:
            self.wait_for_stream()
            symbol, trade_date, produced_at, produce_seconds = self.produce_live_quote()
            selector = ticker_row(symbol, trade_date)
            deadline = produced_at + self.args.live_timeout
            row = None
            while time.monotonic() < deadline:
                row = self.js("const r = document.querySelector(arguments[0]); return r ? Object.assign({}, r.dataset) : null", selector)
                if row:
                    break
                time.sleep(0.02)
            latency = time.monotonic() - produced_at
            record.update(symbol=symbol, trade_date=trade_date, produce_seconds=produce_seconds)
            if not row:
                raise CheckFailed(f"the quote {symbol} {trade_date} was not in the ticker {self.args.live_timeout} s after it was produced"
                                  f" (stream {self.data('#ticker').get('stream')}, {self.data('#ticker').get('received')} quotes received)")
            record.update(latency_seconds=round(latency, 3), partition=row.get("partition"), offset=row.get("offset"))
            self.wait(f"{symbol} on the markets board", "return !!document.querySelector(`#board-body tr[data-symbol='${arguments[0]}']`)",
                      css_string(symbol), timeout=2)

    def produce_live_quote(self):
        """Has the caller produce a quote; answers its symbol and date, when it was acknowledged and how long producing took."""
        if self.args.produce_command:
            symbol, trade_date = self.args.live
            if self.js("return !!document.querySelector(arguments[0])", ticker_row(symbol, trade_date)):
                raise CheckFailed(f"{symbol} {trade_date} is in the ticker before it was produced: choose a new quote")
            environment = dict(os.environ, LIVE_SYMBOL=symbol, LIVE_DATE=trade_date, BASE_URL=self.api.base_url)
            started = time.monotonic()
            finished = subprocess.run(self.args.produce_command, shell=True, env=environment, capture_output=True,
                                      text=True, timeout=120, check=False)
            if finished.returncode != 0:
                raise CheckFailed(f"the produce command exited {finished.returncode}: {finished.stderr.strip()[-500:]}")
            produced_at = time.monotonic()
            return symbol, trade_date, produced_at, round(produced_at - started, 3)
        print(json.dumps({"event": "ready", "stream": "live"}), flush=True)
        started = time.monotonic()
        readable, _, _ = select.select([sys.stdin], [], [], 120)
        line = sys.stdin.readline().strip() if readable else ""
        produced_at = time.monotonic()
        if not line:
            raise CheckFailed("no produced quote was announced on stdin within 120 s")
        symbol, trade_date = parse_quote_line(line)
        return symbol, trade_date, produced_at, round(produced_at - started, 3)

    def check_layout(self) -> None:
        with self.check("layout") as record:
            widths = self.js("return {page: document.documentElement.scrollWidth, viewport: window.innerWidth}")
            record.update(widths)
            if widths["page"] > widths["viewport"] + 1:
                culprits = self.js(TOO_WIDE)
                raise CheckFailed(f"the page is {widths['page']} px wide in a {widths['viewport']} px viewport; too wide: {culprits}")
            hidden = self.js("return ['#board', '#chart', '#ticker', '#sql', '#status']"
                             ".filter(s => document.querySelector(s).offsetHeight === 0)")
            if hidden:
                raise CheckFailed(f"panels not shown: {hidden}")

    def check_console(self) -> dict:
        with self.check("console") as record:
            self.browser.drain_log()
            errors = [e for e in self.browser.log if e.level == "SEVERE" and e.message not in self.allowed_errors]
            warnings = [e for e in self.browser.log if e.level == "WARNING"]
            record.update(errors=len(errors), warnings=len(warnings), expected_errors=len(self.allowed_errors))
            if warnings:
                record["warning_messages"] = [w.message for w in warnings[:10]]
            if errors:
                raise CheckFailed("console errors: " + " | ".join(e.message for e in errors[:10]))
        return record


def same_value(text: str, value) -> bool:
    """Whether a table cell's text shows the API's JSON value."""
    if value is None:
        return text == "NULL"
    if isinstance(value, bool):
        return text == ("true" if value else "false")
    if isinstance(value, (int, float)):
        try:
            return math.isclose(float(text), float(value), rel_tol=1e-12, abs_tol=0.0)
        except ValueError:
            return False
    if isinstance(value, (list, dict)):
        return json.loads(text) == value
    return text == str(value)


def css_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def ticker_row(symbol: str, trade_date: str) -> str:
    """The CSS selector of the ticker row of a quote."""
    return f"#ticker-list li[data-symbol='{css_string(symbol)}'][data-trade-date='{css_string(trade_date)}']"


def parse_quote_line(line: str) -> tuple[str, str]:
    if line.startswith("{"):
        body = json.loads(line)
        return str(body["symbol"]), str(body["trade_date"])
    parts = line.replace(":", " ").split()
    if len(parts) != 2:
        raise CheckFailed(f"expected 'SYMBOL DATE' on stdin, got {line!r}")
    return parts[0], parts[1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url", help="where the dashboard is served, e.g. http://127.0.0.1:8080")
    parser.add_argument("--symbol", default="HSI", help="symbol charted by the chart check (HSI)")
    parser.add_argument("--interval", default="month", choices=["day", "week", "month", "year"])
    parser.add_argument("--sql", default=DEFAULT_SQL, help="query typed into the console; must answer the same twice")
    parser.add_argument("--live", type=lambda v: tuple(v.split(":", 1)), metavar="SYMBOL:DATE",
                        help="the quote --produce-command produces")
    parser.add_argument("--produce-command", help="shell command producing the --live quote")
    parser.add_argument("--produce-via-stdin", action="store_true", help="handshake on stdout/stdin instead")
    parser.add_argument("--live-timeout", type=float, default=3.0, help="seconds a produced quote has to appear (3)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--screenshot", type=Path, help="save a full-page PNG here after the checks")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds any other wait may take (20)")
    parser.add_argument("--chromium", default=os.environ.get("STOCKSTREAM_CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--chromedriver", default=os.environ.get("STOCKSTREAM_CHROMEDRIVER", "/usr/bin/chromedriver"))
    args = parser.parse_args(argv)
    if args.produce_command and args.produce_via_stdin:
        parser.error("choose one of --produce-command and --produce-via-stdin")
    if args.produce_command and (not args.live or len(args.live) != 2):
        parser.error("--produce-command needs --live SYMBOL:YYYY-MM-DD (the quote it produces)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    summary: dict = {"ok": False, "base_url": args.base_url, "viewport": f"{args.width}x{args.height}"}
    api = Api(args.base_url)
    try:
        try:
            api.get("/v1/symbols")
        except (OSError, CheckFailed) as error:
            raise SetupError(f"the query API at {args.base_url} does not answer GET /v1/symbols: {error}") from error
        with Browser(args.chromium, args.chromedriver, args.width, args.height) as browser:
            summary["browser"] = browser.version()
            run = Run(args, api, browser)
            if run.check_load():
                run.check_keyboard()
                run.check_chart()
                run.check_sql_error()
                run.check_sql()
                if args.produce_command or args.produce_via_stdin:
                    run.check_live()
                else:
                    run.checks.append({"name": "live", "ok": True, "skipped": "no --produce-command or --produce-via-stdin"})
                run.check_layout()
            run.check_console()
            if args.screenshot:
                run.js("document.activeElement && document.activeElement.blur()")
                summary["screenshot"] = browser.screenshot(args.screenshot)
            summary["checks"] = run.checks
            summary["ok"] = all(check["ok"] for check in run.checks)
    except (BrowserSetupError, SetupError) as error:
        summary["error"] = str(error)
        print(f"check_dashboard: {error}", file=sys.stderr)
        summary["elapsed_seconds"] = round(time.monotonic() - started, 3)
        print(json.dumps(summary), flush=True)
        return 2
    summary["elapsed_seconds"] = round(time.monotonic() - started, 3)
    failed = [check["name"] for check in summary["checks"] if not check["ok"]]
    print(f"check_dashboard: {'all checks passed' if not failed else 'FAILED: ' + ', '.join(failed)} in {summary['elapsed_seconds']} s",
          file=sys.stderr, flush=True)
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
