#!/usr/bin/env bash
# Builds the Debian packages of this tree (dpkg-deb; no debian/ source package needed):
#   target/debian/iipsrv-rs_<version>-1_<arch>.deb         the server
#   target/debian/iipsrv-rs-dbgsym_<version>-1_<arch>.deb  its debug information
# The package replaces Debian's iipimage-server in place (Provides/Conflicts/Replaces):
# the binary is /usr/lib/iipimage-server/iipsrv.fcgi, as there, with /usr/bin/iipsrv
# linked to it; the same Apache configuration (mods-available/iipsrv.conf, mod_fcgid);
# the systemd unit (its own system user) with /etc/default/iipsrv; the manual page and
# shell completions. The files besides the binary are in packaging/debian/.
# Needs dpkg-dev (dpkg-shlibdeps) and binutils (scripts/deps.sh package installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
src=packaging/debian
out=target/debian
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
debver="$version-1"
arch=$(dpkg --print-architecture)
cargo build --release -q
bin=target/release/iipsrv
rm -rf "$out/stage" "$out/dbgsym"
stage=$out/stage dbg=$out/dbgsym
umask 022

# The binary without its debug information, which goes to the -dbgsym package by build id.
buildid=$(readelf -n "$bin" | awk '/Build ID/ {print $3}')
install -d "$stage/usr/lib/iipimage-server" "$stage/usr/bin" "$dbg/usr/lib/debug/.build-id/${buildid:0:2}"
objcopy --only-keep-debug --compress-debug-sections "$bin" "$dbg/usr/lib/debug/.build-id/${buildid:0:2}/${buildid:2}.debug"
chmod 644 "$dbg/usr/lib/debug/.build-id/${buildid:0:2}/${buildid:2}.debug"
strip --strip-unneeded --remove-section=.comment -o "$stage/usr/lib/iipimage-server/iipsrv.fcgi" "$bin"
chmod 755 "$stage/usr/lib/iipimage-server/iipsrv.fcgi"
ln -s ../lib/iipimage-server/iipsrv.fcgi "$stage/usr/bin/iipsrv"

# Configuration, unit, manual page, completions, documents.
install -D -m644 "$src/apache-iipsrv.conf" "$stage/etc/apache2/mods-available/iipsrv.conf"
install -D -m644 "$src/apache-iipsrv.load" "$stage/etc/apache2/mods-available/iipsrv.load"
install -D -m644 "$src/default-iipsrv" "$stage/etc/default/iipsrv"
install -D -m644 "$src/iipsrv.service" "$stage/lib/systemd/system/iipsrv.service"
install -d "$stage/usr/share/man/man1" "$stage/usr/share/bash-completion/completions" \
  "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d" \
  "$stage/usr/share/doc/iipsrv-rs"
"$bin" man | gzip -9n > "$stage/usr/share/man/man1/iipsrv.1.gz"
"$bin" completions bash > "$stage/usr/share/bash-completion/completions/iipsrv"
"$bin" completions zsh > "$stage/usr/share/zsh/vendor-completions/_iipsrv"
"$bin" completions fish > "$stage/usr/share/fish/vendor_completions.d/iipsrv.fish"
install -m644 "$src/copyright" "$stage/usr/share/doc/iipsrv-rs/copyright"
commit=$("$bin" --version | sed -n 's/.*(commit \(.*\)).*/\1/p')
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
printf 'iipsrv-rs (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- iipsrv-rs developers <maintainers@iipsrv-rs.org>  %s\n' \
  "$debver" "$commit" "$date" | gzip -9n > "$stage/usr/share/doc/iipsrv-rs/changelog.Debian.gz"
install -D -m644 "$src/lintian-overrides" "$stage/usr/share/lintian/overrides/iipsrv-rs"
install -d "$dbg/usr/share/doc"
ln -s iipsrv-rs "$dbg/usr/share/doc/iipsrv-rs-dbgsym"

# The shared libraries the binary needs, as package names (dpkg-shlibdeps wants a
# debian/control of a source package: a minimal one in a scratch directory).
scratch=$(mktemp -d)
mkdir -p "$scratch/debian"
printf 'Source: iipsrv-rs\n\nPackage: iipsrv-rs\nArchitecture: any\n' > "$scratch/debian/control"
depends=$(cd "$scratch" && dpkg-shlibdeps -O "$OLDPWD/$stage/usr/lib/iipimage-server/iipsrv.fcgi" 2>/dev/null \
  | sed -n 's/^shlibs:Depends=//p')
rm -rf "$scratch"

# DEBIAN/ control files, then the packages.
control() { # template package-root
  install -d "$2/DEBIAN"
  sed -e "s/@VERSION@/$debver/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" \
    -e "s/@BUILDID@/$buildid/" -e "s/@SIZE@/$(du -sk --exclude=DEBIAN "$2" | cut -f1)/" "$1" > "$2/DEBIAN/control"
  (cd "$2" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
  chmod 644 "$2/DEBIAN/control" "$2/DEBIAN/md5sums"
}
control "$src/control.in" "$stage"
install -m644 "$src/conffiles" "$stage/DEBIAN/conffiles"
install -m755 "$src/postinst" "$src/prerm" "$src/postrm" "$stage/DEBIAN/"
control "$src/dbgsym-control.in" "$dbg"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/iipsrv-rs_${debver}_${arch}.deb" >/dev/null
dpkg-deb --root-owner-group -Zxz --build "$dbg" "$out/iipsrv-rs-dbgsym_${debver}_${arch}.deb" >/dev/null
ls -l "$out"/*.deb | awk '{print $5, $9}'
