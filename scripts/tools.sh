#!/usr/bin/env bash
# Installs the external tools stockstream's local stack and tests need, once per machine,
# into a cache outside the checkout (default ~/.cache/stockstream). Idempotent: a second run
# only checks what is there. Usage: scripts/tools.sh [tansu] [python] [schemathesis] [checkov] [cloud-init] [browser]
set -euo pipefail

CACHE="${STOCKSTREAM_CACHE:-$HOME/.cache/stockstream}"
# shellcheck source=../deploy/env/ports.env
. "$(cd "$(dirname "$0")/.." && pwd)/deploy/env/ports.env"
TANSU_ROOT="$CACHE/tansu-$TANSU_VERSION"
VENV="$CACHE/venv"
# moto's server extra brings boto3, PyYAML and cfn-lint (pinned here: the infra tests lint with it).
PY_PACKAGES=(duckdb==1.4.1 confluent-kafka==2.12.0 "moto[server,s3,glue,cloudformation,ec2,iam,logs]==5.2.5" cfn-lint==1.58.0)
# schemathesis (API fuzzing from /openapi.json) brings its own pins: a venv of its own.
SCHEMATHESIS_VENV="$CACHE/venv-schemathesis"
SCHEMATHESIS_VERSION="4.32.5"
# checkov pins its own boto3 and friends: a venv of its own.
CHECKOV_VENV="$CACHE/venv-checkov"
CHECKOV_VERSION="3.3.30"
# The dashboard's browser test: Debian's Chromium and ChromeDriver (same version, from apt) driven
# by selenium in a venv of its own, so its pins never meet the test clients' ones.
BROWSER_VENV="$CACHE/venv-browser"
# selenium 4.52.0 needs a certifi newer than the PyPI mirror here holds.
BROWSER_PY_PACKAGES=(selenium==4.51.0)
BROWSER_DEBS=(chromium chromium-driver)

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

install_schemathesis() {
  local stamp="$SCHEMATHESIS_VENV/.stockstream-schemathesis-$SCHEMATHESIS_VERSION"
  if [ -f "$stamp" ]; then
    echo "tools: schemathesis $SCHEMATHESIS_VERSION present at $SCHEMATHESIS_VENV"
    return
  fi
  echo "tools: creating a venv for schemathesis $SCHEMATHESIS_VERSION at $SCHEMATHESIS_VENV"
  python3 -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  touch "$stamp"
}

install_checkov() {
  local stamp="$CHECKOV_VENV/.stockstream-checkov-$CHECKOV_VERSION"
  if [ -f "$stamp" ]; then
    echo "tools: checkov $CHECKOV_VERSION present at $CHECKOV_VENV"
    return
  fi
  echo "tools: creating a venv for checkov $CHECKOV_VERSION at $CHECKOV_VENV"
  python3 -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  touch "$stamp"
}

# Debian's cloud-init (22.4 on bookworm, the release's target system) for `cloud-init schema`,
# and rsyslog to validate the host's log forwarding (`rsyslogd -N1`).
install_cloud_init() {
  if command -v cloud-init >/dev/null 2>&1 && command -v rsyslogd >/dev/null 2>&1; then
    echo "tools: cloud-init and rsyslog present ($(cloud-init --version 2>&1))"
    return
  fi
  echo "tools: installing Debian's cloud-init and rsyslog (to validate the host's configuration)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cloud-init rsyslog >/dev/null
}

install_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "tools: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) and chromedriver present"
  else
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || {
        echo "tools: chromium/chromedriver missing and not root: run 'apt-get install ${BROWSER_DEBS[*]}' as root" >&2
        exit 1
      }
      sudo=(sudo)
    fi
    echo "tools: installing ${BROWSER_DEBS[*]} with apt-get (Debian's packages, about 300 MB)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${BROWSER_DEBS[@]}"
  fi
  local stamp="$BROWSER_VENV/.stockstream-$(printf '%s\n' "${BROWSER_PY_PACKAGES[@]}" | sha1sum | cut -c1-12)"
  if [ -f "$stamp" ]; then
    echo "tools: browser venv present at $BROWSER_VENV"
    return
  fi
  echo "tools: creating browser venv at $BROWSER_VENV with ${BROWSER_PY_PACKAGES[*]}"
  python3 -m venv "$BROWSER_VENV"
  "$BROWSER_VENV/bin/pip" install --quiet --disable-pip-version-check "${BROWSER_PY_PACKAGES[@]}"
  touch "$stamp"
}

what=("$@")
[ ${#what[@]} -eq 0 ] && what=(tansu python schemathesis checkov cloud-init browser)
for tool in "${what[@]}"; do
  case "$tool" in
    tansu) install_tansu ;;
    python) install_python ;;
    schemathesis) install_schemathesis ;;
    checkov) install_checkov ;;
    cloud-init) install_cloud_init ;;
    browser) install_browser ;;
    *) echo "tools: unknown tool '$tool' (known: tansu python schemathesis checkov cloud-init browser)" >&2; exit 2 ;;
  esac
done
