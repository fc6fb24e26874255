#!/usr/bin/env bash
# What PostgreSQL 18's optimizer statistics in the archive change right after
# a restore (docs/benchmarks.md, "PostgreSQL 18: the optimizer statistics"):
#
#   scripts/measure-statistics.sh "host=/tmp/pg18 port=5432 user=postgres" [SCALE]
#
# against a PostgreSQL 18 server the caller started (its client programs on
# PATH or in /opt/pgvault-pg/18/bin). Makes the database `stats_src` (migrate,
# generate SCALE, default small, VACUUM ANALYZE), backs it up, restores it
# three times ($PGVAULT_STATS_REPEAT) each with and without --no-statistics,
# alternating, and prints
# the restore times, how many column statistics there are, and the export's
# messages query for the heaviest author (estimated and actual rows).
#
# PGVAULT_STATS_KEEP_SOURCE=1 keeps an existing stats_src (a rerun).
# Server CPU: the CPU seconds of the server's processes (the postmaster's
# reaped children plus the live ones, from /proc, so this must run on the
# server's host), over the restore, and over the restore plus the
# $PGVAULT_STATS_SETTLE seconds after it (default 90: autovacuum's first
# analyses of the restored tables fall in that window).
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
if [ "${PGVAULT_STATS_KEEP_SOURCE:-0}" = 1 ] && psql -X -Atd "$BASE dbname=stats_src" -c "SELECT 1" >/dev/null 2>&1; then
    echo "reusing the database stats_src (PGVAULT_STATS_KEEP_SOURCE=1)"
else
    psql -X -q -d "$BASE dbname=postgres" -c "DROP DATABASE IF EXISTS stats_src" -c "CREATE DATABASE stats_src"
    "$P" migrate -d "$BASE dbname=stats_src" >/dev/null
    "$P" generate -d "$BASE dbname=stats_src" --scale "$SCALE" >/dev/null
    psql -X -q -d "$BASE dbname=stats_src" -c "VACUUM ANALYZE"
fi
"$P" backup -d "$BASE dbname=stats_src" --output "$OUT/archive" --jobs 2 --quiet
read -r AUTHOR LO HI < <(psql -X -Atd "$BASE dbname=stats_src" -c "SELECT author_id, min(channel_id), max(channel_id) FROM messages GROUP BY author_id ORDER BY count(*) DESC LIMIT 1" | tr '|' ' ')
SETTLE=${PGVAULT_STATS_SETTLE:-90}
POSTMASTER=$(head -1 "$(psql -X -Atd "$BASE dbname=postgres" -c "SELECT current_setting('data_directory')")/postmaster.pid")
# CPU seconds of the whole cluster so far: reaped children and live processes.
server_cpu() {
    python3 - "$POSTMASTER" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
pm = sys.argv[1]
f = fields(pm)
total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime of the postmaster
for pid in os.listdir("/proc"):
    if not pid.isdigit() or pid == pm:
        continue
    try:
        g = fields(pid)
    except OSError:
        continue
    if g[1] == pm:  # a live child: its own time (its children are counted when reaped)
        total += int(g[11]) + int(g[12])
print(f"{total / tick:.2f}")
PY
}
Q="SELECT m.id FROM messages m WHERE m.author_id = $AUTHOR AND m.channel_id BETWEEN $LO AND $HI ORDER BY m.channel_id, m.created_at, m.id"
for i in $(seq 1 "${PGVAULT_STATS_REPEAT:-3}"); do
    for mode in no-statistics statistics; do
        db=stats_${mode//-/_}
        psql -X -q -d "$BASE dbname=postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
        cpu0=$(server_cpu)
        /usr/bin/time -f "$mode: restore %e s" "$P" restore "$OUT/archive" -d "$BASE dbname=$db" --jobs 2 --quiet "--$mode" 2>&1 >/dev/null | grep restore
        cpu1=$(server_cpu)
        if [ "$i" = 1 ]; then
            # Column statistics: reltuples says little, since CREATE INDEX sets it.
            psql -X -Atd "$BASE dbname=$db" -c "SELECT count(*) || ' column statistics (pg_stats)' FROM pg_stats WHERE schemaname = 'public'"
            psql -X -Atd "$BASE dbname=$db" -c "EXPLAIN (ANALYZE, TIMING OFF) $Q" | sed -n 1p
        fi
        sleep "$SETTLE"
        cpu2=$(server_cpu)
        python3 -c "import sys; a, b, c = map(float, sys.argv[2:5]); print(f'{sys.argv[1]}: server CPU {b - a:.1f} s during the restore, {c - a:.1f} s with the {sys.argv[5]} s after it')" "$mode" "$cpu0" "$cpu1" "$cpu2" "$SETTLE"
        psql -X -q -d "$BASE dbname=postgres" -c "DROP DATABASE $db"
    done
done
