#!/usr/bin/env bash
# npm test: install what is missing, lint and type-check, start an isolated stack (profile
# "test": its own ports and data, so a running `npm run up` is untouched), run every Jest
# test against it, and stop what it started. Extra arguments go to Jest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/install.sh
ensure_all
# The time-skipping test server for test/workflows (test/support/time-skipping.ts).
export BARGE_TEST_SERVER_BIN="$(test_server_bin)"
# The Python SDK for the seed providers' Python flow (test/features/seed-flows.spec.ts).
ensure_python_openai

log "lint and type-check"
npx --no-install eslint --max-warnings 0 .
# Its cache (content hashes) makes a second run check only what changed.
npx --no-install prettier --check --log-level warn --cache --cache-location .barge/cache/prettier .
npx --no-install tsc --noEmit -p tsconfig.json

export BARGE_PROFILE=test
# A stack left behind by an interrupted run is stopped and wiped: every run starts clean.
bash scripts/stack.sh down >/dev/null 2>&1 || true
rm -rf .barge/test
trap 'bash scripts/stack.sh down' EXIT
bash scripts/stack.sh up >/dev/null
set -a
source .barge/test/env
set +a

status=0
npx --no-install jest --json --outputFile=.barge/test/jest-results.json "$@" || status=$?
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
' .barge/test/jest-results.json || true
exit $status
