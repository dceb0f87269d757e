#!/usr/bin/env bash
# Starts, stops and reports the local stack: tansu broker (unless KAFKA_BOOTSTRAP names a cluster),
# stockstream-s3-sink, stockstream-glue-crawler and stockstream-query-api. State lives in $VAR:
# tansu's sqlite file, the lake, ingest's source offsets, logs and pid files.
# Usage: scripts/stack.sh start|stop|status
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VAR="${STOCKSTREAM_VAR:-$ROOT/var}"
BIN="${STOCKSTREAM_BIN:-$ROOT/target/debug}"
# shellcheck source=../deploy/env/ports.env
. "$ROOT/deploy/env/ports.env"
CACHE="${STOCKSTREAM_CACHE:-$HOME/.cache/stockstream}"
export STOCKSTREAM_TANSU="${STOCKSTREAM_TANSU:-$CACHE/tansu-$TANSU_VERSION/bin/tansu}"
KAFKA_PORT="${KAFKA_PORT:-$DEFAULT_KAFKA_PORT}"
BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"
QUERY_LISTEN="${QUERY_LISTEN:-127.0.0.1:$DEFAULT_QUERY_PORT}"
SINK_LISTEN="${SINK_LISTEN:-127.0.0.1:$DEFAULT_SINK_PORT}"
CRAWLER_LISTEN="${CRAWLER_LISTEN:-127.0.0.1:$DEFAULT_CRAWLER_PORT}"
SERVICES=(s3-sink glue-crawler query-api)

mkdir -p "$VAR/log" "$VAR/run" "$VAR/lake" "$VAR/ingest" "$VAR/tansu"

say() { echo "stack: $*"; }

# Starts a command detached from this shell: its own session, no inherited descriptors beyond
# stdin (/dev/null), stdout and stderr (the log), so callers piping our output are not held open.
daemonize() { # logfile pidfile workdir command...
  local log=$1 pidfile=$2 workdir=$3
  shift 3
  (
    cd "$workdir"
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" </dev/null >>"$log" 2>&1
  ) &
  echo $! >"$pidfile"
}

# Whether process $1 runs: a killed process that nobody has reaped yet (a zombie, state Z, which
# `kill -0` still reports; this machine's init reaps late or never) or one that is exiting (X)
# counts as stopped, and so does a pid reused by another program (its command line must name $2).
pid_alive() { # pid [expected name in its command line]
  local pid=$1 expected=${2:-} stat state
  [ -n "$pid" ] || return 1
  if [ -r "/proc/$pid/stat" ]; then
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    state=${stat##*) }
    state=${state%% *}
    case "$state" in Z | X | x | "") return 1 ;; esac
    if [ -n "$expected" ]; then
      tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$expected" || return 1
    fi
    return 0
  fi
  kill -0 "$pid" 2>/dev/null # no /proc (not Linux)
}

alive() { # pidfile [expected name]
  [ -f "$1" ] && pid_alive "$(cat "$1")" "${2:-}"
}

port_open() { # host:port
  (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}

wait_for() { # description seconds command...
  local what=$1 seconds=$2
  shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  say "timed out after ${seconds}s waiting for $what"
  return 1
}

ready() { # host:port
  curl -fsS "http://$1/health/readyz" >/dev/null 2>&1
}

service_env() { # service -> env assignments for it
  echo "STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS=$BOOTSTRAP"
  echo "STOCKSTREAM__LAKE__ROOT=$VAR/lake"
  case "$1" in
    # glibc: keep large buffers mmapped (see deploy/stockstream-s3-sink.service).
    s3-sink) echo "STOCKSTREAM__HTTP__LISTEN=$SINK_LISTEN"; echo "MALLOC_MMAP_THRESHOLD_=1048576" ;;
    # The local stack keeps its lake compact by itself (docs/compaction.md).
    glue-crawler) echo "STOCKSTREAM__HTTP__LISTEN=$CRAWLER_LISTEN"; echo "STOCKSTREAM__LAKE__COMPACTION__ENABLED=${STOCKSTREAM_COMPACTION:-true}" ;;
  esac
  local epoch
  epoch=$(cat "$VAR/run/$1.group-epoch" 2>/dev/null || echo 0)
  case "$1" in
    s3-sink) [ "$epoch" = 0 ] || echo "STOCKSTREAM__SINK__GROUP_ID=stockstream-s3-sink-restart-$epoch" ;;
    glue-crawler) [ "$epoch" = 0 ] || echo "STOCKSTREAM__CRAWLER__GROUP_ID=stockstream-glue-crawler-restart-$epoch" ;;
    query-api) echo "STOCKSTREAM__HTTP__LISTEN=$QUERY_LISTEN"; echo "STOCKSTREAM__QUERY__LIVE_TAIL=true" ;;
  esac
}

listen_of() {
  case "$1" in
    s3-sink) echo "$SINK_LISTEN" ;;
    glue-crawler) echo "$CRAWLER_LISTEN" ;;
    query-api) echo "$QUERY_LISTEN" ;;
  esac
}

start_broker() {
  if [ -n "${KAFKA_BOOTSTRAP:-}" ]; then
    say "using the Kafka cluster at $KAFKA_BOOTSTRAP (no local broker started)"
    return
  fi
  if alive "$VAR/run/tansu.pid" tansu; then
    say "tansu already running (pid $(cat "$VAR/run/tansu.pid")) on $BOOTSTRAP"
    return
  fi
  if port_open "$BOOTSTRAP"; then
    say "port ${BOOTSTRAP##*:} is taken by another program: stop it, or set KAFKA_PORT=<free port>, or KAFKA_BOOTSTRAP=<host:port> to use that cluster"
    exit 1
  fi
  if [ ! -x "$STOCKSTREAM_TANSU" ]; then
    say "tansu is not installed at $STOCKSTREAM_TANSU: run 'make tools' (scripts/tools.sh tansu)"
    exit 1
  fi
  # scripts/tansu.sh execs tansu, so the pid file names the broker itself.
  daemonize "$VAR/log/tansu.log" "$VAR/run/tansu.pid" "$VAR/tansu" "$ROOT/scripts/tansu.sh" "$VAR/tansu" "$BOOTSTRAP"
  wait_for "tansu on $BOOTSTRAP" 30 port_open "$BOOTSTRAP"
  wait_for "tansu's header index (scripts/tansu-index.py)" 30 test -f "$VAR/tansu/tansu.db.indexed"
  say "tansu started (pid $(cat "$VAR/run/tansu.pid")) on $BOOTSTRAP, data in $VAR/tansu/tansu.db"
}

start_service() { # service
  local name=$1 pidfile="$VAR/run/$1.pid" listen
  listen=$(listen_of "$name")
  if alive "$pidfile" "stockstream-$name"; then
    say "$name already running (pid $(cat "$pidfile"))"
    return
  fi
  if [ ! -x "$BIN/stockstream-$name" ]; then
    say "$BIN/stockstream-$name is missing: run 'cargo build --workspace --bins' (make build)"
    exit 1
  fi
  # tansu 0.6.0 keeps a SIGKILLed member in its consumer group for good and hands a new member
  # only part of the partitions (Apache Kafka evicts it after the session timeout). So on the
  # local broker, a sink or catalog service restarted after a crash (pid file left behind) joins
  # a group of its own: nothing is lost or read twice, since the sink resumes from the lake's
  # flush intents and the catalog applies commits idempotently (docs/exactly-once.md).
  if [ -z "${KAFKA_BOOTSTRAP:-}" ] && [ -f "$pidfile" ]; then
    case "$name" in
      s3-sink | glue-crawler)
        echo $(($(cat "$VAR/run/$name.group-epoch" 2>/dev/null || echo 0) + 1)) >"$VAR/run/$name.group-epoch"
        say "$name was not stopped cleanly: it joins consumer group stockstream-$name-restart-$(cat "$VAR/run/$name.group-epoch") (tansu keeps the killed member)"
        ;;
    esac
  fi
  local -a assignments
  mapfile -t assignments < <(service_env "$name")
  daemonize "$VAR/log/$name.log" "$pidfile" "$ROOT" env "${assignments[@]}" "$BIN/stockstream-$name"
  if ! wait_for "$name to be ready on $listen" 90 ready "$listen"; then
    say "last lines of $VAR/log/$name.log:"
    tail -n 20 "$VAR/log/$name.log" || true
    exit 1
  fi
  say "$name ready (pid $(cat "$pidfile")) on http://$listen"
}

stop_pid() { # name pidfile seconds expected-command
  local name=$1 pidfile=$2 seconds=$3 expected=$4 pid
  if ! alive "$pidfile" "$expected"; then
    rm -f "$pidfile"
    return
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((seconds * 5))); do
    pid_alive "$pid" || break
    sleep 0.2
  done
  if pid_alive "$pid"; then
    say "$name (pid $pid) did not stop within ${seconds}s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  say "$name stopped"
}

case "${1:-}" in
  start)
    start_broker
    env STOCKSTREAM__KAFKA__BOOTSTRAP_SERVERS="$BOOTSTRAP" "$BIN/stockstream-ingest" topics
    for service in "${SERVICES[@]}"; do start_service "$service"; done
    ;;
  stop)
    # Reverse order: the API first, the sink drains (flush, commit) before the broker goes.
    stop_pid query-api "$VAR/run/query-api.pid" 40 stockstream-query-api
    stop_pid glue-crawler "$VAR/run/glue-crawler.pid" 40 stockstream-glue-crawler
    stop_pid s3-sink "$VAR/run/s3-sink.pid" 70 stockstream-s3-sink
    stop_pid tansu "$VAR/run/tansu.pid" 20 tansu
    ;;
  status)
    for name in tansu "${SERVICES[@]}"; do
      if alive "$VAR/run/$name.pid" "$name"; then echo "$name: running (pid $(cat "$VAR/run/$name.pid"))"; else echo "$name: stopped"; fi
    done
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
