#!/bin/sh
# pkgconfig.sh — installs troupe into a scratch prefix and builds a small
# program against it the way a user would: pkg-config and nothing else.
set -eu
srcdir=$(cd "${top_srcdir:-.}" && pwd)
builddir=$(cd "${top_builddir:-.}" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
make -C "$builddir" install DESTDIR="$scratch" >"$scratch/install.log" 2>&1 || {
    cat "$scratch/install.log"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$builddir/troupe.pc")
root="$scratch$prefix"
export PKG_CONFIG_PATH="$root/lib/pkgconfig"
# the .pc file names the real prefix; point pkg-config at the scratch copy
export PKG_CONFIG_SYSROOT_DIR="$scratch"
cflags=$(pkg-config --cflags troupe)
libs=$(pkg-config --libs troupe)
${CC:-cc} $cflags "$srcdir/tests/pkgconfig_hello.c" -o "$scratch/hello" $libs \
    ${SAN_LDFLAGS:-}
LD_LIBRARY_PATH="$root/lib" "$scratch/hello"
