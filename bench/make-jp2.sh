#!/usr/bin/env bash
# The JPEG2000 images of the benchmark, made from make-images.sh's big-deflate.tif (same
# pixels as big-jpeg-q90.tif), so that nothing is made by hand:
#   big-rgb.jp2    opj_compress -n 7 -t 512,512 -r 50,20,8 -I -p RPCL (3 quality layers, 512-px
#                  codestream tiles; docs/benchmarks.md, 2026-11-24)
#   big-rgb.jph    HTJ2K (ojph_compress), 7 resolutions, 512-px codestream tiles, reversible
# plus 16 aliases of each (big-rgb-c00.jp2 ...) for cold-tile runs, as make-images.sh makes for
# the TIFFs. Files already there are kept.
#
#   bench/make-jp2.sh                         # IMAGES=/tmp/peers/images
#   IMAGES=/tmp/peers/images-small bench/make-jp2.sh
set -euo pipefail
IMAGES=${IMAGES:-/tmp/peers/images}
SRC=$IMAGES/big-deflate.tif
[ -s "$SRC" ] || { echo "no $SRC: run ../shared/peers/make-images.sh" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/make-jp2.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# The full-resolution page of the pyramid as PPM, which both encoders read.
ppm() {
  [ -s "$TMP/full.ppm" ] || vips ppmsave "$SRC[page=0]" "$TMP/full.ppm"
}

if [ ! -s "$IMAGES/big-rgb.jp2" ]; then
  ppm
  opj_compress -i "$TMP/full.ppm" -o "$TMP/big-rgb.jp2" -n 7 -t 512,512 -r 50,20,8 -I -p RPCL >/dev/null
  mv "$TMP/big-rgb.jp2" "$IMAGES/big-rgb.jp2"
fi
if [ ! -s "$IMAGES/big-rgb.jph" ]; then
  ppm
  ojph_compress -i "$TMP/full.ppm" -o "$TMP/big-rgb.jph" -num_decomps 6 -tile_size '{512,512}' \
    -reversible true >/dev/null
  mv "$TMP/big-rgb.jph" "$IMAGES/big-rgb.jph"
fi
for f in big-rgb.jp2 big-rgb.jph; do
  for i in $(seq -w 0 15); do
    ln -sf "$f" "$IMAGES/${f%.*}-c$i.${f##*.}"
  done
done
