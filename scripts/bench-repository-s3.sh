# Sourced by `scripts/bench-repository.sh --s3` once its cluster is filled:
# the repository on S3 (moto's server on 127.0.0.1, as the tests use it, but
# without authentication) against the same repository in a local folder and
# against the server's own ceiling, plain `curl` (--aws-sigv4) PUT and GET of
# the same bytes (every object of the local repository: packs, indexes,
# manifest), two transfers at once.
#
# 1. N times, alternating: backup --jobs 2 into a fresh encrypted repository
#    in a folder, and into a fresh one on S3;
# 2. the curl ceiling: PUT then GET every object of the first local
#    repository, `xargs -P 2`;
# 3. N times, alternating: restore --jobs 2 from the first local and the
#    first S3 repository into fresh databases;
# 4. ratios: S3 / max(local, curl ceiling), goal ≤ 1.15; peak RSS of the S3
#    runs, goal ≤ 96 MB.
#
# Uses bench-repository.sh's DIR, PGVAULT, BASE, PGBIN, REPEAT, SCALE, DOC,
# keygen, timed(); writes a section "## Repository on S3" into $DOC.

MOTO=${PGVAULT_MOTO_HOME:-/opt/pgvault-moto}/bin/moto_server
[ -x "$MOTO" ] || { echo "bench-repository: $MOTO is missing: run scripts/bootstrap.sh" >&2; exit 1; }
S3PORT=${PGVAULT_BENCH_S3_PORT:-5498}
"$MOTO" -H 127.0.0.1 -p "$S3PORT" >"$DIR/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true; as_server "$PGBIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$S3PORT"
for _ in $(seq 1 300); do curl -fs "$AWS_ENDPOINT_URL_S3/moto-api/data.json" >/dev/null && break; sleep 0.1; done
BUCKET=pgvault-bench
SIGN=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")
curl -fsS "${SIGN[@]}" -X PUT "$AWS_ENDPOINT_URL_S3/$BUCKET" >/dev/null
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

for i in $(seq 1 "$REPEAT"); do
    "$PGVAULT" repo init --repo "$DIR/local$i" --encrypt-to "$keygen" --key-file "$DIR/local$i.key" >/dev/null
    "$PGVAULT" repo init --repo "s3://$BUCKET/r$i" --encrypt-to "$keygen" --key-file "$DIR/s3-$i.key" >/dev/null
    timed backup-local "$PGVAULT" backup -d "$BASE dbname=chat" --repo "$DIR/local$i" --key-file "$DIR/local$i.key" --jobs 2 --quiet
    timed backup-s3 "$PGVAULT" backup -d "$BASE dbname=chat" --repo "s3://$BUCKET/r$i" --key-file "$DIR/s3-$i.key" --jobs 2 --quiet
done

# The ceiling: the same objects, by curl, two at once, each one PUT / GET.
(cd "$DIR/local1" && find . -type f ! -path './locks/*' | sed 's|^\./||' | sort) >"$DIR/out/objects"
CEILING_BYTES=$(cd "$DIR/local1" && xargs -a "$DIR/out/objects" stat -c %s | awk '{s += $1} END {print s}')
export DIR BUCKET
put_all() { xargs -a "$DIR/out/objects" -P 2 -I{} curl -fsS "${SIGN[@]}" -T "$DIR/local1/{}" "$AWS_ENDPOINT_URL_S3/$BUCKET/ceiling/{}"; }
get_all() { xargs -a "$DIR/out/objects" -P 2 -I{} curl -fsS "${SIGN[@]}" -o /dev/null "$AWS_ENDPOINT_URL_S3/$BUCKET/ceiling/{}"; }
for _ in $(seq 1 "$REPEAT"); do
    start=$(date +%s.%N); put_all; echo "$(python3 -c "print($(date +%s.%N) - $start)") 0" >>"$DIR/out/curl-put"
    start=$(date +%s.%N); get_all; echo "$(python3 -c "print($(date +%s.%N) - $start)") 0" >>"$DIR/out/curl-get"
done

for i in $(seq 1 "$REPEAT"); do
    for where in local s3; do
        "$PGBIN/createdb" -h "$DIR" -p 5499 -U postgres "r_${where}_$i"
        repo="$DIR/local1"; [ $where = s3 ] && repo="s3://$BUCKET/r1"
        timed "restore-$where" "$PGVAULT" restore --repo "$repo" --backup latest --identity "$DIR/identity.txt" \
            -d "$BASE dbname=r_${where}_$i" --jobs 2 --quiet
        "$PGBIN/dropdb" -h "$DIR" -p 5499 -U postgres "r_${where}_$i"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$DIR/out" "$SCALE" "$REPEAT" "$DOC" "$CEILING_BYTES" "$LOAD_BEFORE" "$LOAD_AFTER" "$(git rev-parse --short HEAD)" <<'PY' | tee /dev/stderr | python3 "$ROOT/scripts/bench-doc-section.py" "$DOC"
import statistics, sys, os, re, datetime
out, scale, repeat, doc, ceiling_bytes, load_before, load_after, commit = sys.argv[1:]
def runs(label):
    return [tuple(map(float, l.split())) for l in open(os.path.join(out, label)) if l.strip()]
def med(label, i=0): return statistics.median(r[i] for r in runs(label))
def spread(label): return f"{min(r[0] for r in runs(label)):.2f}–{max(r[0] for r in runs(label)):.2f}"
mib = int(ceiling_bytes) / 2**20
rows = [("backup --jobs 2 → local folder", "backup-local"), ("backup --jobs 2 → S3", "backup-s3"),
        (f"curl PUT of the same {mib:.1f} MiB, 2 at once", "curl-put"),
        ("restore --jobs 2 ← local folder", "restore-local"), ("restore --jobs 2 ← S3", "restore-s3"),
        (f"curl GET of the same {mib:.1f} MiB, 2 at once", "curl-get")]
backup_ratio = med("backup-s3") / max(med("backup-local"), med("curl-put"))
restore_ratio = med("restore-s3") / max(med("restore-local"), med("curl-get"))
rss = max(med("backup-s3", 1), med("restore-s3", 1)) / 1024
lines = ["## Repository on S3", "",
         f"`scripts/bench-repository.sh --s3 --scale {scale} --repeat {repeat}` (commit {commit}, "
         f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC): PostgreSQL 17, encrypted repositories, "
         f"moto's S3 server on 127.0.0.1 (no authentication), {os.cpu_count()} CPUs; load average {load_before} before, "
         f"{load_after} after (a shared machine: read the ratios, not the seconds).", "",
         "| run | median s | spread s | peak RSS MiB |", "|---|---:|---:|---:|"]
for name, label in rows:
    rss_cell = f"{med(label, 1)/1024:.1f}" if med(label, 1) else ""
    lines.append(f"| {name} | {med(label):.2f} | {spread(label)} | {rss_cell} |")
lines += ["",
          f"- backup to S3: **{backup_ratio:.2f}×** the slower of the local folder and curl's PUTs (goal: at most 1.15×);",
          f"- restore from S3: **{restore_ratio:.2f}×** the slower of the local folder and curl's GETs (goal: at most 1.15×);",
          f"- peak RSS of the S3 runs: at most **{rss:.1f} MiB** (goal: 96 MB).", ""]
print("\n".join(lines))
PY
