#!/usr/bin/env bash
# Multi-instance test: images that exist only in an S3-compatible object store (s3s-fs) and
# on a plain HTTP server with Range (nginx), two of our servers behind nginx as a load
# balancer at the public prefix /lb (X-Forwarded-Proto/Host/Prefix, TRUSTED_PROXIES), one
# memcached shared by both. Through the balancer:
#   1. the official IIIF validator (v3 and v2, levels 0-2) on the validator's image in S3;
#   2. a sample of tiles, regions and descriptors (IIIF, IIP, DeepZoom, Zoomify) of a TIFF
#      and a JPEG2000 in S3 and of the TIFF over HTTP, each byte-equal to the answer of a
#      third server reading the same files from local disk (info.json: ids aside);
#   3. a purge through the balancer (POST /lb/admin/purge/<id>);
#   4. a load of 4 clients while one instance is killed with SIGKILL: no request fails
#      (nginx retries the other); then memcached is killed: service continues (a purge
#      then answers 503, as the tier cannot take it).
# This script starts the store, memcached, nginx and our servers and kills them; the checks,
# the samples and the load client are the Python harness's (scripts/harness: validator.py,
# scaleout.py, load.py). Prints "scale-out: N passed, M failed"; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
cargo build --release -q
BIN=$PWD/target/release/iipsrv
source scripts/ports.sh
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null
  rm -rf "$work"
}
[ "${KEEP:-0}" = 1 ] || trap cleanup EXIT   # KEEP=1 leaves everything running, for a look
checks() { harness --ledger "$work/checks.tsv" "$@"; }

# ---- images, only in the store (the bucket is s3s-fs's directory "images") ----------
bucket=$work/s3/images
mkdir -p "$bucket"
id=67352ccc-d1b0-11e1-89ae-279075081939
IMAGES="$bucket" OUT="$work/validate-make" VERSIONS=3.0 LEVELS=0 NAME=make \
  bash "$SHARED/peers/validate.sh" http://127.0.0.1:1/iiif > "$work/make.log" 2>&1 || true
[ -s "$bucket/$id" ] || { cat "$work/make.log"; echo "no validator image"; exit 1; }
vips gaussnoise "$work/noise.v" 3000 2000 --sigma 60
vips bandjoin "$work/noise.v $work/noise.v $work/noise.v" "$work/rgb.v"
vips tiffsave "$work/rgb.v" "$bucket/big.tif" --tile --pyramid --compression jpeg --Q 90 \
  --tile-width 256 --tile-height 256
ls "$bucket"/validator/*.jp2 >/dev/null

# ---- the store, memcached, the HTTP image server and the balancer -------------------
p0=$(free_port_block 7)
s3=$p0 mc=$((p0 + 1)) lb=$((p0 + 2)) files=$((p0 + 3)) pa=$((p0 + 4)) pb=$((p0 + 5)) pd=$((p0 + 6))
s3s-fs --host 127.0.0.1 --port "$s3" --access-key scaleout --secret-key scaleout-secret \
  "$work/s3" > "$work/s3s.log" 2>&1 &
pids+=($!)
memcached -l 127.0.0.1 -p "$mc" -U 0 -u root -m 64 &
mcpid=$!; pids+=($mcpid)
mkdir -p "$work/nginx/tmp"
{ nginx_head "$work/nginx" 1024; cat <<EOF
  upstream iipsrv {
    server 127.0.0.1:$pa max_fails=1 fail_timeout=2s;
    server 127.0.0.1:$pb max_fails=1 fail_timeout=2s;
    keepalive 16;
  }
  server {
    listen 127.0.0.1:$lb;
    location /lb/ {
      proxy_pass http://iipsrv/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
      proxy_set_header X-Forwarded-Prefix /lb;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_connect_timeout 1s;
    }
  }
  server {
    listen 127.0.0.1:$files;
    location /files/ { alias $bucket/; }
  }
}
EOF
} > "$work/nginx/nginx.conf"
nginx -c "$work/nginx/nginx.conf"

ours() {  # ours PORT [VAR=value ...]: one of our servers, reading images from the store
  local port=$1; shift
  env AWS_ENDPOINT_URL="http://127.0.0.1:$s3" AWS_ACCESS_KEY_ID=scaleout \
    AWS_SECRET_ACCESS_KEY=scaleout-secret AWS_REGION=us-east-1 \
    FILESYSTEM_PREFIX=s3://images/ OBJECT_MAP="web=>http://127.0.0.1:$files/files/" \
    MEMCACHED_SERVERS="127.0.0.1:$mc" TRUSTED_PROXIES=127.0.0.1 ADMIN_TOKEN=scaleout-token \
    CORS='*' VERBOSITY=1 "$@" "$BIN" --http "127.0.0.1:$port" 2>> "$work/server-$port.log" &
  pids+=($!)
}
ours "$pa"; apid=$!
ours "$pb"; bpid=$!
FILESYSTEM_PREFIX="$bucket" CORS='*' VERBOSITY=0 "$BIN" --http "127.0.0.1:$pd" 2>/dev/null &
pids+=($!)
for p in "$pa" "$pb" "$pd" "$lb/lb"; do wait_for_http "http://127.0.0.1:$p/health"; done
base=http://127.0.0.1:$lb/lb
disk=http://127.0.0.1:$pd

# ---- 1. the validator through the balancer -----------------------------------------
checks validator --shared "$SHARED" --images "$bucket" --no-make-image --out "$work/validate" \
  --label "balancer, images only in S3" --name scaleout "$base"

# ---- 2. samples: through the balancer = from disk ----------------------------------
checks scaleout-samples "$base" "$disk"

# ---- 3. purge through the balancer -------------------------------------------------
checks scaleout-purge "$base" scaleout-token

# ---- 4. kill an instance, then memcached, under load --------------------------------
checks scaleout-load --clients 4 --seconds 12 "$base" &
loader=$!
sleep 3; { kill -9 "$bpid"; wait "$bpid"; } 2>/dev/null || true; echo "killed instance B (port $pb) under load"
sleep 4; { kill -9 "$mcpid"; wait "$mcpid"; } 2>/dev/null || true; echo "killed memcached under load"
wait "$loader"
checks scaleout-after-kills "$base" scaleout-token

grep -h ' WARN \| ERROR ' "$work"/server-*.log | grep -v 'memcached' | head -5 || true
checks report scale-out
