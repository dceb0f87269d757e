#!/usr/bin/env python3
"""make bench-sink: the sink draining a pre-filled topic into the local lake, against a raw
consume of the same topic by an independent client that discards the records.

1. A fresh tansu broker; BENCH_ROWS records (default 1,000,000; 40 symbols) are produced to a
   3-partition topic by `stockstream-ingest generate`.
2. stockstream-s3-sink (release build) consumes it into an empty local lake; timed from start until
   its /metrics report every record written; CPU-seconds of the process.
3. A confluent-kafka consumer reads the same topic from the start to its end offsets, discarding.
Prints rows/s and CPU-seconds per million rows for both, `ratio: X` (ours over the raw consume),
and broker CPU per million rows.
4. Memory: a second topic with 1,000 symbols over two calendar years (>= 2,000 partition paths
   `symbol=…/year=…`, every one open in every buffer) is sunk with flushes left to the memory
   budget alone (no interval or count flushes), once per budget; the sink's peak RSS (VmHWM) must
   stay under the budget plus a fixed overhead (FIXED_OVERHEAD_MIB: librdkafka's prefetch queue,
   capped by `queued.max.messages.kbytes`, the runtime, and one flush's encoding), and the idle RSS
   is printed for scale. Exits non-zero if a budget is exceeded.
The broker-free encode rate and freshness come from the two Rust benchmarks `make bench-sink` runs
after this script.
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ingest import BIN, Broker, cpu_of, free_port, ingest, ingest_env  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
HERE = os.path.dirname(os.path.abspath(__file__))


def say(message):
    print(f"bench-sink: {message}", flush=True)


def records_written(address):
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith("stockstream_sink_records_written_total"):
                    return int(float(line.split()[-1]))
    except OSError:
        return 0
    return 0


WIDE_SYMBOLS = int(os.environ.get("BENCH_WIDE_SYMBOLS", "1000"))
WIDE_DAYS = int(os.environ.get("BENCH_WIDE_DAYS", "1000"))  # from 2007-01-01: 4 years
BUDGETS_MIB = [16, 64]
FIXED_OVERHEAD_MIB = 96
# As deploy/stockstream-s3-sink.service and scripts/stack.sh run the sink.
SINK_MALLOC_MMAP_THRESHOLD = "1048576"


def metric_sum(address, prefix):
    total = 0.0
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(prefix):
                    total += float(line.split()[-1])
    except OSError:
        return 0
    return int(total)


def wait_for_sink(sink, address, total, done):
    """Polls the sink's /metrics until done(records written) holds, with progress lines."""
    last_report = time.monotonic()
    while True:
        written = records_written(address)
        if done(written):
            return
        if sink.poll() is not None:
            sys.exit(f"bench-sink: the sink exited with {sink.returncode}")
        if time.monotonic() - last_report > 10:
            say(f"  {written:,} of {total:,} written")
            last_report = time.monotonic()
        time.sleep(0.1)


def metrics_up(address):
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5):
            return True
    except OSError:
        return False


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory_phase(broker, work):
    topic = "bench.wide"
    env = ingest_env(broker, topic, os.path.join(work, "wide-state"))
    ingest(["topics"], env)
    say(f"memory: pre-filling {topic} with {WIDE_SYMBOLS} symbols x {WIDE_DAYS} trading days")
    ingest(["generate", "--symbol-count", str(WIDE_SYMBOLS), "--days", str(WIDE_DAYS), "--start",
            "2007-01-01", "--seed", "5"], env)
    total = int(ingest(["count", "--topic", topic], env).stdout.strip())
    rows = []
    for budget_mib in BUDGETS_MIB:
        address = f"127.0.0.1:{free_port()}"
        lake = os.path.join(work, f"wide-lake-{budget_mib}")
        sink_env = dict(env)
        sink_env.update({
            "STOCKSTREAM__LAKE__ROOT": lake,
            "STOCKSTREAM__HTTP__LISTEN": address,
            "STOCKSTREAM__SINK__GROUP_ID": f"bench-wide-{budget_mib}",
            "STOCKSTREAM__SINK__MEMORY_BUDGET": str(budget_mib << 20),
            "STOCKSTREAM__SINK__FLUSH_INTERVAL": "1h",
            "STOCKSTREAM__SINK__FLUSH_RECORDS": "100000000",
            "STOCKSTREAM__SINK__FLUSH_BYTES": str(1 << 40),
            "MALLOC_MMAP_THRESHOLD_": SINK_MALLOC_MMAP_THRESHOLD,
        })
        say(f"memory: sinking {total:,} records across >= 1,000 paths with a {budget_mib} MiB budget")
        sink = subprocess.Popen([os.path.join(BIN, "stockstream-s3-sink")], env=sink_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        idle_kib = 0
        def consumed_all(written):
            nonlocal idle_kib
            if not idle_kib and sink.poll() is None and metrics_up(address):
                # Up and serving, before its first flush: the RSS of the process itself.
                idle_kib = status_kib(sink.pid, "VmRSS")
            return written + metric_sum(address, "stockstream_sink_buffered_records") >= total

        wait_for_sink(sink, address, total, consumed_all)
        # Everything consumed: SIGTERM flushes the rest; the peak is read until the process ends.
        memory_flushes = metric_sum(address, 'stockstream_sink_flushes_total{reason="memory"}')
        files = metric_sum(address, "stockstream_sink_files_committed_total")
        sink.terminate()
        peak_kib = 0
        while sink.poll() is None:
            try:
                peak_kib = max(peak_kib, status_kib(sink.pid, "VmHWM"))
            except OSError:
                break
            time.sleep(0.02)
        if sink.wait() != 0:
            sys.exit(f"bench-sink: the sink did not drain cleanly ({sink.returncode})")
        paths = sum(1 for _, dirs, names in os.walk(os.path.join(lake, "quotes"))
                    if any(name.endswith(".parquet") for name in names))
        rows.append((budget_mib, paths, memory_flushes, files, idle_kib, peak_kib))

    print()
    print(f"{'budget MiB':>10}{'paths':>8}{'memory flushes':>16}{'files':>8}{'files/flush':>13}"
          f"{'idle RSS MiB':>14}{'peak RSS MiB':>14}{'limit MiB':>11}")
    exceeded = False
    for budget_mib, paths, flushes, files, idle_kib, peak_kib in rows:
        limit = budget_mib + FIXED_OVERHEAD_MIB
        ok = peak_kib / 1024 <= limit
        exceeded |= not ok
        print(f"{budget_mib:>10}{paths:>8,}{flushes:>16,}{files:>8,}{files / max(flushes, 1):>13,.0f}"
              f"{idle_kib / 1024:>14.1f}{peak_kib / 1024:>14.1f}{limit:>11}  {'ok' if ok else 'EXCEEDED'}")
    print(f"peak RSS: the limit is the memory budget + a fixed overhead of {FIXED_OVERHEAD_MIB} MiB")
    return not exceeded


def main():
    work = tempfile.mkdtemp(prefix="stockstream-bench-sink-")
    broker = Broker(work)
    try:
        topic = "bench.quotes"
        env = ingest_env(broker, topic, os.path.join(work, "state"))
        ingest(["topics"], env)
        symbols = 40
        days = -(-ROWS // symbols)
        say(f"pre-filling {topic} with {symbols * days:,} records (40 symbols)")
        started = time.monotonic()
        ingest(["generate", "--symbol-count", str(symbols), "--days", str(days), "--start",
                "1950-01-02", "--seed", "2"], env)
        total = int(ingest(["count", "--topic", topic], env).stdout.strip())
        say(f"topic holds {total:,} records (produced in {time.monotonic() - started:.0f}s)")

        # Ours.
        address = f"127.0.0.1:{free_port()}"
        sink_env = dict(env)
        sink_env.update({
            "STOCKSTREAM__LAKE__ROOT": os.path.join(work, "lake"),
            "STOCKSTREAM__HTTP__LISTEN": address,
            "STOCKSTREAM__SINK__GROUP_ID": "bench-sink",
            "MALLOC_MMAP_THRESHOLD_": SINK_MALLOC_MMAP_THRESHOLD,
        })
        say("running stockstream-s3-sink until every record is in the lake")
        broker_before = broker.cpu()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        sink = subprocess.Popen([os.path.join(BIN, "stockstream-s3-sink")], env=sink_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_sink(sink, address, total, lambda written: written >= total)
        ours_wall = time.monotonic() - started
        sink.terminate()
        sink.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours_cpu = cpu_of(before, after)
        ours_broker = broker.cpu() - broker_before

        # The peer.
        say("running the raw confluent-kafka consume")
        broker_before = broker.cpu()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        subprocess.run([sys.executable, os.path.join(HERE, "bench_peer_consumer.py"),
                        broker.bootstrap, topic], check=True, capture_output=True)
        peer_wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        peer_cpu = cpu_of(before, after)
        peer_broker = broker.cpu() - broker_before

        million = total / 1e6
        print()
        print(f"{'contender':<34}{'rows/s':>12}{'wall s':>9}{'CPU-s/M rows':>15}{'broker CPU-s/M':>17}")
        print(f"{'stockstream-s3-sink (to Parquet)':<34}{total / ours_wall:>12,.0f}{ours_wall:>9.1f}"
              f"{ours_cpu / million:>15.2f}{ours_broker / million:>17.2f}")
        print(f"{'confluent-kafka raw consume':<34}{total / peer_wall:>12,.0f}{peer_wall:>9.1f}"
              f"{peer_cpu / million:>15.2f}{peer_broker / million:>17.2f}")
        print(f"ratio: {peer_wall / ours_wall:.2f} (stockstream rows/s over the raw consume's; goal >= 0.5)")
        print()
        if not memory_phase(broker, work):
            sys.exit("bench-sink: peak RSS over the memory budget plus the fixed overhead")
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
