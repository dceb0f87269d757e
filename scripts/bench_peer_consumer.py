#!/usr/bin/env python3
"""Benchmark peer: a raw confluent-kafka consumer reading a topic from the start to the end
offsets read first, discarding the records.

usage: bench_peer_consumer.py BOOTSTRAP TOPIC
"""
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def main(bootstrap, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-peer-{time.time()}",
                         "enable.auto.commit": False})
    partitions = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    positions = {p: 0 for p in partitions}
    read = 0
    while any(positions[p] < ends[p] for p in partitions):
        for message in consumer.consume(10000, 1.0):
            if message.error():
                continue
            positions[message.partition()] = message.offset() + 1
            read += 1
    consumer.close()
    print(f"peer: read {read} records")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
