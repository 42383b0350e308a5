#!/usr/bin/env bash
# `make dev`: Postgres and Redis, migrations, every service, a workspace, and what to do next.
# Ctrl-C stops everything. Data and logs live under .dev/.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
PG=${MEISA_DEV_PG:-postgres://postgres:postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
HTTP_PORT=${MEISA_HTTP_PORT:-8080}
GATEWAY_URL="http://127.0.0.1:${HTTP_PORT}"
CONTACTS_ADDR=127.0.0.1:${MEISA_CONTACTS_PORT:-50051}
AUTOMATIONS_ADDR=127.0.0.1:${MEISA_AUTOMATIONS_PORT:-50052}
MAILER_ADDR=127.0.0.1:${MEISA_MAILER_PORT:-50053}
DEV=.dev
mkdir -p "$DEV/logs" "$DEV/mail"

bash scripts/ensure-deps.sh

# Only the services that exist in this checkout (later issues add more).
services=()
for s in contacts mailer automations gateway; do
  [ -f "services/$s/Cargo.toml" ] && services+=("$s")
done

say "building ${services[*]} (first build takes a few minutes)"
cargo build -q $(printf -- '--bin %s ' "${services[@]}")
BIN=target/debug

db_url() { echo "${PG}/meisa_$1"; }
for s in "${services[@]}"; do
  say "migrating $s"
  if ! DATABASE_URL=$(db_url "$s") "$BIN/$s" migrate >"$DEV/logs/$s-migrate.log" 2>&1; then
    cat "$DEV/logs/$s-migrate.log" >&2
    echo "migrating $s failed (see above); is Postgres reachable at ${PG}?" >&2
    exit 1
  fi
done

pids=()
stop() {
  local rc=${1:-0}
  trap - INT TERM EXIT
  say "stopping services"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit "$rc"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

export REDIS_URL MEISA_CONTACTS_URL="http://${CONTACTS_ADDR}" MEISA_MAILER_URL="http://${MAILER_ADDR}" \
  MEISA_AUTOMATIONS_URL="http://${AUTOMATIONS_ADDR}" MEISA_PUBLIC_URL="$GATEWAY_URL" \
  MEISA_DATA_DIR="$PWD/$DEV/mail"
start() {
  local s=$1; shift
  env DATABASE_URL="$(db_url "$s")" "$@" "$BIN/$s" serve >>"$DEV/logs/$s.log" 2>&1 &
  pids+=($!)
  say "started $s (logs: $DEV/logs/$s.log)"
}
for s in "${services[@]}"; do
  case $s in
    contacts) start contacts MEISA_GRPC_ADDR="$CONTACTS_ADDR" ;;
    # The mailer erases deleted contacts from the change stream the contacts relay writes: the
    # same Redis, prefix and shard count as contacts (whose defaults are meisa and 16).
    mailer) start mailer MEISA_GRPC_ADDR="$MAILER_ADDR" REDIS_URL="$REDIS_URL" \
      MEISA_STREAM_PREFIX="${MEISA_STREAM_PREFIX:-meisa}" MEISA_STREAM_SHARDS="${MEISA_STREAM_SHARDS:-16}" ;;
    automations) start automations MEISA_GRPC_ADDR="$AUTOMATIONS_ADDR" ;;
    gateway) start gateway MEISA_HTTP_PORT="$HTTP_PORT" MEISA_HTTP_HOST=127.0.0.1 ;;
  esac
done

for _ in $(seq 1 100); do
  curl -fsS "$GATEWAY_URL/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$GATEWAY_URL/readyz" >/dev/null || { echo "the gateway is not ready; see $DEV/logs/" >&2; exit 1; }

# One workspace per .dev/: keep it across restarts so the API key in your scripts keeps working.
if [ -f "$DEV/workspace.json" ]; then
  ws_json=$(cat "$DEV/workspace.json")
else
  ws_json=$(DATABASE_URL=$(db_url gateway) "$BIN/gateway" admin create-workspace --name "Local dev")
  echo "$ws_json" >"$DEV/workspace.json"
fi
WS_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["workspace_id"])' <<<"$ws_json" 2>/dev/null \
  || sed -E 's/.*"workspace_id" *: *"([^"]+)".*/\1/' <<<"$ws_json")
API_KEY=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])' <<<"$ws_json" 2>/dev/null \
  || sed -E 's/.*"api_key" *: *"([^"]+)".*/\1/' <<<"$ws_json")

# The first dashboard user, kept across restarts like the workspace (delete .dev/ to start over).
DASHBOARD_EMAIL=${MEISA_DEV_EMAIL:-admin@meisa.local}
if [ -f "$DEV/dashboard.json" ]; then
  user_json=$(cat "$DEV/dashboard.json")
else
  user_json=$(DATABASE_URL=$(db_url gateway) "$BIN/gateway" admin create-user --workspace "$WS_ID" \
    --email "$DASHBOARD_EMAIL") || {
    echo "could not create the dashboard user $DASHBOARD_EMAIL (see above); set MEISA_DEV_EMAIL to another address, or delete .dev/ to start over" >&2
    exit 1
  }
  echo "$user_json" >"$DEV/dashboard.json"
fi
DASHBOARD_PASSWORD=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["password"])' <<<"$user_json" 2>/dev/null \
  || sed -E 's/.*"password" *: *"([^"]+)".*/\1/' <<<"$user_json")
DASHBOARD_EMAIL=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["email"])' <<<"$user_json" 2>/dev/null \
  || sed -E 's/.*"email" *: *"([^"]+)".*/\1/' <<<"$user_json")

grpc_json="\"contacts\": \"$CONTACTS_ADDR\""
[[ " ${services[*]} " == *" automations "* ]] && grpc_json+=", \"automations\": \"$AUTOMATIONS_ADDR\""
[[ " ${services[*]} " == *" mailer "* ]] && grpc_json+=", \"mailer\": \"$MAILER_ADDR\""
cat >"$DEV/bootstrap.json" <<JSON
{"gateway_url": "$GATEWAY_URL", "workspace_id": "$WS_ID", "api_key": "$API_KEY",
 "dashboard": {"url": "$GATEWAY_URL/", "email": "$DASHBOARD_EMAIL", "password": "$DASHBOARD_PASSWORD"},
 "grpc": {$grpc_json}}
JSON

mail_line=""
if [[ " ${services[*]} " == *" mailer "* ]]; then
  if [ -n "${MEISA_SMTP_URL:-}" ]; then
    # Not the URL itself: it may hold a password.
    mail_line="  Mail:       sent to the SMTP server in MEISA_SMTP_URL"
  else
    mail_line="  Mail:       written to $DEV/mail/*.eml (see README: \"See a sent email locally\")"
  fi
fi

cat <<TXT

  Meisa is running. Services: ${services[*]}

  Dashboard:  $GATEWAY_URL/
  Sign in:    $DASHBOARD_EMAIL  /  $DASHBOARD_PASSWORD

  Gateway:    $GATEWAY_URL   (OpenAPI: $GATEWAY_URL/api/v1/openapi.json)
  Workspace:  $WS_ID
  API key:    $API_KEY
  Facts:      $DEV/bootstrap.json     Logs: $DEV/logs/
$mail_line

  Upsert your first contact:

  curl -sS -X POST $GATEWAY_URL/api/v1/contacts/upsert/ \\
    -H "Authorization: Bearer $API_KEY" -H "Content-Type: application/json" \\
    -d '{"email": "jane@example.com", "external_id": "usr_12345", "first_name": "Jane", "custom_fields": {"plan": "free"}}'

  Run it twice: the second answer has "changed": []. Ctrl-C stops everything.

TXT
wait -n "${pids[@]}" || true
echo "a service exited on its own; see $DEV/logs/ (stopping the others)" >&2
stop 1
