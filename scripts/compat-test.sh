#!/usr/bin/env bash
# Differential compatibility suite: Debian's iipsrv 1.1 (the reference) and ours, each as
# FastCGI processes behind the same lighttpd configuration (../shared/peers/start-iipsrv.sh),
# on the same generated images; every request of tests/compat/requests.tsv is sent to both
# and compared by scripts/compat.py (text equal after normalising, images of equal size
# with PSNR >= 35 dB, errors of the same status; 'newer' rows are known 1.1 differences).
#
#   scripts/compat-test.sh                  # makes a W=4000 H=3000 image set (about 15 s)
#   IMAGES=/tmp/peers/images-small scripts/compat-test.sh   # reuse a make-images.sh set
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
REF_BIN=${REF_BIN:-/usr/lib/iipimage-server/iipsrv.fcgi}
[ -x "$REF_BIN" ] || { echo "compat: reference server not installed ($REF_BIN); run scripts/deps.sh test" >&2; exit 1; }
cargo build --release -q
BIN=$PWD/target/release/iipsrv
work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  for r in ref ours; do RUN=$work/run-$r bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
source scripts/ports.sh

images=${IMAGES:-$work/images}
if [ ! -f "$images/big-jpeg-q90.tif" ]; then
  W=4000 H=3000 OUT=$images bash "$SHARED/peers/make-images.sh" >"$work/make-images.log" 2>&1 \
    || { tail -20 "$work/make-images.log"; exit 1; }
fi

# Python with Pillow and numpy for decoding and comparing answers.
venv=${COMPAT_VENV:-/tmp/peers/compat-venv}
if ! "$venv/bin/python" -c 'import PIL, numpy' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pillow numpy
fi

# Extra images: 8-bit grey pyramid, and uniform colour patches (exact colour-map answers).
extra=$work/extra
mkdir -p "$extra"
cp "$images"/big-jpeg-q90.tif "$images"/big-deflate.tif "$images"/grey16.tif "$images"/lab8.tif \
  "$images"/small-rgb.jp2 "$images"/elevation-f32.tif "$extra/"
vips colourspace "$images/big-deflate.tif" "$work/grey.v" b-w
vips tiffsave "$work/grey.v" "$extra/grey8.tif" --tile --pyramid --compression deflate \
  --tile-width 256 --tile-height 256
"$venv/bin/python" - "$work/patch.png" <<'EOF'
import sys
import numpy as np
from PIL import Image
a = np.zeros((512, 512, 3), np.uint8)
for i, c in enumerate([(200, 100, 50), (10, 20, 30), (128, 128, 128), (255, 0, 0)]):
    y, x = divmod(i, 2)
    a[y * 256:(y + 1) * 256, x * 256:(x + 1) * 256] = c
Image.fromarray(a).save(sys.argv[1])
EOF
vips tiffsave "$work/patch.png" "$extra/patch.tif" --tile --pyramid --compression deflate \
  --tile-width 256 --tile-height 256

# An image sequence (FILENAME_PATTERN _pyr_): <id>_pyr_<horizontal>_<vertical>.tif, views
# of one size (as a real sequence has), two of them different (the negative of the patches)
for a in 000_000 000_090 045_090; do cp "$extra/patch.tif" "$extra/seq_pyr_$a.tif"; done
vips invert "$work/patch.png" "$work/negative.v"
vips tiffsave "$work/negative.v" "$extra/seq_pyr_000_180.tif" --tile --pyramid \
  --compression deflate --tile-width 256 --tile-height 256
cp "$extra/seq_pyr_000_180.tif" "$extra/seq_pyr_045_000.tif"

start_peer "$work/run-ref" IMAGES="$extra" IIPSRV_BIN="$REF_BIN"
ref_port=$PEER_PORT
start_peer "$work/run-ours" IMAGES="$extra" IIPSRV_BIN="$BIN" IIIF_VERSION=2 IIIF_EXTENSIONS=1
ours_port=$PEER_PORT

"$venv/bin/python" scripts/compat.py "http://127.0.0.1:$ref_port" "http://127.0.0.1:$ours_port" \
  tests/compat/requests.tsv --ids rgb=big-jpeg-q90.tif lossless=big-deflate.tif grey=grey8.tif \
  patch=patch.tif grey16=grey16.tif lab=lab8.tif jp2=small-rgb.jp2 elevation=elevation-f32.tif
