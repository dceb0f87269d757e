#!/bin/sh
# Installs this stockstream release (the unpacked `make dist` tarball this script sits in).
#
#   sudo ./install.sh [--mode local|aws] [--root DIR] [--services "ingest s3-sink glue-crawler query-api"] [--enable]
#
# Checks SHA256SUMS first, then installs
#   /usr/local/bin/stockstream-*                         the four services
#   /usr/local/lib/systemd/system/stockstream-*          their units and the probe's timer
#   /usr/local/lib/stockstream/stockstream-probe         the probe the alarms read (docs/aws.md)
#   /usr/local/share/stockstream/env/{local,aws}/        the example settings of both modes
#   /usr/local/share/doc/stockstream/                    README and docs
#   /etc/stockstream/*.env, stockstream.toml             the settings of --mode (default local),
#                                                        only where no such file exists yet
# --root installs below DIR instead of / (packaging, tests); --enable (only with the root /)
# reloads systemd and enables and starts the --services (default all four) and the probe timer.
set -eu

usage() {
  echo "usage: install.sh [--mode local|aws] [--root DIR] [--services \"ingest s3-sink glue-crawler query-api\"] [--enable]" >&2
  exit 2
}

mode=local
root=/
enable=no
services="ingest s3-sink glue-crawler query-api"
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) [ $# -ge 2 ] || usage; mode=$2; shift 2 ;;
    --root) [ $# -ge 2 ] || usage; root=$2; shift 2 ;;
    --services) [ $# -ge 2 ] || usage; services=$2; shift 2 ;;
    --enable) enable=yes; shift ;;
    -h | --help) usage ;;
    *) echo "install: unknown argument '$1'" >&2; usage ;;
  esac
done
case "$mode" in
  local | aws) ;;
  *) echo "install: --mode must be local or aws, not '$mode'" >&2; exit 2 ;;
esac
for service in $services; do
  case "$service" in
    ingest | s3-sink | glue-crawler | query-api) ;;
    *) echo "install: unknown service '$service' (known: ingest s3-sink glue-crawler query-api)" >&2; exit 2 ;;
  esac
done
if [ "$enable" = yes ] && [ "$root" != / ]; then
  echo "install: --enable needs the root / (systemd runs there)" >&2
  exit 2
fi

# An absolute root: the script works from the release's folder.
mkdir -p "$root"
root=$(cd "$root" && pwd)
release=$(cd "$(dirname "$0")" && pwd)
cd "$release"
if ! sha256sum --quiet --check --strict SHA256SUMS; then
  echo "install: $release does not match its SHA256SUMS; download the release again" >&2
  exit 1
fi

prefix="${root%/}/usr/local"
etc="${root%/}/etc/stockstream"
install -d -m 0755 "$prefix/bin" "$prefix/lib/systemd/system" "$prefix/lib/stockstream" \
  "$prefix/share/stockstream/env" "$prefix/share/doc/stockstream"
install -m 0755 bin/stockstream-* "$prefix/bin/"
install -m 0644 systemd/stockstream-* "$prefix/lib/systemd/system/"
install -m 0755 lib/stockstream-probe "$prefix/lib/stockstream/"
for example in local aws; do
  install -d -m 0755 "$prefix/share/stockstream/env/$example"
  install -m 0644 "env/$example"/* "$prefix/share/stockstream/env/$example/"
done
cp -R doc/. "$prefix/share/doc/stockstream/"
cp VERSION "$prefix/share/doc/stockstream/VERSION"

# Settings are the operator's: installed once, never overwritten. Root-only (the TOML may hold
# a Kafka password; systemd reads the files before it starts the services).
install -d -m 0755 "$etc"
for file in "env/$mode"/*; do
  target="$etc/$(basename "$file")"
  if [ -e "$target" ]; then
    echo "install: kept $target"
  else
    install -m 0600 "$file" "$target"
    echo "install: wrote $target ($mode mode example: edit it)"
  fi
done

echo "install: stockstream $(cat VERSION | head -n 1) installed below ${root}"
if [ "$enable" = yes ]; then
  units="stockstream-probe.timer"
  for service in $services; do
    units="$units stockstream-$service.service"
  done
  systemctl daemon-reload
  # shellcheck disable=SC2086 # one word per unit
  systemctl enable --now $units
  echo "install: enabled and started $units"
fi
