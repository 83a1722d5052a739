#!/usr/bin/env bash
# npm run bench [-- SCENARIO...]: Barge against a direct client on the same simulator (see
# bench/run.ts for scenarios and BENCH_* knobs). Uses the local profile's Postgres, Temporal
# and MinIO (started here if needed, and stopped again at the end if this script started
# them; BENCH_KEEP_STACK=1 keeps them); the simulator, API and worker are the bench's own.
# Run it under the shared lock: flock /tmp/barge-heavy.lock npm run bench
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/install.sh

if [[ " $* " == *" --list "* || " $* " == *" --help "* || " $* " == *" -h "* ]]; then
  npm run --silent build >/dev/null && exec node dist/bench/run.js "$@"
fi

if flock -n /tmp/barge-heavy.lock true 2>/dev/null; then
  log "warning: /tmp/barge-heavy.lock is free; benchmarks should run under it (flock /tmp/barge-heavy.lock npm run bench)"
fi

export BARGE_PROFILE=local
# The local profile's ports are shared with `npm run up` elsewhere: leave nothing behind that
# was not running before.
running=$(bash scripts/stack.sh status 2>/dev/null | grep -cE '^(postgres|temporal|minio): running' || true)
if [[ "$running" != 3 && "${BENCH_KEEP_STACK:-}" != 1 ]]; then
  trap 'bash scripts/stack.sh down >/dev/null' EXIT
fi
bash scripts/stack.sh infra >/dev/null
log "building (tsc)"
npm run --silent build
set -a
source .barge/local/env
set +a
node dist/bench/run.js "$@"
