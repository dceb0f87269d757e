#!/usr/bin/env python3
"""Benchmark peer: a confluent-kafka producer sending pre-serialized quotes, one JSON record per
line of a file, keyed by symbol, with the given producer settings and headers.

usage: bench_peer_producer.py BOOTSTRAP TOPIC NDJSON_FILE SETTINGS_JSON HEADERS_JSON
"""
import json
import sys

from confluent_kafka import Producer

PREFIX = len('{"symbol":"')


def main(bootstrap, topic, path, settings, headers):
    config = {"bootstrap.servers": bootstrap, **json.loads(settings)}
    headers = [tuple(pair) for pair in json.loads(headers)]
    producer = Producer(config)
    failed = []

    def delivered(error, _message):
        if error is not None:
            failed.append(error)

    sent = 0
    with open(path, "rb") as handle:
        for line in handle:
            value = line.rstrip(b"\n")
            key = value[PREFIX:value.index(b'"', PREFIX)]
            while True:
                try:
                    producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            sent += 1
            if sent % 10000 == 0:
                producer.poll(0)
    remaining = producer.flush(180)
    if failed or remaining:
        print(f"peer: {len(failed)} failed, {remaining} undelivered; first: {failed[:1]}", file=sys.stderr)
        return 1
    print(f"peer: {sent} records delivered")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
