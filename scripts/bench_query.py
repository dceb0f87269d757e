#!/usr/bin/env python3
"""make bench-query: stockstream's query API against DuckDB on the same Parquet files.

`bench_query.py` (what `make bench-query` runs):
1. Builds, or finds cached, two lakes of 10 M generated quotes in the sink's layout and encoding
   (1,000 symbols x 10,000 trading days = 39,000 `symbol=…/year=…` partitions): one file per
   partition, and the many smaller files 1 s flushes of a replay leave (the Rust test
   `bench_query::build_lakes`; cached in $STOCKSTREAM_CACHE/bench-query/).
2. Per lake, the query list of tests/data/bench-queries.json:
   - cold: each query first in a fresh process — a freshly started `stockstream-query-api`
     (timed from the moment /health/readyz answers 200; its start-up time is printed apart) and a
     fresh Python process with a new DuckDB connection (timed from `connect`);
   - warm: median of BENCH_QUERY_RUNS (5) after one unmeasured run — through HTTP against one
     long-lived query API whose footers have all been read, and in one DuckDB connection
     (`parquet_metadata_cache` on, so both sides keep footers);
   - in process: the same engine without HTTP (the Rust test `bench_query::in_process`);
   - the answers of both engines are compared.
   Prints the table, `ratio: X` (DuckDB warm geometric mean / ours, higher is better), the
   full-scan ratios, the selective queries' p50 through HTTP and the cold ratio, each against its
   goal.
3. Load: 32 concurrent clients x 50 mixed queries against one query API: p50/p99 latency, server
   errors (must be 0), 503s from the concurrency limit (counted, retried after Retry-After as a
   client would), and the process's peak RSS against `query.memory_limit` + the Parquet metadata
   cache + a fixed overhead.
Nothing asserts a time; the process exits non-zero only when answers disagree, a query fails or
the load phase sees a server error.

`bench_query.py check --lake DIR --api HOST:PORT`: runs every query through the API and DuckDB and
compares the answers (the smoke test in `make test`).

Environment: STOCKSTREAM_BIN (release binaries), STOCKSTREAM_CACHE, BENCH_QUERY_RUNS,
BENCH_QUERY_CLIENTS, BENCH_QUERY_PER_CLIENT, BENCH_QUERY_LAKES (comma-separated lake names to
measure, e.g. `partition-files`; default both), BENCH_QUERY_METADATA_CACHE_MIB (our footer cache,
default 2048: room for every footer, like DuckDB's unbounded cache); cargo (for the Rust halves,
built by the Makefile).
"""
import argparse
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
QUERIES_FILE = os.path.join(ROOT, "tests", "data", "bench-queries.json")
RUNS = int(os.environ.get("BENCH_QUERY_RUNS", "5"))
CLIENTS = int(os.environ.get("BENCH_QUERY_CLIENTS", "32"))
PER_CLIENT = int(os.environ.get("BENCH_QUERY_PER_CLIENT", "50"))
LAKES = [name for name in os.environ.get("BENCH_QUERY_LAKES", "").split(",") if name]
# The load phase's server: query.memory_limit and the Parquet metadata cache it may fill, plus
# a fixed allowance for everything else (runtime, the file index and its statistics, HTTP).
MEMORY_LIMIT_MIB = 512
# DuckDB's Parquet metadata cache has no bound; ours (`query.metadata_cache_bytes`, 256 MiB by
# default) is given room for the lakes' footers, as an operator would size it from the
# `stockstream_query_metadata_cache_entries`, `_bytes` and `_index_files` gauges: 39,000 footers take about
# 540 MB in memory, 94,000 about 1.3 GB. It counts in the load phase's RSS bound.
METADATA_CACHE_MIB = int(os.environ.get("BENCH_QUERY_METADATA_CACHE_MIB", "2048"))
FIXED_OVERHEAD_MIB = 256
GOAL_WARM = 3.0
GOAL_FULL_SCAN = 1.0
GOAL_SELECTIVE_MS = 50.0
GOAL_COLD = 1.0


def say(message):
    print(f"bench-query: {message}", file=sys.stderr, flush=True)


def load_queries():
    with open(QUERIES_FILE) as file:
        return json.load(file)


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def geomean(values):
    values = [value for value in values if value > 0]
    return math.exp(sum(math.log(value) for value in values) / len(values)) if values else float("nan")


# ---------------------------------------------------------------------------------------------
# Our side: the release query API over HTTP.

class Api:
    """A `stockstream-query-api` process over `lake`, killed on stop."""

    def __init__(self, lake, work, memory_limit_mib=None):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(work, f"query-api-{self.port}.log")
        env = dict(os.environ)
        env.update({
            "STOCKSTREAM__LAKE__ROOT": lake,
            "STOCKSTREAM__HTTP__LISTEN": self.address,
            "STOCKSTREAM__QUERY__FOLLOW_COMMITS": "false",
            # The bench times queries, not the asynchronous contract: a full scan of 10 M rows on
            # two busy cores may outlast the default 10 s wait, which would answer 202.
            "STOCKSTREAM__QUERY__SYNC_WAIT": "600s",
            "STOCKSTREAM__QUERY__TIMEOUT": "600s",
            "STOCKSTREAM__QUERY__METADATA_CACHE_BYTES": str(METADATA_CACHE_MIB << 20),
            "STOCKSTREAM__TELEMETRY__LOG_FORMAT": "json",
            "STOCKSTREAM__TELEMETRY__LOG_LEVEL": "info",
        })
        env.pop("RUST_LOG", None)
        if memory_limit_mib:
            env["STOCKSTREAM__QUERY__MEMORY_LIMIT"] = str(memory_limit_mib << 20)
        binary = os.path.join(os.environ["STOCKSTREAM_BIN"], "stockstream-query-api")
        self.log = open(self.log_path, "w")
        self.started = time.monotonic()
        self.process = subprocess.Popen([binary], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.connection = None
        self.ready_seconds = self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"bench-query: the query API exited with {self.process.returncode}; see {self.log_path}")
            try:
                connection = http.client.HTTPConnection(self.address, timeout=5)
                connection.request("GET", "/health/readyz")
                if connection.getresponse().status == 200:
                    connection.close()
                    return time.monotonic() - self.started
                connection.close()
            except OSError:
                pass
            time.sleep(0.02)
        sys.exit("bench-query: the query API did not become ready in 10 minutes")

    def wait_for_footers(self, timeout=900):
        """Waits for the engine's log line saying every visible file's footer was read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path) as log:
                for line in log:
                    if "footers read" in line and '"missing":0' in line.replace(" ", ""):
                        return time.monotonic() - self.started
            time.sleep(0.2)
        sys.exit(f"bench-query: footers not all read in {timeout} s; see {self.log_path}")

    def query(self, sql, connection=None):
        """POSTs `sql`; returns (status, headers, body bytes, milliseconds)."""
        own = connection is None
        if own:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.address, timeout=600)
            connection = self.connection
        body = json.dumps({"sql": sql, "max_rows": 100000})
        started = time.perf_counter()
        try:
            connection.request("POST", "/v1/query", body, {"content-type": "application/json"})
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            if not own:
                raise
            # The server closes a keep-alive connection idle for longer than its header read
            # timeout (10 s), as while DuckDB runs: reconnect once, as HTTP clients do.
            connection = self.connection = http.client.HTTPConnection(self.address, timeout=600)
            started = time.perf_counter()
            connection.request("POST", "/v1/query", body, {"content-type": "application/json"})
            response = connection.getresponse()
            data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        return response.status, dict(response.getheaders()), data, elapsed

    def rows(self, sql):
        status, _, data, elapsed = self.query(sql)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {data[:500]!r}")
        answer = json.loads(data)
        if answer["stats"].get("truncated"):
            raise RuntimeError(f"answer truncated: {sql}")
        return answer["rows"], elapsed

    def peak_rss_mib(self):
        """Peak RSS since the process started, or since the last `reset_peak_rss`."""
        return self._status_mib("VmHWM:")

    def rss_mib(self):
        return self._status_mib("VmRSS:")

    def reset_peak_rss(self):
        """Starts a new peak (Linux: `5` to /proc/PID/clear_refs), so a phase's peak is its own."""
        with open(f"/proc/{self.process.pid}/clear_refs", "w") as clear:
            clear.write("5")

    def _status_mib(self, field):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        if self.connection is not None:
            self.connection.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------------
# The peer: DuckDB on the same files, hive partitioning.

def duck_connect(lake):
    import duckdb
    connection = duckdb.connect()
    connection.execute("SET parquet_metadata_cache = true")
    pattern = os.path.join(lake, "quotes", "*", "*", "*.parquet").replace("'", "''")
    connection.execute(
        "CREATE VIEW quotes AS SELECT * FROM read_parquet('" + pattern + "', hive_partitioning = true, "
        "hive_types = {'symbol': VARCHAR, 'year': INTEGER})")
    return connection


def duck_sql(query):
    return query.get("duckdb") or query["sql"]


def duck_cold(lake, query):
    """Milliseconds of one query in a fresh Python process with a new DuckDB connection."""
    output = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "duckdb-once", "--lake", lake, "--query", query["name"]],
        check=True, capture_output=True, text=True)
    return float(output.stdout.strip())


def duckdb_once(lake, name):
    query = next(query for query in load_queries() if query["name"] == name)
    started = time.perf_counter()
    connection = duck_connect(lake)
    connection.execute(duck_sql(query)).fetchall()
    print((time.perf_counter() - started) * 1000)


# ---------------------------------------------------------------------------------------------
# Answers.

def normalized(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def same_value(ours, theirs):
    theirs = normalized(theirs)
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and not isinstance(ours, bool):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)
    return ours == theirs


def compare(query, ours, theirs):
    """None when both answers agree, else what differs."""
    if not ours:
        return "no rows"
    if len(ours) != len(theirs):
        return f"{len(ours)} rows against DuckDB's {len(theirs)}"
    for index, (left, right) in enumerate(zip(ours, theirs)):
        if len(left) != len(right) or not all(same_value(a, b) for a, b in zip(left, right)):
            return f"row {index}: {left} against DuckDB's {list(map(normalized, right))}"
    return None


def check_answers(api, connection, queries):
    """Runs each query on both engines; returns the number that agree, printing disagreements."""
    agree = 0
    for query in queries:
        ours, _ = api.rows(query["sql"])
        theirs = connection.execute(duck_sql(query)).fetchall()
        problem = compare(query, ours, theirs)
        if problem:
            print(f"{query['name']}: answers differ: {problem}")
        else:
            agree += 1
    return agree


class Remote:
    """An already running API (the smoke test's in-process server)."""

    def __init__(self, address):
        self.address = address
        self.connection = None

    query = Api.query
    rows = Api.rows


def check(lake, address):
    queries = load_queries()
    agree = check_answers(Remote(address), duck_connect(lake), queries)
    print(f"{agree} of {len(queries)} queries agree")
    return 0 if agree == len(queries) else 1


# ---------------------------------------------------------------------------------------------
# Timing.

_TEST_BINARY = []


def rust_half(*args):
    """The command running one ignored test of `tests/tests/bench_query.rs` (release): the test
    executable built when the bench started, found once through cargo, so that sources edited
    while the bench runs cannot trigger a rebuild in the middle of a measurement."""
    if not _TEST_BINARY:
        output = subprocess.run(
            ["cargo", "test", "--release", "-p", "stockstream-e2e", "--test", "bench_query", "--no-run",
             "--message-format=json"], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
        for line in output.stdout.splitlines():
            message = json.loads(line)
            if message.get("reason") == "compiler-artifact" and message.get("executable") \
                    and message["target"]["name"] == "bench_query":
                _TEST_BINARY.append(message["executable"])
        if not _TEST_BINARY:
            sys.exit("bench-query: cargo built no bench_query test executable")
    return [_TEST_BINARY[0], "--ignored", "--exact", *args, "--nocapture"]


def in_process(lake, work):
    out = os.path.join(work, "in-process.json")
    env = dict(os.environ, BENCH_QUERY_LAKE=lake, BENCH_QUERY_OUT=out, BENCH_QUERY_RUNS=str(RUNS),
               STOCKSTREAM__QUERY__METADATA_CACHE_BYTES=str(METADATA_CACHE_MIB << 20))
    subprocess.run(rust_half("in_process"), env=env, check=True, cwd=ROOT, stdout=sys.stderr)
    with open(out) as file:
        return json.load(file)


def warm_times(run, queries):
    times = {}
    for query in queries:
        run(query)
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            run(query)
            samples.append((time.perf_counter() - started) * 1000)
        times[query["name"]] = statistics.median(samples)
        say(f"  warm {query['name']}: {times[query['name']]:.1f} ms")
    return times


def measure_lake(built, queries, work):
    lake = built["root"]
    result = {"lake": built, "ours_cold": {}, "duck_cold": {}, "startup": []}
    say(f"lake {built['lake']['name']}: cold runs (a fresh process per query)")
    for query in queries:
        api = Api(lake, work)
        try:
            result["startup"].append(api.ready_seconds)
            _, _, _, elapsed = api.query(query["sql"])
            result["ours_cold"][query["name"]] = elapsed
        finally:
            api.stop()
        result["duck_cold"][query["name"]] = duck_cold(lake, query)
        say(f"  cold {query['name']}: ours {result['ours_cold'][query['name']]:.1f} ms, "
            f"DuckDB {result['duck_cold'][query['name']]:.1f} ms")

    say(f"lake {built['lake']['name']}: warm runs through HTTP")
    api = Api(lake, work, MEMORY_LIMIT_MIB)
    try:
        result["footers_seconds"] = api.wait_for_footers()
        result["ours_warm"] = warm_times(lambda query: api.rows(query["sql"]), queries)
        say(f"lake {built['lake']['name']}: warm runs in DuckDB")
        connection = duck_connect(lake)
        result["duck_warm"] = warm_times(lambda query: connection.execute(duck_sql(query)).fetchall(), queries)
        result["agree"] = check_answers(api, connection, queries)
        connection.close()
        say(f"lake {built['lake']['name']}: {CLIENTS} concurrent clients x {PER_CLIENT} queries")
        # The load phase's peak is its own: the start-up and the warm runs before it are not
        # counted, but what they left resident is (printed apart).
        result["rss_before_load"] = api.rss_mib()
        result["peak_before_load"] = api.peak_rss_mib()
        api.reset_peak_rss()
        result["load"] = load_phase(api, queries)
    finally:
        api.stop()
    say(f"lake {built['lake']['name']}: in process (no HTTP)")
    result["in_process"] = in_process(lake, work)
    return result


# ---------------------------------------------------------------------------------------------
# Load.

def mixed(queries):
    """What the load phase runs: mostly one-symbol questions (a market-data API's traffic), with
    the whole-lake queries mixed in."""
    mix = []
    for query in queries:
        mix.extend([query] * (4 if query["kind"] == "selective" else 1))
    return mix


def load_phase(api, queries):
    mix = mixed(queries)
    latencies, lock = [], threading.Lock()
    counts = {"ok": 0, "server_errors": 0, "client_errors": 0, "overloaded": 0, "failed": 0}
    errors = []

    def client(number):
        connection = http.client.HTTPConnection(api.address, timeout=600)
        for index in range(PER_CLIENT):
            query = mix[(number * 7 + index) % len(mix)]
            started = time.perf_counter()
            while True:
                try:
                    status, headers, data, _ = api.query(query["sql"], connection)
                except (OSError, http.client.HTTPException) as error:
                    with lock:
                        counts["failed"] += 1
                        errors.append(f"{query['name']}: {error}")
                    connection = http.client.HTTPConnection(api.address, timeout=600)
                    break
                if status == 503 and "retry-after" in {name.lower() for name in headers}:
                    with lock:
                        counts["overloaded"] += 1
                    retry = next(value for name, value in headers.items() if name.lower() == "retry-after")
                    time.sleep(float(retry))
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if status == 200:
                        counts["ok"] += 1
                        latencies.append(elapsed)
                    elif status >= 500:
                        counts["server_errors"] += 1
                        errors.append(f"{query['name']}: HTTP {status} {data[:200]!r}")
                    else:
                        counts["client_errors"] += 1
                        errors.append(f"{query['name']}: HTTP {status} {data[:200]!r}")
                break
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(number,)) for number in range(CLIENTS)]
    for thread in threads:
        thread.start()
    total = CLIENTS * PER_CLIENT
    next_report = started + 30
    while any(thread.is_alive() for thread in threads):
        time.sleep(1)
        if time.monotonic() >= next_report:
            next_report += 30
            with lock:
                done = counts["ok"] + counts["server_errors"] + counts["client_errors"] + counts["failed"]
            say(f"  load: {done:,} of {total:,} queries answered after {time.monotonic() - started:.0f} s")
    for thread in threads:
        thread.join()
    latencies.sort()

    def percentile(share):
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] if latencies else float("nan")

    return dict(counts, p50=percentile(0.5), p99=percentile(0.99), seconds=time.monotonic() - started,
                peak_rss_mib=api.peak_rss_mib(), errors=errors[:5])


# ---------------------------------------------------------------------------------------------
# Report.

def verdict(value, goal, higher_is_better=True):
    met = value >= goal if higher_is_better else value <= goal
    return "met" if met else "MISSED"


def report(result, queries):
    built = result["lake"]
    name = built["lake"]["name"]
    inproc = result["in_process"]
    print()
    print(f"lake {name}: {built['rows']:,} rows in {built['files']:,} files ({built['bytes'] / 2**20:,.0f} MiB), "
          f"{built['lake']['symbols']:,} symbols x {built['lake']['days']:,} trading days")
    print(f"  query API start-up (process start to ready, median): {statistics.median(result['startup']):.2f} s; "
          f"every footer read after {result['footers_seconds']:.1f} s")
    header = (f"  {'query':<14}{'kind':<11}{'ours cold':>11}{'DuckDB cold':>13}{'ours warm':>11}"
              f"{'in process':>12}{'DuckDB warm':>13}{'ratio':>8}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    for query in queries:
        key = query["name"]
        ratio = result["duck_warm"][key] / result["ours_warm"][key]
        print(f"  {key:<14}{query['kind']:<11}{result['ours_cold'][key]:>8.1f} ms{result['duck_cold'][key]:>10.1f} ms"
              f"{result['ours_warm'][key]:>8.1f} ms{inproc['warm_ms'][key]:>9.1f} ms"
              f"{result['duck_warm'][key]:>10.1f} ms{ratio:>8.2f}")
    means = {column: geomean([result[column][query["name"]] for query in queries])
             for column in ("ours_cold", "duck_cold", "ours_warm", "duck_warm")}
    means["in_process"] = geomean([inproc["warm_ms"][query["name"]] for query in queries])
    print(f"  {'geomean':<25}{means['ours_cold']:>8.1f} ms{means['duck_cold']:>10.1f} ms{means['ours_warm']:>8.1f} ms"
          f"{means['in_process']:>9.1f} ms{means['duck_warm']:>10.1f} ms{means['duck_warm'] / means['ours_warm']:>8.2f}")
    warm_ratio = means["duck_warm"] / means["ours_warm"]
    cold_ratio = means["duck_cold"] / means["ours_cold"]
    print(f"ratio: {warm_ratio:.2f}  [{name}: DuckDB warm geomean / ours through HTTP; goal >= {GOAL_WARM}: "
          f"{verdict(warm_ratio, GOAL_WARM)}]")
    full = [(query["name"], result["duck_warm"][query["name"]] / result["ours_warm"][query["name"]])
            for query in queries if query["kind"] == "full-scan"]
    worst = min(ratio for _, ratio in full)
    print(f"  full-scan ratios: {', '.join(f'{key} {ratio:.2f}' for key, ratio in full)} "
          f"[goal >= {GOAL_FULL_SCAN} each: {verdict(worst, GOAL_FULL_SCAN)}]")
    selective = [(query["name"], result["ours_warm"][query["name"]]) for query in queries
                 if query["kind"] == "selective"]
    slowest = max(ms for _, ms in selective)
    print(f"  selective p50 through HTTP: {', '.join(f'{key} {ms:.1f} ms' for key, ms in selective)} "
          f"[goal <= {GOAL_SELECTIVE_MS:.0f} ms: {verdict(slowest, GOAL_SELECTIVE_MS, False)}]")
    print(f"  cold ratio: {cold_ratio:.2f} [DuckDB cold geomean / ours; goal >= {GOAL_COLD}: "
          f"{verdict(cold_ratio, GOAL_COLD)}]")
    http_cost = means["ours_warm"] - means["in_process"]
    print(f"  HTTP cost: warm geomean {means['ours_warm']:.1f} ms through HTTP vs {means['in_process']:.1f} ms in "
          f"process ({http_cost:+.1f} ms); in-process cold geomean "
          f"{geomean(list(inproc['cold_ms'].values())):.1f} ms")
    print(f"  answers: {result['agree']} of {len(queries)} queries agree with DuckDB")
    load = result["load"]
    bound = MEMORY_LIMIT_MIB + METADATA_CACHE_MIB + FIXED_OVERHEAD_MIB
    print(f"  load: {CLIENTS} clients x {PER_CLIENT} mixed queries in {load['seconds']:.1f} s: "
          f"p50 {load['p50']:.1f} ms, p99 {load['p99']:.1f} ms; {load['ok']} ok, {load['server_errors']} server errors, "
          f"{load['client_errors']} client errors, {load['failed']} failed connections, "
          f"{load['overloaded']} x 503 overloaded (retried)")
    print(f"  RSS before the load {result['rss_before_load']:.0f} MiB (peak until then "
          f"{result['peak_before_load']:.0f} MiB, start-up and warm runs)")
    print(f"  peak RSS {load['peak_rss_mib']:.0f} MiB [memory_limit {MEMORY_LIMIT_MIB} + metadata cache "
          f"{METADATA_CACHE_MIB} + fixed {FIXED_OVERHEAD_MIB} = {bound} MiB: "
          f"{verdict(load['peak_rss_mib'], bound, False)}]")
    for error in load["errors"]:
        print(f"    {error}")
    return (result["agree"] == len(queries) and load["server_errors"] == 0 and load["failed"] == 0
            and load["client_errors"] == 0)


def build_lakes():
    say("building or finding the lakes (cached in $STOCKSTREAM_CACHE/bench-query)")
    output = subprocess.run(rust_half("build_lakes"), cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    for line in output.stdout.splitlines():
        if line.startswith("BENCH_LAKES "):
            return json.loads(line[len("BENCH_LAKES "):])
    sys.exit("bench-query: build_lakes printed no BENCH_LAKES line")


def bench():
    import duckdb
    queries = load_queries()
    lakes = build_lakes()
    if LAKES:
        unknown = set(LAKES) - {built["lake"]["name"] for built in lakes}
        if unknown:
            sys.exit(f"bench-query: BENCH_QUERY_LAKES names unknown lakes: {sorted(unknown)}")
        lakes = [built for built in lakes if built["lake"]["name"] in LAKES]
    say(f"DuckDB {duckdb.__version__}; {os.cpu_count()} cores; {RUNS} warm runs per query")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-query-") as work:
        results = [measure_lake(built, queries, work) for built in lakes]
    print(f"\nbench-query: stockstream-query-api (HTTP, release) vs DuckDB {duckdb.__version__} on the same files, "
          f"{os.cpu_count()} cores; warm = median of {RUNS}")
    for result in results:
        ok = report(result, queries) and ok
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    checker = commands.add_parser("check", help="compare every query's answer through the API and DuckDB")
    checker.add_argument("--lake", required=True)
    checker.add_argument("--api", required=True)
    once = commands.add_parser("duckdb-once", help="(internal) one cold DuckDB query, prints milliseconds")
    once.add_argument("--lake", required=True)
    once.add_argument("--query", required=True)
    args = parser.parse_args()
    if args.command == "check":
        return check(args.lake, args.api)
    if args.command == "duckdb-once":
        duckdb_once(args.lake, args.query)
        return 0
    return bench()


if __name__ == "__main__":
    sys.exit(main())
