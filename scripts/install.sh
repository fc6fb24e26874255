#!/usr/bin/env bash
# Installs pgvault as a program: scripts/install.sh [PREFIX]  (default /usr/local)
#   PREFIX/bin/pgvault                                  the release binary, Swift runtime linked in
#   PREFIX/share/bash-completion/completions/pgvault    shell completions, generated from
#   PREFIX/share/zsh/site-functions/_pgvault            the argument parser
#   PREFIX/share/fish/vendor_completions.d/pgvault.fish
#   PREFIX/share/man/man1/pgvault*.1                    man pages, one per command, by
#                                                       swift-argument-parser's generate-manual
# DESTDIR=/some/root installs into a staging folder (scripts/package-deb.sh does).
# Needs only what scripts/bootstrap.sh installs; no network once the package's
# dependencies are resolved. Safe to run again: it overwrites what it installed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"

PREFIX=${1:-/usr/local}
DEST="${DESTDIR:-}$PREFIX"
log() { printf 'install: %s\n' "$*" >&2; }

# The Swift runtime and Foundation linked statically: the installed binary needs
# only the C libraries (libpq, zstd, libarchive, libcrypto), not the toolchain.
build=(swift build -c release --product pgvault --static-swift-stdlib)
log "building the release binary"
"${build[@]}" >&2
bin="$("${build[@]}" --show-bin-path)/pgvault"

install -d "$DEST/bin" "$DEST/share/bash-completion/completions" "$DEST/share/zsh/site-functions" \
    "$DEST/share/fish/vendor_completions.d" "$DEST/share/man/man1"
install -m 755 "$bin" "$DEST/bin/pgvault"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for shell in bash zsh fish; do
    "$bin" --generate-completion-script "$shell" >"$tmp/$shell"
    [ -s "$tmp/$shell" ] || { log "error: empty $shell completion script"; exit 1; }
done
install -m 644 "$tmp/bash" "$DEST/share/bash-completion/completions/pgvault"
install -m 644 "$tmp/zsh" "$DEST/share/zsh/site-functions/_pgvault"
install -m 644 "$tmp/fish" "$DEST/share/fish/vendor_completions.d/pgvault.fish"

# generate-manual is the tool behind swift-argument-parser's GenerateManual plugin
# (it comes with the package's dependency, so it builds offline). It reads the
# release pgvault's --experimental-dump-help. Run directly rather than through
# the plugin, which would rebuild pgvault without the static runtime. The pages
# carry the date of the last commit, so a rebuild of the same commit is identical.
log "generating man pages"
swift build -c release --product generate-manual >&2
tool="$(swift build -c release --show-bin-path)/generate-manual"
date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
mkdir -p "$tmp/man"
"$tool" "$bin" --multi-page --date "$date" --output-directory "$tmp/man" >&2
ls "$tmp/man"/*.1 >/dev/null 2>&1 || { log "error: generate-manual wrote no pages"; exit 1; }
rm -f "$DEST/share/man/man1"/pgvault*.1
install -m 644 "$tmp/man"/*.1 "$DEST/share/man/man1/"
log "installed $("$DEST/bin/pgvault" --version) into $DEST"
