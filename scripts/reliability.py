#!/usr/bin/env python3
"""`make reliability`: bounded fault scenarios against the real local stack, and one table.

Each scenario starts its own stack with `scripts/stack.sh` (tansu, the sink, the catalog service
and the query API as processes, state in a fresh directory, every port on 127.0.0.1), replays a
generated dataset with `stockstream-ingest`, injects its fault, and stops by itself. Afterwards
DuckDB reads every Parquet file of the lake: `lost` counts generated rows (unique by symbol and
trade date) that are not in the lake, `duplicated` rows that are there more than once.

Scenarios: broker SIGKILLed and restarted mid-stream; each service SIGKILLed in a loop and
restarted by `stack.sh start`; the lake's disk full (a tmpfs), then given room; backpressure
(a replay far faster than the sink's flushes, memory and lag sampled); a soak at a fixed rate
(`RELIABILITY_SOAK_MINUTES`, default 20) with the slopes of RSS, open descriptors, threads and
the lake's file count; the same soak looping over three years (`soak-fixed`), so that the lake's
partitions stay fixed and any growth left is the services' own. `RELIABILITY_ONLY=name,name` runs a subset.

Environment: STOCKSTREAM_BIN (the binaries), STOCKSTREAM_TANSU, STOCKSTREAM_CACHE.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from visible import visible_files  # noqa: E402


def need(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"reliability: {name} is not set (run it with `make reliability`)")
    return value


BIN = Path(need("STOCKSTREAM_BIN"))
TANSU = need("STOCKSTREAM_TANSU")


def say(text):
    print(f"reliability: {text}", flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """One local stack in a fresh directory, driven through scripts/stack.sh."""

    def __init__(self, name):
        self.name = name
        self.var = Path(tempfile.mkdtemp(prefix=f"stockstream-reliability-{name}-"))
        self.kafka_port = free_port()
        self.listen = {
            "query-api": f"127.0.0.1:{free_port()}",
            "s3-sink": f"127.0.0.1:{free_port()}",
            "glue-crawler": f"127.0.0.1:{free_port()}",
        }
        self.env = dict(
            os.environ,
            STOCKSTREAM_VAR=str(self.var),
            STOCKSTREAM_BIN=str(BIN),
            KAFKA_PORT=str(self.kafka_port),
            QUERY_LISTEN=self.listen["query-api"],
            SINK_LISTEN=self.listen["s3-sink"],
            CRAWLER_LISTEN=self.listen["glue-crawler"],
            WAIT_SECONDS="120",
        )
        self.env.pop("KAFKA_BOOTSTRAP", None)
        self.bootstrap = f"127.0.0.1:{self.kafka_port}"

    def stack(self, action, check=True):
        done = subprocess.run([str(ROOT / "scripts/stack.sh"), action], env=self.env,
                              capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"stack.sh {action} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def ingest_env(self):
        return dict(self.env, STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS=self.bootstrap,
                    STOCKSTREAM__INGEST__STATE_DIR=str(self.var / "ingest"))

    def replay(self, data, rate=None, loop=False):
        """Starts a replay (resuming) in the background; `loop` starts a new pass over the file
        each time one completes, until stopped."""
        command = [str(BIN / "stockstream-ingest"), "replay", "--file", str(data)]
        if rate:
            command += ["--rate", str(rate)]
        if loop:
            command += ["--loop"]
        log = open(self.var / "log" / "replay.log", "a")
        return subprocess.Popen(command, env=self.ingest_env(), stdout=log, stderr=log)

    def replay_to_end(self, data, attempts=20):
        """Replays until a run succeeds (a replay resumes exactly where the last one stopped)."""
        for _ in range(attempts):
            if self.replay(data).wait() == 0:
                return
            time.sleep(1)
        raise RuntimeError("the replay did not complete")

    def pid(self, service):
        path = self.var / "run" / f"{service}.pid"
        return int(path.read_text().strip()) if path.exists() else None

    def kill(self, service):
        pid = self.pid(service)
        if pid:
            os.kill(pid, signal.SIGKILL)

    def http(self, service, path):
        try:
            with urllib.request.urlopen(f"http://{self.listen[service]}{path}", timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return None, ""

    def ready(self, service):
        return self.http(service, "/health/readyz")[0] == 200

    def metric(self, service, name):
        status, text = self.http(service, "/metrics")
        if status != 200:
            return None
        total = None
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                key = line.split(" ", 1)[0].split("{", 1)[0]
                if key == name:
                    total = (total or 0) + float(line.rsplit(" ", 1)[1])
        return total

    def query(self, sql, timeout=30):
        """The first value of a query through the query API, or None when it fails."""
        request = urllib.request.Request(
            f"http://{self.listen['query-api']}/v1/query",
            data=json.dumps({"sql": sql}).encode(),
            headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return json.load(answer)["rows"][0][0]
        except (OSError, KeyError, IndexError, ValueError):
            return None

    def count(self):
        return self.query("SELECT count(*) FROM quotes")

    def wait_count(self, expected, timeout=240, distinct=True):
        """Waits until the lake's files hold `expected` distinct rows (DuckDB; all rows with
        `distinct=False`) and the query API answers `expected`; returns the seconds it took. (The
        API alone is not enough: with the live tail on, it counts records the sink has not
        written yet.)"""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                total, unique = self.lake_rows()
            except duckdb.Error:
                total, unique = 0, 0
            if (unique if distinct else total) == expected and self.count() == expected:
                return time.monotonic() - started
            time.sleep(1)
        raise RuntimeError(f"{self.name}: the lake did not hold {expected} rows within {timeout}s "
                           f"(lake: {self.lake_rows()}, API: {self.count()}); logs in {self.var / 'log'}")

    def lake_rows(self):
        """Rows and distinct (symbol, trade_date) in the files readers see: a compacted
        partition's generation, not the files it replaced (kept through the grace period)."""
        files = [path for path, _ in visible_files(str(self.var / "lake"))]
        if not files:
            return 0, 0
        total, distinct = duckdb.sql(
            "SELECT count(*), count(DISTINCT (symbol, trade_date)) "
            f"FROM read_parquet({files!r}, hive_partitioning = true)").fetchone()
        return total, distinct

    def process(self, service):
        """RSS (MiB), open descriptors and threads of a service."""
        pid = self.pid(service)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024
            threads = int(next(line for line in status.splitlines() if line.startswith("Threads")).split()[1])
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            return rss, fds, threads
        except (OSError, StopIteration, TypeError):
            return None

    def lake_files(self):
        """Data files on disk, including replaced ones waiting out compaction's grace period."""
        return sum(1 for _ in (self.var / "lake" / "quotes").rglob("*.parquet"))

    def visible_files(self):
        """Data files readers see (tests/interop/visible.py, as the catalog decides it)."""
        return len(visible_files(str(self.var / "lake")))

    def partitions(self):
        """Partitions in the catalog."""
        catalog_path = self.var / "lake" / "_stockstream" / "catalog" / "catalog.json"
        try:
            catalog = json.loads(catalog_path.read_text())
        except (OSError, ValueError):
            return 0
        return sum(len(table.get("partitions", {})) for database in catalog.get("databases", {}).values()
                   for table in database.get("tables", {}).values())

    def close(self):
        self.stack("stop", check=False)
        if sys.exc_info()[0] is None:
            shutil.rmtree(self.var, ignore_errors=True)
        else:
            say(f"{self.name}: state kept in {self.var}")


def generate(directory, symbols, days):
    path = Path(directory) / "quotes.csv"
    names = ",".join(f"R{index:03d}" for index in range(symbols))
    subprocess.run([str(BIN / "stockstream-ingest"), "generate", "--symbols", names,
                    "--days", str(days), "--output", str(path)], check=True, capture_output=True)
    rows = sum(1 for _ in open(path)) - 1
    return path, rows


class Watch(threading.Thread):
    """Samples a function every `interval` seconds until stopped."""

    def __init__(self, sample, interval=0.25):
        super().__init__(daemon=True)
        self.sample, self.interval, self.samples = sample, interval, []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            self.samples.append((time.monotonic(), self.sample()))
            self.stopped.wait(self.interval)

    def stop(self):
        self.stopped.set()
        self.join()
        return self.samples


def not_ready_seconds(samples, interval=0.25):
    return sum(interval for _, ready in samples if not ready)


def result(stack, scenario, produced, recovery, observed):
    total, distinct = stack.lake_rows()
    return {
        "scenario": scenario,
        "produced": produced,
        "in lake": total,
        "lost": produced - distinct,
        "duplicated": total - distinct,
        "recovery": f"{recovery:.1f} s" if recovery is not None else "-",
        "observed": observed,
    }


def broker_kill(work):
    data, rows = generate(work, 20, 1000)
    stack = Stack("broker-kill")
    try:
        stack.stack("start")
        replay = stack.replay(data, rate=4000)
        time.sleep(2)
        watch = Watch(lambda: stack.ready("s3-sink"))
        watch.start()
        stack.kill("tansu")
        time.sleep(3)
        restarted = time.monotonic()
        stack.stack("start")
        code = replay.wait()
        stack.replay_to_end(data)
        stack.wait_count(rows)
        recovery = time.monotonic() - restarted
        samples = watch.stop()
        return result(stack, "broker SIGKILL + restart mid-stream", rows, recovery,
                      f"replay {'survived' if code == 0 else 'failed and resumed'}; sink not ready {not_ready_seconds(samples):.1f} s")
    finally:
        stack.close()


def service_kills(work):
    data, rows = generate(work, 20, 1500)
    stack = Stack("service-kills")
    notes = []
    try:
        stack.stack("start")
        replay = stack.replay(data, rate=1500)
        restarts = []
        for service in ["s3-sink", "glue-crawler", "query-api", "ingest"] * 2:
            time.sleep(random.uniform(1.0, 2.0))
            if service == "ingest":
                replay.send_signal(signal.SIGKILL)
                replay.wait()
                replay = stack.replay(data, rate=1500)
                continue
            stack.kill(service)
            started = time.monotonic()
            out = stack.stack("start")
            if f"{service} ready" not in out:
                notes.append(f"{service} not restarted by stack.sh start")
            restarts.append(time.monotonic() - started)
        replay.wait()
        stack.replay_to_end(data)
        started = time.monotonic()
        stack.wait_count(rows)
        recovery = time.monotonic() - started
        notes.append(f"6 service and 2 replay SIGKILLs; restart to ready max {max(restarts):.1f} s")
        return result(stack, "each service SIGKILLed twice under load", rows, recovery, "; ".join(notes))
    finally:
        stack.close()


def disk_full(work):
    data, rows = generate(work, 20, 2500)
    stack = Stack("disk-full")
    lake = stack.var / "lake"
    lake.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(lake)], check=True)
    try:
        stack.stack("start")
        watch = Watch(lambda: stack.ready("s3-sink"))
        watch.start()
        stack.replay_to_end(data)
        time.sleep(15)
        full = not_ready_seconds(watch.samples)
        staged = [path for path in lake.rglob("*.parquet")
                  if path.stat().st_size == 0]
        grown = time.monotonic()
        subprocess.run(["mount", "-o", "remount,size=256m", str(lake)], check=True)
        alive = stack.pid("s3-sink") and stack.process("s3-sink") is not None
        stack.stack("start")
        stack.wait_count(rows)
        recovery = time.monotonic() - grown
        watch.stop()
        return result(stack, "lake disk full (1 MiB tmpfs), then 256 MiB", rows, recovery,
                      f"sink not ready {full:.1f} s while full; {'kept running' if alive else 'exited, restarted'}; "
                      f"{len(staged)} empty data files visible")
    finally:
        stack.stack("stop", check=False)
        subprocess.run(["umount", "-l", str(lake)], check=False)
        stack.close()


def backpressure(work):
    data, rows = generate(work, 200, 1000)
    stack = Stack("backpressure")
    try:
        stack.stack("start")
        lag = Watch(lambda: (stack.metric("s3-sink", "stockstream_sink_consumer_lag_records"),
                             (stack.process("s3-sink") or (0, 0, 0))[0]), interval=0.5)
        lag.start()
        started = time.monotonic()
        stack.replay_to_end(data)
        produced_in = time.monotonic() - started
        stack.wait_count(rows)
        drained = time.monotonic() - started
        samples = lag.stop()
        max_lag = max((value[0] or 0 for _, value in samples), default=0)
        max_rss = max((value[1] for _, value in samples), default=0)
        return result(stack, f"backpressure: {rows:,} rows unpaced", rows, drained - produced_in,
                      f"produced in {produced_in:.1f} s; max lag {max_lag:,.0f} records; sink peak RSS "
                      f"{max_rss:.0f} MiB (budget 256 MiB + 96 MiB)")
    finally:
        stack.close()


def slope_per_hour(points):
    if len(points) < 2:
        return 0.0
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return 0.0 if spread == 0 else sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread * 3600


# Queries the soak runs every sample, so that the query API's footer cache and file index are
# in use (a full-scan aggregate reads every visible file; the point lookup prunes to one).
SOAK_QUERIES = [
    "SELECT count(*) FROM quotes",
    "SELECT symbol, max(high), sum(volume) FROM quotes GROUP BY symbol ORDER BY symbol",
    "SELECT avg(close) FROM quotes WHERE symbol = 'R001'",
]


def span(values):
    """Lowest and highest of `values` ((0, 0) when there are none): a slope over a sawtooth (a
    cache refilling, compaction merging what the sink wrote) says little without its range."""
    return (min(values), max(values)) if values else (0, 0)


def soak(work):
    """A replay of new trading days at a fixed rate: the lake gains partitions as it goes (a
    year of 50 symbols every ~65 s at 200 rows/s)."""
    minutes = float(os.environ.get("RELIABILITY_SOAK_MINUTES", "20"))
    rate = int(os.environ.get("RELIABILITY_SOAK_RATE", "200"))
    days = int(minutes * 60 * rate / 50) + 50
    return run_soak(work, "soak", minutes, rate, days, loop=False)


def soak_fixed(work):
    """A replay that loops over three years of 50 symbols at a fixed rate: every pass writes the
    same 150 partitions again, and each year is quiet for two thirds of a pass (about 130 s at
    200 rows/s, more than the 60 s compaction waits for), so compaction keeps the visible file
    count bounded and whatever still grows in a service is not explained by the lake growing."""
    minutes = float(os.environ.get("RELIABILITY_SOAK_MINUTES", "20"))
    rate = int(os.environ.get("RELIABILITY_SOAK_RATE", "200"))
    return run_soak(work, "soak-fixed", minutes, rate, 750, loop=True)


def run_soak(work, name, minutes, rate, days, loop):
    data, rows = generate(work, 50, days)
    stack = Stack(name)
    # Compaction as the local stack runs it, with a shorter quiet time and grace period than the
    # defaults (5 min, 15 min) so that a 20-minute soak reaches the steady state of both.
    stack.env.update({
        "STOCKSTREAM__LAKE__COMPACTION__MIN_QUIET": os.environ.get("RELIABILITY_SOAK_MIN_QUIET", "60s"),
        "STOCKSTREAM__LAKE__COMPACTION__GRACE": os.environ.get("RELIABILITY_SOAK_GRACE", "2m"),
    })
    try:
        stack.stack("start")
        replay = stack.replay(data, rate=rate, loop=loop)
        started = time.monotonic()
        samples = {}
        while time.monotonic() - started < minutes * 60:
            for sql in SOAK_QUERIES:
                stack.query(sql, timeout=60)
            now = time.monotonic() - started
            for service in ["s3-sink", "glue-crawler", "query-api"]:
                figures = stack.process(service)
                if figures:
                    samples.setdefault(service, []).append((now, figures))
            samples.setdefault("lake", []).append((now, stack.lake_files()))
            samples.setdefault("visible", []).append((now, stack.visible_files()))
            for gauge in ["stockstream_query_index_files", "stockstream_query_metadata_cache_entries"]:
                value = stack.metric("query-api", gauge)
                if value is not None:
                    samples.setdefault(gauge, []).append((now, value))
            elapsed = int(now)
            if elapsed % 60 < 15:
                say(f"{name}: {elapsed // 60} of {minutes:g} min, {stack.count()} rows queryable, "
                    f"query-api {samples.get('query-api', [(0, (0,))])[-1][1][0]:.0f} MiB")
            time.sleep(15)
        replay.send_signal(signal.SIGTERM)
        replay.wait()
        expected = int(subprocess.run([str(BIN / "stockstream-ingest"), "count"], env=stack.ingest_env(),
                                      capture_output=True, text=True, check=True).stdout.strip())
        # A looping replay writes each row once per pass, so its lake is checked by total rows
        # against the topic, and its distinct rows against the file.
        stack.wait_count(expected, distinct=not loop)
        return soak_outcome(stack, name, minutes, rate, expected, rows, loop, samples)
    finally:
        stack.close()


def soak_outcome(stack, name, minutes, rate, expected, rows, loop, samples):
    """The soak's table row: lost and duplicated rows, and the slope of every sampled figure
    over the second half (start-up growth, caches and buffers filling, is not a leak)."""
    def half(points):
        return points[len(points) // 2:]
    slopes = []
    for service in ["s3-sink", "glue-crawler", "query-api"]:
        points = half(samples.get(service, []))
        rss = slope_per_hour([(t, f[0]) for t, f in points])
        fds = slope_per_hour([(t, f[1]) for t, f in points])
        threads = slope_per_hour([(t, f[2]) for t, f in points])
        last = points[-1][1] if points else (0, 0, 0)
        low, high = span([f[0] for _, f in points])
        slopes.append(f"{service} RSS {last[0]:.0f} MiB ({rss:+.1f}/h; {low:.0f}-{high:.0f} in the second half), "
                      f"fds {last[1]} ({fds:+.1f}/h), threads {last[2]} ({threads:+.1f}/h)")
    for gauge, label in [("stockstream_query_index_files", "query-api index files"),
                         ("stockstream_query_metadata_cache_entries", "footers cached")]:
        points = samples.get(gauge, [])
        if points:
            slopes.append(f"{label} {points[-1][1]:,.0f} ({slope_per_hour(half(points)):+.0f}/h)")
    files = samples.get("lake", [])
    visible = samples.get("visible", [])
    low, high = span([count for _, count in half(visible)])
    total, distinct = stack.lake_rows()
    if loop:
        # Every pass repeats the file's rows: all of them must be there, each pass's once.
        lost, duplicated = max(expected - total, 0) + (rows - distinct), max(total - expected, 0)
    else:
        lost, duplicated = expected - distinct, total - distinct
    return {
        "scenario": f"{name}: {minutes:g} min at {rate} rows/s"
        + (f", looping over {rows:,} rows" if loop else ""),
        "produced": expected,
        "in lake": total,
        "lost": lost,
        "duplicated": duplicated,
        "recovery": "-",
        "observed": "; ".join(slopes)
        + f"; files readers see {visible[-1][1] if visible else 0} ({slope_per_hour(half(visible)):+.0f}/h; "
        f"{low}-{high} in the second half)"
        + f" in {stack.partitions()} partitions"
        + f", on disk {files[-1][1] if files else 0} ({slope_per_hour(half(files)):+.0f}/h)",
    }


SCENARIOS = {
    "broker-kill": broker_kill,
    "service-kills": service_kills,
    "disk-full": disk_full,
    "backpressure": backpressure,
    "soak": soak,
    "soak-fixed": soak_fixed,
}


def main():
    only = [name for name in os.environ.get("RELIABILITY_ONLY", "").split(",") if name]
    unknown = [name for name in only if name not in SCENARIOS]
    if unknown:
        sys.exit(f"reliability: unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    results = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="stockstream-reliability-") as work:
        for name, scenario in SCENARIOS.items():
            if only and name not in only:
                continue
            say(f"{name}: running")
            started = time.monotonic()
            try:
                outcome = scenario(work)
            except Exception as error:  # a scenario that breaks is a finding, reported in the table
                failed = True
                outcome = {"scenario": name, "produced": "-", "in lake": "-", "lost": "-",
                           "duplicated": "-", "recovery": "-", "observed": f"FAILED: {error}"}
            if isinstance(outcome.get("lost"), int) and (outcome["lost"] or outcome["duplicated"]):
                failed = True
            say(f"{name}: done in {time.monotonic() - started:.0f} s: {outcome}")
            results.append(outcome)
    columns = ["scenario", "produced", "in lake", "lost", "duplicated", "recovery", "observed"]
    print()
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" for _ in columns) + " |")
    for outcome in results:
        cells = [f"{outcome[column]:,}" if isinstance(outcome[column], int) else str(outcome[column])
                 for column in columns]
        print("| " + " | ".join(cells) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
