#!/usr/bin/env python3
"""make bench-ingest: stockstream's replay in `max` mode against peers producing the same rows.

Each contender gets a fresh tansu broker (same sqlite storage, header index added) and a topic
with the same partitions, and produces the same number of rows with equal producer settings
(idempotent, acks=all, lz4, linger 5 ms, batch 1 MB, four headers per record):

- stockstream: `stockstream-ingest replay --mode max` of a generated indexProcessed.csv-shaped
  file (it parses, validates and encodes every row, and tracks where each record lands);
- rdkafka_performance: librdkafka's own producer benchmark, built from the librdkafka sources
  vendored in rdkafka-sys, sending payloads of the same average size (it cannot read rows from
  a file);
- confluent-kafka: a Python producer sending the same rows pre-serialized (one JSON record per
  line, the key sliced from it).

Prints rows/s, wall time, client CPU-seconds per million rows and broker CPU-seconds per million
rows for each, the broker-free parse-and-encode rate (`replay --dry-run`), and `ratio: X` (our
rows/s over rdkafka_performance's). Environment: STOCKSTREAM_BIN (release binaries), TARGET_DIR,
STOCKSTREAM_TANSU, STOCKSTREAM_CACHE, BENCH_ROWS (default 1000000).
"""
import glob
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ["STOCKSTREAM_BIN"]
TANSU = os.environ["STOCKSTREAM_TANSU"]
CACHE = os.environ.get("STOCKSTREAM_CACHE", os.path.expanduser("~/.cache/stockstream"))
TARGET_DIR = os.environ.get("TARGET_DIR", os.path.join(os.path.dirname(HERE), "target"))
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
PARTITIONS = 3
TICK = os.sysconf("SC_CLK_TCK")
SETTINGS = {
    "enable.idempotence": "true",
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": "5",
    "batch.size": "1000000",
    "message.timeout.ms": "120000",
}
HEADERS = [
    ("stockstream-schema-version", "1"),
    ("stockstream-source", "0123456789abcdef"),
    ("stockstream-source-pass", "1"),
    ("stockstream-source-line", "123456"),
]


def say(message):
    print(f"bench-ingest: {message}", flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu(pid):
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Broker:
    def __init__(self, work):
        self.dir = tempfile.mkdtemp(dir=work)
        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        self.log = open(os.path.join(self.dir, "tansu.log"), "w")
        # scripts/tansu.sh execs tansu (so this pid is the broker's, for its CPU figures) and
        # adds the index tansu 0.6.0's sqlite schema lacks.
        self.process = subprocess.Popen(
            ["bash", os.path.join(HERE, "tansu.sh"), self.dir, self.bootstrap],
            env={**os.environ, "STOCKSTREAM_TANSU": TANSU}, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("bench-ingest: tansu did not start")
                time.sleep(0.1)
        # The header index locks tansu's database while it is made: wait for it.
        while not os.path.exists(os.path.join(self.dir, "tansu.db.indexed")):
            if time.time() > deadline:
                sys.exit("bench-ingest: tansu's header index was not made")
            time.sleep(0.05)

    def cpu(self):
        return process_cpu(self.process.pid)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def ingest_env(broker, topic, state):
    env = dict(os.environ)
    env.update({
        "STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "STOCKSTREAM__KAFKA__TOPICS__QUOTES": topic,
        "STOCKSTREAM__KAFKA__TOPICS__PARTITIONS": str(PARTITIONS),
        "STOCKSTREAM__INGEST__STATE_DIR": state,
        "STOCKSTREAM__INGEST__COMPRESSION": "lz4",
        "STOCKSTREAM__INGEST__LINGER": "5ms",
        "STOCKSTREAM__INGEST__BATCH_BYTES": "1000000",
        "STOCKSTREAM__TELEMETRY__LOG_LEVEL": "warn",
    })
    return env


def ingest(args, env, check=True):
    return subprocess.run([os.path.join(BIN, "stockstream-ingest"), *args], env=env,
                          check=check, capture_output=True, text=True)


def measured(command, **kwargs):
    """Runs command; returns (wall seconds, CPU seconds of the child, stdout)."""
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             **kwargs)
    out, err = child.communicate()
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        sys.exit(f"bench-ingest: {command[0]} failed ({child.returncode}):\n{out}\n{err}")
    return wall, usage, out + err


def cpu_of(before, after):
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def contender(name, work, run):
    broker = Broker(work)
    try:
        topic = "bench." + re.sub(r"[^a-z]", "", name.lower())
        state = tempfile.mkdtemp(dir=work)
        env = ingest_env(broker, topic, state)
        ingest(["topics"], env)
        broker_before = broker.cpu()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, after, output = run(broker, topic, env)
        client_cpu = cpu_of(before, after)
        broker_cpu = broker.cpu() - broker_before
        count = int(ingest(["count", "--topic", topic], env).stdout.strip())
        if count != ROWS:
            sys.exit(f"bench-ingest: {name} left {count} records on {topic}, expected {ROWS}:\n{output}")
        result = {
            "name": name, "rows_per_s": ROWS / wall, "wall_s": wall,
            "cpu_s_per_m": client_cpu * 1e6 / ROWS, "broker_cpu_s_per_m": broker_cpu * 1e6 / ROWS,
        }
        say(f"{name}: {result['rows_per_s']:,.0f} rows/s in {wall:.1f}s, "
            f"{result['cpu_s_per_m']:.1f} CPU-s per million rows (broker {result['broker_cpu_s_per_m']:.1f})")
        return result
    finally:
        broker.stop()


def build_rdkafka_performance():
    """Links librdkafka's rdkafka_performance example against the static library rdkafka-sys
    built (same librdkafka version as ours); cached per version."""
    libs = sorted(glob.glob(os.path.join(TARGET_DIR, "*", "build", "rdkafka-sys-*", "out", "src",
                                         "librdkafka-static.a")), key=os.path.getmtime)
    if not libs:
        return None, "no librdkafka build found under " + TARGET_DIR
    out = os.path.dirname(os.path.dirname(libs[-1]))
    version = "unknown"
    with open(os.path.join(out, "src", "rdkafka.h")) as handle:
        match = re.search(r'#define RD_KAFKA_VERSION\s+0x([0-9a-fA-F]+)', handle.read())
        if match:
            value = int(match.group(1), 16)
            version = f"{value >> 24}.{(value >> 16) & 0xff}.{(value >> 8) & 0xff}"
    binary = os.path.join(CACHE, "bench", f"rdkafka_performance-{version}")
    if os.path.exists(binary):
        return binary, version
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    with open(os.path.join(out, "Makefile.config")) as handle:
        zstd = re.findall(r"-L(\S*zstd-sys\S*)", handle.read())
    command = ["cc", "-O2", "-I", os.path.join(out, "src"), "-o", binary,
               os.path.join(out, "examples", "rdkafka_performance.c"), libs[-1]]
    command += [f"-L{path}" for path in zstd] + ["-lzstd", "-lz", "-lpthread", "-lm", "-ldl", "-lrt"]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode != 0:
        return None, built.stderr[-2000:]
    return binary, version


def main():
    work = tempfile.mkdtemp(prefix="stockstream-bench-")
    try:
        csv_path = os.path.join(work, "quotes.csv")
        ndjson_path = os.path.join(work, "quotes.ndjson")
        symbols = 40
        days = -(-ROWS // symbols)
        say(f"generating {symbols * days:,} rows ({symbols} symbols x {days} trading days)")
        for path, form in ((csv_path, "csv"), (ndjson_path, "ndjson")):
            subprocess.run([os.path.join(BIN, "stockstream-ingest"), "generate", "--output", path,
                            "--format", form, "--symbol-count", str(symbols), "--days", str(days),
                            "--start", "1950-01-02", "--seed", "1"], check=True, capture_output=True)
        # Exactly ROWS rows in both files.
        with open(csv_path) as handle:
            lines = handle.readlines()[: ROWS + 1]
        with open(csv_path, "w") as handle:
            handle.writelines(lines)
        with open(ndjson_path) as handle:
            records = handle.readlines()[:ROWS]
        with open(ndjson_path, "w") as handle:
            handle.writelines(records)
        average = sum(len(line) - 1 for line in records) // len(records)
        del lines, records

        say("broker-free: parse, validate and encode (replay --dry-run)")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, after, output = measured([os.path.join(BIN, "stockstream-ingest"), "replay",
                                        "--dry-run", "--json", "--file", csv_path])
        summary = json.loads(output[: output.rindex("}") + 1])
        if summary["produced"] != ROWS:
            sys.exit(f"bench-ingest: dry run encoded {summary['produced']} rows")
        encode_rate = ROWS / summary["elapsed_seconds"]
        encode_cpu = cpu_of(before, after) * 1e6 / ROWS
        say(f"parse+encode without a broker: {encode_rate:,.0f} rows/s on one core "
            f"({encode_cpu:.2f} CPU-s per million rows)")

        results = []

        def ours(broker, topic, env):
            return measured([os.path.join(BIN, "stockstream-ingest"), "replay", "--mode", "max",
                             "--file", csv_path], env=env)

        say("running stockstream replay --mode max")
        results.append(contender("stockstream", work, ours))

        binary, detail = build_rdkafka_performance()
        if binary:
            def rdkafka(broker, topic, env):
                command = [binary, "-P", "-t", topic, "-b", broker.bootstrap, "-s", str(average),
                           "-c", str(ROWS), "-z", "lz4", "-a", "-1", "-q"]
                for key, value in SETTINGS.items():
                    if key not in ("acks", "compression.type"):
                        command += ["-X", f"{key}={value}"]
                for key, value in HEADERS:
                    command += ["-H", f"{key}={value}"]
                return measured(command)

            say(f"running rdkafka_performance (librdkafka {detail}), {average}-byte payloads")
            results.append(contender("rdkafka_performance", work, rdkafka))
        else:
            say(f"rdkafka_performance could not be built, skipping it: {detail}")

        def python_peer(broker, topic, env):
            return measured([sys.executable, os.path.join(HERE, "bench_peer_producer.py"),
                             broker.bootstrap, topic, ndjson_path, json.dumps(SETTINGS),
                             json.dumps(HEADERS)])

        say("running the confluent-kafka producer on the pre-serialized rows")
        results.append(contender("confluent-kafka", work, python_peer))

        print()
        print(f"{'contender':<22}{'rows/s':>12}{'wall s':>9}{'CPU-s/M rows':>15}{'broker CPU-s/M':>17}")
        for result in results:
            print(f"{result['name']:<22}{result['rows_per_s']:>12,.0f}{result['wall_s']:>9.1f}"
                  f"{result['cpu_s_per_m']:>15.2f}{result['broker_cpu_s_per_m']:>17.2f}")
        print(f"{'parse+encode, no broker':<22}{encode_rate:>12,.0f}{'':>9}{encode_cpu:>15.2f}")
        ours_result = results[0]
        peer = next((r for r in results if r["name"] == "rdkafka_performance"), results[-1])
        print(f"ratio: {ours_result['rows_per_s'] / peer['rows_per_s']:.2f} "
              f"(stockstream rows/s over {peer['name']}'s; CPU per row: "
              f"{ours_result['cpu_s_per_m']:.2f} vs {peer['cpu_s_per_m']:.2f} CPU-s per million rows)")
        for other in results[1:]:
            if other is not peer:
                print(f"ratio vs {other['name']}: {ours_result['rows_per_s'] / other['rows_per_s']:.2f} "
                      f"(CPU {ours_result['cpu_s_per_m']:.2f} vs {other['cpu_s_per_m']:.2f} CPU-s per million rows)")
        print(f"headroom: without a broker stockstream parses and encodes "
              f"{encode_rate / ours_result['rows_per_s']:.1f}x the rows/s the broker accepted")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
