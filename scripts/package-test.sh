#!/usr/bin/env bash
# The Debian package replacing iipimage-server in place (run last by scripts/test.sh: it
# swaps the machine's packages and puts Debian's back at the end):
#  1. scripts/package.sh builds the packages; lintian finds no error in them.
#  2. Debian's iipimage-server under Apache with mod_fcgid, and a site's configuration beside
#     it (the images directory, a /iiif/ rewrite): a tile and info.json through Apache.
#  3. ours installed over it with apt: the same URLs through the same, untouched Apache
#     configuration are answered by ours (IIIF 3 info.json; 1.1 knows only IIIF 2), and the
#     IIIF validator passes through it.
#  4. the systemd unit's ExecStart, run by hand as systemd would (its user, Environment and
#     EnvironmentFile), answers a FastCGI request (cgi-fcgi).
#  5. ours removed, Debian's reinstalled: the original answers again.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
scripts/deps.sh package
source scripts/ports.sh
work=$(mktemp -d /tmp/iipsrv-package.XXXXXX)
chmod 755 "$work"
conf=$work/httpd.conf unitpid=""
export DEBIAN_FRONTEND=noninteractive
apache() { (set +u; . /etc/apache2/envvars && apache2 -f "$conf" -k "$1"); }
cleanup() {
  [ -n "$unitpid" ] && kill "$unitpid" 2>/dev/null
  [ -f "$work/httpd.pid" ] && apache stop 2>/dev/null
  if ! dpkg-query -W -f='${Status}' iipimage-server 2>/dev/null | grep -q "install ok installed"; then
    apt-get install -y -qq iipimage-server >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
fail() { echo "package: FAIL: $*" >&2; exit 1; }

echo "== 1. build and lintian"
scripts/package.sh
deb=$(ls target/debian/iipsrv-rs_*_"$(dpkg --print-architecture)".deb)
lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v "root privileges" | tee "$work/lintian.txt" || true
! grep -q '^E:' "$work/lintian.txt" || fail "lintian errors"

echo "== 2. Debian's iipimage-server under Apache"
images=$work/images
mkdir -p "$images" "$work/logs"
vips black "$work/black.v" 1024 768 --bands 3
vips tiffsave "$work/black.v" "$images/a.tif" --tile --pyramid --compression jpeg --tile-width 256 --tile-height 256
chmod -R a+rX "$images"
apt-get install -y -qq apache2 libapache2-mod-fcgid >/dev/null
# Installed (again) after Apache, as on a site: its postinst enables the module and makes
# its log file (its prerm fails when that file is missing).
apt-get install -y -qq --reinstall iipimage-server >/dev/null
port=$(free_port)
# The machine's Apache modules as the packages enabled them (iipsrv and fcgid included,
# untouched), with the site's own part: where the images are, and IIIF at /iiif/.
cat > "$conf" <<EOC
DefaultRuntimeDir $work
PidFile $work/httpd.pid
ErrorLog $work/logs/error.log
User www-data
Group www-data
ServerName 127.0.0.1
Listen 127.0.0.1:$port
IncludeOptional /etc/apache2/mods-enabled/*.load
IncludeOptional /etc/apache2/mods-enabled/*.conf
LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so
FcgidInitialEnv FILESYSTEM_PREFIX "$images/"
FcgidInitialEnv CORS "*"
RewriteEngine on
RewriteRule ^/iiif/(.*)\$ /iipsrv/iipsrv.fcgi?IIIF=\$1 [PT]
EOC
url=http://127.0.0.1:$port
expect() { # name status content-type-prefix url [body-needle]
  local got
  got=$(curl -s -o "$work/body" -w '%{http_code} %{content_type}' "$4")
  [[ "$got" == "$2 $3"* ]] || fail "$1: $got for $4 ($(head -c 200 "$work/body"))"
  [ -z "${5:-}" ] || grep -q "$5" "$work/body" || fail "$1: no '$5' in $(head -c 300 "$work/body")"
  echo "ok   $1"
}
original() {
  apache start
  wait_for_http "$url/iipsrv/iipsrv.fcgi?FIF=a.tif&OBJ=IIP-server"
  expect "$1: tile" 200 image/jpeg "$url/iipsrv/iipsrv.fcgi?FIF=a.tif&JTL=0,0"
  expect "$1: the original's IIIF 2 info.json" 200 application/ "$url/iiif/a.tif/info.json" "image/2/context.json"
  apache stop; sleep 1
}
original "Debian's iipimage-server"

echo "== 3. ours installed over it"
# iipimage-server's prerm removes its log file once for Apache and again for lighttpd, so it
# fails on a machine with both (as this one): lighttpd's configuration is set aside for the
# swap, as on a site with Apache alone.
swap() { # apt-get arguments
  mv /etc/lighttpd/lighttpd.conf "$work/lighttpd.conf" 2>/dev/null || true
  apt-get "$@" >/dev/null || { mv "$work/lighttpd.conf" /etc/lighttpd/lighttpd.conf 2>/dev/null; fail "apt-get $*"; }
  mv "$work/lighttpd.conf" /etc/lighttpd/lighttpd.conf 2>/dev/null || true
}
swap install -y -qq "./$deb"
dpkg-query -W -f='${Status}' iipimage-server 2>/dev/null | grep -q "install ok installed" && fail "iipimage-server still installed"
[ -L /etc/apache2/mods-enabled/iipsrv.load ] || fail "the iipsrv Apache module is not enabled"
/usr/lib/iipimage-server/iipsrv.fcgi --version | head -1
apache start
wait_for_http "$url/iipsrv/iipsrv.fcgi?FIF=a.tif&OBJ=IIP-server"
expect "ours: tile" 200 image/jpeg "$url/iipsrv/iipsrv.fcgi?FIF=a.tif&JTL=0,0"
expect "ours: IIIF 3 info.json" 200 application/ "$url/iiif/a.tif/info.json" "ImageService3"
expect "ours: OBJ" 200 "" "$url/iipsrv/iipsrv.fcgi?FIF=a.tif&OBJ=IIP-server" "IIP-server:"
checks() { harness --ledger "$work/checks.tsv" "$@"; }
checks validator --shared "$SHARED" --images "$images" --out "$work/validate" --label "ours through the package's Apache configuration" "$url"
checks report package-validator
apache stop; sleep 1

echo "== 4. the systemd unit's command line"
unit=/lib/systemd/system/iipsrv.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
environment=$(sed -n 's/^Environment=//p' "$unit")
envfile=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
install -d -o "$user" /var/log/iipsrv   # LogsDirectory=iipsrv
fport=$(echo "$exec_start" | sed -n 's/.*--bind 127.0.0.1:\([0-9]*\).*/\1/p')
(set -a; eval "$environment"; [ -f "$envfile" ] && . "$envfile"; FILESYSTEM_PREFIX=$images/
 exec setpriv --reuid="$user" --regid="$user" --init-groups $exec_start) &
unitpid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$fport") 2>/dev/null && break; sleep 0.1; done
answer=$(REQUEST_METHOD=GET SCRIPT_NAME=/iipsrv.fcgi QUERY_STRING="FIF=a.tif&OBJ=Max-size" \
  REQUEST_URI="/iipsrv.fcgi?FIF=a.tif&OBJ=Max-size" cgi-fcgi -bind -connect "127.0.0.1:$fport")
echo "$answer" | grep -q "Max-size:1024 768" || fail "the unit's process answered: $answer"
echo "ok   the unit's ExecStart ($exec_start) as $user answers: Max-size:1024 768"
kill "$unitpid"; wait "$unitpid" 2>/dev/null || true; unitpid=""

echo "== 5. ours removed, Debian's back"
swap remove -y -qq iipsrv-rs
swap install -y -qq iipimage-server
original "Debian's iipimage-server again"
echo "package: all checks passed"
