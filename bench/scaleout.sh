#!/usr/bin/env bash
# Scaling figures (manual run, not in CI): the shared workloads (../shared/peers/bench.sh,
# IIIF, wrk on loopback) against
#   disk      one server reading the images from local disk
#   s3        one server reading the same images from an S3-compatible store (s3s-fs on this
#             machine, its bucket a symlink to the image directory): cold tiles vs disk
#   http      one server reading them over HTTP with Range from nginx (OBJECT_MAP): the
#             same remote path with a store that sets TCP_NODELAY, which s3s-fs does not
#             (its answers wait on our delayed ACKs: steps of ~40 ms)
#   lb1, lb2  one, then two servers (images over HTTP from nginx) behind nginx as a load
#             balancer
# All with the answer cache off (cold and region must render; see bench/run.sh) and the
# decoded-tile cache at 128 MB per server; the object block cache at OBJECT_CACHE_SIZE (64).
#
#   bench/scaleout.sh                                                   # full set
#   IMAGES=/tmp/peers/images-small W=4000 H=3000 DURATION=5 bench/scaleout.sh   # a quick look
#
# Prints one table (req/s and p99 per workload and connection count) and the object-store
# requests each S3 configuration made (from its /metrics).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
IMAGES=$(cd "${IMAGES:-/tmp/peers/images}" && pwd)
export W=${W:-20000} H=${H:-15000} DURATION=${DURATION:-15} IMAGES
OUT=${OUT:-/tmp/peers/bench-scaleout-$(date +%Y%m%d-%H%M%S)}
scripts/deps.sh bench
scripts/deps.sh test >/dev/null
cargo build --release -q
BIN=$PWD/target/release/iipsrv
source scripts/ports.sh
mkdir -p "$OUT/s3" "$OUT/nginx/tmp"
ln -sfn "$IMAGES" "$OUT/s3/images"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$OUT/nginx/nginx.pid" ] && kill "$(cat "$OUT/nginx/nginx.pid")" 2>/dev/null
  true
}
trap cleanup EXIT

# s3s-fs computes an object's MD5 ETag on every GET and HEAD unless the object came in by PUT
# (it then keeps the ETag in a side file); the objects here are files placed in the bucket
# directory, so write those side files as a PUT would (one MD5 per distinct file), or each
# ranged GET would hash the whole 200 MB image.
python3 - "$OUT/s3" "$IMAGES" <<'PY'
import base64, hashlib, json, os, sys
root, images = sys.argv[1], sys.argv[2]
enc = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
sums = {}
for name in sorted(os.listdir(images)):
    path = os.path.join(images, name)
    if not os.path.isfile(path) or not name.endswith((".tif", ".jp2")):
        continue
    real = os.path.realpath(path)
    if real not in sums:
        h = hashlib.md5()
        with open(real, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        sums[real] = h.hexdigest()
    with open(os.path.join(root, f".bucket-{enc('images')}.object-{enc(name)}.internal.json"), "w") as f:
        json.dump({"e_tag": sums[real]}, f)
PY
p0=$(free_port_block 6)
s3=$p0 files=$((p0 + 1)) lb=$((p0 + 2)) pa=$((p0 + 3)) pb=$((p0 + 4)) pd=$((p0 + 5))
s3s-fs --host 127.0.0.1 --port "$s3" --access-key bench --secret-key bench-secret "$OUT/s3" \
  > "$OUT/s3s.log" 2>&1 &
pids+=($!)

# ours NAME PORT [VAR=value ...]: one server, answer cache off.
ours() {
  local name=$1 port=$2; shift 2
  env MAX_IMAGE_CACHE_SIZE=0 DECODED_CACHE_SIZE=128 VERBOSITY=0 CORS='*' \
    AWS_ENDPOINT_URL="http://127.0.0.1:$s3" AWS_ACCESS_KEY_ID=bench \
    AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 "$@" \
    "$BIN" --http "127.0.0.1:$port" 2> "$OUT/$name-$port.log" &
  pids+=($!)
  wait_for_http "http://127.0.0.1:$port/health"
}

# measure NAME BASE WORKLOADS
measure() {
  echo "measuring $1: $3" >&2
  NAME=$1 OUT=$OUT/$1 WORKLOADS=$3 CONNS="2 16" bash "$SHARED/peers/bench.sh" "$2/iiif" iiif \
    > "$OUT/$1.log" 2>&1 || { tail -5 "$OUT/$1.log" >&2; exit 1; }
}

object_gets() {
  curl -s "http://127.0.0.1:$1/metrics" | awk '/iipsrv_object_requests_total\{kind="get"\}/{print $2}'
}

# nginx: the images over HTTP at /files/, and a balancer in front of the ports given
balancer() {
  local ups=""
  for p in "$@"; do ups+="server 127.0.0.1:$p;"; done
  [ -f "$OUT/nginx/nginx.pid" ] && { kill "$(cat "$OUT/nginx/nginx.pid")"; sleep 0.5; }
  { nginx_head "$OUT/nginx" 4096; cat <<EOF
  upstream iipsrv { least_conn; $ups keepalive 64; }
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$lb;
    location / { proxy_pass http://iipsrv; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$files;
    location /files/ { alias $IMAGES/; }
  }
}
EOF
} > "$OUT/nginx/nginx.conf"
  nginx -c "$OUT/nginx/nginx.conf"
  wait_for_http "http://127.0.0.1:$lb/health"
}

balancer "$pd"
web="FILESYSTEM_PREFIX=http://127.0.0.1:$files/files/"
ours disk "$pd" FILESYSTEM_PREFIX="$IMAGES"
measure disk "http://127.0.0.1:$pd" "cold region"
kill "${pids[-1]}"
ours s3 "$pa" FILESYSTEM_PREFIX=s3://images/
measure s3 "http://127.0.0.1:$pa" "cold region"
echo "s3: $(object_gets "$pa") ranged GETs" > "$OUT/object-gets.txt"
kill "${pids[-1]}"
ours http "$pa" "$web"
measure http "http://127.0.0.1:$pa" "cold region"
echo "http: $(object_gets "$pa") ranged GETs" >> "$OUT/object-gets.txt"
kill "${pids[-1]}"
ours lb1 "$pa" "$web"
balancer "$pa"
measure lb1 "http://127.0.0.1:$lb" "cold region"
kill "${pids[-1]}"
ours lb2a "$pa" "$web"
ours lb2b "$pb" "$web"
balancer "$pa" "$pb"
measure lb2 "http://127.0.0.1:$lb" "cold region"
echo "lb2: $(object_gets "$pa") + $(object_gets "$pb") ranged GETs" >> "$OUT/object-gets.txt"

{
  printf 'config\tworkload\tconns\treq/s\tp99 ms\tnon-2xx\n'
  for c in disk s3 http lb1 lb2; do
    awk -F'\t' -v c="$c" 'NR > 1 { printf "%s\t%s\t%s\t%.0f\t%.1f\t%s\n", c, $3, $4, $5, $8, $11 }' "$OUT/$c/results.tsv"
  done
} > "$OUT/table.tsv"
column -t -s $'\t' "$OUT/table.tsv"
cat "$OUT/object-gets.txt"
echo "results in $OUT"
