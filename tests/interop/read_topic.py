"""Independent reader of a topic with confluent-kafka: prints every record from the start to the
end offsets read first, one JSON object per line: partition, offset, key, value (text), headers.

usage: read_topic.py BOOTSTRAP TOPIC
"""
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def text(value):
    return None if value is None else value.decode("utf-8", errors="replace")


def main(bootstrap: str, topic: str) -> int:
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "stockstream-interop-read",
        "enable.auto.commit": False,
    })
    metadata = consumer.list_topics(topic, timeout=30)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        print(f"read_topic: no topic {topic}", file=sys.stderr)
        return 1
    partitions = sorted(metadata.topics[topic].partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    positions = {p: 0 for p in partitions}
    deadline = time.time() + 180
    while any(positions[p] < ends[p] for p in partitions):
        if time.time() > deadline:
            print(f"read_topic: timed out at {positions} of {ends}", file=sys.stderr)
            return 1
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            print(f"read_topic: {message.error()}", file=sys.stderr)
            return 1
        positions[message.partition()] = message.offset() + 1
        print(json.dumps({
            "partition": message.partition(),
            "offset": message.offset(),
            "key": text(message.key()),
            "value": text(message.value()),
            "headers": {key: text(value) for key, value in (message.headers() or [])},
        }))
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
