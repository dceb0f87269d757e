#!/usr/bin/env python3
"""make bench-compaction: what compaction buys and costs, on a lake the real sink wrote with 1 s
flushes.

1. A fresh tansu broker; `stockstream-ingest generate --rate` streams quotes of
   BENCH_COMPACTION_SYMBOLS symbols (500) at BENCH_COMPACTION_RATE rows/s (3,000) while
   stockstream-s3-sink (release) flushes every second: a live tick stream's lake, one small file
   per partition path and flush. The stream stops once the lake holds BENCH_COMPACTION_MIN_FILES
   small files (20,000), or at BENCH_COMPACTION_ROWS quotes (1,000,000; fewer files than the
   minimum is then an error); the sink drains what was produced. `stockstream-glue-crawler crawl`
   catalogues it.
2. The query API (release) answers the query set (QUERIES), 5 warm runs each, median: before.
3. `stockstream-glue-crawler compact` merges every partition (min_quiet 0, grace 0): wall time,
   rows/s, files in and out.
4. A fresh query API answers the query set again: after. Answers must agree with before.
5. The sink's own throughput draining a pre-filled topic (BENCH_COMPACTION_DRAIN_ROWS, 300,000) into a fresh lake, alone
   and then while the catalog service compacts that same lake every second (no quiet period), as
   the local stack runs it: rows/s and the sink's CPU-seconds per million rows, and their ratio.
Prints the tables and `ratio:` lines. Nothing here is a pass/fail assertion except answers that
differ between before and after (a correctness failure).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ingest import BIN, Broker, free_port, ingest, ingest_env, process_cpu  # noqa: E402
from bench_sink import SINK_MALLOC_MMAP_THRESHOLD, wait_for_sink  # noqa: E402

ROWS = int(os.environ.get("BENCH_COMPACTION_ROWS", "1000000"))
MIN_FILES = int(os.environ.get("BENCH_COMPACTION_MIN_FILES", "20000"))
RATE = int(os.environ.get("BENCH_COMPACTION_RATE", "3000"))
SYMBOLS = int(os.environ.get("BENCH_COMPACTION_SYMBOLS", "500"))
DRAIN_ROWS = int(os.environ.get("BENCH_COMPACTION_DRAIN_ROWS", "300000"))
WARM_RUNS = 5
QUERIES = [
    ("count", "SELECT count(*) FROM quotes"),
    ("symbol-year", "SELECT avg(close), max(high), min(low) FROM quotes "
                    "WHERE symbol = 'SYN7' AND year = 2001"),
    ("symbol-range", "SELECT trade_date, close FROM quotes WHERE symbol = 'SYN42' "
                     "AND trade_date BETWEEN DATE '2001-01-01' AND DATE '2001-03-31' ORDER BY trade_date"),
    ("yearly", "SELECT year, count(*), avg(close) FROM quotes GROUP BY year ORDER BY year"),
    ("top-volume", "SELECT symbol, sum(volume) AS v FROM quotes GROUP BY symbol ORDER BY v DESC LIMIT 10"),
]


def say(message):
    print(f"bench-compaction: {message}", file=sys.stderr, flush=True)


def service_env(broker, topic, lake, listen):
    env = ingest_env(broker, topic, os.path.join(os.path.dirname(lake), "state"))
    env.update({
        "STOCKSTREAM__LAKE__ROOT": lake,
        "STOCKSTREAM__HTTP__LISTEN": listen,
        "MALLOC_MMAP_THRESHOLD_": SINK_MALLOC_MMAP_THRESHOLD,
    })
    return env


def crawler(args, lake, extra=None):
    env = dict(os.environ)
    env.update({"STOCKSTREAM__LAKE__ROOT": lake, "STOCKSTREAM__TELEMETRY__LOG_LEVEL": "warn",
                "STOCKSTREAM__LAKE__COMPACTION__MIN_QUIET": "0s",
                "STOCKSTREAM__LAKE__COMPACTION__MIN_FILES": "2",
                "STOCKSTREAM__LAKE__COMPACTION__GRACE": "0s"})
    env.update(extra or {})
    done = subprocess.run([os.path.join(BIN, "stockstream-glue-crawler"), *args], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench-compaction: glue-crawler {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def data_files(lake):
    count = 0
    for _, _, names in os.walk(os.path.join(lake, "quotes")):
        count += sum(1 for name in names if name.endswith(".parquet"))
    return count


def write_small_file_lake(work):
    """Streams ROWS quotes at RATE rows/s through the real sink with 1 s flushes."""
    broker = Broker(work)
    try:
        topic = "bench.ticks"
        env = ingest_env(broker, topic, os.path.join(work, "state"))
        ingest(["topics"], env)
        lake = os.path.join(work, "small")
        listen = f"127.0.0.1:{free_port()}"
        sink_env = service_env(broker, topic, lake, listen)
        sink_env.update({"STOCKSTREAM__SINK__FLUSH_INTERVAL": "1s",
                         "STOCKSTREAM__SINK__GROUP_ID": "bench-compaction"})
        sink = subprocess.Popen([os.path.join(BIN, "stockstream-s3-sink")], env=sink_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        days = -(-ROWS // SYMBOLS)
        say(f"streaming up to {SYMBOLS * days:,} quotes at {RATE:,} rows/s into the sink (1 s flushes) "
            f"until the lake holds {MIN_FILES:,} files")
        started = time.monotonic()
        generator = subprocess.Popen(
            [os.path.join(BIN, "stockstream-ingest"), "generate", "--symbol-count", str(SYMBOLS),
             "--days", str(days), "--start", "2000-01-03", "--seed", "14", "--rate", str(RATE)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        files = 0
        shown = time.monotonic()
        while generator.poll() is None and files < MIN_FILES:
            time.sleep(2)
            files = data_files(lake)
            if time.monotonic() - shown >= 15:
                say(f"  {files:,} of {MIN_FILES:,} files after {time.monotonic() - started:.0f} s")
                shown = time.monotonic()
        # SIGTERM: the generator flushes what it produced, then exits.
        generator.terminate()
        generator.wait()
        total = int(ingest(["count", "--topic", topic], env).stdout.strip())
        wait_for_sink(sink, listen, total, lambda written: written >= total)
        sink.terminate()
        sink.wait()
        files = data_files(lake)
        if files < MIN_FILES:
            sys.exit(f"bench-compaction: the sink wrote {files:,} files, fewer than "
                     f"BENCH_COMPACTION_MIN_FILES={MIN_FILES:,}; raise BENCH_COMPACTION_ROWS")
        say(f"lake written in {time.monotonic() - started:.0f} s: {data_files(lake):,} files")
        crawler(["crawl"], lake)
        return lake, total
    finally:
        broker.stop()


class QueryApi:
    def __init__(self, lake):
        self.address = f"127.0.0.1:{free_port()}"
        env = dict(os.environ)
        env.update({"STOCKSTREAM__LAKE__ROOT": lake, "STOCKSTREAM__HTTP__LISTEN": self.address,
                    "STOCKSTREAM__TELEMETRY__LOG_LEVEL": "warn",
                    "STOCKSTREAM__LIVE__ENABLED": "false",
                    "STOCKSTREAM__QUERY__FOLLOW_COMMITS": "false",
                    "STOCKSTREAM__QUERY__SYNC_WAIT": "600s",
                    "STOCKSTREAM__QUERY__TIMEOUT": "600s"})
        self.process = subprocess.Popen([os.path.join(BIN, "stockstream-query-api")], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.address}/health/readyz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        sys.exit("bench-compaction: the query API did not become ready")

    def query(self, sql):
        body = json.dumps({"sql": sql, "max_rows": 100000}).encode()
        request = urllib.request.Request(f"http://{self.address}/v1/query", data=body,
                                         headers={"Content-Type": "application/json"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as answer:
            rows = json.loads(answer.read())["rows"]
        return (time.perf_counter() - started) * 1000, rows

    def stop(self):
        self.process.terminate()
        self.process.wait()


def normalized(rows):
    """Rows with floats rounded to 9 significant digits: parallel aggregation sums in any order."""
    def cell(value):
        return float(f"{value:.9g}") if isinstance(value, float) else value
    return [[cell(value) for value in row] for row in rows]


def measure_queries(lake):
    api = QueryApi(lake)
    try:
        results = {}
        for name, sql in QUERIES:
            api.query(sql)  # warm-up: footers and statistics
            times = []
            rows = None
            for _ in range(WARM_RUNS):
                elapsed, rows = api.query(sql)
                times.append(elapsed)
            results[name] = (statistics.median(times), rows)
        return results
    finally:
        api.stop()


def metric(address, name):
    total = 0.0
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    total += float(line.split()[-1])
    except OSError:
        return 0.0
    return total


def drain(work, name, compacting):
    """The sink draining DRAIN_ROWS pre-filled records into a fresh lake; with `compacting`, the
    catalog service follows the same lake with compaction on (every second, no quiet period), as
    the local stack runs it."""
    broker = Broker(work)
    service = None
    try:
        topic = f"bench.{name}"
        env = ingest_env(broker, topic, os.path.join(work, f"state-{name}"))
        ingest(["topics"], env)
        symbols = 40
        ingest(["generate", "--symbol-count", str(symbols), "--days", str(-(-DRAIN_ROWS // symbols)),
                "--start", "1950-01-02", "--seed", "2"], env)
        total = int(ingest(["count", "--topic", topic], env).stdout.strip())
        lake = os.path.join(work, f"drain-{name}")
        crawler_listen = f"127.0.0.1:{free_port()}"
        if compacting:
            service_environment = service_env(broker, topic, lake, crawler_listen)
            service_environment.update({
                "STOCKSTREAM__CRAWLER__GROUP_ID": f"bench-{name}-catalog",
                "STOCKSTREAM__LAKE__COMPACTION__ENABLED": "true",
                "STOCKSTREAM__LAKE__COMPACTION__INTERVAL": "1s",
                "STOCKSTREAM__LAKE__COMPACTION__MIN_QUIET": "0s",
                "STOCKSTREAM__LAKE__COMPACTION__MIN_FILES": "2",
                "STOCKSTREAM__LAKE__COMPACTION__GRACE": "10s",
            })
            service = subprocess.Popen([os.path.join(BIN, "stockstream-glue-crawler")],
                                       env=service_environment,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        listen = f"127.0.0.1:{free_port()}"
        sink_env = service_env(broker, topic, lake, listen)
        sink_env["STOCKSTREAM__SINK__GROUP_ID"] = f"bench-{name}"
        started = time.monotonic()
        sink = subprocess.Popen([os.path.join(BIN, "stockstream-s3-sink")], env=sink_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_sink(sink, listen, total, lambda written: written >= total)
        wall = time.monotonic() - started
        # The sink's own CPU (the catalog service is not counted).
        cpu = process_cpu(sink.pid)
        sink.terminate()
        sink.wait()
        compactions = metric(crawler_listen, "stockstream_compaction_partitions_total") if compacting else 0
        return {"rows_per_s": total / wall, "wall": wall, "cpu_per_m": cpu * 1e6 / total,
                "compactions": int(compactions)}
    finally:
        if service:
            service.terminate()
            service.wait()
        broker.stop()


def main():
    work = tempfile.mkdtemp(prefix="stockstream-bench-compaction-")
    try:
        lake, total = write_small_file_lake(work)
        files_before = data_files(lake)
        say(f"query set before compaction ({files_before:,} files)")
        before = measure_queries(lake)
        say("compacting")
        started = time.monotonic()
        report = crawler(["compact"], lake)
        wall = time.monotonic() - started
        catalog = json.load(open(os.path.join(lake, "_stockstream", "catalog", "catalog.json")))
        locations = [partition["location"] for database in catalog["databases"].values()
                     for table in database["tables"].values() for partition in table["partitions"].values()]
        files_after = sum(
            sum(1 for name in os.listdir(os.path.join(lake, location)) if name.endswith(".parquet"))
            for location in locations)
        say(f"query set after compaction ({files_after:,} files)")
        after = measure_queries(lake)
        differ = [name for name, _ in QUERIES if normalized(before[name][1]) != normalized(after[name][1])]

        say("sink throughput alone")
        alone = drain(work, "alone", False)
        say("sink throughput while the catalog service compacts the same lake")
        busy = drain(work, "busy", True)

        print()
        print(f"bench-compaction: lake of {total:,} quotes streamed at {RATE:,} rows/s through "
              f"stockstream-s3-sink with 1 s flushes; 2 cores")
        print(f"  files readers see: {files_before:,} before, {files_after:,} after compaction")
        print(f"  compaction: {report['partitions']:,} partitions, {report['files_in']:,} files into "
              f"{report['files_out']:,}, {report['rows']:,} rows in {wall:.1f} s: "
              f"{report['rows'] / wall:,.0f} rows/s ({report['rows_per_second']:,.0f} rows/s inside the command)")
        print()
        header = f"  {'query':<14}{'before ms':>11}{'after ms':>11}{'speed-up':>10}"
        print(header)
        print("  " + "-" * (len(header) - 2))
        speedups = []
        for name, _ in QUERIES:
            speedup = before[name][0] / max(after[name][0], 1e-6)
            speedups.append(speedup)
            print(f"  {name:<14}{before[name][0]:>11.1f}{after[name][0]:>11.1f}{speedup:>9.1f}x")
        geomean = statistics.geometric_mean(speedups)
        print(f"ratio: {geomean:.2f}  [query set warm geomean, before / after compaction]")
        print()
        label = f"sink draining {DRAIN_ROWS:,} rows"
        print(f"  {label:<36}{'rows/s':>10}{'wall s':>9}{'CPU-s/M rows':>14}")
        print(f"  {'alone':<36}{alone['rows_per_s']:>10,.0f}{alone['wall']:>9.1f}{alone['cpu_per_m']:>14.2f}")
        print(f"  {'compacting meanwhile ({} swaps)'.format(busy['compactions']):<36}{busy['rows_per_s']:>10,.0f}"
              f"{busy['wall']:>9.1f}{busy['cpu_per_m']:>14.2f}")
        print(f"ratio: {busy['rows_per_s'] / alone['rows_per_s']:.2f}  [sink rows/s while compacting / alone]")
        if differ:
            sys.exit(f"bench-compaction: answers differ before and after compaction: {differ}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
