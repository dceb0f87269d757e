"""Independent check of a quotes topic with confluent-kafka: every record is read from the start,
decoded as JSON and compared with the CSV; each (symbol, trade_date) must appear exactly once.

usage: check_topic.py BOOTSTRAP TOPIC CSV_FILE
"""
import csv
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def main(bootstrap: str, topic: str, csv_path: str) -> int:
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        expected = {(row["Index"], row["Date"]): float(row["Close"]) for row in csv.DictReader(handle)}
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "stockstream-interop-check",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    metadata = consumer.list_topics(topic, timeout=30)
    partitions = sorted(metadata.topics[topic].partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    positions = {p: 0 for p in partitions}
    seen = {}
    problems = []
    deadline = time.time() + 120
    while any(positions[p] < ends[p] for p in partitions) and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            problems.append(str(message.error()))
            continue
        positions[message.partition()] = message.offset() + 1
        record = json.loads(message.value())
        headers = dict(message.headers() or [])
        if headers.get("stockstream-schema-version") != b"1":
            problems.append(f"offset {message.offset()}: schema-version header is {headers.get('stockstream-schema-version')!r}")
        if message.key() != record["symbol"].encode():
            problems.append(f"offset {message.offset()}: key {message.key()!r} is not the symbol")
        key = (record["symbol"], record["trade_date"])
        seen[key] = seen.get(key, 0) + 1
        if expected.get(key) != record["close"]:
            problems.append(f"{key}: close {record['close']} differs from the CSV's {expected.get(key)}")
    consumer.close()
    duplicates = [key for key, count in seen.items() if count > 1]
    missing = set(expected) - set(seen)
    if duplicates:
        problems.append(f"{len(duplicates)} records appear more than once, e.g. {duplicates[:3]}")
    if missing:
        problems.append(f"{len(missing)} CSV rows are missing, e.g. {sorted(missing)[:3]}")
    for problem in problems[:20]:
        print("check_topic:", problem)
    print(f"check_topic: read {sum(seen.values())} records from {topic} ({len(partitions)} partitions) with confluent-kafka, {len(expected)} rows in the CSV, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
