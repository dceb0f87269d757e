#!/usr/bin/env bash
# `make run`: starts the local stack, replays a dataset, waits until every record on the quotes
# topic is queryable, then prints where to look. Services keep running; `make stop` stops them.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VAR="${STOCKSTREAM_VAR:-$ROOT/var}"
BIN="${STOCKSTREAM_BIN:-$ROOT/target/debug}"
SHARED_DATA="${STOCKSTREAM_SHARED_DATA:-$ROOT/../shared/data/indexProcessed-HSI-1986-2010.csv}"
# shellcheck source=../deploy/env/ports.env
. "$ROOT/deploy/env/ports.env"
KAFKA_PORT="${KAFKA_PORT:-$DEFAULT_KAFKA_PORT}"
BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"
QUERY_LISTEN="${QUERY_LISTEN:-127.0.0.1:$DEFAULT_QUERY_PORT}"
WAIT_SECONDS="${WAIT_SECONDS:-300}"

# 1. The dataset.
data="${DATA:-}"
if [ -n "$data" ]; then
  [ -f "$data" ] || { echo "run: DATA=$data is not a file" >&2; exit 1; }
  echo "run: dataset: $data (from DATA)"
elif "$ROOT/scripts/data.sh"; then
  data="$ROOT/data/indexProcessed.csv"
  echo "run: dataset: $data (the original indexProcessed.csv)"
elif [ -f "$SHARED_DATA" ]; then
  data="$SHARED_DATA"
  echo "run: the original dataset could not be downloaded; using the real slice $data"
else
  data="$ROOT/data/generated.csv"
  echo "run: the original dataset could not be downloaded and no real slice is present; generating $data"
  "$BIN/stockstream-ingest" generate --output "$data"
fi

# 2. The stack.
"$ROOT/scripts/stack.sh" start

# 3. The replay (resumes: rows already sent are not sent again).
STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS="$BOOTSTRAP" STOCKSTREAM__INGEST__STATE_DIR="$VAR/ingest" \
  "$BIN/stockstream-ingest" replay --file "$data"

# 4. Wait until everything on the topic is queryable.
expected=$(STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS="$BOOTSTRAP" "$BIN/stockstream-ingest" count)
echo "run: the quotes topic holds $expected records; waiting until the lake answers with all of them"
query() {
  curl -fsS -X POST "http://$QUERY_LISTEN/v1/query" -H 'content-type: application/json' -d "{\"sql\": \"$1\"}"
}
count=0
for second in $(seq 1 "$WAIT_SECONDS"); do
  count=$(query "SELECT count(*) AS n FROM quotes" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"][0][0])' 2>/dev/null || echo 0)
  if [ "$count" = "$expected" ]; then break; fi
  if [ $((second % 5)) = 0 ]; then echo "run: $count of $expected records queryable after ${second}s"; fi
  sleep 1
done
if [ "$count" != "$expected" ]; then
  echo "run: only $count of $expected records became queryable within ${WAIT_SECONDS}s; see $VAR/log/" >&2
  exit 1
fi

cat <<DONE

stockstream is running: $expected records are queryable.

  Dashboard     http://$QUERY_LISTEN/               (markets, candles, live quotes, SQL console, status)
  Query API     http://$QUERY_LISTEN/v1/…           (POST /v1/query, GET /v1/symbols, /v1/tables; /openapi.json)
  Live quotes   curl -N http://$QUERY_LISTEN/v1/stream/quotes   (Server-Sent Events)
  Metrics       http://$QUERY_LISTEN/metrics, http://127.0.0.1:9101/metrics (sink), http://127.0.0.1:9102/metrics (catalog)
  Kafka         $BOOTSTRAP   topics: quotes, quotes.dlq, lake.commits
  Lake          $VAR/lake/quotes/symbol=…/year=…/*.parquet
  Catalog       make catalog
  Logs          $VAR/log/

Try:
  curl -s -X POST http://$QUERY_LISTEN/v1/query -H 'content-type: application/json' \\
    -d '{"sql": "SELECT symbol, year, count(*) AS days, max(close) AS max_close FROM quotes GROUP BY symbol, year ORDER BY symbol, year LIMIT 5"}'

Stop everything with: make stop
DONE
