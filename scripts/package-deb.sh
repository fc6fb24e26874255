#!/usr/bin/env bash
# Builds a Debian package of pgvault: scripts/package-deb.sh [OUTDIR]  (default .build/deb)
# It holds what scripts/install.sh installs under /usr (the binary with the Swift
# runtime linked in, completions, man pages) and nothing else. Depends: the shared
# libraries the binary links (found by dpkg-shlibdeps: libpq5, libzstd1,
# libarchive13, libssl3, libc6, ...) and postgresql-client, whose pg_dump,
# pg_restore and psql backups and restores run. Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"

OUT=${1:-.build/deb}
log() { printf 'package-deb: %s\n' "$*" >&2; }
version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/PGVaultCore/Version.swift)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/pgvault_${version}_$arch"

DESTDIR="$root" scripts/install.sh /usr

# dpkg-shlibdeps reads the source package's debian/control; a minimal one will do.
mkdir -p "$work/src/debian"
printf 'Source: pgvault\n\nPackage: pgvault\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O -e"$root/usr/bin/pgvault" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { log "error: dpkg-shlibdeps found no library dependencies"; exit 1; }
for lib in libpq5 libzstd1 libarchive13; do
    case "$shlibs" in *"$lib"*) ;; *) log "error: $lib missing from the dependencies ($shlibs)"; exit 1 ;; esac
done

mkdir -p "$root/DEBIAN"
size=$(du -sk "$root/usr" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: pgvault
Version: $version
Architecture: $arch
Maintainer: pgvault maintainers <pgvault@localhost>
Installed-Size: $size
Depends: $shlibs, postgresql-client
Section: database
Priority: optional
Homepage: https://example.invalid/pgvault
Description: PostgreSQL backup, restore, verification and per-user export
 pgvault backs up, restores and verifies PostgreSQL databases (parallel,
 partition-aware, into zstd archives or an encrypted deduplicating
 repository), checks WAL archiving, and exports one user's data.
CONTROL

mkdir -p "$OUT"
deb="$OUT/pgvault_${version}_$arch.deb"
dpkg-deb --build --root-owner-group "$root" "$deb" >&2
log "built $deb (Depends: $shlibs, postgresql-client)"
echo "$deb"
