#!/usr/bin/env bash
# One-shot Temporal setup for docker-compose.yml, run inside temporalio/admin-tools.
#
#   temporal-setup.sh schema
#       Creates the `temporal` and `temporal_visibility` databases if they are missing and brings
#       both schemas up to the version shipped with the admin-tools image. Safe to re-run: it is
#       also how the schema is upgraded after bumping the Temporal image tags.
#       Reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (temporal-sql-tool's own
#       variables) and optionally TEMPORAL_DB / TEMPORAL_VISIBILITY_DB.
#
#   temporal-setup.sh namespace NAME=Keyword [NAME=Type ...]
#       Waits for the server, creates the namespace with its retention and registers the given
#       search attributes. Safe to re-run: existing ones are left alone.
#       Reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_NAMESPACE_RETENTION.
set -euo pipefail

log() { echo "[temporal-setup] $*"; }
die() { echo "[temporal-setup] ERROR: $*" >&2; exit 1; }

# --- schema ---------------------------------------------------------------------------------

SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

db_exists() {
  PGPASSWORD="$SQL_PASSWORD" psql -h "$SQL_HOST" -p "$SQL_PORT" -U "$SQL_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1
}

setup_database() {
  local db=$1 schema_dir=$2
  if db_exists "$db"; then
    log "database $db exists"
  else
    log "creating database $db"
    temporal-sql-tool --db "$db" create-database
  fi
  # setup-schema -v 0.0 only creates the version tables; it is a no-op on a set-up database.
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$schema_dir"
  log "database $db is at the latest schema version"
}

cmd_schema() {
  : "${SQL_PLUGIN:=postgres12}" "${SQL_HOST:?}" "${SQL_PORT:=5432}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"
  export SQL_PLUGIN SQL_HOST SQL_PORT SQL_USER SQL_PASSWORD
  local tries=0
  until PGPASSWORD="$SQL_PASSWORD" pg_isready -q -h "$SQL_HOST" -p "$SQL_PORT" -U "$SQL_USER" -d postgres; do
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || die "postgres at $SQL_HOST:$SQL_PORT is not ready after 60 s"
    sleep 1
  done
  setup_database "${TEMPORAL_DB:-temporal}" "$SCHEMA_ROOT/temporal/versioned"
  setup_database "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}" "$SCHEMA_ROOT/visibility/versioned"
}

# --- namespace and search attributes ----------------------------------------------------------

cmd_namespace() {
  local address=${TEMPORAL_ADDRESS:?} namespace=${TEMPORAL_NAMESPACE:-default}
  local retention=${TEMPORAL_NAMESPACE_RETENTION:-168h}
  local tries=0

  until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || die "Temporal at $address is not serving after 120 s"
    sleep 1
  done
  log "Temporal at $address is serving"

  if temporal operator namespace describe --address "$address" -n "$namespace" >/dev/null 2>&1; then
    log "namespace $namespace exists"
  else
    log "creating namespace $namespace (retention $retention)"
    if ! out=$(temporal operator namespace create --address "$address" -n "$namespace" \
      --retention "$retention" --description "Barge batches" 2>&1); then
      echo "$out" | grep -qi "already" || die "cannot create namespace $namespace: $out"
    fi
  fi

  local spec name type existing
  for spec in "$@"; do
    name=${spec%%=*}
    type=${spec#*=}
    [ -n "$name" ] && [ "$name" != "$spec" ] || die "search attribute must be NAME=Type, got '$spec'"
    tries=0
    while :; do
      # A new namespace takes a few seconds to reach the server's namespace cache.
      if existing=$(temporal operator search-attribute list --address "$address" -n "$namespace" \
        -o json 2>&1); then
        if echo "$existing" | grep -q "\"$name\""; then
          log "search attribute $name exists"
          break
        fi
        if out=$(temporal operator search-attribute create --address "$address" -n "$namespace" \
          --name "$name" --type "$type" 2>&1); then
          log "registered search attribute $name ($type)"
          break
        fi
        echo "$out" | grep -qi "already exists" && { log "search attribute $name exists"; break; }
      else
        out=$existing
      fi
      tries=$((tries + 1))
      [ "$tries" -lt 60 ] || die "cannot register search attribute $name: $out"
      sleep 2
    done
  done
  log "namespace $namespace is ready"
}

case "${1:-}" in
  schema) shift; cmd_schema "$@" ;;
  namespace) shift; cmd_namespace "$@" ;;
  *) die "usage: $0 schema | namespace NAME=Type..." ;;
esac
