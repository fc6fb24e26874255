#!/usr/bin/env bash
# Benchmark harness (issue 8): pgvault against pg_dump/pg_restore on a throwaway
# local PostgreSQL 17 cluster, filled with `pgvault generate`.
#
#   scripts/bench.sh [--scale small|default] [--repeat N]
#
# Measures wall time and peak RSS (GNU time, "%e %M") of: backup (pgvault
# --jobs 2, pg_dump -Fd -j 2 zstd, pg_dump -Fc zstd, and a "COPY every leaf table
# to /dev/null over 2 connections" ceiling), restore into a fresh empty database
# (pgvault restore with and without its final verify, pg_restore -j 2), pgvault
# verify of the restored database, and export-user for the heaviest and a median
# user. Tools alternate inside each repetition. Prints a table and writes
# docs/benchmarks.md. Peak RSS is the client process only (server backends are
# not counted, for any tool). The cluster is stopped on exit.
#
# Everything lives under $PGVAULT_BENCH_DIR (default /tmp/pgvault-bench);
# per-scale results are kept in $PGVAULT_BENCH_RESULTS (default
# /tmp/pgvault-bench-results) so that docs/benchmarks.md can hold one section
# per scale run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"

SCALE=small
REPEAT=3
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE=$2; shift 2 ;;
        --scale=*) SCALE=${1#*=}; shift ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --repeat=*) REPEAT=${1#*=}; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$SCALE" in small|default) ;; *) echo "bench: --scale is small or default" >&2; exit 2 ;; esac
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat is a positive integer" >&2; exit 2; }

BENCH=${PGVAULT_BENCH_DIR:-/tmp/pgvault-bench}
RESULTS=${PGVAULT_BENCH_RESULTS:-/tmp/pgvault-bench-results}
PGBIN=${PGVAULT_PG_HOME:-/opt/pgvault-pg}/17/bin
DOC="$ROOT/docs/benchmarks.md"
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

step "bootstrap"
scripts/bootstrap.sh
if [ ! -x /usr/bin/time ]; then
    step "installing GNU time (missing)"
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time >/dev/null
fi

step "build pgvault (release)"
swift build -c release --product pgvault 2>&1 | tail -1
PGVAULT="$(swift build -c release --show-bin-path)/pgvault"

step "start a throwaway PostgreSQL 17 cluster in $BENCH"
if [ -f "$BENCH/data/postmaster.pid" ]; then as_server "$PGBIN/pg_ctl" -D "$BENCH/data" -m fast stop >/dev/null 2>&1 || true; fi
rm -rf "$BENCH"
mkdir -p "$BENCH"
chmod 755 "$BENCH"
[ "$(id -u)" -eq 0 ] && chown postgres "$BENCH"
as_server "$PGBIN/initdb" -D "$BENCH/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
# Same server settings for every tool. fsync stays on (the default): restore
# timings include durability costs, as they would in production.
cat >> "$BENCH/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$BENCH'
port = 5432
shared_buffers = 512MB
max_wal_size = 4GB
CONF
as_server "$PGBIN/pg_ctl" -D "$BENCH/data" -l "$BENCH/server.log" -w start >/dev/null
cleanup() { as_server "$PGBIN/pg_ctl" -D "$BENCH/data" -m fast stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
conn() { echo "host=$BENCH port=5432 user=postgres dbname=$1"; }
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$BENCH" -p 5432 -U postgres)
"$PGBIN/createdb" -h "$BENCH" -U postgres chat
WORK="$BENCH/work"; LOGS="$BENCH/logs"
mkdir -p "$WORK" "$LOGS"

step "pgvault migrate + generate --scale $SCALE"
"$PGVAULT" migrate -d "$(conn chat)" --source migrations >"$LOGS/migrate.log" 2>&1
GEN_START=$(date +%s.%N)
"$PGVAULT" generate -d "$(conn chat)" --scale "$SCALE" >"$LOGS/generate.log" 2>&1
GEN_SECS=$(python3 -c "print($(date +%s.%N) - $GEN_START)")
"${PSQL[@]}" -d chat -c "VACUUM ANALYZE" >/dev/null
DB_BYTES=$("${PSQL[@]}" -At -d chat -c "SELECT pg_database_size('chat')")
COUNTS=$("${PSQL[@]}" -At -d chat -c "SELECT (SELECT count(*) FROM users) || ' users, ' || (SELECT count(*) FROM messages) || ' messages'")
echo "database: $COUNTS, $DB_BYTES bytes" >&2

# The COPY ceiling: every leaf table (no partitioned parents), split into two
# halves of about equal size (greedy, largest first), one psql connection each.
"${PSQL[@]}" -At -F $'\t' -d chat -c "
    SELECT format('%I.%I', n.nspname, c.relname), pg_total_relation_size(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%'
    ORDER BY 2 DESC, 1" >"$WORK/tables.tsv"
: >"$WORK/copy-a.sql"; : >"$WORK/copy-b.sql"
a=0; b=0
while IFS=$'\t' read -r t sz; do
    if [ "$a" -le "$b" ]; then echo "COPY $t TO STDOUT;" >>"$WORK/copy-a.sql"; a=$((a + sz))
    else echo "COPY $t TO STDOUT;" >>"$WORK/copy-b.sql"; b=$((b + sz)); fi
done <"$WORK/tables.tsv"
echo "COPY ceiling: $(wc -l <"$WORK/tables.tsv") leaf tables, halves of $a and $b bytes" >&2
copy_ceiling() {
    "${PSQL[@]}" -d chat -f "$WORK/copy-a.sql" >/dev/null & local p1=$!
    "${PSQL[@]}" -d chat -f "$WORK/copy-b.sql" >/dev/null & local p2=$!
    wait "$p1"; wait "$p2"
}

RAW="$WORK/raw.tsv"   # group, name, rep, wall seconds, peak RSS KiB
: >"$RAW"
# measure GROUP NAME REP cmd... : runs cmd under GNU time, appends a row.
measure() {
    local group=$1 name=$2 rep=$3; shift 3
    local tf="$WORK/time.out" log="$LOGS/${name//[^A-Za-z0-9_-]/_}-$rep.log"
    if ! /usr/bin/time -f "%e %M" -o "$tf" "$@" >"$log" 2>&1; then
        echo "bench: '$name' (rep $rep) failed; see $log" >&2; tail -5 "$log" >&2; exit 1
    fi
    local wall rss; read -r wall rss < <(tail -1 "$tf")
    printf '%s\t%s\t%s\t%s\t%s\n' "$group" "$name" "$rep" "$wall" "$rss" >>"$RAW"
    printf '  %-34s rep %s: %8ss %8s KiB\n' "$name" "$rep" "$wall" "$rss" >&2
}
fresh_db() { "$PGBIN/dropdb" -h "$BENCH" -U postgres --if-exists "$1"; "$PGBIN/createdb" -h "$BENCH" -U postgres "$1"; }

step "backup (x$REPEAT, alternating)"
for rep in $(seq 1 "$REPEAT"); do
    rm -rf "$WORK/pgvault.bak"
    measure backup "pgvault backup --jobs 2" "$rep" "$PGVAULT" backup -d "$(conn chat)" --jobs 2 --output "$WORK/pgvault.bak" --quiet
    rm -rf "$WORK/pgdump.dir"
    measure backup "pg_dump -Fd -j 2 zstd" "$rep" "$PGBIN/pg_dump" -h "$BENCH" -U postgres -d chat -Fd -j 2 --compress=zstd -f "$WORK/pgdump.dir"
    rm -f "$WORK/pgdump.custom"
    measure backup "pg_dump -Fc zstd" "$rep" "$PGBIN/pg_dump" -h "$BENCH" -U postgres -d chat -Fc --compress=zstd -f "$WORK/pgdump.custom"
    measure backup "COPY ceiling (2 conns)" "$rep" bash -c "$(declare -p PSQL WORK); $(declare -f copy_ceiling); copy_ceiling"
done
SIZE_PGVAULT=$(du -sb "$WORK/pgvault.bak" | cut -f1)
SIZE_FD=$(du -sb "$WORK/pgdump.dir" | cut -f1)
SIZE_FC=$(du -sb "$WORK/pgdump.custom" | cut -f1)

step "restore into a fresh empty database (x$REPEAT, alternating)"
for rep in $(seq 1 "$REPEAT"); do
    fresh_db r_pgvault
    measure restore "pgvault restore --jobs 2" "$rep" "$PGVAULT" restore "$WORK/pgvault.bak" --jobs 2 -d "$(conn r_pgvault)"
    fresh_db r_pgvault_nv
    measure restore "pgvault restore --jobs 2 --no-verify" "$rep" "$PGVAULT" restore "$WORK/pgvault.bak" --jobs 2 --no-verify -d "$(conn r_pgvault_nv)"
    fresh_db r_pgrestore
    measure restore "pg_restore -j 2 (from -Fd)" "$rep" "$PGBIN/pg_restore" -h "$BENCH" -U postgres -j 2 -d r_pgrestore "$WORK/pgdump.dir"
done

step "verify + export-user (x$REPEAT)"
HEAVY=$("${PSQL[@]}" -At -d chat -c "SELECT author_id FROM messages GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
MEDIAN=$("${PSQL[@]}" -At -d chat -c "
    WITH c AS (SELECT author_id, count(*) AS n FROM messages GROUP BY 1)
    SELECT author_id FROM c ORDER BY n, author_id OFFSET (SELECT count(*) / 2 FROM c) LIMIT 1")
HEAVY_N=$("${PSQL[@]}" -At -d chat -c "SELECT count(*) FROM messages WHERE author_id = $HEAVY")
MEDIAN_N=$("${PSQL[@]}" -At -d chat -c "SELECT count(*) FROM messages WHERE author_id = $MEDIAN")
for rep in $(seq 1 "$REPEAT"); do
    measure verify "pgvault verify ARCHIVE -d restored" "$rep" "$PGVAULT" verify "$WORK/pgvault.bak" -d "$(conn r_pgvault)"
    rm -f "$WORK/heavy.zip" "$WORK/median.zip"
    measure export "export-user heaviest" "$rep" "$PGVAULT" export-user -d "$(conn chat)" --user "$HEAVY" --output "$WORK/heavy.zip"
    measure export "export-user median" "$rep" "$PGVAULT" export-user -d "$(conn chat)" --user "$MEDIAN" --output "$WORK/median.zip"
done
SIZE_HEAVY=$(du -sb "$WORK/heavy.zip" | cut -f1)
SIZE_MEDIAN=$(du -sb "$WORK/median.zip" | cut -f1)

step "report"
mkdir -p "$RESULTS"
MEM_KB=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
export B_SCALE=$SCALE B_REPEAT=$REPEAT B_RAW=$RAW B_OUT="$RESULTS/$SCALE.md" B_DOC=$DOC B_RESULTS=$RESULTS \
    B_NPROC=$(nproc) B_MEM_KB=$MEM_KB \
    B_CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    B_PGVER="$("${PSQL[@]}" -At -d chat -c 'SHOW server_version')" \
    B_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" B_KERNEL="$(uname -r)" \
    B_COUNTS="$COUNTS" B_DB_BYTES=$DB_BYTES B_GEN_SECS=$GEN_SECS \
    B_SIZE_PGVAULT=$SIZE_PGVAULT B_SIZE_FD=$SIZE_FD B_SIZE_FC=$SIZE_FC \
    B_HEAVY=$HEAVY B_HEAVY_N=$HEAVY_N B_MEDIAN=$MEDIAN B_MEDIAN_N=$MEDIAN_N \
    B_SIZE_HEAVY=$SIZE_HEAVY B_SIZE_MEDIAN=$SIZE_MEDIAN \
    B_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
python3 - <<'PY'
import os, statistics, glob
E = os.environ
rows = {}
order = []
for line in open(E["B_RAW"]):
    g, n, r, w, m = line.rstrip("\n").split("\t")
    if n not in rows: rows[n] = (g, [], []); order.append(n)
    rows[n][1].append(float(w)); rows[n][2].append(int(m))
med = {n: statistics.median(rows[n][1]) for n in order}
peak = {n: max(rows[n][2]) for n in order}
def mb(b): return f"{int(b) / 1e6:.1f} MB"
def ratio(a, b): return med[a] / med[b] if med.get(b) else float("nan")

out = []
out.append(f"## Scale `{E['B_SCALE']}`, repeat {E['B_REPEAT']}\n")
out.append(f"Reproduce: `scripts/bench.sh --scale {E['B_SCALE']} --repeat {E['B_REPEAT']}`\n")
out.append(f"- date: {E['B_DATE']}; pgvault commit {E['B_COMMIT']}")
out.append(f"- machine: {E['B_NPROC']} CPUs ({E['B_CPU']}), {int(E['B_MEM_KB'])/1048576:.1f} GiB RAM, Linux {E['B_KERNEL']}; "
           "a shared VM, so timings are noisy")
out.append(f"- PostgreSQL {E['B_PGVER']} (local, Unix socket only, shared_buffers=512MB, max_wal_size=4GB, fsync on; "
           "same settings for every tool)")
out.append(f"- data: {E['B_COUNTS']}; database size {mb(E['B_DB_BYTES'])}; `pgvault generate` took {float(E['B_GEN_SECS']):.1f} s")
out.append(f"- each command run {E['B_REPEAT']} time(s), tools alternating within a repetition; wall = GNU time `%e`, "
           "peak RSS = `%M` of the client process only (server backends are not counted)\n")
out.append("| group | command | median s | min s | max s | ratio | peak RSS |")
out.append("|---|---|---:|---:|---:|---|---:|")
ref = {"backup": "pg_dump -Fd -j 2 zstd", "restore": "pg_restore -j 2 (from -Fd)"}
for n in order:
    g, w, m = rows[n]
    r = ""
    if g in ref and n != ref[g] and ref[g] in med:
        r = f"{ratio(n, ref[g]):.2f}× {ref[g]}"
    if n == "pgvault backup --jobs 2" and "COPY ceiling (2 conns)" in med:
        r += f"; {ratio(n, 'COPY ceiling (2 conns)'):.2f}× COPY ceiling"
    out.append(f"| {g} | `{n}` | {med[n]:.2f} | {min(w):.2f} | {max(w):.2f} | {r} | {peak[n]/1024:.1f} MiB |")
out.append("")
sp, sd, sc = int(E["B_SIZE_PGVAULT"]), int(E["B_SIZE_FD"]), int(E["B_SIZE_FC"])
out.append("| archive | bytes (du -sb) | vs pg_dump -Fd zstd |")
out.append("|---|---:|---:|")
out.append(f"| pgvault backup (directory) | {sp} ({mb(sp)}) | {sp/sd:.3f}× |")
out.append(f"| pg_dump -Fd zstd | {sd} ({mb(sd)}) | 1.000× |")
out.append(f"| pg_dump -Fc zstd | {sc} ({mb(sc)}) | {sc/sd:.3f}× |")
out.append(f"| export-user heaviest (user {E['B_HEAVY']}, {E['B_HEAVY_N']} messages) | {E['B_SIZE_HEAVY']} | |")
out.append(f"| export-user median (user {E['B_MEDIAN']}, {E['B_MEDIAN_N']} messages) | {E['B_SIZE_MEDIAN']} | |")
out.append("")
# Targets (issue 8).
def mark(ok): return "met" if ok else "**not met**"
pv_rss = max(peak[n] for n in order if "pgvault" in n or "export-user" in n) / 1024
bw = ratio("pgvault backup --jobs 2", "pg_dump -Fd -j 2 zstd")
bc = ratio("pgvault backup --jobs 2", "COPY ceiling (2 conns)")
rw = ratio("pgvault restore --jobs 2", "pg_restore -j 2 (from -Fd)")
rnv = ratio("pgvault restore --jobs 2 --no-verify", "pg_restore -j 2 (from -Fd)")
he = med["export-user heaviest"]
out.append("Targets (issue 8) at this scale:\n")
out.append("| target | measured | |")
out.append("|---|---|---|")
out.append(f"| backup wall ≤ 0.8× pg_dump -Fd -j2 zstd | {bw:.2f}× | {mark(bw <= 0.8)} |")
out.append(f"| backup size ≤ 1.05× pg_dump -Fd zstd | {sp/sd:.3f}× | {mark(sp/sd <= 1.05)} |")
out.append(f"| backup wall ≤ 1.25× COPY ceiling | {bc:.2f}× | {mark(bc <= 1.25)} |")
out.append(f"| restore wall ≤ 0.7× pg_restore -j2 (with pgvault's final verify) | {rw:.2f}× | {mark(rw <= 0.7)} |")
out.append(f"| restore wall ≤ 0.7× pg_restore -j2 (`--no-verify`) | {rnv:.2f}× | {mark(rnv <= 0.7)} |")
out.append(f"| pgvault peak RSS ≤ 64 MB (max over all pgvault commands) | {pv_rss:.1f} MiB | {mark(pv_rss * 1048576 <= 64e6)} |")
out.append(f"| heavy-user export < 1 s | {he:.2f} s | {mark(he < 1)} |")
out.append("")
section = "\n".join(out) + "\n"
open(E["B_OUT"], "w").write(section)
print("\n" + section)

# docs/benchmarks.md: header + one section per scale run kept in B_RESULTS.
head = """# Benchmarks

Produced by `scripts/bench.sh` (issue 8). Every number below was measured by that
script on the machine described in its section; nothing is estimated or copied
from elsewhere. Each scale section comes from its own run of the script (see its
date and repeat count). The machine is a shared 2-CPU VM, so expect run-to-run
noise of several percent or more; with a repeat count of 1 there is no spread
at all to judge it by.

What is compared: `pgvault backup --jobs 2 --output DIR` against
`pg_dump -Fd -j 2 --compress=zstd` and `pg_dump -Fc --compress=zstd`, plus a
ceiling of plain `COPY ... TO STDOUT` of every leaf table to /dev/null over two
psql connections (tables split into two halves by size); `pgvault restore
--jobs 2` (which verifies at the end; also timed with `--no-verify`) against
`pg_restore -j 2` from the `-Fd` dump, each into a fresh empty database and each
ending with all indexes and constraints built; `pgvault verify ARCHIVE -d
restored`; and `pgvault export-user` for the heaviest author and a median author.

Not done yet: profiling (no CPU/IO profile has been taken, so the tables say
what is slow, not why), cold-cache runs (the OS page cache is warm for every
tool), and larger scales than `default`.
"""
parts = [head]
for scale in ("small", "default"):
    p = os.path.join(E["B_RESULTS"], scale + ".md")
    if os.path.exists(p): parts.append(open(p).read())
open(E["B_DOC"], "w").write("\n".join(parts))
print(f"wrote {E['B_DOC']}")
PY
