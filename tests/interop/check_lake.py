"""Independent check of the lake with DuckDB: every Parquet file readers see (`visible.py`) is read, and its rows must match
the CSV they came from, value for value, with each (kafka_partition, kafka_offset) exactly once.

usage: check_lake.py LAKE_ROOT CSV_FILE
"""
import csv
import sys

import duckdb

from visible import visible_files


def main(lake: str, csv_path: str) -> int:
    expected = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            key = (row["Index"], row["Date"])
            expected[key] = (
                float(row["Open"]), float(row["High"]), float(row["Low"]), float(row["Close"]),
                float(row["Adj Close"]), int(float(row["Volume"])), float(row["CloseUSD"]),
            )
    files = visible_files(lake)
    if not files:
        print(f"check_lake: no Parquet files under {lake}/quotes")
        return 1
    con = duckdb.connect()
    seen_offsets = set()
    seen_keys = set()
    problems = []
    for path, partition_path in files:
        parts = dict(segment.split("=", 1) for segment in partition_path.split("/"))
        metadata_rows = con.execute("SELECT sum(row_group_num_rows) FROM (SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata(?))", [path]).fetchone()[0]
        columns = {name for (name,) in con.execute("SELECT name FROM parquet_schema(?)", [path]).fetchall()}
        # The symbol is a file column unless the partition path carries it (symbol={symbol}).
        symbol = "symbol" if "symbol" in columns else "NULL"
        if (symbol == "NULL") != ("symbol" in parts):
            problems.append(f"{path}: the symbol must be in the path or in the file, exactly once")
        rows = con.execute(
            f"SELECT {symbol}, strftime(trade_date, '%Y-%m-%d'), open, high, low, close, adj_close, volume, close_usd, kafka_partition, kafka_offset FROM read_parquet(?, hive_partitioning = false)",
            [path],
        ).fetchall()
        if metadata_rows != len(rows):
            problems.append(f"{path}: footer says {metadata_rows} rows, DuckDB read {len(rows)}")
        for file_symbol, trade_date, *values, partition, offset in rows:
            key = (file_symbol or parts.get("symbol"), trade_date)
            # The path must agree with the row (the layouts the tests use).
            for name, value in (("year", trade_date[:4]), ("date", trade_date), ("ym", trade_date[:7])):
                if name in parts and parts[name] != value:
                    problems.append(f"{path}: {trade_date} does not belong in {name}={parts[name]}")
            if (partition, offset) in seen_offsets:
                problems.append(f"{path}: kafka partition {partition} offset {offset} appears twice")
            seen_offsets.add((partition, offset))
            if key in seen_keys:
                problems.append(f"{path}: {key} appears twice")
            seen_keys.add(key)
            if key not in expected:
                problems.append(f"{path}: {key} is not in the CSV")
            elif tuple(values) != expected[key]:
                problems.append(f"{path}: {key} has {tuple(values)}, the CSV has {expected[key]}")
    missing = set(expected) - seen_keys
    if missing:
        problems.append(f"{len(missing)} CSV rows are not in the lake, e.g. {sorted(missing)[:3]}")
    for problem in problems[:20]:
        print("check_lake:", problem)
    print(f"check_lake: {len(files)} files, {len(seen_keys)} rows read by DuckDB {duckdb.__version__}, {len(expected)} rows in the CSV, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
