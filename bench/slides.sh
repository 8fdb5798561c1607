#!/usr/bin/env bash
# Microscopy and HTJ2K sources against the same pixels in the layouts they are compared
# with: a manual run (about 6-9 minutes at the defaults), too long for CI.
#
#   bench/slides.sh                       # 8000x6000 images
#   W=4000 H=3000 DURATION=5 bench/slides.sh
#
# Makes its own images: an Aperio SVS (tifffile, JPEG tiles of 240 with shared JPEGTables,
# 4x levels; tests/fixtures/make-slides.py) and, from its level 0, a JPEG-tiled pyramidal
# TIFF with the same tile size (vips, Q90); an 8-bit OME-TIFF of three planes with SubIFD
# pyramids (tifffile, deflate tiles of 256) and, from its plane 0, a grey JPEG-tiled
# pyramidal TIFF (vips, Q90); from the SVS's level 0, a JPEG2000 (.jp2, opj_compress,
# 512-px tiles, 6 resolutions, ratio 20) and an HTJ2K (.jph, ojph_compress, 512-px tiles,
# 6 resolutions, qstep 0.01). Then, one server (answer cache off), for each pair alternated
# ROUNDS times: tiles/s (`hot`: random full-resolution tiles) and 512-px regions/s
# (`region`) with ../shared/peers/bench.sh (wrk), medians and the ratio of each source to
# its reference. The machine is shared with other builds: compare ratios within one run.
# Output: a table on standard output and in $OUT/slides.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
W=${W:-8000} H=${H:-6000} DURATION=${DURATION:-8} ROUNDS=${ROUNDS:-2} CONNS=${CONNS:-"2 8"}
OUT=${OUT:-/tmp/peers/slides-$(date +%Y%m%d-%H%M%S)}
SRC=${SRC:-/tmp/peers/slides-sources-${W}x${H}}
BIN=${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/iipsrv}
scripts/deps.sh bench
cargo build --release -q -p iipsrv
PY=$(scripts/slide-venv.sh)
mkdir -p "$OUT" "$SRC"
source scripts/ports.sh
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; true; }
trap cleanup EXIT

make_sources() {
  [ -s "$SRC/ref-ome.tif" ] && return
  echo "making ${W}x${H} sources in $SRC"
  "$PY" tests/fixtures/make-slides.py svs "$SRC/slide.svs" --size "${W}x${H}"
  "$PY" tests/fixtures/make-slides.py ome "$SRC/cells.ome.tif" --size "${W}x${H}"
  "$PY" - "$SRC" <<'PYEOF'
import sys, tifffile
src = sys.argv[1]
with tifffile.TiffFile(f"{src}/slide.svs") as t:
    tifffile.imwrite(f"{src}/level0.tif", t.pages[0].asarray(), photometric="rgb")
with tifffile.TiffFile(f"{src}/cells.ome.tif") as t:
    tifffile.imwrite(f"{src}/plane0.tif", t.series[0].levels[0].asarray()[0])
PYEOF
  vips tiffsave "$SRC/level0.tif" "$SRC/ref-svs.tif" --tile --pyramid --compression jpeg \
    --Q 90 --tile-width 240 --tile-height 240
  opj_compress -i "$SRC/level0.tif" -o "$SRC/slide.jp2" -t 512,512 -n 6 -r 20 >/dev/null
  ojph_compress -i "$SRC/level0.tif" -o "$SRC/slide.jph" -tile_size "{512,512}" \
    -num_decomps 5 -qstep 0.01 >/dev/null
  vips tiffsave "$SRC/plane0.tif" "$SRC/ref-ome.tif" --tile --pyramid --compression jpeg \
    --Q 90 --tile-width 256 --tile-height 256
  rm -f "$SRC/level0.tif" "$SRC/plane0.tif"
}

make_sources
port=$(free_port)
FILESYSTEM_PREFIX=$SRC/ IIIF_DELIMITER=';' MAX_IMAGE_CACHE_SIZE=0 VERBOSITY=0 \
  "$BIN" --http "127.0.0.1:$port" 2>"$OUT/server.log" &
pid=$!
wait_for_http "http://127.0.0.1:$port/health"

# pairs: source, its reference, tile size
pairs=("slide.svs ref-svs.tif 240" "cells.ome.tif;0 ref-ome.tif 256" "slide.jph slide.jp2 512")
for round in $(seq "$ROUNDS"); do
  for pair in "${pairs[@]}"; do
    read -r a b tile <<<"$pair"
    for id in "$a" "$b"; do
      name=${id//;/_}
      ID=$id W=$W H=$H TILE=$tile WORKLOADS="hot region" COLD_IDS=$id CONNS=$CONNS \
        DURATION=$DURATION NAME=$name OUT="$OUT/bench-$name-$round" \
        "$SHARED/peers/bench.sh" "http://127.0.0.1:$port/iiif" iiif >/dev/null
      sed "s/^/$name\t/" "$OUT/bench-$name-$round/results.tsv" >>"$OUT/all.tsv"
    done
  done
done

# all.tsv: image, then bench.sh's columns (name, style, workload, conns, rps, ...)
printf 'source\treference\tworkload\tconns\tsource_rps\treference_rps\tratio\n' | tee "$OUT/slides.tsv"
for pair in "${pairs[@]}"; do
  read -r a b _ <<<"$pair"
  awk -F'\t' -v a="${a//;/_}" -v b="${b//;/_}" '
    function median(list,   n, x, i, j, t) {
      n = split(list, x, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && x[j - 1] + 0 > x[j] + 0; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
      return n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
    }
    $2 != "name" && ($1 == a || $1 == b) { key = $4 "\t" $5; v[key, $1] = v[key, $1] " " $6; keys[key] = 1 }
    END { for (k in keys) { s = median(v[k, a]); r = median(v[k, b]);
          printf "%s\t%s\t%s\t%.0f\t%.0f\t%.2f\n", a, b, k, s, r, (r > 0 ? s / r : 0) } }' \
    "$OUT/all.tsv" | sort -k3,3 -k4,4n | tee -a "$OUT/slides.tsv"
done
echo "results: $OUT/slides.tsv"
