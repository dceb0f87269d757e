#!/usr/bin/env bash
# Checks the deploy/ files: every systemd unit (the four services, the probe and its timer) with
# `systemd-analyze verify`, where any output at all is a failure (unknown keys are only warnings
# with exit 0), against the binaries just built (ExecStart is pointed at $STOCKSTREAM_BIN and the
# probe at deploy/ in a temporary copy); the services' hardening and their exposure score
# (`systemd-analyze security`, SAFE or OK); and the shell scripts with
# `sh -n`. Installs systemd's tools from Debian if they are missing. The installed tree is checked
# again from the release tarball by tests/tests/infra.rs.
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
fail() {
  echo "verify-deploy: $*"
  failures=$((failures + 1))
}

for unit in "$ROOT"/deploy/*.service "$ROOT"/deploy/*.timer; do
  sed -e "s#/usr/local/bin/#$BIN/#" -e "s#/usr/local/lib/stockstream/#$ROOT/deploy/#" "$unit" >"$tmp/$(basename "$unit")"
done
for unit in "$ROOT"/deploy/*.service "$ROOT"/deploy/*.timer; do
  name=$(basename "$unit")
  binary=$(sed -n 's#^ExecStart=\([^ ]*\).*#\1#p' "$tmp/$name")
  if [ -n "$binary" ] && [ ! -x "$binary" ]; then
    fail "$name runs $binary, which is not built"
    continue
  fi
  # Long-running services restart and run as the shared dynamic user in a read-only system.
  if grep -q '^ExecStart=/usr/local/bin/' "$unit"; then
    for required in '^Restart=on-failure' '^DynamicUser=yes' '^ProtectSystem=strict' \
      '^EnvironmentFile=-/etc/stockstream/stockstream.env' '^LoadCredential=stockstream.toml:'; do
      grep -q "$required" "$unit" || fail "$name lacks ${required#^}"
    done
  fi
  if output=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/$name" 2>&1) && [ -z "$output" ]; then
    echo "verify-deploy: $name ok"
  else
    fail "$name has problems:"
    echo "$output"
  fi
done

# Exposure as systemd scores it (0 = most locked down, 10 = unprotected): every unit must be
# "SAFE" or "OK"; the level of each is printed for the record (docs/aws.md lists them).
for unit in "$ROOT"/deploy/*.service; do
  name=$(basename "$unit")
  level=$(cd "$tmp" && systemd-analyze security --offline=true --no-pager "$tmp/$name" 2>&1 |
    sed -n 's/^→ Overall exposure level for [^:]*: //p')
  case "$level" in
    *SAFE* | *OK*) echo "verify-deploy: $name exposure $level" ;;
    *) fail "$name exposure is ${level:-unknown} (want SAFE or OK): see systemd-analyze security" ;;
  esac
done

for script in "$ROOT/deploy/stockstream-probe" "$ROOT/deploy/install.sh" "$ROOT/deploy/aws/setup-host.sh"; do
  if sh -n "$script"; then
    echo "verify-deploy: $(basename "$script") parses"
  else
    fail "$script does not parse"
  fi
done

if [ "$failures" != 0 ]; then
  echo "verify-deploy: $failures problem(s)"
  exit 1
fi
