#!/usr/bin/env bash
# What PostgreSQL 18's optimizer statistics in the archive change right after
# a restore (docs/benchmarks.md, "PostgreSQL 18: the optimizer statistics"):
#
#   scripts/measure-statistics.sh "host=/tmp/pg18 port=5432 user=postgres" [SCALE]
#
# against a PostgreSQL 18 server the caller started (its client programs on
# PATH or in /opt/pgvault-pg/18/bin). Makes the database `stats_src` (migrate,
# generate SCALE, default small, VACUUM ANALYZE), backs it up, restores it
# three times each with and without --no-statistics, alternating, and prints
# the restore times, how many column statistics there are, and the export's
# messages query for the heaviest author (estimated and actual rows).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"
BASE=${1:?usage: scripts/measure-statistics.sh CONNINFO-WITHOUT-DBNAME [SCALE]}
SCALE=${2:-small}
export PATH="/opt/pgvault-pg/18/bin:$PATH" LD_LIBRARY_PATH=/opt/pgvault-pg/18/lib
swift build --product pgvault 2>&1 | tail -1
P="$(swift build --show-bin-path)/pgvault"
OUT=$(mktemp -d /tmp/pgvault-stats-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
psql -X -q -d "$BASE dbname=postgres" -c "DROP DATABASE IF EXISTS stats_src" -c "CREATE DATABASE stats_src"
"$P" migrate -d "$BASE dbname=stats_src" >/dev/null
"$P" generate -d "$BASE dbname=stats_src" --scale "$SCALE" >/dev/null
psql -X -q -d "$BASE dbname=stats_src" -c "VACUUM ANALYZE"
"$P" backup -d "$BASE dbname=stats_src" --output "$OUT/archive" --jobs 2 --quiet
read -r AUTHOR LO HI < <(psql -X -Atd "$BASE dbname=stats_src" -c "SELECT author_id, min(channel_id), max(channel_id) FROM messages GROUP BY author_id ORDER BY count(*) DESC LIMIT 1" | tr '|' ' ')
Q="SELECT m.id FROM messages m WHERE m.author_id = $AUTHOR AND m.channel_id BETWEEN $LO AND $HI ORDER BY m.channel_id, m.created_at, m.id"
for i in 1 2 3; do
    for mode in no-statistics statistics; do
        db=stats_${mode//-/_}
        psql -X -q -d "$BASE dbname=postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
        /usr/bin/time -f "$mode: restore %e s" "$P" restore "$OUT/archive" -d "$BASE dbname=$db" --jobs 2 --quiet "--$mode" 2>&1 >/dev/null | grep restore
        if [ "$i" = 1 ]; then
            # Column statistics: reltuples says little, since CREATE INDEX sets it.
            psql -X -Atd "$BASE dbname=$db" -c "SELECT count(*) || ' column statistics (pg_stats)' FROM pg_stats WHERE schemaname = 'public'"
            psql -X -Atd "$BASE dbname=$db" -c "EXPLAIN (ANALYZE, TIMING OFF) $Q" | head -1
        fi
    done
done
