#!/usr/bin/env bash
# The test suite: `cargo test --workspace` with a throwaway PostgreSQL server beside it
# (scripts/with-postgres.sh), for the store's conformance suite and the replica tests.
# Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with-postgres.sh cargo test --workspace --locked "$@"
