#!/usr/bin/env bash
# Starts our server on a free port with CORS=* and runs the official IIIF validator
# (../shared/peers/validate.sh, PyPI iiif-validator) against it at levels 0-2 for versions
# 3.0 (/iiif/) and 2.0 (/iiif/2/), once with a test image that carries resolution tags
# (info.json then has a physical-dimensions service) and once without; each validator test is
# a check of the Python harness (scripts/harness/validator.py). Then the same image exported as
# static level-0 trees (`iipsrv convert --static iiif3|iiif2`), served as plain files by nginx,
# at level 0 for 3.0 and 2.0: those checks count in the same ledger. Prints "iiif-validator: N
# passed, M failed"; exits 1 on any FAIL.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
[ -x "$SHARED/peers/validate.sh" ] || { echo "validate-iiif: $SHARED/peers/validate.sh not found (set SHARED=)" >&2; exit 1; }
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/iipsrv
work=$(mktemp -d)
chmod 755 "$work"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

source scripts/ports.sh
checks() { harness --ledger "$work/checks.tsv" "$@"; }
for nores in 0 1; do
  images="$work/images-$nores"
  mkdir -p "$images"
  port=$(free_port)
  CORS='*' FILESYSTEM_PREFIX="$images" VERBOSITY=0 "$BIN" --http "127.0.0.1:$port" 2>"$work/server-$nores.log" &
  pid=$!
  wait_for_http "http://127.0.0.1:$port/"
  if [ "$nores" = 1 ]; then image=(--nores --label "without resolution tags"); else image=(--label "with resolution tags"); fi
  checks validator --shared "$SHARED" --images "$images" --out "$work/validate-$nores" "${image[@]}" \
    --table "http://127.0.0.1:$port"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done

# Static level-0 trees of the validator's image, one per version, under /iiif3 and /iiif2 of
# an nginx that serves them as files (CORS, JSON-LD for info.json).
port=$(free_port)
static="$work/static"
image="$work/images-0/67352ccc-d1b0-11e1-89ae-279075081939"
for v in 3 2; do
  "$BIN" convert "$image" --static "iiif$v" "$static/iiif$v" --id "http://127.0.0.1:$port/iiif$v"
done
nginx_static "$work/nginx" "$port" "$static"
wait_for_http "http://127.0.0.1:$port/iiif3/67352ccc-d1b0-11e1-89ae-279075081939/info.json"
checks validator --shared "$SHARED" --images "$work/images-0" --out "$work/validate-static" \
  --no-make-image --label "static tree on nginx" --levels 0 --prefix 3.0=/iiif3 --prefix 2.0=/iiif2 \
  --table "http://127.0.0.1:$port"
checks report iiif-validator
