#!/usr/bin/env bash
# Overload, soak and a web server dropping its FastCGI connections — the long runs of the
# reliability issues (minutes; a manual run, not part of scripts/test.sh):
#  0. heavy: HEAVY_SECONDS (60) of 32 clients asking the largest renders (full/w,w and
#     CNV=sobel&WID=w with w 4000-4999, never the same twice in a row, so no answer comes
#     from a cache; 8000-px regions at w) while a process of its own probes /health every
#     100 ms: answers by status, the probe's latencies and the server's peak RSS
#     (scripts/harness/soak.py).
#     HEAVY_SECONDS=0 skips it; so do LOAD_SECONDS=0 and SOAK_SECONDS=0 / FAULTS=0 for the rest.
#  1. load: wrk at 256 and 1024 connections, LOAD_SECONDS (60) per workload (hot tiles, cold
#     tiles, regions; ../shared/peers/bench.sh lists) against our HTTP front end. The answers
#     by status come from the server's own /metrics, so deliberate 503s (admission control)
#     are told from failures; wrk's socket errors are listed too. LOAD_SECONDS=0 skips it.
#  2. soak: SOAK_SECONDS (600) of cold tiles and regions at 64 connections, the server's RSS
#     sampled every second (printed: first and last minute's mean, the maximum).
#  3. web server faults: ours as 2 FastCGI processes behind lighttpd; lighttpd killed (-9)
#     twice under load and started again: our processes must keep their PIDs and answer.
# This script starts the servers, wrk and the RSS sampler; the counts by status, the RSS
# summary and the probe after the faults are the Python harness's (scripts/harness/soak.py).
# BIN: the server binary (default target/release/iipsrv, built first).
# Images: IMAGES (default /tmp/peers/images, 20000x15000; W and H give their size).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
IMAGES=${IMAGES:-/tmp/peers/images}
export W=${W:-20000} H=${H:-15000} IMAGES
LOAD_SECONDS=${LOAD_SECONDS:-60}
SOAK_SECONDS=${SOAK_SECONDS:-600}
OUT=${OUT:-/tmp/peers/load-$(date +%Y%m%d-%H%M%S)}
scripts/deps.sh bench
cargo build --release -q
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
source scripts/ports.sh
BIN=${BIN:-$PWD/target/release/iipsrv}
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  RUN=$OUT/fcgi-run bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

port=$(free_port)
FILESYSTEM_PREFIX="$IMAGES" MAX_IMAGE_CACHE_SIZE=256 DECODED_CACHE_SIZE=256 VERBOSITY=1 \
  LOGFILE="$OUT/server.log" "$BIN" --http "127.0.0.1:$port" 2> "$OUT/server.err" &
pid=$!
wait_for_http "http://127.0.0.1:$port/health"

# Requests answered so far, by status: "200=… 503=…".
statuses() { harness statuses "http://127.0.0.1:$port/metrics"; }

HEAVY_SECONDS=${HEAVY_SECONDS:-60}
if [ "$HEAVY_SECONDS" -gt 0 ]; then
  echo "== 0. heavy: $HEAVY_SECONDS s of 32 clients asking the largest renders, /health probed"
  harness heavy "http://127.0.0.1:$port" "$pid" --clients 32 --seconds "$HEAVY_SECONDS" \
    "/iiif/big-deflate.tif/full/{w},{w}/0/default.jpg" \
    "/fcgi-bin/iipsrv.fcgi?FIF=big-jpeg-q90.tif&CNV=sobel&WID={w}&CVT=jpeg" \
    "/iiif/big-lzw.tif/2000,2000,8000,8000/{w},/0/default.png" \
    "/iiif/big-jpeg-q90.tif/full/{w},/0/default.jpg"
fi

echo "== 1. load: $LOAD_SECONDS s per workload at 256 and 1024 connections (0: only make the URL lists)"
before=$(statuses)
conns="256 1024"
[ "$LOAD_SECONDS" = 0 ] && conns=2
NAME=load OUT=$OUT/load CONNS="$conns" DURATION=$((LOAD_SECONDS > 0 ? LOAD_SECONDS : 1)) WARMUP=0 \
  bash "$SHARED/peers/bench.sh" "http://127.0.0.1:$port/iiif" iiif > "$OUT/load.log" 2>&1
column -t -s $'\t' "$OUT/load/results.tsv" | cut -c1-160
echo "answers by status before: $before"
echo "answers by status after:  $(statuses)"
kill -0 "$pid" && echo "server alive (pid $pid)"

if [ "$SOAK_SECONDS" -gt 0 ]; then
echo "== 2. soak: $SOAK_SECONDS s, cold tiles and regions at 64 connections, RSS every second"
cat "$OUT/load/urls-cold.txt" "$OUT/load/urls-region.txt" | shuf --random-source=<(yes) > "$OUT/soak-urls.txt"
: > "$OUT/rss.txt"
( while kill -0 "$pid" 2>/dev/null; do awk '/VmRSS/{print $2}' "/proc/$pid/status" >> "$OUT/rss.txt"; sleep 1; done ) &
sampler=$!
wrk -t1 -c64 -d"${SOAK_SECONDS}s" --latency --timeout 30s -s "$OUT/load/paths.lua" "http://127.0.0.1:$port" \
  -- "$OUT/soak-urls.txt" random > "$OUT/soak.txt" 2>&1 || true
kill "$sampler" 2>/dev/null || true
grep -m1 '^RESULT' "$OUT/soak.txt" | tr '\t' ' '
harness rss "$OUT/rss.txt"
echo "answers by status: $(statuses)"
kill -0 "$pid" && echo "server alive (pid $pid)"
fi
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

if [ "${FAULTS:-1}" != 0 ]; then
echo "== 3. lighttpd killed under load, FastCGI processes kept"
start_peer "$OUT/fcgi-run" IMAGES="$IMAGES" IIPSRV_BIN="$BIN" VERBOSITY=0 ACCESSLOG=0 || exit 1
web=$PEER_PORT
children_before=$(cat "$OUT"/fcgi-run/pids/*.child | sort | tr '\n' ' ')
wrk -t1 -c32 -d20s --timeout 5s -s "$OUT/load/paths.lua" "http://127.0.0.1:$web" \
  -- "$OUT/soak-urls.txt" random > "$OUT/fault-wrk.txt" 2>&1 &
load=$!
for round in 1 2; do
  sleep 5
  kill -9 "$(cat "$OUT/fcgi-run/pids/web-lighttpd.pid")"
  sleep 1
  nohup lighttpd -D -f "$OUT/fcgi-run/lighttpd.conf" > "$OUT/fcgi-run/logs/lighttpd-$round.out" 2>&1 < /dev/null &
  echo $! > "$OUT/fcgi-run/pids/web-lighttpd.pid"
  echo "round $round: lighttpd killed and started again"
done
wait "$load" || true
grep -m1 '^RESULT' "$OUT/fault-wrk.txt" | tr '\t' ' '
children_after=$(cat "$OUT"/fcgi-run/pids/*.child | sort | tr '\n' ' ')
harness after-faults "http://127.0.0.1:$web" "$OUT/soak-urls.txt" "$children_before" "$children_after"
fi
echo "results in $OUT"
