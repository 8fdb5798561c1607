#!/usr/bin/env bash
# Starts our server on a free port with CORS=* and runs the official IIIF validator
# (../shared/peers/validate.sh, PyPI iiif-validator) against it at levels 0-2 for versions
# 3.0 (/iiif/) and 2.0 (/iiif/2/), once with a test image that carries resolution tags
# (info.json then has a physical-dimensions service) and once without; each validator test is
# a check of the Python harness (scripts/harness/validator.py). Prints "iiif-validator: N
# passed, M failed"; exits 1 on any FAIL.
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
checks() { harness --ledger "$work/checks.tsv" "$@"; }
for nores in 0 1; do
  images="$work/images-$nores"
  mkdir -p "$images"
  port=$(free_port)
  CORS='*' FILESYSTEM_PREFIX="$images" VERBOSITY=0 ./target/release/iipsrv --http "127.0.0.1:$port" 2>"$work/server-$nores.log" &
  pid=$!
  wait_for_http "http://127.0.0.1:$port/"
  if [ "$nores" = 1 ]; then image=(--nores --label "without resolution tags"); else image=(--label "with resolution tags"); fi
  checks validator --shared "$SHARED" --images "$images" --out "$work/validate-$nores" "${image[@]}" \
    --table "http://127.0.0.1:$port"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
checks report iiif-validator
