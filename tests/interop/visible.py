"""The Parquet files of a local lake that readers see, the way the catalog decides it.

A partition the catalog reads from a compacted generation (`quotes/_compacted/<path>/g<id>/`)
shows that generation's files plus the files in its own directory whose Kafka range (from the
name `<topic>+<partition>+<first>+<last>.parquet`) no generation file covers: late files whose
copy has not landed yet. Every other partition shows the files in its own directory. Generations
the catalog does not read (older ones in their grace period, unfinished ones) are not read.
"""
import glob
import json
import os


def file_range(path):
    stem = os.path.basename(path)[: -len(".parquet")]
    topic, partition, first, last = stem.rsplit("+", 3)
    return topic, int(partition), int(first), int(last)


def overlaps(a, b):
    return a[0] == b[0] and a[1] == b[1] and a[2] <= b[3] and b[2] <= a[3]


def visible_files(lake, table="quotes"):
    """[(path, partition path)] of the files a reader sees, sorted."""
    generations = {}
    catalog_path = os.path.join(lake, "_stockstream", "catalog", "catalog.json")
    if os.path.exists(catalog_path):
        with open(catalog_path, encoding="utf-8") as handle:
            catalog = json.load(handle)
        for database in catalog.get("databases", {}).values():
            definition = database.get("tables", {}).get(table)
            if not definition:
                continue
            for path, partition in definition.get("partitions", {}).items():
                if "/_compacted/" in "/" + partition["location"]:
                    generations[path] = partition["location"]
    root = os.path.join(lake, table)
    found = []
    ranges = {}
    for path, location in generations.items():
        files = sorted(glob.glob(os.path.join(lake, location, "*.parquet")))
        ranges[path] = [file_range(name) for name in files]
        found.extend((name, path) for name in files)
    for name in sorted(glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True)):
        relative = os.path.relpath(os.path.dirname(name), root)
        if relative.split(os.sep)[0].startswith("_"):
            continue
        path = relative.replace(os.sep, "/")
        if path in ranges and any(overlaps(file_range(name), covered) for covered in ranges[path]):
            continue
        found.append((name, path))
    return sorted(found)
