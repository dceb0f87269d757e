"""Independent check of the lake with DuckDB: counts rows and (kafka_partition, kafka_offset)
pairs in the files readers see (`visible.py`: compacted partitions read their generation), and
compares them with the topic's end offsets.

usage: lake_offsets.py LAKE_ROOT PARTITION=END_OFFSET...
prints one JSON object: rows, distinct, duplicates, missing (offsets below the end not in the lake),
files, no_lineage (rows without Kafka partition, offset or ingestion time)
"""
import json
import sys

import duckdb

from visible import visible_files


def main(lake, ends):
    files = [path for path, _ in visible_files(lake)]
    if not files:
        print(json.dumps({"rows": 0, "distinct": 0, "duplicates": 0, "missing": sum(ends.values()), "files": 0, "no_lineage": 0}))
        return 0
    con = duckdb.connect()
    listing = "[" + ",".join("'" + path.replace("'", "''") + "'" for path in files) + "]"
    rows, distinct, no_lineage = con.execute(
        f"SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)), "
        f"count(*) FILTER (WHERE kafka_partition IS NULL OR kafka_offset IS NULL OR ingested_at IS NULL) "
        f"FROM read_parquet({listing}, hive_partitioning = false)"
    ).fetchone()
    missing = 0
    for partition, end in ends.items():
        present = con.execute(
            f"SELECT count(DISTINCT kafka_offset) FROM read_parquet({listing}, hive_partitioning = false) "
            f"WHERE kafka_partition = {partition} AND kafka_offset < {end}"
        ).fetchone()[0]
        missing += end - present
    print(json.dumps({"rows": rows, "distinct": distinct, "duplicates": rows - distinct,
                      "missing": missing, "files": len(files), "no_lineage": no_lineage}))
    return 0


if __name__ == "__main__":
    ends = {int(p): int(e) for p, e in (arg.split("=") for arg in sys.argv[2:])}
    sys.exit(main(sys.argv[1], ends))
