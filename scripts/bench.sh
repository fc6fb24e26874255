#!/usr/bin/env bash
# Benchmark harness (issue 8): pgvault against pg_dump/pg_restore on a throwaway
# local PostgreSQL 17 cluster, filled with `pgvault generate`.
#
#   scripts/bench.sh [--scale small|default|large] [--repeat N] [--profile] [--cold] [--no-jobs-4]
#   scripts/bench.sh --shape many-partitions --partitions N [--repeat N] [--cold] [--no-jobs-4]
#
# --scale large is 10M messages (about 7.5 GB; generating it takes a long while).
# --shape many-partitions generates the small scale's rows with messages in N
# daily partitions (`pgvault generate --shape`), and raises the server's
# max_locks_per_transaction to N/10 (at least 256) so that pg_dump can lock
# every table and the generator's COPY every partition and its indexes.
# --cold adds, after the warm runs, backups and restores (pgvault and
# pg_dump/pg_restore) each preceded by `sync; echo 3 > /proc/sys/vm/drop_caches`
# (root, or sudo) and a restart of the bench cluster, so that the server reads
# the database, and the restore the archive, from disk; the report puts them
# beside the warm ones.
#
# Measures wall time, peak RSS, user and system CPU (GNU time, "%e %M %U %S") of:
# backup (pgvault --jobs 2, pg_dump -Fd -j 2 zstd, pg_dump -Fc zstd, and a "COPY
# every leaf table to /dev/null over 2 connections" ceiling; then pgvault,
# pg_dump -Fd and the ceilings again with the server pinned to one core and the
# client to the other, as with a backup host of its own), restore into a fresh
# empty database (pgvault restore with and without its final verify, pg_restore
# -j 2; then pgvault restore --jobs 4 and pg_restore -j 4, unless --no-jobs-4),
# pgvault verify of the restored database, and export-user for the heaviest
# and a median user. Beside each pgvault restore the report puts the lower
# bound its summary prints for its scheduled part (the data and post-data):
# max(the critical path, the statement time / jobs, the steps whose locks on
# one relation keep them apart). Tools alternate inside each repetition. Beside each run it
# records the machine-wide CPU use (/proc/stat: busy and iowait % of all cores)
# and the CPU time of the bench cluster's processes. Around the first repetition
# of every command it resets and snapshots pg_stat_statements, pg_stat_io and
# pg_stat_wal, and splits the server's execution time by statement class
# (COPY TO/FROM, CREATE INDEX per access method, PRIMARY KEY/UNIQUE, FOREIGN
# KEY, ATTACH, ANALYZE, other DDL, queries), counting only the statements run in
# the database that tool worked on.
#
# --profile adds, after the timed runs: system-wide `perf record -a -g` around one
# `pgvault backup --jobs 2` and one `pgvault restore --jobs 2` (each sample given
# to the pgvault process tree, the bench cluster, idle or other work), and
# `valgrind --tool=callgrind` of `pgvault backup --jobs 1 --table` messages (or,
# at larger scales, one of its monthly partitions).
#
# Prints the report and puts it into $PGVAULT_BENCH_DOC (default
# docs/benchmarks.md) in place of that scale's (or shape's) section; the rest of
# the doc is kept. Peak RSS is the client process
# only (server backends are not counted, for any tool). The cluster is stopped on
# exit.
#
# Everything lives under $PGVAULT_BENCH_DIR (default /tmp/pgvault-bench);
# each run's section is also kept in $PGVAULT_BENCH_RESULTS (default
# /tmp/pgvault-bench-results).
# pgvault is built with `swift build -c release --static-swift-stdlib --scratch-path
# $PGVAULT_BENCH_SCRATCH` (default .build). Profiles: PGVAULT_BENCH_CALLGRIND_ROWS,
# PGVAULT_BENCH_CALLGRIND_TABLE (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"

SCALE=small
REPEAT=3
PROFILE=0
SHAPE=
PARTITIONS=
COLD=0
JOBS4=1
ARGS="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE=$2; shift 2 ;;
        --scale=*) SCALE=${1#*=}; shift ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --repeat=*) REPEAT=${1#*=}; shift ;;
        --profile) PROFILE=1; shift ;;
        --shape) SHAPE=$2; shift 2 ;;
        --shape=*) SHAPE=${1#*=}; shift ;;
        --partitions) PARTITIONS=$2; shift 2 ;;
        --partitions=*) PARTITIONS=${1#*=}; shift ;;
        --cold) COLD=1; shift ;;
        --no-jobs-4) JOBS4=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "bench: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$SCALE" in small|default|large) ;; *) echo "bench: --scale is small, default or large" >&2; exit 2 ;; esac
case "$SHAPE" in
    "") [ -z "$PARTITIONS" ] || { echo "bench: --partitions goes with --shape many-partitions" >&2; exit 2; } ;;
    many-partitions) [[ "$PARTITIONS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --shape many-partitions needs --partitions N (e.g. 1000)" >&2; exit 2; } ;;
    *) echo "bench: --shape is many-partitions" >&2; exit 2 ;;
esac
# What the data is called in the report and in $RESULTS: the scale, or the shape.
LABEL=$SCALE; GEN_ARGS=(--scale "$SCALE")
if [ -n "$SHAPE" ]; then LABEL="$SHAPE-$PARTITIONS"; GEN_ARGS=(--shape "$SHAPE" --partitions "$PARTITIONS"); fi
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat is a positive integer" >&2; exit 2; }

BENCH=${PGVAULT_BENCH_DIR:-/tmp/pgvault-bench}
RESULTS=${PGVAULT_BENCH_RESULTS:-/tmp/pgvault-bench-results}
SCRATCH=${PGVAULT_BENCH_SCRATCH:-.build}
PGBIN=${PGVAULT_PG_HOME:-/opt/pgvault-pg}/17/bin
DOC=${PGVAULT_BENCH_DOC:-$ROOT/docs/benchmarks.md}
case "$DOC" in /*) ;; *) DOC="$ROOT/$DOC" ;; esac
PERF_FREQ=999
BENCH_START=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
warn() { echo "bench: $*" >&2; }
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
apt_install() { # apt_install PACKAGE...: Debian packages the harness itself needs
    step "installing $* (missing)"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

step "bootstrap"
scripts/bootstrap.sh
[ -x /usr/bin/time ] || apt_install time
command -v pgrep >/dev/null || apt_install procps
if [ "$PROFILE" = 1 ]; then
    command -v perf >/dev/null || apt_install linux-perf
    command -v valgrind >/dev/null || apt_install valgrind
fi

step "build pgvault (release, scratch path $SCRATCH)"
BUILD_LOG=$(mktemp /tmp/pgvault-bench-build.XXXXXX)
# Built as scripts/install.sh and the Debian package build it, with the Swift
# runtime and Foundation linked in (--static-swift-stdlib): what is measured is
# what is shipped. Its peak RSS is about 6 MiB below a build that loads them as
# shared libraries (29.0 against 34.7 MiB for a command waiting on a server).
if ! swift build -c release --product pgvault --static-swift-stdlib --scratch-path "$SCRATCH" >"$BUILD_LOG" 2>&1; then
    tail -30 "$BUILD_LOG" >&2; rm -f "$BUILD_LOG"; warn "the release build failed"; exit 1
fi
tail -1 "$BUILD_LOG"; rm -f "$BUILD_LOG"
PGVAULT="$(swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --show-bin-path)/pgvault"

step "start a throwaway PostgreSQL 17 cluster in $BENCH"
if [ -f "$BENCH/data/postmaster.pid" ]; then as_server "$PGBIN/pg_ctl" -D "$BENCH/data" -m fast stop >/dev/null 2>&1 || true; fi
rm -rf "$BENCH"
mkdir -p "$BENCH"
chmod 755 "$BENCH"
[ "$(id -u)" -eq 0 ] && chown postgres "$BENCH"
as_server "$PGBIN/initdb" -D "$BENCH/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
# Same server settings for every tool. fsync stays on (the default): restore
# timings include durability costs, as they would in production.
# pg_stat_statements and the I/O timings are on for every tool too; they are how
# the report splits the server's time.
cat >> "$BENCH/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$BENCH'
port = 5432
shared_buffers = 512MB
max_wal_size = 4GB
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.max = 20000
pg_stat_statements.track = top
pg_stat_statements.track_utility = on
track_io_timing = on
track_wal_io_timing = on
CONF
# pg_dump (and pgvault's backup) lock every table in one transaction, and the
# generator's COPY into messages locks every partition and its 7 indexes; the
# lock table holds max_locks_per_transaction × max_connections (6,400 by
# default). 10,000 partitions need about 80,000 slots: N/10 per connection
# (at least 256) gives 100 × N/10.
[ -n "$SHAPE" ] && echo "max_locks_per_transaction = $(( PARTITIONS / 10 > 256 ? PARTITIONS / 10 : 256 ))" >> "$BENCH/data/postgresql.auto.conf"
as_server "$PGBIN/pg_ctl" -D "$BENCH/data" -l "$BENCH/server.log" -w start >/dev/null
cleanup() {
    as_server "$PGBIN/pg_ctl" -D "$BENCH/data" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
PM_PID=$(head -1 "$BENCH/data/postmaster.pid")
conn() { echo "host=$BENCH port=5432 user=postgres dbname=$1"; }
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$BENCH" -p 5432 -U postgres)
# The monitoring connection works in the `postgres` database, which no tool
# touches; the extension lives there so that no dump or archive sees it.
MON=("${PSQL[@]}" -d postgres)
"${MON[@]}" -c "CREATE EXTENSION pg_stat_statements" >/dev/null
"$PGBIN/createdb" -h "$BENCH" -U postgres chat
WORK="$BENCH/work"; LOGS="$BENCH/logs"; STATS="$BENCH/stats"; PROF="$BENCH/profile"
mkdir -p "$WORK" "$LOGS" "$STATS" "$PROF"

step "pgvault migrate + generate ${GEN_ARGS[*]}"
"$PGVAULT" migrate -d "$(conn chat)" --source migrations >"$LOGS/migrate.log" 2>&1
GEN_START=$(date +%s.%N)
"$PGVAULT" generate -d "$(conn chat)" "${GEN_ARGS[@]}" --jobs 1 >"$LOGS/generate.log" 2>&1
GEN_SECS=$(python3 -c "print($(date +%s.%N) - $GEN_START)")
"${PSQL[@]}" -d chat -c "VACUUM ANALYZE" >/dev/null
DB_BYTES=$("${PSQL[@]}" -At -d chat -c "SELECT pg_database_size('chat')")
COUNTS=$("${PSQL[@]}" -At -d chat -c "SELECT (SELECT count(*) FROM users) || ' users, ' || (SELECT count(*) FROM messages) || ' messages'")
# What the restore's work grows with: the rows (exact) and the tables' own bytes
# (heap and TOAST, no indexes). The database size is no measure of it: indexes
# the generator fills row by row (GIN above all) are larger per row than the
# ones a restore builds, and more so at the small scale.
TABLE_ROWS=$("${PSQL[@]}" -At -d chat -c "SELECT sum((xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text::bigint) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'")
TABLE_BYTES=$("${PSQL[@]}" -At -d chat -c "SELECT sum(pg_table_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'")
echo "database: $COUNTS, $TABLE_ROWS rows, $TABLE_BYTES bytes of tables, $DB_BYTES bytes" >&2

# The COPY ceiling: every leaf table (no partitioned parents), split into two
# halves of about equal size (greedy, largest first), one psql connection each.
"${PSQL[@]}" -At -F $'\t' -d chat -c "
    SELECT format('%I.%I', n.nspname, c.relname), pg_total_relation_size(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%'
    ORDER BY 2 DESC, 1" >"$WORK/tables.tsv"
# Two ceilings: COPY text (what pg_dump reads) and COPY binary (what pgvault
# reads for tables whose column types allow it, i.e. every chat table).
: >"$WORK/copy-a.sql"; : >"$WORK/copy-b.sql"; : >"$WORK/copy-a-bin.sql"; : >"$WORK/copy-b-bin.sql"
a=0; b=0
while IFS=$'\t' read -r t sz; do
    if [ "$a" -le "$b" ]; then half=a; a=$((a + sz)); else half=b; b=$((b + sz)); fi
    echo "COPY $t TO STDOUT;" >>"$WORK/copy-$half.sql"
    echo "COPY $t TO STDOUT (FORMAT binary);" >>"$WORK/copy-$half-bin.sql"
done <"$WORK/tables.tsv"
echo "COPY ceiling: $(wc -l <"$WORK/tables.tsv") leaf tables, halves of $a and $b bytes" >&2
copy_ceiling() {  # [suffix]: "" for text, "-bin" for binary
    "${PSQL[@]}" -d chat -f "$WORK/copy-a$1.sql" >/dev/null & local p1=$!
    "${PSQL[@]}" -d chat -f "$WORK/copy-b$1.sql" >/dev/null & local p2=$!
    wait "$p1"; wait "$p2"
}

# --- what each run costs besides its wall time -------------------------------
# Machine-wide CPU jiffies from /proc/stat: "busy iowait total" (busy = user +
# nice + system + irq + softirq; total also counts idle, iowait and steal).
cpu_jiffies() {
    local _c u n s i w q sq st _rest
    read -r _c u n s i w q sq st _rest </proc/stat
    echo "$((u + n + s + q + sq)) $w $((u + n + s + i + w + q + sq + st))"
}
# CPU ticks of the bench cluster: the postmaster's own and its reaped children's
# (every backend that has exited), plus its live children's (checkpointer,
# walwriter, autovacuum, ...).
proc_ticks() { # proc_ticks PID [with-children]: utime+stime (+cutime+cstime)
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    local -a f; read -ra f <<<"$s"
    if [ "${2:-}" = with-children ]; then echo $((f[11] + f[12] + f[13] + f[14])); else echo $((f[11] + f[12])); fi
}
# A child that exits and is reaped between the two reads would be in neither
# (its ticks move into the postmaster's cutime after that was read): read the
# postmaster again after the children and retry until it did not change.
server_ticks() {
    local t p before after i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        before=$(proc_ticks "$PM_PID" with-children)
        t=0
        for p in $(pgrep -P "$PM_PID" || true); do t=$((t + $(proc_ticks "$p"))); done
        after=$(proc_ticks "$PM_PID" with-children)
        [ "$before" = "$after" ] && break
    done
    echo $((after + t))
}
# Wait (at most 10 s) until no client backend or parallel worker of the bench
# cluster is alive, so that their CPU time and I/O statistics have been counted.
wait_backends() {
    local i p cmd busy
    for i in $(seq 1 200); do
        busy=0
        for p in $(pgrep -P "$PM_PID" || true); do
            cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" || true)
            case "$cmd" in *"[local]"*|*"parallel worker"*) busy=1; break ;; esac
        done
        [ "$busy" = 0 ] && return 0
        sleep 0.05
    done
    warn "backends still alive after 10 s; counting what has exited"
}
# Server statistics around one run: reset before, snapshot after (in the
# monitoring database; the tools' statements are told apart by database).
stats_reset() {
    "${MON[@]}" -c "SELECT pg_stat_statements_reset()" -c "SELECT pg_stat_reset_shared('io')" \
        -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
}
stats_snapshot() { # stats_snapshot SLUG
    "${MON[@]}" -At -F $'\t' -c "
        SELECT coalesce(d.datname, s.dbid::text), s.calls, round(s.total_exec_time::numeric, 3), s.rows,
               s.shared_blks_hit, s.shared_blks_read, s.shared_blks_written, s.temp_blks_written, s.wal_bytes,
               left(regexp_replace(s.query, '\s+', ' ', 'g'), 2000)
        FROM pg_stat_statements s LEFT JOIN pg_database d ON d.oid = s.dbid
        WHERE s.toplevel" >"$STATS/$1.pgss.tsv"
    "${MON[@]}" -At -F $'\t' -c "
        SELECT backend_type, coalesce(sum(reads), 0), coalesce(sum(read_time), 0), coalesce(sum(writes), 0),
               coalesce(sum(write_time), 0), coalesce(sum(writebacks), 0), coalesce(sum(writeback_time), 0),
               coalesce(sum(extends), 0), coalesce(sum(extend_time), 0), coalesce(sum(fsyncs), 0),
               coalesce(sum(fsync_time), 0), coalesce(sum(hits), 0), coalesce(sum(evictions), 0)
        FROM pg_stat_io GROUP BY 1 ORDER BY 1" >"$STATS/$1.io.tsv"
    "${MON[@]}" -At -F $'\t' -c "
        SELECT wal_records, wal_fpi, wal_bytes, wal_buffers_full, wal_write, wal_sync, wal_write_time, wal_sync_time
        FROM pg_stat_wal" >"$STATS/$1.wal.tsv"
}

RAW="$WORK/raw.tsv"   # group, name, rep, wall s, peak RSS KiB, user s, sys s, busy/iowait/total jiffies, server ticks
: >"$RAW"
: >"$STATS/index.tsv" # slug, group, name, database
# [STATS_DB=DB] measure GROUP NAME REP cmd... : runs cmd under GNU time, appends
# a row. With STATS_DB, repetition 1 also snapshots the server's statistics and
# attributes to the tool the statements run in database DB.
measure() {
    local group=$1 name=$2 rep=$3; shift 3
    local slug=${name//[^A-Za-z0-9_-]/_}
    local tf="$WORK/time.out" log="$LOGS/$slug-$rep.log" snap=0
    [ "$rep" = 1 ] && [ -n "${STATS_DB:-}" ] && snap=1
    [ "$snap" = 1 ] && stats_reset
    wait_backends
    local s0 c0 c1 s1
    s0=$(server_ticks); c0=$(cpu_jiffies)
    if ! /usr/bin/time -f "%e %M %U %S" -o "$tf" "$@" >"$log" 2>&1; then
        warn "'$name' (rep $rep) failed; see $log"; tail -5 "$log" >&2; exit 1
    fi
    c1=$(cpu_jiffies)
    wait_backends
    s1=$(server_ticks)
    local wall rss usr sys b0 w0 t0 b1 w1 t1
    read -r wall rss usr sys < <(tail -1 "$tf")
    read -r b0 w0 t0 <<<"$c0"; read -r b1 w1 t1 <<<"$c1"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$group" "$name" "$rep" "$wall" "$rss" "$usr" "$sys" \
        $((b1 - b0)) $((w1 - w0)) $((t1 - t0)) $((s1 - s0)) >>"$RAW"
    local busy=0; [ $((t1 - t0)) -gt 0 ] && busy=$((100 * (b1 - b0) / (t1 - t0)))
    printf '  %-38s rep %s: %7ss %8s KiB  user %6ss sys %5ss  server %6s ticks  machine %3s%% busy\n' \
        "$name" "$rep" "$wall" "$rss" "$usr" "$sys" $((s1 - s0)) "$busy" >&2
    if [ "$snap" = 1 ]; then
        stats_snapshot "$slug"
        printf '%s\t%s\t%s\t%s\n' "$slug" "$group" "$name" "$STATS_DB" >>"$STATS/index.tsv"
    fi
}
fresh_db() { "$PGBIN/dropdb" -h "$BENCH" -U postgres --if-exists "$1"; "$PGBIN/createdb" -h "$BENCH" -U postgres "$1"; }
# --cold: empty the OS page cache and restart the cluster (empty shared
# buffers), so that the next run reads from disk.
cold_start() {
    sync
    if [ "$(id -u)" -eq 0 ]; then echo 3 >/proc/sys/vm/drop_caches; else echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null; fi
    as_server "$PGBIN/pg_ctl" -D "$BENCH/data" -l "$BENCH/server.log" -m fast -w restart >/dev/null
    PM_PID=$(head -1 "$BENCH/data/postmaster.pid")
}

step "backup (x$REPEAT, alternating)"
for rep in $(seq 1 "$REPEAT"); do
    rm -rf "$WORK/pgvault.bak"
    STATS_DB=chat measure backup "pgvault backup --jobs 2" "$rep" "$PGVAULT" backup -d "$(conn chat)" --jobs 2 --output "$WORK/pgvault.bak" --quiet
    rm -rf "$WORK/pgdump.dir"
    STATS_DB=chat measure backup "pg_dump -Fd -j 2 zstd" "$rep" "$PGBIN/pg_dump" -h "$BENCH" -U postgres -d chat -Fd -j 2 --compress=zstd -f "$WORK/pgdump.dir"
    rm -f "$WORK/pgdump.custom"
    STATS_DB=chat measure backup "pg_dump -Fc zstd" "$rep" "$PGBIN/pg_dump" -h "$BENCH" -U postgres -d chat -Fc --compress=zstd -f "$WORK/pgdump.custom"
    STATS_DB=chat measure backup "COPY ceiling (2 conns)" "$rep" bash -c "$(declare -p PSQL WORK); $(declare -f copy_ceiling); copy_ceiling ''"
    STATS_DB=chat measure backup "COPY ceiling binary (2 conns)" "$rep" bash -c "$(declare -p PSQL WORK); $(declare -f copy_ceiling); copy_ceiling -bin"
done
# The same backups with the server pinned to core 0 and the client (and the
# ceiling's psql) to core 1: the client's work, above all compression, no
# longer competes with the server's for the same cores, as with pgvault on a
# backup host of its own. New backends inherit the postmaster's affinity.
pin_server() { # pin_server CPULIST: the bench cluster's processes
    local p
    for p in "$PM_PID" $(pgrep -P "$PM_PID" || true); do taskset -a -cp "$1" "$p" >/dev/null 2>&1 || true; done
}
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    step "backup, server on core 0 and client on core 1 (x$REPEAT, alternating)"
    pin_server 0
    for rep in $(seq 1 "$REPEAT"); do
        rm -rf "$WORK/pgvault-split.bak"
        measure split "pgvault backup --jobs 2 (split cores)" "$rep" taskset -c 1 "$PGVAULT" backup -d "$(conn chat)" --jobs 2 --output "$WORK/pgvault-split.bak" --quiet
        rm -rf "$WORK/pgdump-split.dir"
        measure split "pg_dump -Fd -j 2 zstd (split cores)" "$rep" taskset -c 1 "$PGBIN/pg_dump" -h "$BENCH" -U postgres -d chat -Fd -j 2 --compress=zstd -f "$WORK/pgdump-split.dir"
        measure split "COPY ceiling (2 conns) (split cores)" "$rep" taskset -c 1 bash -c "$(declare -p PSQL WORK); $(declare -f copy_ceiling); copy_ceiling ''"
        measure split "COPY ceiling binary (2 conns) (split cores)" "$rep" taskset -c 1 bash -c "$(declare -p PSQL WORK); $(declare -f copy_ceiling); copy_ceiling -bin"
    done
    pin_server "0-$(($(nproc) - 1))"
    rm -rf "$WORK/pgvault-split.bak" "$WORK/pgdump-split.dir"
fi
SIZE_PGVAULT=$(du -sb "$WORK/pgvault.bak" | cut -f1)
SIZE_FD=$(du -sb "$WORK/pgdump.dir" | cut -f1)
SIZE_FC=$(du -sb "$WORK/pgdump.custom" | cut -f1)

step "restore into a fresh empty database (x$REPEAT, alternating)"
for rep in $(seq 1 "$REPEAT"); do
    fresh_db r_pgvault
    STATS_DB=r_pgvault measure restore "pgvault restore --jobs 2" "$rep" "$PGVAULT" restore "$WORK/pgvault.bak" --jobs 2 -d "$(conn r_pgvault)"
    fresh_db r_pgvault_nv
    STATS_DB=r_pgvault_nv measure restore "pgvault restore --jobs 2 --no-verify" "$rep" "$PGVAULT" restore "$WORK/pgvault.bak" --jobs 2 --no-verify -d "$(conn r_pgvault_nv)"
    fresh_db r_pgrestore
    STATS_DB=r_pgrestore measure restore "pg_restore -j 2 (from -Fd)" "$rep" "$PGBIN/pg_restore" -h "$BENCH" -U postgres -j 2 -d r_pgrestore "$WORK/pgdump.dir"
    if [ "$JOBS4" = 1 ]; then
        fresh_db r_pgvault4
        STATS_DB=r_pgvault4 measure restore4 "pgvault restore --jobs 4" "$rep" "$PGVAULT" restore "$WORK/pgvault.bak" --jobs 4 -d "$(conn r_pgvault4)"
        fresh_db r_pgrestore4
        STATS_DB=r_pgrestore4 measure restore4 "pg_restore -j 4 (from -Fd)" "$rep" "$PGBIN/pg_restore" -h "$BENCH" -U postgres -j 4 -d r_pgrestore4 "$WORK/pgdump.dir"
        # Not read again: two copies fewer of the database on disk (the large scale's are 7 GB each).
        "$PGBIN/dropdb" -h "$BENCH" -U postgres r_pgvault4
        "$PGBIN/dropdb" -h "$BENCH" -U postgres r_pgrestore4
    fi
done

if [ "$COLD" = 1 ]; then
    step "cold: backup and restore, page cache dropped and server restarted before each run (x$REPEAT, alternating)"
    for rep in $(seq 1 "$REPEAT"); do
        rm -rf "$WORK/pgvault-cold.bak"; cold_start
        measure cold-backup "pgvault backup --jobs 2 (cold)" "$rep" "$PGVAULT" backup -d "$(conn chat)" --jobs 2 --output "$WORK/pgvault-cold.bak" --quiet
        rm -rf "$WORK/pgdump-cold.dir"; cold_start
        measure cold-backup "pg_dump -Fd -j 2 zstd (cold)" "$rep" "$PGBIN/pg_dump" -h "$BENCH" -U postgres -d chat -Fd -j 2 --compress=zstd -f "$WORK/pgdump-cold.dir"
        fresh_db r_cold; cold_start
        measure cold-restore "pgvault restore --jobs 2 (cold)" "$rep" "$PGVAULT" restore "$WORK/pgvault.bak" --jobs 2 -d "$(conn r_cold)"
        fresh_db r_cold; cold_start
        measure cold-restore "pg_restore -j 2 (from -Fd) (cold)" "$rep" "$PGBIN/pg_restore" -h "$BENCH" -U postgres -j 2 -d r_cold "$WORK/pgdump.dir"
    done
    rm -rf "$WORK/pgvault-cold.bak" "$WORK/pgdump-cold.dir"
fi

step "verify + export-user (x$REPEAT)"
HEAVY=$("${PSQL[@]}" -At -d chat -c "SELECT author_id FROM messages GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
MEDIAN=$("${PSQL[@]}" -At -d chat -c "
    WITH c AS (SELECT author_id, count(*) AS n FROM messages GROUP BY 1)
    SELECT author_id FROM c ORDER BY n, author_id OFFSET (SELECT count(*) / 2 FROM c) LIMIT 1")
HEAVY_N=$("${PSQL[@]}" -At -d chat -c "SELECT count(*) FROM messages WHERE author_id = $HEAVY")
MEDIAN_N=$("${PSQL[@]}" -At -d chat -c "SELECT count(*) FROM messages WHERE author_id = $MEDIAN")
for rep in $(seq 1 "$REPEAT"); do
    STATS_DB=r_pgvault measure verify "pgvault verify ARCHIVE -d restored" "$rep" "$PGVAULT" verify "$WORK/pgvault.bak" -d "$(conn r_pgvault)"
    rm -f "$WORK/heavy.zip" "$WORK/median.zip"
    STATS_DB=chat measure export "export-user heaviest" "$rep" "$PGVAULT" export-user -d "$(conn chat)" --user "$HEAVY" --output "$WORK/heavy.zip"
    STATS_DB=chat measure export "export-user median" "$rep" "$PGVAULT" export-user -d "$(conn chat)" --user "$MEDIAN" --output "$WORK/median.zip"
done
SIZE_HEAVY=$(du -sb "$WORK/heavy.zip" | cut -f1)
SIZE_MEDIAN=$(du -sb "$WORK/median.zip" | cut -f1)

# --- --profile: perf and callgrind, after (and apart from) the timed runs ------
CALLGRIND_TABLE=
if [ "$PROFILE" = 1 ]; then
    # perf_profile LABEL cmd...: system-wide perf around cmd, summarized by
    # bench-perf.py into the client's and the bench cluster's flat profiles.
    perf_profile() {
        local label=$1; shift
        local p="$PROF/$label"
        wait_backends
        local t0; t0=$(date +%s.%N)
        if ! perf record -a -g -F "$PERF_FREQ" -o "$p.perf.data" -- \
            bash -c 'echo $$ >"$0"; exec "$@"' "$p.client-pid" "$@" >"$p.log" 2>&1; then
            warn "perf record of $label failed (see $p.log); no perf profile for it"; tail -3 "$p.log" >&2; return 0
        fi
        python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')" >"$p.wall"
        if ! python3 scripts/bench-perf.py "$p.perf.data" "$(cat "$p.client-pid")" "$PM_PID" "$PERF_FREQ" "$p.json"; then
            warn "could not summarize $p.perf.data; no perf profile for $label"; rm -f "$p.json"; return 0
        fi
        echo "  perf $label: $(cat "$p.wall") s wall, $(du -h "$p.perf.data" | cut -f1) of samples in $p.perf.data" >&2
    }
    step "profile: perf record -a -g around pgvault backup --jobs 2"
    rm -rf "$WORK/profile.bak"
    perf_profile backup "$PGVAULT" backup -d "$(conn chat)" --jobs 2 --output "$WORK/profile.bak" --quiet
    step "profile: perf record -a -g around pgvault restore --jobs 2"
    fresh_db r_profile
    perf_profile restore "$PGVAULT" restore "$WORK/pgvault.bak" --jobs 2 -d "$(conn r_profile)"

    # callgrind runs 20-50x slower, so it backs up part of messages (the bulk
    # of the data, so the backup's hot path): the whole partitioned table if it
    # has at most $PGVAULT_BENCH_CALLGRIND_ROWS rows (default 150000: scale
    # small), else the largest monthly partition within that, else the smallest
    # one; one --table pattern, so that table selection stays negligible.
    # About 20 s at scale small. PGVAULT_BENCH_CALLGRIND_TABLE overrides.
    CG_MAX=${PGVAULT_BENCH_CALLGRIND_ROWS:-150000}
    if [ -n "${PGVAULT_BENCH_CALLGRIND_TABLE:-}" ]; then
        CALLGRIND_TABLE=$PGVAULT_BENCH_CALLGRIND_TABLE
    else
        CALLGRIND_TABLE=$("${PSQL[@]}" -At -d chat -c "
            WITH c AS (
                SELECT format('%I.%I', n.nspname, c.relname) AS t,
                       (SELECT sum(greatest(l.reltuples, 0)) FROM pg_partition_tree(pt.relid) x
                        JOIN pg_class l ON l.oid = x.relid WHERE x.isleaf) AS n
                FROM pg_partition_tree('messages') pt JOIN pg_class c ON c.oid = pt.relid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE pt.level = 0 OR pt.isleaf)
            SELECT t FROM c WHERE n > 0
            ORDER BY n <= $CG_MAX DESC, CASE WHEN n <= $CG_MAX THEN -n ELSE n END, t LIMIT 1")
    fi
    "${PSQL[@]}" -At -d chat -c "SELECT count(*) FROM $CALLGRIND_TABLE" >"$PROF/callgrind.rows" 2>/dev/null \
        || echo "?" >"$PROF/callgrind.rows"
    step "profile: valgrind --tool=callgrind pgvault backup --jobs 1 --table $CALLGRIND_TABLE"
    # Valgrind 3.19 (Debian 12) writes into the signal mask that sigsuspend() is
    # given, and libdispatch passes one in read-only memory, so every Swift
    # program that parks its main thread in dispatch dies under it ("Valgrind
    # received a signal 11"). A preloaded sigsuspend() that passes a copy avoids it.
    CC=$(command -v cc || command -v gcc || command -v clang || true)
    SHIM=
    if [ -n "$CC" ]; then
        cat >"$PROF/sigsuspend-shim.c" <<'C'
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, (size_t)(_NSIG / 8));
}
C
        "$CC" -shared -fPIC -O2 -o "$PROF/sigsuspend-shim.so" "$PROF/sigsuspend-shim.c" && SHIM="$PROF/sigsuspend-shim.so"
    fi
    rm -rf "$WORK/callgrind.bak"
    t0=$(date +%s.%N)
    if env ${SHIM:+LD_PRELOAD="$SHIM"} valgrind --tool=callgrind --callgrind-out-file="$PROF/callgrind.out" \
        "$PGVAULT" backup -d "$(conn chat)" --jobs 1 --table "$CALLGRIND_TABLE" --output "$WORK/callgrind.bak" --quiet \
        >"$PROF/callgrind.log" 2>&1; then
        python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')" >"$PROF/callgrind.wall"
        callgrind_annotate --inclusive=yes "$PROF/callgrind.out" >"$PROF/callgrind.inclusive.txt" 2>/dev/null || true
        callgrind_annotate --inclusive=no "$PROF/callgrind.out" >"$PROF/callgrind.self.txt" 2>/dev/null || true
        echo "  callgrind: $(cat "$PROF/callgrind.wall") s" >&2
    else
        warn "callgrind run failed (see $PROF/callgrind.log); no callgrind profile"; tail -3 "$PROF/callgrind.log" >&2
    fi
fi

step "report"
mkdir -p "$RESULTS" "$(dirname "$DOC")"
MEM_KB=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
export B_SCALE=$LABEL B_REPEAT=$REPEAT B_PROFILE=$PROFILE B_RAW=$RAW B_STATS=$STATS B_PROF=$PROF B_LOGS=$LOGS \
    B_OUT="$RESULTS/$LABEL.md" B_DOC=$DOC B_RESULTS=$RESULTS B_ARGS="$ARGS" \
    B_PARTITIONS="${PARTITIONS:-}" B_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)" \
    B_NPROC=$(nproc) B_MEM_KB=$MEM_KB B_CLK_TCK=$(getconf CLK_TCK) B_PERF_FREQ=$PERF_FREQ \
    B_CALLGRIND_TABLE="$CALLGRIND_TABLE" B_BENCH_START=$BENCH_START \
    B_CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    B_PGVER="$("${PSQL[@]}" -At -d chat -c 'SHOW server_version')" \
    B_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" B_KERNEL="$(uname -r)" \
    B_COUNTS="$COUNTS" B_DB_BYTES=$DB_BYTES B_TABLE_ROWS=$TABLE_ROWS B_TABLE_BYTES=$TABLE_BYTES B_GEN_SECS=$GEN_SECS \
    B_SIZE_PGVAULT=$SIZE_PGVAULT B_SIZE_FD=$SIZE_FD B_SIZE_FC=$SIZE_FC \
    B_HEAVY=$HEAVY B_HEAVY_N=$HEAVY_N B_MEDIAN=$MEDIAN B_MEDIAN_N=$MEDIAN_N \
    B_SIZE_HEAVY=$SIZE_HEAVY B_SIZE_MEDIAN=$SIZE_MEDIAN \
    B_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
python3 scripts/bench-report.py
