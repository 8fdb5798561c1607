#!/usr/bin/env bash
# Starts our server on a free port with CORS=* and runs the official IIIF validator
# (../shared/peers/validate.sh, PyPI iiif-validator) against it at levels 0-2 for versions
# 3.0 (/iiif/) and 2.0 (/iiif/2/), once with a test image that carries resolution tags
# (info.json then has a physical-dimensions service) and once without. Fails on any FAIL.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
[ -x "$SHARED/peers/validate.sh" ] || { echo "validate-iiif: $SHARED/peers/validate.sh not found (set SHARED=)" >&2; exit 1; }
cargo build --release -q
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

source scripts/ports.sh
total=0; failed=0
for nores in 0 1; do
  images="$work/images-$nores"
  mkdir -p "$images"
  port=$(free_port)
  CORS='*' FILESYSTEM_PREFIX="$images" VERBOSITY=0 ./target/release/iipsrv --http "127.0.0.1:$port" 2>"$work/server-$nores.log" &
  pid=$!
  wait_for_http "http://127.0.0.1:$port/"
  for v in 3.0 2.0; do
    base="http://127.0.0.1:$port/iiif"; [ "$v" = 2.0 ] && base="$base/2"
    out="$work/validate-$nores-$v"
    IMAGES="$images" OUT="$out" NORES="$nores" VERSIONS="$v" LEVELS="0 1 2" NAME="iipsrv-rs" \
      bash "$SHARED/peers/validate.sh" "$base" > "$work/validate.log" 2>&1 || { cat "$work/validate.log"; exit 1; }
    n=$(wc -l < "$out/results.tsv"); f=$(grep -c 'FAIL' "$out/results.tsv" || true)
    [ "$n" -gt 0 ] || { echo "validator ran no test for v$v"; cat "$work/validate.log"; exit 1; }
    echo "IIIF validator v$v levels 0-2 (resolution tags: $([ "$nores" = 1 ] && echo no || echo yes)): $n tests, $f failed"
    sed -n '/^version/,/^$/p' "$out/summary.txt"
    [ "$f" = 0 ] || grep -A3 FAIL "$out/summary.txt" || true
    total=$((total + n)); failed=$((failed + f))
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
echo "iiif-validator: $((total - failed)) passed, $failed failed"
[ "$failed" = 0 ]
