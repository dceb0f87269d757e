"""Adds the index tansu 0.6.0's sqlite schema lacks: header (topition, offset_id).

tansu fetches each record's headers with a query on `header` by (topition, offset_id), and the
table has no index, so every fetched record scans every header row ever written: a fetch costs
records x all headers (measured: 3,219 records from a 46k-record topic took 37 s of broker CPU;
with the index, 33,219 records take 1.2 s). Production Kafka has no such table; this only
speeds up the local broker.

Usage: tansu-index.py PATH/TO/tansu.db HOST:PORT. It waits (up to 30 s) until tansu listens on
HOST:PORT, then creates the index, then PATH.indexed. Not earlier: tansu creates its schema and
registers the broker before it listens, has no busy timeout, and exits (status 0) when a write
finds the database locked; creating the index at the same moment as that registration made 6
starts in 40 fail with 'database is locked' (register_broker.sql).
"""
import socket
import sqlite3
import sys
import time

path, bootstrap = sys.argv[1], sys.argv[2]
host, port = bootstrap.rsplit(":", 1)
deadline = time.monotonic() + 30
while True:
    try:
        socket.create_connection((host, int(port)), timeout=0.2).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"tansu-index: tansu did not listen on {bootstrap} within 30 s")
        time.sleep(0.05)
# Python's sqlite waits (timeout) for a lock tansu holds; tansu would not wait for ours, but
# nothing writes to it until callers see PATH.indexed.
db = sqlite3.connect(path, timeout=30)
db.execute(
    "create index if not exists stockstream_header_record on header (topition, offset_id)"
)
db.commit()
db.close()
open(path + ".indexed", "w").close()
