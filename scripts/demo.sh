#!/usr/bin/env bash
# The main job end to end on a throwaway local PostgreSQL 17 cluster: install what
# is missing, build pgvault, start a cluster that archives its WAL to a folder,
# create the chat schema, fill it with synthetic data, and run every pgvault
# feature on it, printing what each step did. Idempotent; everything it makes
# lives under $PGVAULT_DEMO_DIR (default /tmp/pgvault-demo) and the cluster is
# stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"
scripts/bootstrap.sh

DEMO=${PGVAULT_DEMO_DIR:-/tmp/pgvault-demo}
SCALE=${PGVAULT_DEMO_SCALE:-small}
PGBIN=${PGVAULT_PG_HOME:-/opt/pgvault-pg}/17/bin
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
as_server() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

step "build pgvault (release)"
swift build -c release --product pgvault 2>&1 | tail -1
PGVAULT="$(swift build -c release --show-bin-path)/pgvault"

step "start a throwaway PostgreSQL 17 cluster in $DEMO"
if [ -f "$DEMO/data/postmaster.pid" ]; then as_server "$PGBIN/pg_ctl" -D "$DEMO/data" -m fast stop >/dev/null 2>&1 || true; fi
rm -rf "$DEMO"
mkdir -p "$DEMO"
chmod 755 "$DEMO"
[ "$(id -u)" -eq 0 ] && chown postgres "$DEMO"
as_server mkdir -p "$DEMO/wal-archive"
as_server "$PGBIN/initdb" -D "$DEMO/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions >/dev/null
cat >> "$DEMO/data/postgresql.auto.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$DEMO'
port = 5432
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $DEMO/wal-archive/%f && cp %p $DEMO/wal-archive/%f'
fsync = off
CONF
as_server "$PGBIN/pg_ctl" -D "$DEMO/data" -l "$DEMO/server.log" -w start >/dev/null
MOTO_PID=
cleanup() {
    as_server "$PGBIN/pg_ctl" -D "$DEMO/data" -m fast stop >/dev/null 2>&1 || true
    if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
CONN="host=$DEMO port=5432 user=postgres dbname=chat"
"$PGBIN/createdb" -h "$DEMO" -U postgres chat
echo "cluster up: $CONN"

step "pgvault migrate: the chat schema, sqlx-compatible"
"$PGVAULT" migrate -d "$CONN" --source migrations

step "pgvault generate: synthetic chat data (scale $SCALE)"
"$PGVAULT" generate -d "$CONN" --scale "$SCALE"

step "pgvault backup: into a repository, as the nightly job does"
mkdir -p "$DEMO/repo"
"$PGVAULT" backup -d "$CONN" --repo "$DEMO/repo" --jobs 2 --metrics-file "$DEMO/backup.prom"
echo "metrics for node_exporter:"; grep -v '^#' "$DEMO/backup.prom"

step "pgvault backup --format file: one tar file"
"$PGVAULT" backup -d "$CONN" --output "$DEMO/chat.tar" --format file --quiet
ls -l "$DEMO/chat.tar"

step "pgvault repo init: an encrypted, deduplicating repository; two nightly backups into it"
# The identity (the age private key) would live offline; the backup host holds
# only its public key and the repository key.
rm -f "$DEMO/identity.txt"
age-keygen -o "$DEMO/identity.txt" 2>/dev/null
"$PGVAULT" repo init --repo "$DEMO/vault" --encrypt-to "$(age-keygen -y "$DEMO/identity.txt")" --key-file "$DEMO/vault.key"
"$PGVAULT" backup -d "$CONN" --repo "$DEMO/vault" --key-file "$DEMO/vault.key" --quiet
"$PGVAULT" backup -d "$CONN" --repo "$DEMO/vault" --key-file "$DEMO/vault.key" --quiet
echo "the second backup added nothing (ADDED), the database being unchanged:"
"$PGVAULT" list --repo "$DEMO/vault" --key-file "$DEMO/vault.key"
"$PGVAULT" check --repo "$DEMO/vault" --read-data --identity "$DEMO/identity.txt"
"$PGBIN/createdb" -h "$DEMO" -U postgres chat_from_vault
"$PGVAULT" restore --repo "$DEMO/vault" --backup latest --identity "$DEMO/identity.txt" \
    -d "host=$DEMO port=5432 user=postgres dbname=chat_from_vault" --jobs 2

step "pgvault drill: prove the latest backup restores, on a throwaway PostgreSQL 17, and time it"
"$PGVAULT" drill --repo "$DEMO/vault" --backup latest --identity "$DEMO/identity.txt" --jobs 2 \
    --metrics-file "$DEMO/drill.prom"
echo "the drill's metrics, and list's LAST DRILL column:"; grep -v '^#' "$DEMO/drill.prom"
"$PGVAULT" list --repo "$DEMO/vault" --key-file "$DEMO/vault.key"

step "the repository in S3: a local S3 server (moto), a backup into a bucket, and a restore from it"
MOTO=${PGVAULT_MOTO_HOME:-/opt/pgvault-moto}
S3PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$MOTO/bin/moto_server" -H 127.0.0.1 -p "$S3PORT" >"$DEMO/moto.log" 2>&1 &
MOTO_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && break; sleep 0.1; done
# Credentials the AWS way (a real job: ~/.aws/credentials or the host's role); moto takes any.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo-secret AWS_REGION=us-east-1
"$MOTO/bin/python" -c "import boto3, sys; boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket='pgvault-demo')" "http://127.0.0.1:$S3PORT"
S3=(--s3-endpoint "http://127.0.0.1:$S3PORT")
"$PGVAULT" repo init --repo s3://pgvault-demo/chat "${S3[@]}" --encrypt-to "$(age-keygen -y "$DEMO/identity.txt")" --key-file "$DEMO/s3.key"
"$PGVAULT" backup -d "$CONN" --repo s3://pgvault-demo/chat "${S3[@]}" --key-file "$DEMO/s3.key" --jobs 2
"$PGVAULT" list --repo s3://pgvault-demo/chat "${S3[@]}" --key-file "$DEMO/s3.key"
"$PGBIN/createdb" -h "$DEMO" -U postgres chat_from_s3
"$PGVAULT" restore --repo s3://pgvault-demo/chat "${S3[@]}" --backup latest --identity "$DEMO/identity.txt" \
    -d "host=$DEMO port=5432 user=postgres dbname=chat_from_s3" --jobs 2
kill "$MOTO_PID"; MOTO_PID=

step "pgvault verify: the archive offline, then the live database's foreign keys"
LATEST="$(ls -d "$DEMO"/repo/chat-* | tail -1)"
"$PGVAULT" verify "$LATEST"
"$PGVAULT" verify -d "$CONN"

step "pgvault restore: the latest backup into a second database, verified"
"$PGBIN/createdb" -h "$DEMO" -U postgres chat_restored
"$PGVAULT" restore "$LATEST" -d "host=$DEMO port=5432 user=postgres dbname=chat_restored" --jobs 2

step "pgvault restore from the tar file, only 2025's messages, newest first"
"$PGBIN/createdb" -h "$DEMO" -U postgres chat_2025
"$PGVAULT" restore "$DEMO/chat.tar" -d "host=$DEMO port=5432 user=postgres dbname=chat_2025" --jobs 2 \
    --since 2025-01-01 --until 2026-01-01 --order newest-first --no-verify --json

step "pgvault wal-status: from which base backup can this cluster be recovered, and up to when?"
# Point-in-time recovery starts from a physical base backup (pgvault's backups are logical).
as_server "$PGBIN/pg_basebackup" -h "$DEMO" -p 5432 -U postgres -D "$DEMO/basebackup" -c fast -l "demo base backup" --no-sync
"$PGVAULT" wal-status -d "$CONN" --archive-dir "$DEMO/wal-archive" --switch --base-backup "$DEMO/basebackup"

step "pgvault export-user: the heaviest author's \"download my data\" package"
HEAVY=$("$PGBIN/psql" -X -At -h "$DEMO" -U postgres -d chat -c "SELECT author_id FROM messages GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
"$PGVAULT" export-user -d "$CONN" --user "$HEAVY" --output "$DEMO/user-$HEAVY.zip"
ls -l "$DEMO/user-$HEAVY.zip"

step "pgvault export-worker: a queued request, served once"
"$PGVAULT" export-user -d "$CONN" --user "$HEAVY" --enqueue
mkdir -p "$DEMO/exports"
"$PGVAULT" export-worker -d "$CONN" --output-dir "$DEMO/exports" --once

step "pgvault archive-partitions: the oldest three months of messages to cold storage, and back"
"$PGVAULT" archive-partitions -d "$CONN" --table messages --before 2024-04-01 --repo "$DEMO/repo" --referencing-rows archive
"$PGVAULT" list --repo "$DEMO/repo" --cold
"$PGVAULT" restore-partitions -d "$CONN" --repo "$DEMO/repo" --table messages --since 2024-01 --until 2024-03

step "pgvault list and prune --dry-run"
"$PGVAULT" list --repo "$DEMO/repo"
"$PGVAULT" prune --repo "$DEMO/repo" --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run

step "done"
echo "The cluster is stopped on exit; everything is in $DEMO."
