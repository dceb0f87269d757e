#!/usr/bin/env python3
"""make bench-sink: the sink draining a pre-filled topic into the local lake, against a raw
consume of the same topic by an independent client that discards the records.

1. A fresh tansu broker; BENCH_ROWS records (default 1,000,000; 40 symbols) are produced to a
   3-partition topic by `stockstream-ingest generate`.
2. stockstream-s3-sink (release build) consumes it into an empty local lake; timed from start until
   its /metrics report every record written; CPU-seconds of the process.
3. A confluent-kafka consumer reads the same topic from the start to its end offsets, discarding.
Prints rows/s and CPU-seconds per million rows for both, `ratio: X` (ours over the raw consume),
and broker CPU per million rows. The broker-free encode rate and freshness come from the two Rust
benchmarks `make bench-sink` runs after this script.
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
        })
        say("running stockstream-s3-sink until every record is in the lake")
        broker_before = broker.cpu()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        sink = subprocess.Popen([os.path.join(BIN, "stockstream-s3-sink")], env=sink_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        last_report = started
        while True:
            written = records_written(address)
            if written >= total:
                break
            if sink.poll() is not None:
                sys.exit(f"bench-sink: the sink exited with {sink.returncode}")
            if time.monotonic() - last_report > 10:
                say(f"  {written:,} of {total:,} written")
                last_report = time.monotonic()
            time.sleep(0.2)
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
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
