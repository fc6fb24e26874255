#!/usr/bin/env bash
# Benchmark of the format-2 repository (docs/repository-format.md) against
# pgvault's own directory archive, in one run on a throwaway local PostgreSQL
# 17 cluster filled with `pgvault generate`:
#
#   scripts/bench-repository.sh [--scale small|default] [--repeat N] [--pg 15|16|17|18] [--s3]
#
# --pg: the PostgreSQL major version of the cluster (default 17); another one
# than 17 gets a section of its own in the document.
#
# --s3: instead of the steps below, the repository on moto's local S3 server
# against a local folder and against curl's PUT and GET of the same bytes
# (scripts/bench-repository-s3.sh, section "## Repository on S3").
#
# 1. backup into a directory archive, and a first backup into an encrypted
#    repository (same database, same --jobs 2);
# 2. a second backup of the unchanged database: bytes added and time, as
#    ratios of the first;
# 3. 1% of the rows of the newest `messages` partition updated and as many new
#    messages inserted, then a third backup: bytes added;
# 4. restore (--jobs 2, with its verification) from the repository and from
#    the directory archive into fresh databases, alternating, N times;
# 5. peak RSS (GNU time's %M, the client process) of every run.
#
# Prints a Markdown section and writes it into $PGVAULT_BENCH_DOC (default
# docs/benchmarks.md) under "## Repository format 2", replacing an older one.
# Everything lives under $PGVAULT_BENCH_DIR (default /tmp/pgvault-bench-repo);
# the cluster is stopped on exit. PGVAULT_BENCH_BINARY: a pgvault to run instead of
# building a release one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"

SCALE=small
REPEAT=3
S3=0
PG=17
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --s3) S3=1; shift ;;
        --pg) PG=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "bench-repository: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$SCALE" in small|default) ;; *) echo "bench-repository: --scale is small or default" >&2; exit 2 ;; esac
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || { echo "bench-repository: --repeat is a positive integer" >&2; exit 2; }
case "$PG" in 15|16|17|18) ;; *) echo "bench-repository: --pg is 15, 16, 17 or 18" >&2; exit 2 ;; esac

scripts/bootstrap.sh
DIR=${PGVAULT_BENCH_DIR:-/tmp/pgvault-bench-repo}
DOC=${PGVAULT_BENCH_DOC:-$ROOT/docs/benchmarks.md}
PGBIN=${PGVAULT_PG_HOME:-/opt/pgvault-pg}/$PG/bin
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -n "${PGVAULT_BENCH_BINARY:-}" ]; then
    PGVAULT=$PGVAULT_BENCH_BINARY  # a pgvault built already (say so beside the figures)
else
    # Built as scripts/install.sh builds it (the Swift runtime linked in).
    swift build -c release --product pgvault --static-swift-stdlib 2>&1 | tail -1
    PGVAULT="$(swift build -c release --static-swift-stdlib --show-bin-path)/pgvault"
fi

if [ -f "$DIR/data/postmaster.pid" ]; then as_server "$PGBIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true; fi
rm -rf "$DIR"
mkdir -p "$DIR/out"
chmod 755 "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
as_server "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions >/dev/null
cat >> "$DIR/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$DIR'
port = 5499
fsync = off
shared_buffers = 512MB
max_wal_size = 4GB
CONF
as_server "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
trap 'as_server "$PGBIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true' EXIT
BASE="host=$DIR port=5499 user=postgres"
"$PGBIN/createdb" -h "$DIR" -p 5499 -U postgres chat
"$PGVAULT" migrate -d "$BASE dbname=chat" --source migrations >/dev/null
"$PGVAULT" generate -d "$BASE dbname=chat" --scale "$SCALE" >/dev/null
"$PGBIN/psql" -h "$DIR" -p 5499 -U postgres -d chat -qc "VACUUM ANALYZE"

# One run under GNU time: "<seconds> <peak RSS KiB>" appended to $DIR/out/<label>.
timed() {
    local label=$1; shift
    /usr/bin/time -f "%e %M" -o "$DIR/out/.time" "$@" >"$DIR/out/$label.stdout" 2>"$DIR/out/$label.stderr" \
        || { echo "bench-repository: $label failed:"; cat "$DIR/out/$label.stderr"; exit 1; }
    cat "$DIR/out/.time" >>"$DIR/out/$label"
}
json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
keygen=$(age-keygen -o "$DIR/identity.txt" 2>&1 | awk '{print $NF}')
if [ "$S3" = 1 ]; then
    # shellcheck source=scripts/bench-repository-s3.sh
    source "$ROOT/scripts/bench-repository-s3.sh"
    exit 0
fi
KEY="$DIR/repo.key"
"$PGVAULT" repo init --repo "$DIR/repo" --encrypt-to "$keygen" --key-file "$KEY" >/dev/null

timed archive "$PGVAULT" backup -d "$BASE dbname=chat" --output "$DIR/archive" --jobs 2 --quiet --json
timed repo1 "$PGVAULT" backup -d "$BASE dbname=chat" --repo "$DIR/repo" --key-file "$KEY" --jobs 2 --quiet --json
timed repo2 "$PGVAULT" backup -d "$BASE dbname=chat" --repo "$DIR/repo" --key-file "$KEY" --jobs 2 --quiet --json

NEWEST=$("$PGBIN/psql" -h "$DIR" -p 5499 -U postgres -d chat -Atc "
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'public.messages'::regclass AND c.relname <> 'messages_default'
      AND EXISTS (SELECT 1 FROM pg_class p WHERE p.oid = c.oid AND p.reltuples > 0)
    ORDER BY c.relname DESC LIMIT 1")
CHANGED=$("$PGBIN/psql" -h "$DIR" -p 5499 -U postgres -d chat -Atc "SELECT (count(*) / 100)::int FROM \"$NEWEST\"")
"$PGBIN/psql" -h "$DIR" -p 5499 -U postgres -d chat -qc "
    UPDATE \"$NEWEST\" SET content = content || ' (edited)', edited_at = created_at + interval '1 minute'
      WHERE id IN (SELECT id FROM \"$NEWEST\" ORDER BY random() LIMIT $CHANGED);
    INSERT INTO messages (id, channel_id, author_id, content, created_at)
      SELECT 9100000000000000000 + g, m.channel_id, m.author_id, 'new message ' || g, m.created_at + interval '1 second'
      FROM (SELECT * FROM \"$NEWEST\" ORDER BY id DESC LIMIT 1) m, generate_series(1, $CHANGED) g;"
timed repo3 "$PGVAULT" backup -d "$BASE dbname=chat" --repo "$DIR/repo" --key-file "$KEY" --jobs 2 --quiet --json

LIST="$DIR/out/list.json"
"$PGVAULT" list --repo "$DIR/repo" --key-file "$KEY" --json >"$LIST"

for i in $(seq 1 "$REPEAT"); do
    for tool in archive repo; do
        "$PGBIN/createdb" -h "$DIR" -p 5499 -U postgres "r_${tool}_$i"
        if [ $tool = archive ]; then
            timed restore-archive "$PGVAULT" restore "$DIR/archive" -d "$BASE dbname=r_${tool}_$i" --jobs 2 --quiet
        else
            timed restore-repo "$PGVAULT" restore --repo "$DIR/repo" --backup latest --identity "$DIR/identity.txt" -d "$BASE dbname=r_${tool}_$i" --jobs 2 --quiet
        fi
        "$PGBIN/dropdb" -h "$DIR" -p 5499 -U postgres "r_${tool}_$i"
    done
done
timed check "$PGVAULT" check --repo "$DIR/repo" --read-data --identity "$DIR/identity.txt" --jobs 2

python3 - "$DIR/out" "$LIST" "$SCALE" "$REPEAT" "$CHANGED" "$NEWEST" "$DOC" "$PG" <<'PY' | tee /dev/stderr | python3 "$ROOT/scripts/bench-doc-section.py" "$DOC"
import json, statistics, sys, os, re
out, listing, scale, repeat, changed, newest, doc, pg = sys.argv[1:]
def runs(label):
    return [tuple(map(float, l.split())) for l in open(os.path.join(out, label)) if l.strip()]
def med(label, i): return statistics.median(r[i] for r in runs(label))
backups = sorted(json.load(open(listing))["backups"], key=lambda b: b["startedAt"])
first, second, third = backups
added = [b["addedBytes"] for b in backups]
archive_bytes = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(os.path.dirname(out), "archive")) for f in fs)
peak = max(r[1] for l in ('repo1', 'repo2', 'repo3', 'restore-repo', 'check') for r in runs(l))
rows = [
    ("backup → directory archive", med("archive", 0), med("archive", 1), f"{archive_bytes/2**20:.1f} MiB written"),
    ("backup → repository, first", med("repo1", 0), med("repo1", 1), f"{added[0]/2**20:.1f} MiB added"),
    ("backup → repository, unchanged", med("repo2", 0), med("repo2", 1), f"{added[1]/2**20:.3f} MiB added ({100*added[1]/added[0]:.2f} % of the first)"),
    (f"backup → repository, after {changed} rows of {newest} updated and {changed} inserted", med("repo3", 0), med("repo3", 1), f"{added[2]/2**20:.2f} MiB added ({100*added[2]/added[0]:.2f} % of the first)"),
    (f"restore --jobs 2 from the directory archive (median of {repeat})", med("restore-archive", 0), med("restore-archive", 1), ""),
    (f"restore --jobs 2 from the repository (median of {repeat})", med("restore-repo", 0), med("restore-repo", 1), ""),
    ("check --read-data --jobs 2", med("check", 0), med("check", 1), ""),
]
heading = "## Repository format 2" + ("" if pg == "17" else f" on PostgreSQL {pg}")
option = "" if pg == "17" else f" --pg {pg}"
lines = [heading, "",
         f"`scripts/bench-repository.sh --scale {scale} --repeat {repeat}{option}`: one run, one machine, PostgreSQL {pg}; "
         f"logical size {first['logicalBytes']/2**20:.0f} MiB. Encrypted repository (age, one recipient).", "",
         "| run | wall s | peak RSS MiB | bytes |", "|---|---:|---:|---|"]
for name, wall, rss, note in rows:
    lines.append(f"| {name} | {wall:.2f} | {rss/1024:.1f} | {note} |")
lines += ["",
          f"- unchanged second backup: **{100*added[1]/added[0]:.2f} %** of the first's bytes, **{med('repo2',0)/med('repo1',0):.2f}×** its time (goals: under 1 %, at most 0.6×);",
          f"- after the change: **{100*added[2]/added[0]:.2f} %** (goal: under 5 %);",
          f"- restore from the repository: **{med('restore-repo',0)/med('restore-archive',0):.2f}×** the directory archive's time (goal: within 1.10×);",
          f"- peak RSS of every repository run: at most **{peak/1024:.1f} MiB ({peak*1024/1e6:.1f} MB)** (goal: 64 MB).", ""]
print("\n".join(lines))
PY
