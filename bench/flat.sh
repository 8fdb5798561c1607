#!/usr/bin/env bash
# Flat images served with no conversion step (PYRAMID_CACHE_DIR), at full size: a manual
# run, too long for CI (tests/it/pyramid_cache.rs checks the same behaviour on small images).
#
#   bench/flat.sh                      # 20000x15000 (300 MP) sources, about 15-25 minutes
#   W=12000 H=12500 bench/flat.sh      # 150 MP
#
# Makes one synthetic master (libvips: Perlin noise, gradients, a grid) and from it four flat
# sources: a deflate striped TIFF, a baseline JPEG (Q90), a PNG and a 16-bit deflate striped
# TIFF; and, for comparison, the striped TIFF converted ahead of time (iipsrv convert, JPEG
# Q90 256-px tiles, as the cache builds). For each flat source, a fresh server with an empty
# cache:
#   - the first request (a view zoomed out 16 times, full/W/16,): status and latency (503 +
#     Retry-After while the pyramid is built; never a hang);
#   - the build time (until that view answers 200) and the server's peak RSS (VmHWM);
#   - that view once built against libvips's shrink of the same source (PSNR, dB);
# then the steady state: hot and cold tiles/s (../shared/peers/bench.sh, wrk) of the pyramid
# built on first use against the same image converted ahead of time, same server, same run,
# alternated ROUNDS times (medians and their ratio).
# Output: a table on standard output and in $OUT/flat.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
W=${W:-20000} H=${H:-15000} DURATION=${DURATION:-10}
OUT=${OUT:-/tmp/peers/flat-$(date +%Y%m%d-%H%M%S)}
SRC=${SRC:-/tmp/peers/flat-sources-${W}x${H}}
BIN=${BIN:-$PWD/target/release/iipsrv}
scripts/deps.sh bench
cargo build --release -q
mkdir -p "$OUT" "$SRC"
source scripts/ports.sh
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; true; }
trap cleanup EXIT
export VIPS_CONCURRENCY=${VIPS_CONCURRENCY:-$(nproc)}
# vips with negative numbers passed as values, not options (a leading space, as
# make-images.sh does).
V() { local a args=(); for a in "$@"; do [[ $a =~ ^-[0-9.] ]] && a=" $a"; args+=("$a"); done; vips "${args[@]}"; }

make_sources() {
  [ -s "$SRC/flat16.tif" ] && return
  echo "making ${W}x${H} sources in $SRC"
  local t=$SRC/tmp; mkdir -p "$t"
  vips perlin "$t/p1.v" "$W" "$H" --cell-size 1024 --seed 1
  vips perlin "$t/p2.v" "$W" "$H" --cell-size 96 --seed 2
  vips linear "$t/p1.v" "$t/a.v" 160 128
  vips linear "$t/p2.v" "$t/b.v" 40 0
  vips add "$t/a.v" "$t/b.v" "$t/ab.v"
  # Sensor-like noise (sigma 3): about 3-4 bits a pixel at JPEG Q90, as make-images.sh.
  vips gaussnoise "$t/n.v" "$W" "$H" --sigma 3 --mean 0
  vips add "$t/ab.v" "$t/n.v" "$t/lum.v"
  vips xyz "$t/xy.v" "$W" "$H"
  vips extract_band "$t/xy.v" "$t/x.v" 0
  vips extract_band "$t/xy.v" "$t/y.v" 1
  V linear "$t/x.v" "$t/gx.v" "$(echo "60/$W" | bc -l)" -30
  V linear "$t/y.v" "$t/gy.v" "$(echo "60/$H" | bc -l)" -30
  vips add "$t/lum.v" "$t/gx.v" "$t/r.v"
  vips add "$t/lum.v" "$t/gy.v" "$t/g.v"
  vips subtract "$t/lum.v" "$t/gx.v" "$t/bl.v"
  vips bandjoin "$t/r.v $t/g.v $t/bl.v" "$t/rgbf.v"
  vips cast "$t/rgbf.v" "$t/master.v" uchar
  vips tiffsave "$t/master.v" "$SRC/flat.tif" --compression deflate
  vips jpegsave "$t/master.v" "$SRC/flat.jpg" --Q 90
  vips pngsave "$t/master.v" "$SRC/flat.png" --compression 1
  vips linear "$t/master.v" "$t/w.v" 257 0
  vips cast "$t/w.v" "$t/m16.v" ushort
  vips copy "$t/m16.v" "$t/m16i.v" --interpretation rgb16
  vips tiffsave "$t/m16i.v" "$SRC/flat16.tif" --compression deflate
  "$BIN" convert "$SRC/flat.tif" "$SRC/converted.tif" --quality 90 --bigtiff
  rm -rf "$t"
}

# serve CACHE: a fresh server over $SRC with its pyramid cache in CACHE, on $port; the
# answer cache off, so that every tile of the steady state is read from a pyramid.
serve() {
  cleanup
  port=$(free_port)
  FILESYSTEM_PREFIX=$SRC/ PYRAMID_CACHE_DIR=$1 PYRAMID_THRESHOLD=16 VERBOSITY=0 \
    MAX_IMAGE_CACHE_SIZE=0 "$BIN" --http "127.0.0.1:$port" 2>"$OUT/server.log" &
  pid=$!
  wait_for_http "http://127.0.0.1:$port/health"
}

# psnr A B: PSNR in dB of two 8-bit images of one size (libvips).
psnr() {
  vips subtract "$1" "$2" "$OUT/d.v"
  vips multiply "$OUT/d.v" "$OUT/d.v" "$OUT/sq.v"
  local mse; mse=$(vips avg "$OUT/sq.v")
  awk -v m="$mse" 'BEGIN { if (m < 1e-9) m = 1e-9; printf "%.1f", 10 * log(65025 / m) / log(10) }'
}

# until_200 URL FILE: fetches URL into FILE until it answers 200; gives up after
# BUILD_TIMEOUT seconds (default 600) so that a build that never ends stops the run.
until_200() {
  local deadline=$((SECONDS + ${BUILD_TIMEOUT:-600}))
  until [ "$(curl -s -o "$2" -w '%{http_code}' "$1")" = 200 ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "flat.sh: $1 not 200 after ${BUILD_TIMEOUT:-600} s" >&2
      exit 1
    fi
    sleep 0.5
  done
}

make_sources
printf 'source\tMP\tfirst_status\tfirst_ms\tretry_after\tbuild_s\tpeak_rss_MB\tpsnr_dB\n' >"$OUT/flat.tsv"
for f in flat.tif flat.jpg flat.png flat16.tif; do
  rm -rf "$OUT/cache"; serve "$OUT/cache"
  url="http://127.0.0.1:$port/iiif/$f/full/$((W / 16)),/0/default.png"
  t0=$(date +%s.%N)
  first=$(curl -s -o /dev/null -D "$OUT/first.hdr" -w '%{http_code} %{time_total}' "$url")
  retry=$(awk 'tolower($1)=="retry-after:" {print $2+0}' "$OUT/first.hdr")
  until_200 "$url" "$OUT/$f.png"
  built=$(echo "$(date +%s.%N) - $t0" | bc -l)
  rss=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status")
  vips shrink "$SRC/$f" "$OUT/ref.v" 16 16
  if [ "$f" = flat16.tif ]; then vips linear "$OUT/ref.v" "$OUT/ref8.v" "$(echo 1/257 | bc -l)" 0 --uchar
  else vips cast "$OUT/ref.v" "$OUT/ref8.v" uchar; fi
  vips crop "$OUT/ref8.v" "$OUT/refc.v" 0 0 "$(vipsheader -f width "$OUT/$f.png")" "$(vipsheader -f height "$OUT/$f.png")"
  db=$(psnr "$OUT/$f.png" "$OUT/refc.v")
  printf '%s\t%d\t%s\t%.0f\t%s\t%.1f\t%s\t%s\n' "$f" $((W * H / 1000000)) "${first% *}" \
    "$(echo "${first#* } * 1000" | bc -l)" "${retry:--}" "$built" "$rss" "$db" | tee -a "$OUT/flat.tsv"
done

# Steady state: the pyramid built on first use (flat.tif, built above in the last server's
# cache only for flat16.tif, so built again here) against the one converted ahead of time.
rm -rf "$OUT/cache"; serve "$OUT/cache"
until_200 "http://127.0.0.1:$port/iiif/flat.tif/full/256,/0/default.jpg" /dev/null
# ROUNDS alternations of the two (default 3), medians reported: noise on a shared machine
# moves single runs by tens of percent.
for round in $(seq "${ROUNDS:-3}"); do
  for id in flat.tif converted.tif; do
    ID=$id W=$W H=$H WORKLOADS="hot cold" COLD_IDS=$id DURATION=$DURATION NAME=$id \
      OUT="$OUT/bench-$id-$round" "$SHARED/peers/bench.sh" "http://127.0.0.1:$port/iiif" iiif >/dev/null
  done
done
printf '\nworkload\tconns\tflat.tif_rps\tconverted.tif_rps\tratio\n' | tee -a "$OUT/flat.tsv"
cat "$OUT"/bench-*/results.tsv | awk -F'\t' '$1 != "name" {print $1 "\t" $3 "\t" $4 "\t" $5}' |
  sort -k2,2 -k3,3n -k1,1 -k4,4n |
  awk -F'\t' '
    function median(list,   n, a) { n = split(list, a, " "); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { key = $2 "\t" $3; v[key, $1] = v[key, $1] " " $4; keys[key] = 1 }
    END { for (k in keys) { f = median(v[k, "flat.tif"]); c = median(v[k, "converted.tif"]);
          printf "%s\t%.0f\t%.0f\t%.2f\n", k, f, c, f / c } }' | sort | tee -a "$OUT/flat.tsv"
echo "results: $OUT/flat.tsv"
