#!/usr/bin/env bash
# Stops and deletes throwaway test clusters whose test process no longer runs.
for dir in /tmp/pgvault-test-* /tmp/pgvault-wal-* /tmp/pgvault-fault-* /tmp/pgvault-runbook-* /tmp/pgvault-scratch-*; do
    [ -f "$dir/owner.pid" ] || continue
    owner=$(cat "$dir/owner.pid")
    if kill -0 "$owner" 2>/dev/null; then continue; fi
    # The cluster's own server, or one a runbook started in its scratch folder (RunbookTests).
    find "$dir" -maxdepth 6 -name postmaster.pid 2>/dev/null | while read -r pidfile; do
        pm=$(head -1 "$pidfile")
        kill -QUIT "$pm" 2>/dev/null || true
        sleep 0.2
    done
    rm -rf "$dir"
done
