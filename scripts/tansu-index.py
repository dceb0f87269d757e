"""Adds the index tansu 0.6.0's sqlite schema lacks: header (topition, offset_id).

tansu fetches each record's headers with a query on `header` by (topition, offset_id), and the
table has no index, so every fetched record scans every header row ever written: a fetch costs
records x all headers (measured: 3,219 records from a 46k-record topic took 37 s of broker CPU;
with the index, 33,219 records take 1.2 s). Production Kafka has no such table; this only
speeds up the local broker. Usage: tansu-index.py PATH/TO/tansu.db (waits up to 30 s for tansu
to create its schema), then creates PATH.indexed.
"""
import sqlite3
import sys
import time

path = sys.argv[1]
deadline = time.monotonic() + 30
while True:
    try:
        db = sqlite3.connect(path, timeout=30)
        has_table = db.execute(
            "select 1 from sqlite_master where type = 'table' and name = 'header'"
        ).fetchone()
        if has_table:
            db.execute(
                "create index if not exists stockstream_header_record"
                " on header (topition, offset_id)"
            )
            db.commit()
            db.close()
            # Callers wait for this before using the broker: creating the index locks the
            # database, and a topic created meanwhile fails with an unknown broker error.
            open(path + ".indexed", "w").close()
            break
        db.close()
    except sqlite3.OperationalError as error:
        last = error
    if time.monotonic() > deadline:
        sys.exit(f"tansu-index: no header table in {path} after 30 s")
    time.sleep(0.1)
