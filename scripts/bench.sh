#!/usr/bin/env bash
# npm run bench: the simulator's own throughput, then an end-to-end batch through the local
# stack (started if needed; `npm run down` stops it). BENCH_REQUESTS / BENCH_LATENCY_MS tune it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/stack.sh up >/dev/null
set -a
source .barge/local/env
set +a
node dist/bench/simulator.bench.js
node dist/bench/batch.bench.js
