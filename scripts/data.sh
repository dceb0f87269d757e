#!/usr/bin/env bash
# Downloads the original indexProcessed.csv from the seed repository into data/ and checks its git
# blob id. Exits 1 (with the reason) when it cannot be downloaded or does not match.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/data/indexProcessed.csv"
URL="https://raw.githubusercontent.com/darshilparmar/stock-market-kafka-data-engineering-project/main/indexProcessed.csv"
BLOB="fc9eba0df2f3cb1b9f601f0091b21fd414c252e6"

if [ -f "$OUT" ] && [ "$(git hash-object "$OUT")" = "$BLOB" ]; then
  echo "data: $OUT present (blob $BLOB)"
  exit 0
fi
mkdir -p "$ROOT/data"
tmp=$(mktemp "$ROOT/data/.download.XXXXXX")
trap 'rm -f "$tmp"' EXIT
if ! curl -fsSL --connect-timeout 5 --max-time 60 -o "$tmp" "$URL"; then
  echo "data: cannot download $URL (offline or blocked)" >&2
  exit 1
fi
got=$(git hash-object "$tmp")
if [ "$got" != "$BLOB" ]; then
  echo "data: downloaded file has blob $got, expected $BLOB; not using it" >&2
  exit 1
fi
mv "$tmp" "$OUT"
trap - EXIT
echo "data: downloaded $OUT ($(wc -l <"$OUT") lines, blob $BLOB)"
