#!/usr/bin/env bash
# Installs the Debian packages a task needs, when any is missing.
#   scripts/deps.sh build   # compiling: cmake + nasm for the bundled libjpeg-turbo, liblcms2-dev,
#                           # libavif-dev (AVIF answers, cargo feature `avif`: libavif 0.11 with
#                           # the aom, rav1e and SVT-AV1 encoders, found by pkg-config),
#                           # libopenslide-dev (slide formats no native reader claims, cargo
#                           # feature `openslide`: OpenSlide 3.4.1, found by pkg-config)
#                           # libopenjph-dev (HTJ2K masters of `iipsrv convert`, feature `htj2k`)
#   scripts/deps.sh test    # build + what the tests start: libavif-bin (avifdec, the independent
#                           # decoder of the AVIF tests), libvips-tools, libtiff-tools, lighttpd,
#                           # nginx-light, spawn-fcgi, memcached, apache2, libapache2-mod-fcgid,
#                           # libtiff-dev (validator image without resolution tags), python3-venv,
#                           # iipimage-server (the reference of the compatibility suite),
#                           # libopenjp2-tools (make-images.sh), time (peak memory of convert),
#                           # chromium (viewer test; Node.js and npm come with the machine),
#                           # redis-server (the shared tier's other engine), imagemagick (its
#                           # `ptif:` pyramidal TIFFs in the tests), openjph-tools (HTJ2K files
#                           # and their reference decode), and s3s-fs from
#                           # crates.io (the S3-compatible store of the object-storage tests)
#   scripts/deps.sh bench   # test + the load tool wrk
#   scripts/deps.sh package # test + what the package test needs: dpkg-dev (dpkg-shlibdeps),
#                           # binutils, lintian, libfcgi-bin (cgi-fcgi), curl
# Runs apt-get as root (or through sudo); prints what it would install otherwise.
set -euo pipefail
what=${1:-build}
pkgs=(cmake nasm pkg-config gcc g++ curl liblcms2-dev libavif-dev libopenslide-dev libopenjph-dev)
case "$what" in
  build) ;;
  test|bench|package)
    pkgs+=(libavif-bin libvips-tools libtiff-tools libtiff-dev python3-venv lighttpd nginx-light spawn-fcgi
           memcached apache2 libapache2-mod-fcgid iipimage-server libopenjp2-tools chromium time
           redis-server imagemagick openjph-tools)
    [ "$what" = bench ] && pkgs+=(wrk)
    [ "$what" = package ] && pkgs+=(dpkg-dev binutils lintian libfcgi-bin) ;;
  *) echo "usage: $0 build|test|bench|package" >&2; exit 2 ;;
esac
# s3s-fs 0.14.1 is the newest that builds with the machine's rustc (1.95).
if [ "$what" != build ] && ! command -v s3s-fs >/dev/null; then
  echo "installing: s3s-fs (cargo install)" >&2
  cargo install --quiet --locked s3s-fs@0.14.1 --features binary
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
