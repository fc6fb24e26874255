#!/usr/bin/env bash
# The measurement behind docs/chunking.md: chunks one monthly partition of a
# generated chat database (`pgvault generate --scale default`) at each candidate
# average size, and counts what a backup would add after typical changes.
#
#   scripts/measure-chunking.sh CONNINFO [PARTITION] [OTHER_PARTITION]
#
# CONNINFO is a throwaway database: the changes run in transactions that are
# rolled back, so it is left as it was. PARTITION defaults to messages_2025_01,
# OTHER_PARTITION (the source of inserted rows) to messages_2025_02. The tool
# is built with `swiftc -O` from the package's Chunking sources into
# $PGVAULT_MEASURE_DIR (default /tmp/pgvault-measure-chunking). MEASURE_AVERAGES
# (KiB, space-separated; default "256 512 1024 2048") sets the candidates.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"
CONN=${1:?usage: scripts/measure-chunking.sh CONNINFO [PARTITION] [OTHER_PARTITION]}
PART=${2:-messages_2025_01}
OTHER=${3:-messages_2025_02}
OUT=${PGVAULT_MEASURE_DIR:-/tmp/pgvault-measure-chunking}
PSQL=${PSQL:-psql}
mkdir -p "$OUT"

swiftc -O -parse-as-library -emit-module -emit-library -module-name Mixing \
    Sources/Mixing/SplitMix64.swift -emit-module-path "$OUT/Mixing.swiftmodule" -o "$OUT/libMixing.so"
cp scripts/measure-chunking.swift "$OUT/main.swift"  # top-level code must be in main.swift
swiftc -O -I "$OUT" -L "$OUT" -lMixing -Xlinker -rpath -Xlinker "$OUT" \
    Sources/PGVaultCore/Chunking/*.swift "$OUT/main.swift" -o "$OUT/measure-chunking"

# psql quiet, no start-up file; COPY in the order of a sequential scan from block 0.
q() { PGOPTIONS="-c synchronize_seqscans=off" "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$CONN" "$@"; }
copy() { echo "COPY $1 TO STDOUT (FORMAT binary);"; }
q -c "$(copy "$PART")" > "$OUT/base.bin"
q -c "$(copy "$OTHER")" > "$OUT/other.bin"
# One row in the middle edited: PostgreSQL writes the new version where there is
# room (with full pages, at the end of the heap), so two places of the stream change.
q > "$OUT/update-1-row-middle.bin" <<SQL
BEGIN;
UPDATE $PART SET content = content || ' (edited)', edited_at = created_at + interval '1 minute'
 WHERE ctid = (SELECT ctid FROM $PART ORDER BY ctid OFFSET (SELECT count(*) / 2 FROM $PART) LIMIT 1);
$(copy "$PART")
ROLLBACK;
SQL
# 1 % of the rows edited, spread over the partition (issue 18's nightly change).
q > "$OUT/update-1pct-rows.bin" <<SQL
BEGIN;
UPDATE $PART SET content = content || ' (edited)', edited_at = created_at + interval '1 minute'
 WHERE hashint8(id) % 100 = 0;
$(copy "$PART")
ROLLBACK;
SQL
# The same share of rows soft-deleted (deleted_at set): fixed-width fields, same row sizes.
q > "$OUT/soft-delete-1pct-rows.bin" <<SQL
BEGIN;
UPDATE $PART SET deleted_at = created_at + interval '1 day' WHERE hashint8(id) % 100 = 1 AND deleted_at IS NULL;
$(copy "$PART")
ROLLBACK;
SQL
"$OUT/measure-chunking" "$OUT/base.bin" "$OUT/other.bin" \
    "$OUT/update-1-row-middle.bin" "$OUT/update-1pct-rows.bin" "$OUT/soft-delete-1pct-rows.bin"
