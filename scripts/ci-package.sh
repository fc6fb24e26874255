#!/usr/bin/env bash
# CI's check of pgvault as an installed program: builds the Debian package
# (scripts/package-deb.sh), unpacks it into a clean folder, checks that the
# binary needs nothing beyond the package's declared dependencies (no Swift
# toolchain, no library left unresolved), then runs InstalledProgramTests with
# that binary: --version, migrate from /tmp, generate, backup → restore.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"
log() { printf 'ci-package: %s\n' "$*" >&2; }

deb=$(scripts/package-deb.sh)
root=$(mktemp -d /tmp/pgvault-installed-XXXXXX)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
bin="$root/usr/bin/pgvault"
# Run with a clean library path: what ldd resolves is what the package declares.
deps=$(env -u LD_LIBRARY_PATH ldd "$bin")
if grep -q "not found" <<<"$deps"; then log "error: unresolved libraries:"; echo "$deps" >&2; exit 1; fi
if grep -qE "/opt/swift|libswiftCore|libFoundation" <<<"$deps"; then log "error: the binary needs the Swift toolchain:"; echo "$deps" >&2; exit 1; fi
for f in usr/share/bash-completion/completions/pgvault usr/share/zsh/site-functions/_pgvault \
         usr/share/fish/vendor_completions.d/pgvault.fish usr/share/man/man1/pgvault.1; do
    [ -s "$root/$f" ] || { log "error: the package lacks $f"; exit 1; }
done
log "$(dpkg-deb -f "$deb" Depends)"
swift build --build-tests >&2
PGVAULT_INSTALLED_PGVAULT="$bin" PGVAULT_TEST_VERSIONS=17 \
    swift test --skip-build --no-parallel --filter InstalledProgramTests
