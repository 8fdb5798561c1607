#!/usr/bin/env bash
# What the access policy (AUTH_POLICY) costs per request: the same IIIF tiles served by the
# same binary three ways, alternated ROUNDS times on fresh servers, medians and ratios:
#   none       no policy (the check is one test of an unset option);
#   open       a policy whose rules do not match the image (every id is matched against them);
#   protected  the image under a restricted rule, every request carrying the session cookie
#              the rule's access service set (a cookie parsed and looked up per request);
#              its answers are private, so this is also the cost of Cache-Control/Vary.
# Workloads: hot (50 tiles picked at random, RAM answer cache on: the check is most of the
# work) and cold (every tile of the two largest levels, answer cache off), each at CONNS
# connections for DURATION seconds with wrk (one thread) on loopback.
#
#   bench/auth.sh                        # about 6 minutes
#   ROUNDS=5 DURATION=15 bench/auth.sh
#
# Output: a table on standard output and in $OUT/auth.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-8} CONNS=${CONNS:-"2 16"}
W=${W:-6000} H=${H:-4000}
OUT=${OUT:-/tmp/peers/auth-$(date +%Y%m%d-%H%M%S)}
BIN=${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/iipsrv}
command -v wrk >/dev/null || { echo "wrk not installed (scripts/deps.sh bench)" >&2; exit 1; }
cargo build --release -q
mkdir -p "$OUT/images/restricted"
source scripts/ports.sh
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; true; }
trap cleanup EXIT

# One JPEG-tiled pyramidal TIFF, under the open name and the restricted one.
img=$OUT/images/open.tif
if [ ! -s "$img" ]; then
  vips perlin "$OUT/p.v" "$W" "$H" --cell-size 256
  vips linear "$OUT/p.v" "$OUT/l.v" 200 128 --uchar
  vips bandjoin "$OUT/l.v $OUT/l.v $OUT/l.v" "$OUT/rgb.v"
  vips tiffsave "$OUT/rgb.v" "$img" --tile --tile-width 256 --tile-height 256 --pyramid \
    --compression jpeg --Q 90
  rm -f "$OUT"/*.v
fi
cp "$img" "$OUT/images/restricted/r.tif"
cat > "$OUT/policy.toml" <<'EOF'
[[rule]]
name = "terms"
ids = "restricted/**"
access = "restricted"
profile = "active"
label = "Accept the terms"

[[rule]]
ids = "elsewhere/**"
access = "restricted"
profile = "active"
label = "Not these images"
EOF

# Paths: hot = 50 random full-resolution tiles; cold = every tile of the two largest levels.
tiles() { # ID FACTOR -> every tile of the level FACTOR times smaller than full size
  local id=$1 f=$2 x y tw
  for ((y = 0; y < H; y += 256 * f)); do
    for ((x = 0; x < W; x += 256 * f)); do
      local w=$((256 * f)) h=$((256 * f))
      ((x + w > W)) && w=$((W - x)); ((y + h > H)) && h=$((H - y))
      tw=$(((w + f - 1) / f))
      echo "/iiif/$id/$x,$y,$w,$h/$tw,/0/default.jpg"
    done
  done
}
for id in open.tif restricted%2Fr.tif; do
  tiles "$id" 1 | shuf --random-source=<(yes) -n 50 > "$OUT/hot-$id.txt"
  { tiles "$id" 1; tiles "$id" 2; } | shuf --random-source=<(yes) > "$OUT/cold-$id.txt"
done
cat > "$OUT/paths.lua" <<'EOF'
-- wrk -s paths.lua URL -- PATHFILE random|seq : one path per request, headers from -H
local paths, i, mode = {}, 0, "random"
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  mode = args[2] or mode
  math.randomseed(42)
end
function request()
  local p
  if mode == "seq" then i = i % #paths + 1; p = paths[i] else p = paths[math.random(#paths)] end
  return wrk.format("GET", p)
end
EOF

# serve CONFIG WORKLOAD: a fresh server for one configuration.
serve() {
  cleanup
  local cache=512; [ "$2" = cold ] && cache=0
  local env=(FILESYSTEM_PREFIX="$OUT/images/" URI_MAP="iiif=>IIIF" MAX_IMAGE_CACHE_SIZE="$cache"
    DECODED_CACHE_SIZE=256 VERBOSITY=0)
  [ "$1" != none ] && env+=(AUTH_POLICY="$OUT/policy.toml")
  port=$(free_port)
  env "${env[@]}" "$BIN" --http "127.0.0.1:$port" >"$OUT/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; tail "$OUT/server.log" >&2; exit 1
}

# run CONFIG WORKLOAD CONNS: requests/s of one wrk run.
run() {
  local id=open.tif header=()
  if [ "$1" = protected ]; then
    id=restricted%2Fr.tif
    local cookie
    cookie=$(curl -s -o /dev/null -D - -X POST "http://127.0.0.1:$port/iiif/_auth/access/terms" |
      sed -n 's/^set-cookie: \([^;]*\);.*/\1/ip' | head -1)
    [ -n "$cookie" ] || { echo "no session cookie" >&2; exit 1; }
    header=(-H "Cookie: $cookie")
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' "${header[@]}" \
      "http://127.0.0.1:$port$(head -1 "$OUT/hot-$id.txt")")
    [ "$status" = 200 ] || { echo "protected tile with the cookie: $status" >&2; exit 1; }
  fi
  local mode=random; [ "$2" = cold ] && mode=seq
  # hot: one pass over its tiles first, so that every configuration starts with them cached
  [ "$2" = hot ] && wrk -t1 -c1 -d1s "${header[@]}" -s "$OUT/paths.lua" "http://127.0.0.1:$port" \
    -- "$OUT/hot-$id.txt" seq >/dev/null
  wrk -t1 -c"$3" -d"${DURATION}s" "${header[@]}" -s "$OUT/paths.lua" "http://127.0.0.1:$port" \
    -- "$OUT/$2-$id.txt" "$mode" > "$OUT/wrk.txt"
  grep -q "Non-2xx" "$OUT/wrk.txt" && { echo "non-2xx answers ($1 $2)" >&2; cat "$OUT/wrk.txt" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$OUT/wrk.txt"
}

: > "$OUT/auth.tsv"
for round in $(seq "$ROUNDS"); do
  for workload in hot cold; do
    for config in none open protected; do
      serve "$config" "$workload"
      for c in $CONNS; do
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$workload" "$c" "$config" \
          "$(run "$config" "$workload" "$c")" >> "$OUT/auth.tsv"
      done
    done
  done
done
cleanup
python3 - "$OUT/auth.tsv" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
med = {}
for _, wl, c, cfg, rps in rows:
    med.setdefault((wl, c, cfg), []).append(float(rps))
print("workload  conns  none req/s  open req/s  protected req/s  open/none  protected/none")
for (wl, c) in sorted({(r[1], r[2]) for r in rows}, key=lambda k: (k[0], int(k[1]))):
    n, o, p = (statistics.median(med[(wl, c, k)]) for k in ("none", "open", "protected"))
    print(f"{wl:8}  {c:>5}  {n:10.0f}  {o:10.0f}  {p:15.0f}  {o/n:9.2f}  {p/n:14.2f}")
EOF
echo "(medians of $ROUNDS alternated rounds; raw figures in $OUT/auth.tsv)"
