"""A stand-in for stockstream-query-api that speaks the dashboard contract
(docs/dashboard.md), for working on the page and testing check_dashboard.py without building or
starting the Rust stack. Python standard library only.

It serves crates/query-api/assets/ at / and /assets/, and answers the API from the dataset CSV
loaded into an in-memory SQLite table `quotes` (same columns as the lake's, plus `year`):

  GET  /v1/symbols, /v1/symbols/{s}/candles, /v1/symbols/{s}/quotes, /v1/tables, /v1/status
  POST /v1/query            JSON or CSV (Accept); SQLite runs the SQL, so write SQLite SQL.
                            A query containing `-- fake:slow` answers 202 and is polled.
  GET  /v1/queries/{id}, /v1/queries/{id}/results
  GET  /v1/stream/quotes    SSE: snapshot, quote (id "partition:offset"), heartbeats,
                            Last-Event-ID resume, `dropped` for a client whose buffer is full

and, for tests only:

  POST /fake/produce        a quote (or a list) as JSON {symbol, trade_date, close, ...}: stored,
                            queryable and pushed to every stream; answers their partition/offset
  POST /fake/drop           {"reason": "..."}: drops every stream client (they reconnect)
  POST /fake/disconnect     closes every stream connection without a word, as a network failure
                            would (browsers reconnect with Last-Event-ID and the stream resumes)

usage: fake_api.py [--port 0] [--data CSV] [--assets DIR] [--service-down NAME]
It prints `listening on http://127.0.0.1:PORT` once it accepts connections.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import queue
import re
import socket
import sqlite3
import sys
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

ROOT = Path(__file__).resolve().parents[2]
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
    ".NOTICE": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
COLUMNS = ["symbol", "trade_date", "open", "high", "low", "close", "adj_close", "volume", "close_usd",
           "kafka_partition", "kafka_offset", "year"]
STREAM_BUFFER = 1000
MAX_ROWS = 10_000


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, retryable: bool = False):
        super().__init__(message)
        self.status, self.kind, self.message, self.retryable = status, kind, message, retryable


class Store:
    """The quotes (SQLite), the live log of produced quotes, the stream clients and async queries."""

    def __init__(self, csv_paths: list[Path]):
        self.lock = threading.Lock()
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute(
            "CREATE TABLE quotes (symbol TEXT, trade_date TEXT, open REAL, high REAL, low REAL, close REAL, "
            "adj_close REAL, volume INTEGER, close_usd REAL, kafka_partition INTEGER, kafka_offset INTEGER, year INTEGER)")
        self.next_offset = 0
        self.latest: dict[str, dict] = {}
        self.log: list[dict] = []  # quotes produced while running, for Last-Event-ID resume
        self.clients: set[queue.Queue] = set()
        self.queries: dict[str, dict] = {}
        self.last_commit_at = now_rfc3339()
        for path in csv_paths:
            self.load_csv(path)

    def load_csv(self, path: Path) -> None:
        rows = []
        with open(path, newline="", encoding="utf-8-sig") as handle:
            for record in csv.DictReader(handle):
                rows.append(self.row({
                    "symbol": record["Index"], "trade_date": record["Date"], "open": float(record["Open"]),
                    "high": float(record["High"]), "low": float(record["Low"]), "close": float(record["Close"]),
                    "adj_close": float(record["Adj Close"]), "volume": int(float(record["Volume"])),
                    "close_usd": float(record["CloseUSD"]),
                }))
        with self.lock:
            self.db.executemany(f"INSERT INTO quotes VALUES ({','.join('?' * len(COLUMNS))})", rows)

    def row(self, quote: dict) -> tuple:
        quote["partition"] = 0
        quote["offset"] = self.next_offset
        self.next_offset += 1
        latest = self.latest.get(quote["symbol"])
        if latest is None or quote["trade_date"] >= latest["trade_date"]:
            self.latest[quote["symbol"]] = dict(quote)
        return (quote["symbol"], quote["trade_date"], quote["open"], quote["high"], quote["low"], quote["close"],
                quote["adj_close"], quote["volume"], quote["close_usd"], 0, quote["offset"], int(quote["trade_date"][:4]))

    # Producing and streaming

    def produce(self, body) -> list[dict]:
        items = body if isinstance(body, list) else [body]
        produced = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("symbol"), str) or not item["symbol"]:
                raise ApiError(400, "bad_request", "each quote needs a `symbol`")
            try:
                trade_date = date.fromisoformat(str(item.get("trade_date"))).isoformat()
                close = float(item["close"])
            except (KeyError, TypeError, ValueError) as error:
                raise ApiError(400, "bad_request", f"a quote needs `trade_date` (YYYY-MM-DD) and `close`: {error}") from error
            quote = {
                "symbol": item["symbol"], "trade_date": trade_date, "open": float(item.get("open", close)),
                "high": float(item.get("high", close)), "low": float(item.get("low", close)), "close": close,
                "adj_close": float(item.get("adj_close", close)), "volume": int(item.get("volume", 0)),
                "close_usd": float(item.get("close_usd", close)),
            }
            with self.lock:
                self.db.execute(f"INSERT INTO quotes VALUES ({','.join('?' * len(COLUMNS))})", self.row(quote))
                self.log.append(quote)
                self.last_commit_at = now_rfc3339()
                for client in list(self.clients):
                    try:
                        client.put_nowait(("quote", quote))
                    except queue.Full:
                        self.clients.discard(client)
                        client.overflowed = True
            produced.append({"symbol": quote["symbol"], "trade_date": trade_date, "partition": 0, "offset": quote["offset"]})
        return produced

    def subscribe(self, after_offset: int | None) -> tuple[queue.Queue, list[dict], list[dict]]:
        client: queue.Queue = queue.Queue(maxsize=STREAM_BUFFER)
        client.overflowed = False
        with self.lock:
            snapshot = [dict(quote) for quote in self.latest.values()]
            missed = [q for q in self.log if after_offset is not None and q["offset"] > after_offset]
            self.clients.add(client)
        return client, snapshot, missed

    def drop_all(self, reason: str | None) -> int:
        """Ends every stream: with a `dropped` event giving `reason`, or silently when it is None."""
        with self.lock:
            clients = list(self.clients)
            self.clients.clear()
        for client in clients:
            client.put(("dropped", {"reason": reason}) if reason is not None else ("disconnect", None))
        return len(clients)

    # SQL

    def query(self, sql: str, max_rows: int = MAX_ROWS) -> dict:
        statement = re.sub(r"(--[^\n]*\n|/\*.*?\*/)", " ", sql + "\n", flags=re.S).strip().lower()
        if not (statement.startswith("select") or statement.startswith("with")):
            raise ApiError(400, "refused", "only SELECT (or WITH … SELECT) statements may run")
        started = time.perf_counter()
        try:
            with self.lock:
                cursor = self.db.execute(sql)
                names = [column[0] for column in cursor.description or []]
                rows = cursor.fetchmany(max_rows + 1)
        except sqlite3.Error as error:
            raise ApiError(400, "bad_sql", f"SQL error: {error}") from error
        truncated = len(rows) > max_rows
        rows = [list(row) for row in rows[:max_rows]]
        types = []
        for index in range(len(names)):
            sample = next((row[index] for row in rows if row[index] is not None), None)
            if isinstance(sample, int):
                types.append("bigint")
            elif isinstance(sample, float):
                types.append("double")
            elif isinstance(sample, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", sample):
                types.append("date")
            else:
                types.append("varchar")
        return {
            "query_id": str(uuid.uuid4()),
            "columns": [{"name": name, "type": kind} for name, kind in zip(names, types, strict=True)],
            "rows": rows,
            "stats": {"engine": "fake-sqlite", "rows": len(rows), "truncated": truncated,
                      "elapsed_ms": round((time.perf_counter() - started) * 1000, 3), "bytes_scanned": 0,
                      "tail_rows": len(self.log) if "quotes" in statement else 0},
        }

    def candles(self, symbol: str, interval: str, start: str | None, end: str | None) -> list[dict]:
        if interval not in ("day", "week", "month", "year"):
            raise ApiError(400, "bad_request", f"interval must be day, week, month or year, not {interval!r}")
        sql = "SELECT trade_date, open, high, low, close, volume FROM quotes WHERE symbol = ?"
        params: list = [symbol]
        if start:
            sql += " AND trade_date >= ?"
            params.append(start)
        if end:
            sql += " AND trade_date <= ?"
            params.append(end)
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY trade_date, kafka_offset", params).fetchall()
        by_period: dict[str, dict] = {}
        for trade_date, open_, high, low, close, volume in rows:
            day = date.fromisoformat(trade_date)
            period = {
                "day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1),
                "year": day.replace(month=1, day=1),
            }[interval].isoformat()
            candle = by_period.get(period)
            if candle is None:
                by_period[period] = {"period": period, "open": open_, "high": high, "low": low, "close": close,
                                     "volume": volume, "days": 1, "_last": trade_date}
            elif trade_date == candle["_last"]:  # a repeated day replaces the earlier one
                candle.update(close=close, high=max(candle["high"], high), low=min(candle["low"], low))
            else:
                candle.update(high=max(candle["high"], high), low=min(candle["low"], low), close=close,
                              volume=candle["volume"] + volume, days=candle["days"] + 1, _last=trade_date)
        return [{k: v for k, v in candle.items() if k != "_last"} for candle in by_period.values()]


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-stockstream-query-api/1"
    store: Store
    assets: Path
    down: set[str]
    heartbeat: float

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        if os.environ.get("FAKE_API_LOG"):
            super().log_message(format, *args)

    # Plumbing

    def send_json(self, body, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, error: ApiError) -> None:
        self.send_json({"error": {"kind": error.kind, "message": error.message, "retryable": error.retryable}}, error.status)

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except json.JSONDecodeError as error:
            raise ApiError(400, "bad_request", f"body must be JSON: {error}") from error

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        params = {name: values[-1] for name, values in parse_qs(url.query).items()}
        try:
            for pattern, route_method, handler in ROUTES:
                match = re.fullmatch(pattern, url.path)
                if match and route_method == method:
                    handler(self, params, *[unquote(group) for group in match.groups()])
                    return
            raise ApiError(404, "not_found", f"no route for {method} {url.path}")
        except ApiError as error:
            self.send_error_json(error)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # Routes

    def index(self, _params):
        self.asset(_params, "index.html")

    def asset(self, _params, name: str):
        path = (self.assets / name).resolve()
        if self.assets not in path.parents or not path.is_file():
            raise ApiError(404, "not_found", f"no asset {name}")
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(data)

    def symbols(self, _params):
        with self.store.lock:
            rows = self.store.db.execute(
                "SELECT symbol, min(trade_date), max(trade_date), count(*) FROM quotes GROUP BY symbol ORDER BY symbol").fetchall()
        self.send_json({"query_id": str(uuid.uuid4()), "symbols": [
            {"symbol": s, "first_date": first, "last_date": last, "rows": n} for s, first, last, n in rows
        ], "stats": {"engine": "fake-sqlite", "rows": len(rows)}})

    def candles(self, params, symbol: str):
        interval = params.get("interval", "day")
        candles = self.store.candles(symbol, interval, params.get("from"), params.get("to"))
        self.send_json({"query_id": str(uuid.uuid4()), "symbol": symbol, "interval": interval, "candles": candles,
                        "stats": {"engine": "fake-sqlite", "rows": len(candles)}})

    def quotes(self, params, symbol: str):
        sql = "SELECT trade_date, open, high, low, close, adj_close, volume, close_usd FROM quotes WHERE symbol = ?"
        args: list = [symbol]
        for name, op in (("from", ">="), ("to", "<=")):
            if params.get(name):
                sql += f" AND trade_date {op} ?"
                args.append(params[name])
        sql += " ORDER BY trade_date LIMIT ?"
        args.append(int(params.get("limit", 1000)))
        with self.store.lock:
            rows = self.store.db.execute(sql, args).fetchall()
        names = ["trade_date", "open", "high", "low", "close", "adj_close", "volume", "close_usd"]
        self.send_json({"query_id": str(uuid.uuid4()), "symbol": symbol, "quotes": [dict(zip(names, row, strict=True)) for row in rows]})

    def run_query(self, _params):
        body = self.read_json()
        if not isinstance(body, dict) or not isinstance(body.get("sql"), str) or not body["sql"].strip():
            raise ApiError(400, "bad_request", 'body must be JSON {"sql": "…"}')
        result = self.store.query(body["sql"], int(body.get("max_rows", MAX_ROWS)))
        if "-- fake:slow" in body["sql"]:
            query_id = result["query_id"]
            self.store.queries[query_id] = {"result": result, "ready_at": time.monotonic() + 1.5}
            self.send_json({"query_id": query_id, "state": "RUNNING", "status_url": f"/v1/queries/{query_id}",
                            "results_url": f"/v1/queries/{query_id}/results"}, 202)
            return
        if "text/csv" in (self.headers.get("Accept") or ""):
            self.send_csv(result)
        else:
            self.send_json(result)

    def send_csv(self, result: dict) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([column["name"] for column in result["columns"]])
        writer.writerows(result["rows"])
        data = text.getvalue().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def query_status(self, _params, query_id: str):
        entry = self.store.queries.get(query_id)
        if entry is None:
            raise ApiError(404, "not_found", f"no query {query_id}")
        state = "SUCCEEDED" if time.monotonic() >= entry["ready_at"] else "RUNNING"
        self.send_json({"query_id": query_id, "state": state})

    def query_results(self, _params, query_id: str):
        entry = self.store.queries.get(query_id)
        if entry is None or time.monotonic() < entry["ready_at"]:
            raise ApiError(409 if entry else 404, "not_ready" if entry else "not_found", f"no results for {query_id} yet")
        if "text/csv" in (self.headers.get("Accept") or ""):
            self.send_csv(entry["result"])
        else:
            self.send_json(entry["result"])

    def table_list(self) -> list[dict]:
        with self.store.lock:
            partitions = self.store.db.execute("SELECT count(*) FROM (SELECT DISTINCT symbol, year FROM quotes)").fetchone()[0]
        types = {"symbol": "string", "trade_date": "date", "volume": "bigint", "kafka_partition": "int",
                 "kafka_offset": "bigint", "year": "int"}
        return [{
            "name": "quotes", "location": "quotes/",
            "columns": [{"name": c, "type": types.get(c, "double")} for c in COLUMNS if c not in ("symbol", "year")],
            "partition_keys": [{"name": "symbol", "type": "string"}, {"name": "year", "type": "int"}],
            "partitions": partitions, "files": partitions,
        }]

    def tables(self, _params):
        self.send_json({"database": "stockstream", "catalog_loaded_at": now_rfc3339(), "tables": self.table_list()})

    def status(self, _params):
        written = self.store.next_offset
        services = [
            ("stockstream-ingest", 9100, {"rows_in_per_second": round(len(self.store.log) / max(1.0, time.monotonic() - STARTED), 2)}),
            ("stockstream-s3-sink", 9101, {"consumer_lag": 0, "last_flush_at": self.store.last_commit_at, "records_written": written}),
            ("stockstream-glue-crawler", 9102, {}),
            ("stockstream-query-api", 9103, {}),
        ]
        body = []
        for name, port, figures in services:
            if name in self.down:
                body.append({"name": name, "url": f"http://127.0.0.1:{port}", "ready": None, "checks": {},
                             "figures": {"error": f"unreachable: connection refused (127.0.0.1:{port})"}})
                continue
            body.append({"name": name, "url": f"http://127.0.0.1:{port}", "ready": True,
                         "checks": {"broker": {"ok": True, "detail": "metadata in 3 ms"}} if "glue" not in name else
                         {"lake": {"ok": True, "detail": "listable"}}, "figures": figures})
        self.send_json({"generated_at": now_rfc3339(),
                        "lake": {"last_commit_at": self.store.last_commit_at, "tables": self.table_list()},
                        "services": body})

    def stream(self, params):
        wanted = {s for s in params.get("symbols", "").split(",") if s}
        cursor = self.headers.get("Last-Event-ID")
        after = None
        if cursor:
            try:
                after = int(cursor.split(":")[1])
            except (IndexError, ValueError):
                raise ApiError(400, "bad_request", f"Last-Event-ID {cursor!r} is not partition:offset") from None
        client, snapshot, missed = self.store.subscribe(after)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            shown = [q for q in snapshot if not wanted or q["symbol"] in wanted]
            self.event("snapshot", {"quotes": shown})
            for quote in missed:
                if not wanted or quote["symbol"] in wanted:
                    self.event("quote", quote, f"{quote['partition']}:{quote['offset']}")
            while True:
                if client.overflowed:
                    self.event("dropped", {"reason": f"client buffer of {STREAM_BUFFER} quotes is full"})
                    return
                try:
                    kind, body = client.get(timeout=self.heartbeat)
                except queue.Empty:
                    self.wfile.write(b": heartbeat\n\n")
                    self.wfile.flush()
                    continue
                if kind == "dropped":
                    self.event("dropped", body)
                    return
                if kind == "disconnect":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if not wanted or body["symbol"] in wanted:
                    self.event("quote", body, f"{body['partition']}:{body['offset']}")
        finally:
            with self.store.lock:
                self.store.clients.discard(client)

    def event(self, kind: str, body, event_id: str | None = None) -> None:
        lines = [f"event: {kind}"]
        if event_id:
            lines.append(f"id: {event_id}")
        lines.append(f"data: {json.dumps(body)}")
        self.wfile.write(("\n".join(lines) + "\n\n").encode())
        self.wfile.flush()

    def fake_produce(self, _params):
        self.send_json({"produced": self.store.produce(self.read_json())})

    def fake_drop(self, _params):
        body = self.read_json() or {}
        self.send_json({"dropped": self.store.drop_all(str(body.get("reason", "dropped by the fake server")))})

    def fake_disconnect(self, _params):
        self.send_json({"disconnected": self.store.drop_all(None)})

    def openapi(self, _params):
        self.send_json({"openapi": "3.1.0", "info": {"title": "fake stockstream-query-api", "version": "0"}, "paths": {}})


ROUTES = [
    (r"/", "GET", Handler.index),
    (r"/assets/(.+)", "GET", Handler.asset),
    (r"/openapi\.json", "GET", Handler.openapi),
    (r"/v1/symbols", "GET", Handler.symbols),
    (r"/v1/symbols/([^/]+)/candles", "GET", Handler.candles),
    (r"/v1/symbols/([^/]+)/quotes", "GET", Handler.quotes),
    (r"/v1/query", "POST", Handler.run_query),
    (r"/v1/queries/([^/]+)", "GET", Handler.query_status),
    (r"/v1/queries/([^/]+)/results", "GET", Handler.query_results),
    (r"/v1/tables", "GET", Handler.tables),
    (r"/v1/status", "GET", Handler.status),
    (r"/v1/stream/quotes", "GET", Handler.stream),
    (r"/fake/produce", "POST", Handler.fake_produce),
    (r"/fake/drop", "POST", Handler.fake_drop),
    (r"/fake/disconnect", "POST", Handler.fake_disconnect),
]
STARTED = time.monotonic()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--data", type=Path, action="append",
                        help="dataset CSV (repeatable; default $STOCKSTREAM_TEST_DATA)")
    parser.add_argument("--assets", type=Path, default=ROOT / "crates" / "query-api" / "assets")
    parser.add_argument("--service-down", action="append", default=[], help="report this service as unreachable")
    parser.add_argument("--heartbeat", type=float, default=15.0, help="seconds between SSE heartbeats")
    args = parser.parse_args()
    data = args.data or ([Path(os.environ["STOCKSTREAM_TEST_DATA"])] if os.environ.get("STOCKSTREAM_TEST_DATA") else [])
    if not data:
        parser.error("no dataset: pass --data CSV or set STOCKSTREAM_TEST_DATA")
    for path in data:
        if not path.is_file():
            parser.error(f"dataset {path} does not exist")
    Handler.store = Store(data)
    Handler.assets = args.assets.resolve()
    Handler.down = set(args.service_down)
    Handler.heartbeat = args.heartbeat
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
