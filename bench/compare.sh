#!/usr/bin/env bash
# Benchmarks this server against the reference in one session, with the shared workloads
# (../shared/peers/bench.sh, wrk on loopback): IIIF style, workloads hot / cold / region at
# 2 and 16 connections. The reference is Debian's iipsrv 1.1 as 2 FastCGI processes behind
# lighttpd (../shared/peers/start-iipsrv.sh); ours is the HTTP front end.
#
#   bench/compare.sh                          # full image set in /tmp/peers/images (make-images.sh)
#   IMAGES=/tmp/peers/images-small W=4000 H=3000 DURATION=10 bench/compare.sh
#   PASSTHROUGH=0 bench/compare.sh            # ours re-encodes like 1.1 (CODEC_PASSTHROUGH=0)
#   CACHE_MB=0 WORKLOADS=region bench/compare.sh   # ours without the answer cache (every region
#                                             # rendered; the reference caches raw tiles only)
#   FRONT=fcgi bench/compare.sh               # ours as 2 FastCGI processes behind the same lighttpd
#   FRONT=fcgi WEB=nginx STYLES="iiif iip" bench/compare.sh   # both behind the same nginx
#   STYLES="iip deepzoom zoomify" bench/compare.sh   # other protocols (region: iiif and iip only)
#   ID=big-rgb.jp2 WORKLOADS=region bench/compare.sh # another image (W, H: its size)
# Prints both result tables and the ratio ours / reference per style, workload and
# connection count.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
IMAGES=${IMAGES:-/tmp/peers/images}
export W=${W:-20000} H=${H:-15000} DURATION=${DURATION:-15} IMAGES
PASSTHROUGH=${PASSTHROUGH:-1}
CACHE_MB=${CACHE_MB:-256}
[ -n "${WORKLOADS:-}" ] && export WORKLOADS
[ -n "${CONNS:-}" ] && export CONNS
REF_PORT=${REF_PORT:-8080}
OUR_PORT=${OUR_PORT:-8090}
OUT=${OUT:-/tmp/peers/bench-$(date +%Y%m%d-%H%M%S)}
scripts/deps.sh bench
source scripts/ports.sh
cargo build --release -q
[ -d "$IMAGES" ] || { echo "no images in $IMAGES: run $SHARED/peers/make-images.sh" >&2; exit 1; }
mkdir -p "$OUT"
STYLES=${STYLES:-iiif}
export WEB=${WEB:-lighttpd}
[ -n "${ID:-}" ] && export ID

# The base URL of a protocol style on a server root.
base_for() {
  case "$1" in
    iiif) echo "$2/iiif" ;;
    iip) echo "$2/fcgi-bin/iipsrv.fcgi" ;;
    deepzoom) echo "$2/deepzoom" ;;
    zoomify) echo "$2/zoomify" ;;
    *) echo "unknown style $1" >&2; exit 2 ;;
  esac
}

# Runs every style against one server: bench_all NAME ROOT
bench_all() {
  for style in $STYLES; do
    NAME=$1-$style OUT=$OUT/$1-$style bash "$SHARED/peers/bench.sh" "$(base_for "$style" "$2")" "$style" \
      > "$OUT/$1-$style.log" 2>&1
  done
}

pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  for r in "$OUT/ref-run" "$OUT/ours-run"; do RUN=$r bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

RUN=$OUT/ref-run PORT=$REF_PORT ACCESSLOG=0 IMAGES="$IMAGES" bash "$SHARED/peers/start-iipsrv.sh" > "$OUT/ref-start.log"
bench_all reference "http://127.0.0.1:$REF_PORT"
RUN=$OUT/ref-run bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1 || true

FRONT=${FRONT:-http}
if [ "$FRONT" = fcgi ]; then
  MAX_IMAGE_CACHE_SIZE=$CACHE_MB VERBOSITY=0 CODEC_PASSTHROUGH=$PASSTHROUGH RUN=$OUT/ours-run PORT=$OUR_PORT \
    FCGI_PORT=$((OUR_PORT + 1000)) ACCESSLOG=0 IMAGES="$IMAGES" IIPSRV_BIN=$PWD/target/release/iipsrv \
    bash "$SHARED/peers/start-iipsrv.sh" > "$OUT/ours-start.log"
else
  FILESYSTEM_PREFIX="$IMAGES" MAX_IMAGE_CACHE_SIZE=$CACHE_MB CORS='*' VERBOSITY=0 CODEC_PASSTHROUGH=$PASSTHROUGH \
    ./target/release/iipsrv --http "127.0.0.1:$OUR_PORT" 2> "$OUT/ours-server.log" &
  pid=$!
  wait_for_http "http://127.0.0.1:$OUR_PORT/"
fi
bench_all ours "http://127.0.0.1:$OUR_PORT"
if [ "$FRONT" = fcgi ]; then
  rss=$(for f in "$OUT"/ours-run/pids/*.child; do awk '/VmHWM/{print $2}' "/proc/$(cat "$f")/status"; done | paste -sd+ | bc)" kB (sum)"
  RUN=$OUT/ours-run bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1 || true
else
  rss=$(awk '/VmHWM/{print $2" "$3}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
fi

for style in $STYLES; do
  ref=$OUT/reference-$style/results.tsv; ours=$OUT/ours-$style/results.tsv
  echo "== $style: reference (Debian iipsrv 1.1, 2 FastCGI procs behind $WEB)"; column -t -s $'\t' "$ref"
  echo "== $style: iipsrv-rs ($FRONT, CODEC_PASSTHROUGH=$PASSTHROUGH, MAX_IMAGE_CACHE_SIZE=$CACHE_MB; peak RSS $rss)"
  column -t -s $'\t' "$ours"
  echo "== $style: ratio ours / reference (requests/s; p99 ms ours vs reference)"
  join -t $'\t' <(awk -F'\t' 'NR>1{print $3"-"$4"\t"$5"\t"$8}' "$ours" | sort) \
                <(awk -F'\t' 'NR>1{print $3"-"$4"\t"$5"\t"$8}' "$ref" | sort) |
    awk -F'\t' '{printf "%-12s %8.1f / %8.1f req/s = %5.2fx   p99 %7.2f vs %7.2f ms\n", $1, $2, $4, $2/$4, $3, $5}'
done
echo "results in $OUT"
