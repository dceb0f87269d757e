#!/usr/bin/env bash
# Installs the external tools stockstream's local stack and tests need, once per machine,
# into a cache outside the checkout (default ~/.cache/stockstream). Idempotent: a second run
# only checks what is there. Usage: scripts/tools.sh [tansu] [python]
set -euo pipefail

CACHE="${STOCKSTREAM_CACHE:-$HOME/.cache/stockstream}"
TANSU_VERSION="0.6.0"
TANSU_ROOT="$CACHE/tansu-$TANSU_VERSION"
VENV="$CACHE/venv"
PY_PACKAGES=(duckdb==1.4.1 confluent-kafka==2.12.0 "moto[server,s3,glue]==5.2.5")

mkdir -p "$CACHE"

install_tansu() {
  if [ -x "$TANSU_ROOT/bin/tansu" ]; then
    echo "tools: tansu $TANSU_VERSION present at $TANSU_ROOT/bin/tansu"
    return
  fi
  echo "tools: installing tansu $TANSU_VERSION into $TANSU_ROOT (about 10 minutes on 2 cores, once per machine)"
  cargo install "tansu@$TANSU_VERSION" --locked --no-default-features --features libsql \
    --root "$TANSU_ROOT" --target-dir "$CACHE/tansu-build"
  rm -rf "$CACHE/tansu-build"
}

install_python() {
  local stamp="$VENV/.stockstream-$(printf '%s\n' "${PY_PACKAGES[@]}" | sha1sum | cut -c1-12)"
  if [ -f "$stamp" ]; then
    echo "tools: python venv present at $VENV"
    return
  fi
  echo "tools: creating python venv at $VENV with ${PY_PACKAGES[*]}"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
  touch "$stamp"
}

what=("$@")
[ ${#what[@]} -eq 0 ] && what=(tansu python)
for tool in "${what[@]}"; do
  case "$tool" in
    tansu) install_tansu ;;
    python) install_python ;;
    *) echo "tools: unknown tool '$tool' (known: tansu python)" >&2; exit 2 ;;
  esac
done
