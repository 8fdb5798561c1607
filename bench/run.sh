#!/usr/bin/env bash
# The performance suite in one run: the reference (Debian's iipsrv 1.1, 2 FastCGI processes
# behind lighttpd, its cache 256 MB each, ../shared/peers/start-iipsrv.sh) and this server
# measured one after the other with the shared workloads (../shared/peers/bench.sh: IIIF
# URLs, wrk on loopback, one wrk thread), then one table of ratios against the targets.
#
#   bench/run.sh                                   # full set (/tmp/peers/images, 20000x15000)
#   IMAGES=/tmp/peers/images-small W=4000 H=3000 DURATION=5 bench/run.sh   # a quick look
#   BIN=/path/to/other/iipsrv bench/run.sh        # another build of ours (before/after a change)
#
# Ours runs in these configurations (each started afresh; peak RSS reported):
#   http        HTTP front end, answer cache 256 MB, decoded-tile cache 256 MB   -> hot
#   http-cold   HTTP front end, answer cache off, decoded-tile cache 256 MB      -> cold, region
#   pt0         as http, CODEC_PASSTHROUGH=0 (re-encodes like 1.1)               -> hot
#   pt0-cold    as http-cold, CODEC_PASSTHROUGH=0                                -> cold
#   fcgi        2 FastCGI processes behind the reference's lighttpd, caches as http (each
#               half the decoded-tile cache)                                     -> hot
#   fcgi-cold   the same, answer cache off                                       -> cold, region
#   load        HTTP, the default caches (answers 5 MB, decoded tiles 128 MB), LOAD_CONNS (256)
#               connections                                                    -> hot, cold, region
#   jp2-cold    as http-cold, on big-rgb.jp2 (bench/make-jp2.sh)                 -> cold, region
#   jph-cold    the same on big-rgb.jph (HTJ2K; ours only: 1.1 cannot read it)  -> cold, region
# The reference also runs cold and region on big-rgb.jp2 (reference-jp2).
# and the machine's limit: nginx serving our answers to the hot and cold URLs as static
# files; `store`: as http-cold, the image read over HTTP with Range from that nginx -> cold.
# The cold and region runs turn our answer cache off because wrk walks the cold list several
# times at our rates and the region list has 5,000 URLs: with it on, later passes would be
# answer-cache hits, not rendering.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
IMAGES=${IMAGES:-/tmp/peers/images}
export W=${W:-20000} H=${H:-15000} DURATION=${DURATION:-15} IMAGES
LOAD_CONNS=${LOAD_CONNS:-256}
OUT=${OUT:-/tmp/peers/bench-suite-$(date +%Y%m%d-%H%M%S)}
scripts/deps.sh bench
cargo build --release -q
[ -d "$IMAGES" ] || { echo "no images in $IMAGES: run $SHARED/peers/make-images.sh" >&2; exit 1; }
IMAGES=$IMAGES bash bench/make-jp2.sh
mkdir -p "$OUT"
source scripts/ports.sh
BIN=${BIN:-$PWD/target/release/iipsrv}
pid=""
runs=()
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  for r in "${runs[@]}"; do RUN=$r bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1 || true; done
  [ -f "$OUT/static/nginx.pid" ] && kill "$(cat "$OUT/static/nginx.pid")" 2>/dev/null
  true
}
trap cleanup EXIT

# measure NAME ROOT WORKLOADS CONNS: the shared workloads against a server root.
measure() {
  echo "measuring $1: $3 at $4 connections" >&2
  NAME=$1 OUT=$OUT/$1 WORKLOADS=$3 CONNS=$4 bash "$SHARED/peers/bench.sh" "$2/iiif" iiif \
    > "$OUT/$1.log" 2>&1 || { tail -5 "$OUT/$1.log" >&2; exit 1; }
}

# Peak RSS in kB of the processes whose PIDs are in files $@.
peak_rss() { for f in "$@"; do awk '/VmHWM/{print $2}' "/proc/$(cat "$f")/status"; done | paste -sd+ | bc; }

# ours_http NAME WORKLOADS CONNS [VAR=value ...]: our HTTP front end alone.
ours_http() {
  local name=$1 workloads=$2 conns=$3 port
  shift 3
  port=$(free_port)
  env FILESYSTEM_PREFIX="$IMAGES" MAX_IMAGE_CACHE_SIZE=256 DECODED_CACHE_SIZE=256 CORS='*' VERBOSITY=0 "$@" \
    "$BIN" --http "127.0.0.1:$port" 2> "$OUT/$name-server.log" &
  pid=$!
  echo "$pid" > "$OUT/$name.pid"
  wait_for_http "http://127.0.0.1:$port/"
  measure "$name" "http://127.0.0.1:$port" "$workloads" "$conns"
  echo "$(peak_rss "$OUT/$name.pid")" > "$OUT/$name.rss"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

# peer NAME WORKLOADS CONNS [VAR=value ...]: 2 FastCGI processes behind lighttpd.
peer() {
  local name=$1 workloads=$2 conns=$3
  shift 3
  runs+=("$OUT/$name-run")
  start_peer "$OUT/$name-run" IMAGES="$IMAGES" ACCESSLOG=0 "$@" || exit 1
  measure "$name" "http://127.0.0.1:$PEER_PORT" "$workloads" "$conns"
  peak_rss "$OUT/$name-run"/pids/*.child > "$OUT/$name.rss"
  RUN=$OUT/$name-run bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1 || true
}

peer reference "hot cold region" "2 16"
ID=big-rgb.jp2 peer reference-jp2 "cold region" "2 16"
ours_http http hot "2 16"
ours_http http-cold "cold region" "2 16" MAX_IMAGE_CACHE_SIZE=0
ours_http pt0 hot "2 16" CODEC_PASSTHROUGH=0
ours_http pt0-cold cold "2 16" CODEC_PASSTHROUGH=0 MAX_IMAGE_CACHE_SIZE=0
peer fcgi hot "2 16" IIPSRV_BIN="$BIN" VERBOSITY=0 DECODED_CACHE_SIZE=128
peer fcgi-cold "cold region" "2 16" IIPSRV_BIN="$BIN" VERBOSITY=0 MAX_IMAGE_CACHE_SIZE=0 DECODED_CACHE_SIZE=128
ID=big-rgb.jp2 ours_http jp2-cold "cold region" "2 16" MAX_IMAGE_CACHE_SIZE=0
ID=big-rgb.jph ours_http jph-cold "cold region" "2 16" MAX_IMAGE_CACHE_SIZE=0
ours_http load "hot cold region" "$LOAD_CONNS" MAX_IMAGE_CACHE_SIZE=5 DECODED_CACHE_SIZE=128

# static: our answers to the hot URLs, and to the cold URLs of the image itself (the aliases
# answer the same bytes), saved as files and served by nginx, which also serves the images
# with Range at /files/ for the `store` run: ours reading the image over HTTP (OBJECT_MAP /
# FILESYSTEM_PREFIX=http://...), cold tiles, against the http-cold run from local disk.
static_nginx() {
  local port root=$OUT/static
  port=$(free_port)
  env FILESYSTEM_PREFIX="$IMAGES" VERBOSITY=0 "$BIN" --http "127.0.0.1:$port" 2> "$OUT/static-server.log" &
  pid=$!
  wait_for_http "http://127.0.0.1:$port/"
  { cat "$OUT/reference/urls-hot.txt"
    sed -E 's#^(/iiif/[^/]+)-c[0-9][0-9](\.[a-z0-9]+/)#\1\2#' "$OUT/reference/urls-cold.txt" | sort -u
  } | python3 bench/save-answers.py "http://127.0.0.1:$port" "$root"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  mkdir -p "$root/logs"
  cat > "$root/nginx.conf" <<EON
worker_processes 2;
pid $root/nginx.pid;
error_log $root/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { image/jpeg jpg; }
  server {
    listen 127.0.0.1:$port;
    root $root;
    rewrite "^(/iiif/[^/]+)-c[0-9][0-9](\.[a-z0-9]+/.*)\$" \$1\$2 last;
    location /files/ { alias $IMAGES/; }
  }
}
EON
  nginx -p "$root" -c "$root/nginx.conf" -e "$root/logs/error.log"
  NAME=static OUT=$OUT/static-run WORKLOADS="hot cold" CONNS="2 16" bash "$SHARED/peers/bench.sh" "http://127.0.0.1:$port/iiif" iiif \
    > "$OUT/static.log" 2>&1 || tail -5 "$OUT/static.log" >&2
  ours_http store cold "2 16" MAX_IMAGE_CACHE_SIZE=0 FILESYSTEM_PREFIX="http://127.0.0.1:$port/files/"
  nginx -p "$root" -c "$root/nginx.conf" -e "$root/logs/error.log" -s stop
}
static_nginx

python3 bench/table.py "$OUT" | tee "$OUT/table.md"
echo "results in $OUT"
