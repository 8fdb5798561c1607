#!/usr/bin/env bash
# Browser test of the viewer (viewer/e2e.mjs) in headless Chromium: first with no image
# directory configured, as the README's first command serves (the demo image, TIFF), then
# with a directory holding a JPEG2000 file; then the demo image's static trees (`iipsrv convert
# --static deepzoom|zoomify|iiif3|iiif2`) served as plain files by nginx, opened by
# OpenSeadragon in viewer/static.html; then the IIIF Authorization Flow with the example
# access policy, from IIIF manifests (viewer/auth-e2e.mjs). Screenshots go to target/viewer-test/.
# Needs Debian's chromium (scripts/deps.sh test) and Node.js; installs viewer/'s npm
# packages (OpenSeadragon, playwright-core) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d viewer/node_modules/playwright-core ] || (cd viewer && npm ci --no-audit --no-fund)
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/iipsrv
out=$PWD/target/viewer-test
work=$(mktemp -d)
pid=""
cleanup() {
  status=$?
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null
  [ "$status" = 0 ] || { echo "viewer: FAILED; the server's log ends:" >&2; tail -20 "$work/server.log" >&2; }
  rm -rf "$work"
}
trap cleanup EXIT
source scripts/ports.sh
port=$(free_port)

# serve ENV... : starts the server on $port and waits for /health.
serve() {
  [ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
  env "$@" "$BIN" --http "127.0.0.1:$port" >>"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null && return 0
    sleep 0.2
  done
  tail -20 "$work/server.log"; exit 1
}

serve -u FILESYSTEM_PREFIX TMPDIR="$work"
node viewer/e2e.mjs "http://127.0.0.1:$port" demo.tif "$out/demo"

# The demo image's static trees beside viewer/static.html and OpenSeadragon, served by nginx;
# the server (with CORS) gives the references the screenshots are compared with.
sport=$(free_port)
static=$work/static
for layout in deepzoom zoomify iiif3 iiif2; do
  "$BIN" convert "$work/iipsrv-demo/demo.tif" --static "$layout" "$static/$layout" \
    --id "http://127.0.0.1:$sport/$layout"
done
cp viewer/static.html "$static/"
cp -r viewer/node_modules/openseadragon/build/openseadragon "$static/osd"
chmod 755 "$work"
nginx_static "$work/nginx" "$sport" "$static"
serve -u FILESYSTEM_PREFIX TMPDIR="$work" CORS='*'
node viewer/e2e.mjs "http://127.0.0.1:$port" demo.tif "$out/static" "http://127.0.0.1:$sport" demo

mkdir -p "$work/images"
vips copy "$work/iipsrv-demo/demo.tif" "$work/demo.ppm"
opj_compress -i "$work/demo.ppm" -o "$work/images/demo.jp2" -n 5 -t 1024,1024 >/dev/null
serve FILESYSTEM_PREFIX="$work/images/"
node viewer/e2e.mjs "http://127.0.0.1:$port" demo.jp2 "$out/jp2"

# The IIIF Authorization Flow in the viewer (viewer/auth-e2e.mjs), opened from manifests:
# the example policy, the demo image under the folders of its degraded (login), external and
# kiosk rules. The page is opened at localhost, where browsers keep Secure cookies without
# HTTPS. JPEG quality 95: the degraded image (the demo at a tenth of its size) is all fine
# detail, where quality 75's own error leaves its view 2.3 grey levels from the reference
# (1.2 at 95) and one shifted by a pixel 3.5, too close to the limit of 3.
for folder in manuscripts staff patients; do
  mkdir -p "$work/auth/$folder"
  cp "$work/iipsrv-demo/demo.tif" "$work/auth/$folder/"
done
serve JPEG_QUALITY=95 FILESYSTEM_PREFIX="$work/auth/" AUTH_POLICY="$PWD/examples/auth-policy.toml" \
  TRUSTED_PROXIES=127.0.0.1
node viewer/auth-e2e.mjs "http://localhost:$port" demo.tif "$out/auth"
echo "viewer: screenshots in $out"
