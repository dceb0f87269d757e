#!/usr/bin/env bash
# Packs a stockstream release: one versioned tarball with the four service binaries, the systemd
# units and the probe, example settings for the local and the AWS mode, the docs, the
# CloudFormation template, an install script and SHA256SUMS of every file in it.
#
#   scripts/dist.sh --bin-dir target/release [--out dist] [--fast]
#
# `make dist` builds release binaries and calls this. --fast (tests) strips the binaries' symbols
# and debug information and compresses with gzip -1: debug binaries that only have to install and
# answer --version. Prints the tarball's path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=""
out="$ROOT/dist"
level=9
strip_binaries=no
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fast) level=1; strip_binaries=yes; shift ;;
    *) echo "dist: unknown argument '$1' (usage: dist.sh --bin-dir DIR [--out DIR] [--fast])" >&2; exit 2 ;;
  esac
done
[ -n "$bin_dir" ] || { echo "dist: --bin-dir is required (the cargo profile directory with the binaries)" >&2; exit 2; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
[ -n "$version" ] || { echo "dist: no [workspace.package] version in Cargo.toml" >&2; exit 1; }
name="stockstream-$version-$(uname -m)-linux-gnu"
commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then
  commit="$commit-dirty"
fi

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
release="$staging/$name"
mkdir -p "$release"/{bin,systemd,lib,env,doc/docs,infra}

for binary in stockstream-ingest stockstream-s3-sink stockstream-glue-crawler stockstream-query-api; do
  [ -x "$bin_dir/$binary" ] || { echo "dist: $bin_dir/$binary is not built" >&2; exit 1; }
  answer=$("$bin_dir/$binary" --version)
  [ "$answer" = "$binary $version" ] || { echo "dist: $binary --version says '$answer', not '$binary $version'" >&2; exit 1; }
  cp "$bin_dir/$binary" "$release/bin/"
  if [ "$strip_binaries" = yes ]; then
    strip --strip-all "$release/bin/$binary"
  fi
done
cp "$ROOT"/deploy/stockstream-*.service "$ROOT"/deploy/stockstream-*.timer "$release/systemd/"
cp "$ROOT/deploy/stockstream-probe" "$release/lib/"
cp -R "$ROOT/deploy/env/local" "$ROOT/deploy/env/aws" "$release/env/"
cp "$ROOT/deploy/install.sh" "$release/"
mkdir -p "$release/aws"
cp "$ROOT"/deploy/aws/* "$release/aws/"
cp "$ROOT/README.md" "$release/doc/"
cp "$ROOT"/docs/*.md "$release/doc/docs/"
cp "$ROOT"/infra/*.yaml "$ROOT/infra/README.md" "$release/infra/"
profile=$(basename "$bin_dir")
printf '%s\ncommit %s\nprofile %s\n' "$version" "$commit" "$profile" >"$release/VERSION"
(cd "$release" && find . -type f ! -name SHA256SUMS | LC_ALL=C sort | sed 's#^\./##' | xargs sha256sum >SHA256SUMS)

mkdir -p "$out"
tarball="$out/$name.tar.gz"
# Reproducible: sorted, owned by root, dated by the commit.
epoch=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$staging" -cf - "$name" |
  gzip -n "-$level" >"$tarball"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "$tarball"
