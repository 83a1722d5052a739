#!/usr/bin/env bash
# Barge's local stack: Postgres, Temporal (dev server + Web UI), MinIO, the upstream simulator,
# the API and the worker, each a background process with its pid, data and log under
# .barge/<profile>/.
#
#   stack.sh up       install what is missing, build, start everything not already running
#   stack.sh infra    only Postgres, Temporal and MinIO (to run the API or worker from source)
#   stack.sh down     stop what this profile started (nothing else)
#   stack.sh status   what is running
#   stack.sh env      print the environment the API/worker of this profile use
#
# The API and the worker run under a supervisor (stack.sh supervise, below) that brings them
# back when they die, like docker-compose's `restart: unless-stopped`: with backoff, and with
# the reason (exit code or signal) in the process's log. run/NAME.pid is always the real
# process (tests read it); run/NAME.supervisor.pid is its supervisor.
#
# The local profile also runs Prometheus (scraping the API and the worker, see
# start_prometheus); the test profile does not: tests that need one start their own.
#
# BARGE_PROFILE=local (default, `npm run up`) or test (`npm test`): separate ports and data,
# so the test suite never collides with a running local stack.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=install.sh
source "$ROOT/scripts/install.sh"

PROFILE="${BARGE_PROFILE:-local}"
# Every port is below Linux's ephemeral range (32768-60999): a port in it can be taken for a
# while by the outgoing side of some earlier loopback connection (a benchmark makes thousands).
case "$PROFILE" in
  local) PG_PORT=15432 TEMPORAL_PORT=7233 UI_PORT=8233 MINIO_PORT=9000 CONSOLE_PORT=9001 SIM_PORT=8100 API_PORT=8000 ;;
  test)  PG_PORT=15433 TEMPORAL_PORT=17233 UI_PORT=18233 MINIO_PORT=19000 CONSOLE_PORT=19001 SIM_PORT=18100 API_PORT=18000 ;;
  *) die "BARGE_PROFILE must be local or test, not '$PROFILE'" ;;
esac
HOST=127.0.0.1
DIR="$ROOT/.barge/$PROFILE"
RUN="$DIR/run"
LOGS="$DIR/logs"
MINIO_USER=barge
MINIO_PASSWORD=barge-local-secret
# Local profile only (tests give their own workers free ports, or none).
WORKER_METRICS_PORT=9464
# The worker's heap cap, the same in docker-compose.yml and bench/barge.ts (test/compose.spec.ts).
WORKER_NODE_OPTIONS="--max-old-space-size=384 --max-semi-space-size=32"
PROMETHEUS_PORT=9090
SEARCH_ATTRIBUTES=(BatchStatus TenantId Model Endpoint)

# The key webhook signing secrets are encrypted with at rest: made once per profile and kept
# with its data (a new key would make the secrets stored so far unreadable).
encryption_key() {
  local file="$DIR/encryption.key"
  if [[ ! -s "$file" ]]; then
    (umask 077; head -c 32 /dev/urandom | base64 >"$file.part" && mv "$file.part" "$file")
  fi
  cat "$file"
}

# Both profiles allow webhook receivers on this machine (loopback, plain http), so a developer
# can try webhooks on one machine; a deployment allows none by default.
write_env() {
  mkdir -p "$DIR"
  cat >"$DIR/env" <<EOF
BARGE_API_HOST=$HOST
BARGE_API_PORT=$API_PORT
BARGE_POSTGRES_URL=postgres://barge:barge@$HOST:$PG_PORT/barge
BARGE_TEMPORAL_ADDRESS=$HOST:$TEMPORAL_PORT
BARGE_TEMPORAL_NAMESPACE=default
BARGE_STORAGE_ENDPOINT=http://$HOST:$MINIO_PORT
BARGE_STORAGE_ACCESS_KEY=$MINIO_USER
BARGE_STORAGE_SECRET_KEY=$MINIO_PASSWORD
BARGE_STORAGE_BUCKET=barge
BARGE_SIMULATOR_URL=http://$HOST:$SIM_PORT/v1
BARGE_API_URL=http://$HOST:$API_PORT
BARGE_SECRETS_ENCRYPTION_KEY=$(encryption_key)
BARGE_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8,::1/128
BARGE_WEBHOOK_ALLOW_HTTP=true
EOF
  if [[ "$PROFILE" == local ]]; then
    echo "BARGE_WORKER_METRICS_PORT=$WORKER_METRICS_PORT" >>"$DIR/env"
  fi
  if [[ "$PROFILE" == test ]]; then
    # Short windows and small chunks let the tests exercise expiry and chunking quickly.
    cat >>"$DIR/env" <<EOF
BARGE_COMPLETION_WINDOWS=24h,48h,20s
BARGE_CHUNK_SIZE=50
BARGE_WORKER_SHUTDOWN_GRACE_SECONDS=5
BARGE_TEST_MINIO_BIN=$(minio_bin)
BARGE_TEST_PG_BINDIR=$(pg_bindir)
BARGE_RECONCILE_INTERVAL_MS=2000
BARGE_RECONCILE_GRACE_MS=3000
BARGE_WORKER_METRICS_PORT=0
BARGE_TEST_PROMETHEUS_BIN=$(prometheus_bin)
BARGE_WEBHOOK_TIMEOUT_MS=3000
BARGE_WEBHOOK_RETRY_INITIAL_DELAY_MS=1000
BARGE_WEBHOOK_RETRY_MAX_DELAY_MS=4000
BARGE_WEBHOOK_GIVE_UP_AFTER_MS=20000
BARGE_WEBHOOK_RELAY_INTERVAL_MS=250
BARGE_TEST_PYTHONPATH=$(python_openai_dir)
EOF
  fi
}

load_env() { set -a; source "$DIR/env"; set +a; }

# --- process bookkeeping ---------------------------------------------------------------

pid_of() { [[ -f "$RUN/$1.pid" ]] && cat "$RUN/$1.pid" || true; }

# write_pid FILE PID: by rename, so a reader sees the old pid or the new one, never an empty file
# (which a careless reader takes for pid 0: `kill 0` signals its own whole process group).
write_pid() { echo "$2" >"$1.$$.tmp" && mv -f "$1.$$.tmp" "$1"; }

# Alive and still the process we started (pids are reused).
is_running() {
  local pid
  pid=$(pid_of "$1")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q -- "$2" "/proc/$pid/cmdline" 2>/dev/null
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# spawn NAME CMDLINE_MARKER command...: start detached, output to logs/NAME.log
spawn() {
  local name=$1 marker=$2; shift 2
  if is_running "$name" "$marker"; then log "$name already running (pid $(pid_of "$name"))"; return 1; fi
  mkdir -p "$RUN" "$LOGS"
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  write_pid "$RUN/$name.pid" $!
  return 0
}

wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then die "$what did not become ready in ${seconds}s (log: $LOGS)"; fi
    sleep 0.3
  done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

require_free_port() {
  port_busy "$2" && die "port $2 needed by $1 is in use by another program (stop it, or use the other BARGE_PROFILE)"
  return 0
}

# --- supervision -------------------------------------------------------------------------

# First restart after this many seconds, doubling up to the cap; a process that stayed up
# SUPERVISE_STABLE_SECONDS counts as healthy again and its next restart is quick.
SUPERVISE_BACKOFF_START=${SUPERVISE_BACKOFF_START:-1}
SUPERVISE_BACKOFF_MAX=${SUPERVISE_BACKOFF_MAX:-30}
SUPERVISE_STABLE_SECONDS=${SUPERVISE_STABLE_SECONDS:-30}

stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# supervise NAME PIDFILE -- command...: runs command, writes its pid to PIDFILE, and restarts
# it whenever it exits, until this supervisor gets SIGTERM (or PIDFILE.stopping exists). Its
# output is the child's log, so each restart is logged next to what the process printed.
supervise() {
  local name=$1 pidfile=$2
  shift 2
  [[ "${1:-}" == -- ]] && shift
  local stopfile="$pidfile.stopping" backoff=$SUPERVISE_BACKOFF_START child="" started rc why waker
  stopping=0
  # A process that lives until a stop is asked for: waiting on it too closes the race of a
  # signal arriving after the child started but before `wait` began (a plain `wait` would then
  # block until the child exits, which it does not until `down`).
  sleep infinity &
  waker=$!
  # Stop restarting; the child is left for `down`, which stops it gracefully after us.
  trap 'stopping=1; kill "$waker" 2>/dev/null' TERM INT
  rm -f "$stopfile"
  while ((stopping == 0)) && [[ ! -e "$stopfile" ]]; do
    started=$SECONDS
    "$@" &
    child=$!
    write_pid "$pidfile" "$child"
    rc=0
    wait -n "$child" "$waker" || rc=$?
    # A trapped signal interrupts wait while the child still runs: that is a stop, not an exit.
    if ((stopping)) || [[ -e "$stopfile" ]]; then break; fi
    if ((rc > 128)); then why="was killed by signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    else why="exited with code $rc"; fi
    if ((SECONDS - started >= SUPERVISE_STABLE_SECONDS)); then backoff=$SUPERVISE_BACKOFF_START; fi
    echo "[$(stamp)] supervisor: $name (pid $child) $why; restarting in ${backoff}s"
    # In the background, so SIGTERM interrupts the wait at once.
    sleep "$backoff" &
    wait $! || kill $! 2>/dev/null || true
    backoff=$((backoff * 2 > SUPERVISE_BACKOFF_MAX ? SUPERVISE_BACKOFF_MAX : backoff * 2))
  done
  kill "$waker" 2>/dev/null || true
  echo "[$(stamp)] supervisor: stopped supervising $name"
}

supervisor_running() {
  local pid
  pid=$(pid_of "$1.supervisor")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q -- "supervise" "/proc/$pid/cmdline" 2>/dev/null
}

# spawn_supervised NAME CMDLINE_MARKER command...: like spawn, under a supervisor.
spawn_supervised() {
  local name=$1 marker=$2; shift 2
  if supervisor_running "$name"; then log "$name already running (supervisor pid $(pid_of "$name.supervisor"))"; return 1; fi
  if is_running "$name" "$marker"; then log "$name already running unsupervised (pid $(pid_of "$name"))"; return 1; fi
  mkdir -p "$RUN" "$LOGS"
  rm -f "$RUN/$name.pid"
  setsid nohup bash "$ROOT/scripts/stack.sh" supervise "$name" "$RUN/$name.pid" -- "$@" \
    >>"$LOGS/$name.log" 2>&1 </dev/null &
  write_pid "$RUN/$name.supervisor.pid" $!
  wait_for "$name to start" 10 test -s "$RUN/$name.pid"
  return 0
}

# Stops the supervisor first (so it cannot restart what we stop), then the process itself.
stop_supervised() {
  local name=$1 marker=$2 grace=${3:-10} sup
  sup=$(pid_of "$name.supervisor")
  if supervisor_running "$name"; then
    touch "$RUN/$name.pid.stopping"
    kill -TERM "$sup" 2>/dev/null || true
    local deadline=$((SECONDS + 5))
    while kill -0 "$sup" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  fi
  stop_proc "$name" "$marker" "$grace"
  if [[ -n "$sup" ]] && kill -0 "$sup" 2>/dev/null; then
    local deadline=$((SECONDS + 5))
    while kill -0 "$sup" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$sup" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.supervisor.pid" "$RUN/$name.pid.stopping"
}

stop_proc() {
  local name=$1 marker=$2 grace=${3:-10}
  if ! is_running "$name" "$marker"; then rm -f "$RUN/$name.pid"; return 0; fi
  local pid
  pid=$(pid_of "$name")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in ${grace}s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
  log "stopped $name"
}

# --- postgres --------------------------------------------------------------------------

# Postgres refuses to run as root: when we are root, run its tools as the 'postgres' user.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local bindir data="$DIR/postgres"
  bindir=$(pg_bindir)
  if as_pg "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; then log "postgres already running"; return; fi
  require_free_port postgres "$PG_PORT"
  mkdir -p "$RUN" "$LOGS"
  if [[ $(id -u) -eq 0 ]]; then chown postgres "$DIR" "$RUN" "$LOGS"; fi
  if [[ ! -f "$data/PG_VERSION" ]]; then
    rm -rf "$data"
    as_pg "$bindir/initdb" -D "$data" -U barge --auth=trust -E UTF8 --locale=C >/dev/null
  fi
  as_pg "$bindir/pg_ctl" start -D "$data" -l "$LOGS/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k $RUN -c listen_addresses=$HOST -c max_connections=200 -c fsync=off" >/dev/null
  if ! psql -h "$HOST" -p "$PG_PORT" -U barge -d postgres -tAc "select 1 from pg_database where datname='barge'" | grep -q 1; then
    psql -h "$HOST" -p "$PG_PORT" -U barge -d postgres -qc "create database barge" >/dev/null
  fi
  log "postgres ready on $HOST:$PG_PORT"
}

stop_postgres() {
  local bindir data="$DIR/postgres"
  bindir=$(pg_bindir) || return 0
  if as_pg "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; then
    as_pg "$bindir/pg_ctl" stop -D "$data" -m fast -w >/dev/null
    log "stopped postgres"
  fi
}

# --- temporal, minio, node processes -----------------------------------------------------

start_temporal() {
  local args=(server start-dev --ip "$HOST" --port "$TEMPORAL_PORT" --ui-port "$UI_PORT"
    --db-filename "$DIR/temporal.db" --namespace default --log-level warn)
  # Tests: no UI, and continue-as-new suggested after 150 events so ordinary batches cross runs.
  [[ "$PROFILE" == test ]] && args+=(--headless --dynamic-config-value limit.historyCount.suggestContinueAsNew=150)
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$sa=Keyword"); done
  if is_running temporal start-dev; then log "temporal already running"; return; fi
  require_free_port temporal "$TEMPORAL_PORT"
  spawn temporal start-dev "$(temporal_bin)" "${args[@]}" || true
  wait_for "temporal" 60 "$(temporal_bin)" operator cluster health --address "$HOST:$TEMPORAL_PORT"
  # The dev server registers the search attributes asynchronously; wait until they are visible.
  wait_for "temporal search attributes" 30 bash -c \
    "'$(temporal_bin)' operator search-attribute list --address $HOST:$TEMPORAL_PORT --namespace default | grep -q BatchStatus"
  log "temporal ready on $HOST:$TEMPORAL_PORT"
}

start_minio() {
  if is_running minio "minio"; then log "minio already running"; return; fi
  require_free_port minio "$MINIO_PORT"
  mkdir -p "$DIR/minio"
  MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD MINIO_BROWSER_REDIRECT=off \
    spawn minio "minio" "$(minio_bin)" server "$DIR/minio" --quiet \
    --address "$HOST:$MINIO_PORT" --console-address "$HOST:$CONSOLE_PORT" || true
  wait_for "minio" 60 http_ok "http://$HOST:$MINIO_PORT/minio/health/live"
  log "minio ready on $HOST:$MINIO_PORT"
}

start_node() {
  local name=$1 entry=$2 port=${3:-}; shift 3 || true
  if is_running "$name" "$entry"; then log "$name already running"; return; fi
  [[ -n "$port" ]] && require_free_port "$name" "$port"
  (load_env; spawn "$name" "$entry" node --enable-source-maps "$ROOT/$entry" "$@") || true
}

# --- prometheus (local profile) ------------------------------------------------------

start_prometheus() {
  if is_running prometheus "prometheus"; then log "prometheus already running"; return; fi
  require_free_port prometheus "$PROMETHEUS_PORT"
  mkdir -p "$DIR/prometheus"
  # The same jobs as deploy/prometheus.yml, with this profile's addresses; the alert rules too.
  cat >"$DIR/prometheus.yml" <<EOF
global: { scrape_interval: 5s, evaluation_interval: 15s }
rule_files: ["$ROOT/deploy/prometheus/alerts.yml"]
scrape_configs:
  - job_name: barge-api
    static_configs: [{ targets: ["$HOST:$API_PORT"] }]
  - job_name: barge-worker
    static_configs: [{ targets: ["$HOST:$WORKER_METRICS_PORT"] }]
EOF
  spawn prometheus "prometheus" "$(prometheus_bin)" --config.file="$DIR/prometheus.yml" \
    --storage.tsdb.path="$DIR/prometheus" --storage.tsdb.retention.time=7d \
    --web.listen-address="$HOST:$PROMETHEUS_PORT" || true
  wait_for "prometheus" 60 http_ok "http://$HOST:$PROMETHEUS_PORT/-/ready"
  log "prometheus ready on $HOST:$PROMETHEUS_PORT"
}

# The API and the worker: supervised, so a process that dies comes back.
start_supervised_node() {
  local name=$1 entry=$2 port=${3:-}; shift 3 || true
  if supervisor_running "$name" || is_running "$name" "$entry"; then
    log "$name already running (pid $(pid_of "$name"))"
    return
  fi
  [[ -n "$port" ]] && require_free_port "$name" "$port"
  (
    load_env
    # The worker's own Node options: by default its heap cap (docs/operations.md, worker
    # memory); BARGE_WORKER_NODE_OPTIONS= (set, empty) runs it with none.
    if [[ "$name" == worker ]]; then export NODE_OPTIONS="${BARGE_WORKER_NODE_OPTIONS-$WORKER_NODE_OPTIONS}"; fi
    spawn_supervised "$name" "$entry" node --enable-source-maps "$ROOT/$entry" "$@"
  ) || true
}

build() {
  log "building (tsc)"
  (cd "$ROOT" && npm run --silent build)
}

infra() {
  ensure_all
  write_env
  start_postgres
  start_temporal
  start_minio
}

up() {
  infra
  build
  start_node simulator dist/src/simulator/main.js "$SIM_PORT" --host "$HOST" --port "$SIM_PORT"
  wait_for "simulator" 30 http_ok "http://$HOST:$SIM_PORT/healthz"
  start_supervised_node worker dist/src/worker.js ""
  start_supervised_node api dist/src/main.js "$API_PORT"
  wait_for "api" 60 http_ok "http://$HOST:$API_PORT/readyz"
  is_running worker dist/src/worker.js || die "worker exited at start (log: $LOGS/worker.log)"
  log "api ready"
  if [[ "$PROFILE" == local ]]; then start_prometheus; fi
  cat <<EOF

  Barge is running (profile: $PROFILE; data and logs in ${DIR#"$ROOT"/})
    API              http://$HOST:$API_PORT/v1      (health: /healthz, /readyz)
    Web console      http://$HOST:$API_PORT/console (sign in with an API key)
    API docs         http://$HOST:$API_PORT/docs    (OpenAPI: /v1/openapi.json)
    Temporal Web UI  http://$HOST:$UI_PORT
    Temporal gRPC    $HOST:$TEMPORAL_PORT
    MinIO API        http://$HOST:$MINIO_PORT       console: http://$HOST:$CONSOLE_PORT ($MINIO_USER / $MINIO_PASSWORD)
    Postgres         postgres://barge@$HOST:$PG_PORT/barge
    Simulator        http://$HOST:$SIM_PORT/v1      (every model routes here until you configure upstreams)
$(prometheus_line)

  Get an API key:   set -a; source ${DIR#"$ROOT"/}/env; set +a; npx barge keys create --tenant my-team
  Stop everything:  npm run down

EOF
}

# The Prometheus line of up's summary (local profile only).
prometheus_line() {
  [[ "$PROFILE" == local ]] || return 0
  echo "    Prometheus       http://$HOST:$PROMETHEUS_PORT          (scrapes the API's /metrics and the worker's :$WORKER_METRICS_PORT/metrics)"
}

down() {
  stop_proc prometheus prometheus 10
  stop_supervised api dist/src/main.js 15
  stop_supervised worker dist/src/worker.js 40
  stop_proc simulator dist/src/simulator/main.js 5
  stop_proc minio minio 10
  stop_proc temporal start-dev 15
  stop_postgres
}

status() {
  local name marker
  for pair in api:dist/src/main.js worker:dist/src/worker.js; do
    name=${pair%%:*} marker=${pair#*:}
    if is_running "$name" "$marker" && supervisor_running "$name"; then
      echo "$name: running (pid $(pid_of "$name"), supervised by pid $(pid_of "$name.supervisor"))"
    elif is_running "$name" "$marker"; then
      echo "$name: running (pid $(pid_of "$name"), not supervised)"
    elif supervisor_running "$name"; then
      echo "$name: restarting (supervisor pid $(pid_of "$name.supervisor"); why: ${LOGS#"$ROOT"/}/$name.log)"
    else
      echo "$name: stopped"
    fi
  done
  for pair in simulator:dist/src/simulator/main.js minio:minio temporal:start-dev prometheus:prometheus; do
    name=${pair%%:*} marker=${pair#*:}
    if is_running "$name" "$marker"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; fi
  done
  if as_pg "$(pg_bindir)/pg_ctl" status -D "$DIR/postgres" >/dev/null 2>&1; then echo "postgres: running"; else echo "postgres: stopped"; fi
}

case "${1:-}" in
  supervise) shift; supervise "$@" ;;
  up) up ;;
  infra) infra ;;
  down) down ;;
  status) status ;;
  env) write_env; cat "$DIR/env" ;;
  *) echo "usage: $0 up|infra|down|status|env (supervise NAME PIDFILE -- command: internal)" >&2; exit 2 ;;
esac
