#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is missing
# (scripts/bootstrap.sh), builds, and runs every test against real, throwaway
# PostgreSQL 15, 16, 17 and 18 clusters that the test harness starts and stops itself
# (every test on 17; the version-sensitive ones on all four).
# Idempotent: run it as often as you like.
#
# Environment: PGVAULT_TEST_VERSIONS=17 (or =18, ...) limits the server versions;
# PGVAULT_TEST_PG17_URL=postgresql://... points the tests at an existing server.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="$PATH:/opt/swift/usr/bin"

scripts/bootstrap.sh

# Clusters of a test process that died (SIGKILL, crash) are removed here too;
# the harness stops its own at exit.
reap() { scripts/reap-test-clusters.sh || true; }
trap reap EXIT

# Our targets build with -warnings-as-errors (Package.swift).
swift build --build-tests
# Serially: the database tests are heavy and the machine has two cores.
swift test --skip-build --no-parallel "$@"

# The whole run (no test filter given) also checks pgvault as an installed
# program: the Debian package, unpacked into a clean folder, run from /tmp.
if [ $# -eq 0 ]; then scripts/ci-package.sh; fi
