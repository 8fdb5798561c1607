#!/usr/bin/env bash
# Our binary as a FastCGI process behind real web servers, configured the way the original's
# documentation shows (../shared/peers/start-iipsrv.sh writes the configurations):
#   lighttpd -> iipsrv --bind HOST:PORT        (2 processes)
#   nginx    -> iipsrv --bind HOST:PORT        (fastcgi_pass, Debian's fastcgi_params)
#   lighttpd -> spawn-fcgi -> iipsrv            (listening socket inherited on fd 0)
#   apache   -> mod_proxy_fcgi -> iipsrv --bind (IIIF) and mod_fcgid -> iipsrv (IIP, fd 0)
# Through each: the IIIF validator (levels 0-2, v3 at /iiif/ and v2 at /iiif/2/), a sample
# of IIP, DeepZoom and Zoomify requests and a 3 MB answer. This script starts and stops the
# servers; the checks are the Python harness's (scripts/harness: validator.py, webservers.py).
# nginx runs twice: one connection per request, then kept-alive connections (upstream
# keepalive, fastcgi_keep_conn on). RECORD=DIR saves what each web server sends on each
# FastCGI connection into DIR (scripts/fcgi-record.py), as seeds for the fastcgi_records
# fuzz target.
# Prints "web servers: N passed, M failed"; exits 1 on any validator failure or wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
cargo build --release -q
BIN=$PWD/target/release/iipsrv
work=$(mktemp -d)
chmod 755 "$work"   # Apache's worker user must read the images
if [ -n "${RECORD:-}" ]; then
  mkdir -p "$RECORD" && chmod 777 "$RECORD"
  printf '#!/bin/sh\nexec %q %q %q "$@"\n' "$PWD/scripts/fcgi-record.py" "$(realpath "$RECORD")" "$BIN" > "$work/recorder"
  chmod 755 "$work/recorder"
  BIN=$work/recorder
fi
run=""
cleanup() {
  [ -n "$run" ] && RUN=$run bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1
  [ -f "$work/apache/httpd.pid" ] && apache2 -f "$work/apache/httpd.conf" -k stop 2>/dev/null
  [ -n "${ipid:-}" ] && kill "$ipid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
source scripts/ports.sh

images=$work/images
mkdir -p "$images"
# the validator's test image (made once by validate.sh) doubles as the sample image
cat > "$work/spawn-wrapper" <<EOW
#!/bin/sh
# called as: spawn-wrapper --bind HOST:PORT ; spawn-fcgi binds and passes the socket on fd 0
hp=\$2
exec spawn-fcgi -n -a "\${hp%:*}" -p "\${hp##*:}" -- "$BIN"
EOW
chmod +x "$work/spawn-wrapper"

checks() { harness --ledger "$work/checks.tsv" "$@"; }

# Apache: mod_proxy_fcgi for /iiif/ (to a --bind process), mod_fcgid for /fcgi-bin/ (spawned)
start_apache() { # port
  local a=$work/apache fport
  fport=$(free_port)
  mkdir -p "$a/logs" "$a/fcgid" "$a/fcgi-bin"
  cp "$BIN" "$a/fcgi-bin/iipsrv.fcgi"
  chown -R www-data "$a/fcgid"; chmod -R a+rX "$a"
  CORS="*" FILESYSTEM_PREFIX="$images" VERBOSITY=0 TIFF_COMPRESSION=0 "$BIN" --bind "127.0.0.1:$fport" 2> "$a/logs/iipsrv.log" &
  ipid=$!
  cat > "$a/httpd.conf" <<EOA
ServerRoot $a
ServerName 127.0.0.1
Listen 127.0.0.1:$1
PidFile $a/httpd.pid
ErrorLog $a/logs/error.log
User www-data
Group www-data
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_fcgi_module /usr/lib/apache2/modules/mod_proxy_fcgi.so
LoadModule fcgid_module /usr/lib/apache2/modules/mod_fcgid.so
DocumentRoot $a
ProxyPass /iiif/ fcgi://127.0.0.1:$fport/iiif/ enablereuse=on
FcgidIPCDir $a/fcgid
FcgidProcessTableFile $a/fcgid/table
FcgidInitialEnv FILESYSTEM_PREFIX $images/
FcgidInitialEnv CORS *
FcgidInitialEnv VERBOSITY 0
ScriptAlias /fcgi-bin/ $a/fcgi-bin/
<Directory $a/fcgi-bin>
  SetHandler fcgid-script
  Options +ExecCGI
  Require all granted
</Directory>
RewriteEngine on
RewriteRule ^/deepzoom/(.*)\$ /fcgi-bin/iipsrv.fcgi?DeepZoom=\$1 [PT]
RewriteRule ^/zoomify/(.*)\$ /fcgi-bin/iipsrv.fcgi?Zoomify=\$1 [PT]
EOA
  apache2 -f "$a/httpd.conf" -k start || { cat "$a/logs/error.log"; exit 1; }
  wait_for_http "http://127.0.0.1:$1/iiif/x/info.json"
}

# nginx-keepalive: the nginx configuration with kept-alive FastCGI connections
keep_alive() { # run
  sed -i 's/least_conn;/least_conn; keepalive 8;/; s/fastcgi_pass iipsrv;/fastcgi_keep_conn on; fastcgi_pass iipsrv;/g' "$1/nginx.conf"
  nginx -c "$1/nginx.conf" -s reload
  sleep 1
}

for setup in lighttpd nginx nginx-keepalive spawn-fcgi apache; do
  web=$setup; bin=$BIN
  [ "$setup" = spawn-fcgi ] && { web=lighttpd; bin=$work/spawn-wrapper; }
  [ "$setup" = nginx-keepalive ] && web=nginx
  run=$work/run-$setup
  if [ "$setup" = apache ]; then
    run=""
    port=$(free_port)
    start_apache "$port"
  else
    start_peer "$run" WEB=$web NPROCS=$([ "$setup" = lighttpd ] && echo 2 || echo 1) \
      IMAGES="$images" IIPSRV_BIN="$bin" VERBOSITY=0 TIFF_COMPRESSION=0 || exit 1
    port=$PEER_PORT
    [ "$setup" = nginx-keepalive ] && keep_alive "$run"
  fi
  base=http://127.0.0.1:$port
  checks validator --shared "$SHARED" --images "$images" --out "$work/validate-$setup" \
    --label "$setup" --name "$setup" "$base"
  checks webservers "$setup" "$base"
  if [ "$setup" = apache ]; then
    apache2 -f "$work/apache/httpd.conf" -k stop; kill "$ipid"; ipid=""
  else
    RUN=$run bash "$SHARED/peers/stop-iipsrv.sh" >/dev/null 2>&1 || true
  fi
  run=""
done
checks report "web servers"
