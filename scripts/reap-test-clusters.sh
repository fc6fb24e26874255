#!/usr/bin/env bash
# Stops and deletes throwaway test clusters whose test process no longer runs.
for dir in /tmp/pgvault-test-* /tmp/pgvault-wal-* /tmp/pgvault-fault-* /tmp/pgvault-scratch-*; do
    [ -f "$dir/owner.pid" ] || continue
    owner=$(cat "$dir/owner.pid")
    if kill -0 "$owner" 2>/dev/null; then continue; fi
    if [ -f "$dir/data/postmaster.pid" ]; then
        pm=$(head -1 "$dir/data/postmaster.pid")
        kill -QUIT "$pm" 2>/dev/null || true
        sleep 0.2
    fi
    rm -rf "$dir"
done
