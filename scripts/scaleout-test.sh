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
# Prints "scale-out: N passed, M failed"; exits 1 on any failure.
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
passed=0; failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

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
for v in 3.0 2.0; do
  prefix=$base/iiif; [ "$v" = 2.0 ] && prefix=$prefix/2
  out=$work/validate-$v
  IMAGES="$bucket" MAKE_IMAGE=0 OUT="$out" VERSIONS="$v" LEVELS="0 1 2" NAME=scaleout \
    bash "$SHARED/peers/validate.sh" "$prefix" > "$work/validate.log" 2>&1 || { cat "$work/validate.log"; exit 1; }
  n=$(wc -l < "$out/results.tsv"); f=$(grep -c FAIL "$out/results.tsv" || true)
  echo "balancer: IIIF validator v$v levels 0-2 on images only in S3: $n tests, $f failed"
  [ "$n" -gt 0 ] || { echo "validator ran no test"; exit 1; }
  [ "$f" = 0 ] || grep -A4 '^# failures' "$out/summary.txt" || true
  passed=$((passed + n - f)); failed=$((failed + f))
done

# ---- 2. samples: through the balancer = from disk ----------------------------------
jp2=validator/$id.jp2
samples=(
  "iiif/big.tif/info.json" "iiif/big.tif/full/max/0/default.jpg" "iiif/big.tif/0,0,256,256/256,/0/default.jpg"
  "iiif/big.tif/512,768,256,256/256,/0/default.jpg" "iiif/big.tif/700,300,1500,900/600,/0/default.png"
  "iiif/big.tif/full/!400,400/90/gray.webp" "iiif/$jp2/info.json" "iiif/$jp2/full/300,/0/default.jpg"
  "iiif/$jp2/250,250,500,500/250,/0/default.png" "fcgi-bin/iipsrv.fcgi?FIF=big.tif&JTL=3,5"
  "fcgi-bin/iipsrv.fcgi?FIF=big.tif&WID=500&RGN=0.1,0.1,0.5,0.5&CVT=jpeg"
  "fcgi-bin/iipsrv.fcgi?FIF=big.tif&OBJ=IIP,1.0&OBJ=Max-size&OBJ=Resolution-number"
  "deepzoom/big.tif.dzi" "deepzoom/big.tif_files/10/2_1.jpg" "zoomify/big.tif/ImageProperties.xml"
  "zoomify/big.tif/TileGroup0/2-1-1.jpg"
)
compare() {  # compare LB_PATH DISK_PATH
  local a=$work/lb.out b=$work/disk.out sa sb
  sa=$(curl -s -o "$a" -w '%{http_code}' "$base/$1")
  sb=$(curl -s -o "$b" -w '%{http_code}' "$disk/$2")
  if [[ "$1" == *info.json ]]; then  # ids differ by design: public URL vs the disk server's
    sed -i "s|$base/|PUBLIC/|g; s|PUBLIC/iiif/web/|PUBLIC/iiif/|g" "$a"; sed -i "s|$disk/|PUBLIC/|g" "$b"
    grep -q "PUBLIC/iiif/" "$a" || { fail "$1: id is not the balancer's public URL: $(grep -m1 '"id"' "$a")"; return; }
  fi
  if [ "$sa" = 200 ] && [ "$sa" = "$sb" ] && cmp -s "$a" "$b"; then ok; else fail "$1: $sa vs disk $sb"; fi
}
for s in "${samples[@]}"; do compare "$s" "$s"; done
for s in "iiif/big.tif/info.json" "iiif/big.tif/512,768,256,256/256,/0/default.jpg" \
         "iiif/big.tif/700,300,1500,900/600,/0/default.png"; do
  compare "${s/big.tif/web\/big.tif}" "$s"   # the same file over plain HTTP with Range (web/…)
done
echo "balancer: ${#samples[@]} samples from S3 and 3 over HTTP compared with disk"

# ---- 3. purge through the balancer -------------------------------------------------
s=$(curl -s -o "$work/purge" -w '%{http_code}' -X POST -H 'Authorization: Bearer scaleout-token' "$base/admin/purge/big.tif")
[ "$s" = 200 ] && grep -q '"purged":"big.tif"' "$work/purge" && ok || fail "purge: $s $(cat "$work/purge")"
s=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/admin/purge/big.tif")
[ "$s" = 401 ] && ok || fail "purge without the token: $s"

# ---- 4. kill an instance, then memcached, under load --------------------------------
python3 - "$base" "$work/load" <<'PY' &
import http.client, sys, threading, time, urllib.parse
base, out = sys.argv[1], sys.argv[2]
u = urllib.parse.urlsplit(base)
counts = {"ok": 0, "bad": 0}
lock = threading.Lock()
def client(n):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    i = 0
    end = time.time() + 12
    while time.time() < end:
        i += 1
        w = 100 + (n * 997 + i) % 600
        path = f"{u.path}/iiif/big.tif/{(i * 37) % 2000},{(i * 53) % 1500},700,400/{w},/0/default.jpg"
        try:
            conn.request("GET", path)
            r = conn.getresponse(); r.read()
            good = r.status == 200
        except Exception:
            conn.close(); conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            good = False
        with lock:
            counts["ok" if good else "bad"] += 1
ts = [threading.Thread(target=client, args=(n,)) for n in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
open(out, "w").write(f"{counts['ok']} {counts['bad']}\n")
PY
loader=$!
sleep 3; { kill -9 "$bpid"; wait "$bpid"; } 2>/dev/null || true; echo "killed instance B (port $pb) under load"
sleep 4; { kill -9 "$mcpid"; wait "$mcpid"; } 2>/dev/null || true; echo "killed memcached under load"
wait "$loader"
read -r good bad < "$work/load"
echo "balancer: $good requests answered 200 while B and memcached died, $bad failed"
[ "$bad" = 0 ] && [ "$good" -gt 100 ] && ok || fail "requests failed after the balancer's retry: $bad (of $((good + bad)))"
s=$(curl -s -o /dev/null -w '%{http_code}' "$base/iiif/big.tif/100,100,800,600/400,/0/default.jpg")
[ "$s" = 200 ] && ok || fail "after the kills: $s"
s=$(curl -s -o "$work/purge" -w '%{http_code}' -X POST -H 'Authorization: Bearer scaleout-token' "$base/admin/purge/big.tif")
[ "$s" = 503 ] && ok || fail "a purge with memcached dead must say so (503): $s $(cat "$work/purge")"
echo "balancer: purge with memcached dead: $s $(cat "$work/purge")"

grep -h ' WARN \| ERROR ' "$work"/server-*.log | grep -v 'memcached' | head -5 || true
echo "scale-out: $passed passed, $failed failed"
[ "$failed" = 0 ]
