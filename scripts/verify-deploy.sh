#!/usr/bin/env bash
# Checks the systemd units in deploy/ with `systemd-analyze verify`, against the binaries just
# built (ExecStart is pointed at $STOCKSTREAM_BIN in a temporary copy). Installs systemd's tools
# from Debian if they are missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="${STOCKSTREAM_BIN:-$ROOT/target/debug}"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "verify-deploy: installing systemd (for systemd-analyze)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
for unit in "$ROOT"/deploy/*.service; do
  name=$(basename "$unit")
  sed "s#/usr/local/bin/#$BIN/#" "$unit" >"$tmp/$name"
  binary=$(sed -n 's#^ExecStart=\([^ ]*\).*#\1#p' "$tmp/$name")
  [ -x "$binary" ] || { echo "verify-deploy: $name runs $binary, which is not built"; failures=$((failures + 1)); continue; }
  grep -q '^Restart=on-failure' "$unit" || { echo "verify-deploy: $name lacks Restart=on-failure"; failures=$((failures + 1)); }
  grep -q '^DynamicUser=yes' "$unit" || { echo "verify-deploy: $name lacks DynamicUser=yes"; failures=$((failures + 1)); }
  grep -q '^ProtectSystem=strict' "$unit" || { echo "verify-deploy: $name lacks ProtectSystem=strict"; failures=$((failures + 1)); }
  if output=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/$name" 2>&1) && [ -z "$output" ]; then
    echo "verify-deploy: $name ok"
  else
    echo "verify-deploy: $name has problems:"
    echo "$output"
    failures=$((failures + 1))
  fi
done
if [ "$failures" != 0 ]; then
  echo "verify-deploy: $failures problem(s)"
  exit 1
fi
