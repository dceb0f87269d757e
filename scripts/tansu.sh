#!/usr/bin/env bash
# Runs the local Kafka-protocol broker (tansu, the version of deploy/env/ports.env) in the
# foreground, as the one way the local stack, the tests and the benchmarks start it:
#   scripts/tansu.sh DATA_DIR HOST:PORT
# sqlite storage in DATA_DIR/tansu.db, listening and advertised on HOST:PORT. tansu 0.6.0's sqlite
# schema lacks the index its header fetches need (scripts/tansu-index.py says why); a helper adds
# it as soon as tansu has created the schema, while tansu runs. The shell replaces itself with
# tansu (exec), so the caller's pid is the broker's: a signal or a kill on drop reaches tansu.
# Environment: STOCKSTREAM_TANSU (the binary; default: the cache's tansu of that version),
# STOCKSTREAM_CACHE.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../deploy/env/ports.env
. "$HERE/../deploy/env/ports.env"
CACHE="${STOCKSTREAM_CACHE:-$HOME/.cache/stockstream}"
TANSU="${STOCKSTREAM_TANSU:-$CACHE/tansu-$TANSU_VERSION/bin/tansu}"

if [ $# -ne 2 ]; then
  echo "usage: scripts/tansu.sh DATA_DIR HOST:PORT" >&2
  exit 2
fi
bootstrap=$2
mkdir -p "$1"
dir=$(cd "$1" && pwd)
if [ ! -x "$TANSU" ]; then
  echo "tansu: not installed at $TANSU: run 'make tools' (scripts/tools.sh tansu)" >&2
  exit 1
fi
cd "$dir"
# tansu-index.py waits (up to 30 s) until tansu listens (its schema is made and the broker
# registered), then adds the index; its output goes where tansu's does.
# Callers wait for tansu.db.indexed (the index is made) before using the broker.
rm -f "$dir/tansu.db.indexed"
python3 "$HERE/tansu-index.py" "$dir/tansu.db" "$bootstrap" &
# tansu resolves the sqlite path against its working directory.
exec "$TANSU" broker --listener-url "tcp://$bootstrap" --advertised-listener-url "tcp://$bootstrap" \
  --storage-engine "sqlite://tansu.db"
