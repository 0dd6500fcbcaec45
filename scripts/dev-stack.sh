#!/usr/bin/env bash
# Local service stack for redis-es-sync: Elasticsearch (single node) + two Redis
# servers (a "source" Redis with keyspace notifications, and a persistent
# "queue" Redis for BullMQ). Used by tests, benchmarks and the README demo.
#
# Usage:
#   bash scripts/dev-stack.sh fetch                 download + unpack Elasticsearch only
#   bash scripts/dev-stack.sh up [all|es|redis]     start services (default: all); reuses running ones
#   bash scripts/dev-stack.sh down [all|es|redis]   stop what this state dir started (default: all)
#   bash scripts/dev-stack.sh status                show what runs and where
#   bash scripts/dev-stack.sh env                   print the env file (KEY=VALUE lines)
#
# Environment:
#   STACK_DIR         state dir (pids, data, logs, env file); default .stack, relative to repo root
#   ES_VERSION        Elasticsearch version (Maven integ-test-zip); default 8.19.9
#   ES_PORT           ES http port; default: the port it had before in this state dir,
#                     else 9200 if free, else a free port; `auto` (here and for the Redis ports): always a free port
#   ES_HEAP           ES heap (-Xms/-Xmx); default 768m
#   ES_USER           unprivileged user ES runs as when this script runs as root; default redis-es-sync
#   ES_START_TIMEOUT  seconds to wait for cluster health yellow; default 180
#   ES_JAVA_HOME / JAVA_HOME   JDK to run ES with (the integ-test-zip has no bundled JDK)
#   REDIS_PORT        source Redis port; default 6380 if free, else a free port
#   QUEUE_REDIS_PORT  queue Redis port; default 6381 if free, else a free port
#   REDIS_SERVER      redis-server binary; default /usr/bin/redis-server or the one on PATH
#
# The env file ($STACK_DIR/env) contains only plain KEY=VALUE lines, so it works with
# `node --env-file=.stack/env ...` and with `set -a; source .stack/env; set +a`.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

STACK_DIR="${STACK_DIR:-.stack}"
case "$STACK_DIR" in
  /*) ;;
  *) STACK_DIR="$REPO_ROOT/$STACK_DIR" ;;
esac

ES_VERSION="${ES_VERSION:-8.19.9}"
ES_HEAP="${ES_HEAP:-768m}"
ES_USER="${ES_USER:-redis-es-sync}"
ES_START_TIMEOUT="${ES_START_TIMEOUT:-180}"
ES_ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ES_VERSION}:zip"
CACHE_DIR="$REPO_ROOT/.cache/elasticsearch"
ES_ZIP="$CACHE_DIR/elasticsearch-${ES_VERSION}.zip"
ES_HOME="$CACHE_DIR/elasticsearch-${ES_VERSION}"

ES_DIR="$STACK_DIR/elasticsearch"
REDIS_DIR="$STACK_DIR/redis"
QUEUE_DIR="$STACK_DIR/queue-redis"
ENV_FILE="$STACK_DIR/env"

log() { printf '[dev-stack] %s\n' "$*" >&2; }
die() { printf '[dev-stack] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# port_is_free PORT -> exit 0 when nothing can be/ is bound on 127.0.0.1:PORT
port_is_free() {
  local port="$1"
  if command -v node >/dev/null 2>&1; then
    node -e '
      const s = require("net").createServer();
      s.once("error", () => process.exit(1));
      s.listen({ port: Number(process.argv[1]), host: "127.0.0.1", exclusive: true }, () => s.close(() => process.exit(0)));
    ' "$port" 2>/dev/null
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c '
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
' "$port" 2>/dev/null
  else
    # Last resort: a port nobody accepts connections on is considered free.
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# random_free_port -> prints a port the kernel considers free right now
random_free_port() {
  if command -v node >/dev/null 2>&1; then
    node -e '
      const s = require("net").createServer();
      s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => console.log(p)); });
    '
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
'
  else
    local p
    for _ in $(seq 1 200); do
      p=$(( 20000 + RANDOM % 30000 ))
      if port_is_free "$p"; then echo "$p"; return 0; fi
    done
    return 1
  fi
}

CHOSEN_PORTS=" "
# pick_port EXPLICIT DEFAULT -> explicit port (must be free) or default if free, else a free port (EXPLICIT auto: a free port)
pick_port() {
  local explicit="$1" default="$2" p
  # `auto`: a port the OS assigns, never a well-known default (tests and benchmarks).
  if [[ "$explicit" == auto ]]; then explicit=""; default=""; fi
  if [[ -n "$explicit" ]]; then
    port_is_free "$explicit" || die "requested port $explicit is already in use on 127.0.0.1"
    p="$explicit"
  elif [[ -n "$default" && "$CHOSEN_PORTS" != *" $default "* ]] && port_is_free "$default"; then
    p="$default"
  else
    for _ in $(seq 1 50); do
      p="$(random_free_port)"
      [[ "$CHOSEN_PORTS" != *" $p "* ]] && break
    done
  fi
  CHOSEN_PORTS+="$p "
  echo "$p"
}

# pid_alive PIDFILE [EXPECTED_CMDLINE_SUBSTRING] -> prints pid, exit 0 if running
pid_alive() {
  local pidfile="$1" expect="${2:-}" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(tr -dc '0-9' <"$pidfile")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -n "$expect" && -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$expect" || return 1
  fi
  echo "$pid"
}

http_get() { # URL -> body on stdout, non-zero on failure
  local url="$1"
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 10 "$url"
  else
    node -e '
      fetch(process.argv[1], { signal: AbortSignal.timeout(10000) })
        .then(async (r) => { const t = await r.text(); if (!r.ok) process.exit(22); process.stdout.write(t); })
        .catch(() => process.exit(7));
    ' "$url"
  fi
}

redis_ping() { # PORT -> exit 0 when the server answers PONG
  local port="$1" reply=""
  if command -v redis-cli >/dev/null 2>&1; then
    reply="$(redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null || true)"
  else
    reply="$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'PING\r\n' >&3 && IFS= read -r -t 2 line <&3 && printf '%s' "$line") 2>/dev/null || true)"
  fi
  [[ "$reply" == *PONG* ]]
}

redis_bin() {
  if [[ -n "${REDIS_SERVER:-}" ]]; then echo "$REDIS_SERVER"
  elif [[ -x /usr/bin/redis-server ]]; then echo /usr/bin/redis-server
  elif command -v redis-server >/dev/null 2>&1; then command -v redis-server
  else die "redis-server not found (install Debian's redis-server package or set REDIS_SERVER)"
  fi
}

java_home() {
  local jh="${ES_JAVA_HOME:-${JAVA_HOME:-}}" java
  if [[ -z "$jh" ]]; then
    java="$(command -v java || true)"
    [[ -n "$java" ]] || die "no Java found: set ES_JAVA_HOME or JAVA_HOME (Java 17+ required, the integ-test-zip has no bundled JDK)"
    jh="$(dirname "$(dirname "$(readlink -f "$java")")")"
  fi
  [[ -x "$jh/bin/java" ]] || die "JAVA_HOME '$jh' has no bin/java"
  echo "$jh"
}

is_root() { [[ "$(id -u)" == 0 ]]; }

ensure_es_user() {
  is_root || return 0
  if ! id -u "$ES_USER" >/dev/null 2>&1; then
    log "creating system user '$ES_USER' (Elasticsearch refuses to run as root)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$ES_USER" 2>/dev/null \
      || id -u "$ES_USER" >/dev/null 2>&1 \
      || die "could not create user '$ES_USER'"
  fi
}

as_es_user() { # run a command as the ES user (root) or as ourselves
  if is_root; then
    runuser -u "$ES_USER" -- "$@"
  else
    "$@"
  fi
}

# ---------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------
cmd_fetch() {
  if [[ -x "$ES_HOME/bin/elasticsearch" ]]; then
    log "Elasticsearch $ES_VERSION already unpacked at ${ES_HOME#"$REPO_ROOT"/}"
    return 0
  fi
  mkdir -p "$CACHE_DIR"
  if [[ ! -s "$ES_ZIP" ]]; then
    command -v mvn >/dev/null 2>&1 || die "maven (mvn) is required to download $ES_ARTIFACT"
    log "downloading $ES_ARTIFACT with maven ..."
    local tmp
    tmp="$(mktemp -d "$CACHE_DIR/.download.XXXXXX")"
    if ! mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
        -Dartifact="$ES_ARTIFACT" -DoutputDirectory="$tmp" -Dmdep.overWriteIfNewer=true \
        </dev/null >"$tmp/mvn.log" 2>&1; then
      tail -n 40 "$tmp/mvn.log" >&2 || true
      rm -rf "$tmp"
      die "maven could not download $ES_ARTIFACT (is ES_VERSION=$ES_VERSION published as integ-test-zip?)"
    fi
    mv "$tmp/elasticsearch-${ES_VERSION}.zip" "$ES_ZIP"
    rm -rf "$tmp"
  fi
  log "unpacking $(basename "$ES_ZIP") ..."
  local tmpx
  tmpx="$(mktemp -d "$CACHE_DIR/.unpack.XXXXXX")"
  unzip -q "$ES_ZIP" -d "$tmpx" || { rm -rf "$tmpx"; die "unzip of $ES_ZIP failed"; }
  [[ -x "$tmpx/elasticsearch-${ES_VERSION}/bin/elasticsearch" ]] || { rm -rf "$tmpx"; die "unexpected zip layout in $ES_ZIP"; }
  rm -rf "$ES_HOME"
  mv "$tmpx/elasticsearch-${ES_VERSION}" "$ES_HOME"
  rm -rf "$tmpx"
  # The ES user must be able to read the distribution.
  chmod -R a+rX "$ES_HOME"
  log "Elasticsearch $ES_VERSION ready at ${ES_HOME#"$REPO_ROOT"/}"
}

# ---------------------------------------------------------------------------
# Elasticsearch
# ---------------------------------------------------------------------------
es_pid() { pid_alive "$ES_DIR/es.pid" "org.elasticsearch" ; }
es_port() { cat "$ES_DIR/http.port" 2>/dev/null || true; }

es_healthy() { # PORT
  http_get "http://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null \
    | grep -Eq '"status":"(yellow|green)"'
}

es_fail() {
  log "Elasticsearch did not become healthy: $1"
  local f
  for f in "$ES_DIR/stdout.log" "$ES_DIR/logs/redis-es-sync-dev.log"; do
    if [[ -s "$f" ]]; then
      log "---- tail of ${f#"$REPO_ROOT"/} ----"
      tail -n 60 "$f" >&2
    fi
  done
  exit 1
}

es_up() {
  local pid port
  if pid="$(es_pid)"; then
    port="$(es_port)"
    if [[ -n "$port" ]] && es_healthy "$port"; then
      log "Elasticsearch already running (pid $pid) on http://127.0.0.1:$port"
      return 0
    fi
    log "Elasticsearch process $pid exists but is not healthy yet; waiting"
  else
    cmd_fetch
    ensure_es_user
    local jh http_port transport_port
    jh="$(java_home)"
    # The same port as last time, so clients that survived a restart reconnect.
    local previous_port
    previous_port="$(es_port)"
    http_port="$(pick_port "${ES_PORT:-}" "${previous_port:-9200}")"
    transport_port="$(pick_port "" "")"

    # Fresh config dir per state dir (ES writes its keystore into the config dir).
    rm -rf "$ES_DIR/config" "$ES_DIR/tmp"
    mkdir -p "$ES_DIR/config" "$ES_DIR/data" "$ES_DIR/logs" "$ES_DIR/tmp"
    cp -R "$ES_HOME/config/." "$ES_DIR/config/"
    cat >"$ES_DIR/config/elasticsearch.yml" <<EOF
# generated by scripts/dev-stack.sh -- do not edit, rewritten on every start
cluster.name: redis-es-sync-dev
node.name: dev-node
discovery.type: single-node
network.host: 127.0.0.1
http.port: $http_port
transport.port: $transport_port
path.data: $ES_DIR/data
path.logs: $ES_DIR/logs
# Accepted by the integ-test-zip: it ships the x-pack-core and x-pack-security modules.
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
EOF
    # Heap. The stock jvm.options writes a rotating gc.log (up to 32 x 64 MB) into
    # path.logs; disable JVM logging except warnings to keep the state dir small.
    cat >"$ES_DIR/config/jvm.options.d/dev-stack.options" <<EOF
-Xms$ES_HEAP
-Xmx$ES_HEAP
-Xlog:disable
-Xlog:all=warning:stderr:utctime,level,tags
EOF
    echo "$http_port" >"$ES_DIR/http.port"
    rm -f "$ES_DIR/es.pid" "$ES_DIR/stdout.log"
    if is_root; then
      chown -R "$ES_USER:" "$ES_DIR"
      as_es_user test -x "$ES_HOME/bin/elasticsearch" \
        || die "user '$ES_USER' cannot access $ES_HOME (check permissions of the parent directories)"
      as_es_user test -w "$ES_DIR/data" \
        || die "user '$ES_USER' cannot write $ES_DIR (check permissions of the parent directories)"
    fi

    log "starting Elasticsearch $ES_VERSION on http://127.0.0.1:$http_port (heap $ES_HEAP, transport $transport_port)"
    # -d daemonizes once the node has started; -p writes the pid file.
    if ! (cd "$ES_DIR" && as_es_user env \
          ES_JAVA_HOME="$jh" ES_PATH_CONF="$ES_DIR/config" ES_TMPDIR="$ES_DIR/tmp" \
          ES_JAVA_OPTS="${ES_JAVA_OPTS:-}" \
          "$ES_HOME/bin/elasticsearch" -d -p "$ES_DIR/es.pid" \
          </dev/null >"$ES_DIR/stdout.log" 2>&1); then
      es_fail "bin/elasticsearch exited with an error"
    fi
  fi

  port="$(es_port)"
  local deadline=$(( SECONDS + ES_START_TIMEOUT ))
  until es_healthy "$port"; do
    if ! es_pid >/dev/null; then
      es_fail "process exited"
    fi
    if (( SECONDS >= deadline )); then
      es_fail "timed out after ${ES_START_TIMEOUT}s"
    fi
    sleep 1
  done
  log "Elasticsearch is up (pid $(es_pid)) on http://127.0.0.1:$port"
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------
redis_pid() { pid_alive "$1/redis.pid" "redis-server"; }
redis_port() { cat "$1/port" 2>/dev/null || true; }

# redis_up NAME DIR EXPLICIT_PORT DEFAULT_PORT EXTRA_ARGS...
redis_up() {
  local name="$1" dir="$2" explicit="$3" default="$4" pid port
  shift 4
  if pid="$(redis_pid "$dir")" && port="$(redis_port "$dir")" && [[ -n "$port" ]] && redis_ping "$port"; then
    log "$name already running (pid $pid) on redis://127.0.0.1:$port"
    return 0
  fi
  local bin
  bin="$(redis_bin)"
  port="$(pick_port "$explicit" "$default")"
  mkdir -p "$dir/data"
  rm -f "$dir/redis.pid"
  echo "$port" >"$dir/port"
  log "starting $name on redis://127.0.0.1:$port"
  "$bin" --port "$port" --bind 127.0.0.1 --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir/data" \
    "$@" </dev/null >/dev/null || die "$name failed to start, see ${dir#"$REPO_ROOT"/}/redis.log"
  local i
  for i in $(seq 1 100); do
    if redis_ping "$port"; then
      log "$name is up (pid $(redis_pid "$dir" || echo '?')) on redis://127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$dir/redis.log" >&2 2>/dev/null || true
  die "$name did not answer PING on port $port"
}

source_redis_up() {
  redis_up "source redis" "$REDIS_DIR" "${REDIS_PORT:-}" 6380 \
    --save "" --appendonly no --notify-keyspace-events KEA
}

queue_redis_up() {
  redis_up "queue redis" "$QUEUE_DIR" "${QUEUE_REDIS_PORT:-}" 6381 \
    --appendonly yes --maxmemory-policy noeviction
}

# ---------------------------------------------------------------------------
# env / status / down
# ---------------------------------------------------------------------------
env_lines() {
  local port
  if es_pid >/dev/null && port="$(es_port)" && [[ -n "$port" ]]; then
    echo "ELASTICSEARCH_URL=http://127.0.0.1:$port"
  fi
  if redis_pid "$REDIS_DIR" >/dev/null && port="$(redis_port "$REDIS_DIR")" && [[ -n "$port" ]]; then
    echo "REDIS_URL=redis://127.0.0.1:$port"
  fi
  if redis_pid "$QUEUE_DIR" >/dev/null && port="$(redis_port "$QUEUE_DIR")" && [[ -n "$port" ]]; then
    echo "QUEUE_REDIS_URL=redis://127.0.0.1:$port"
  fi
}

write_env() {
  mkdir -p "$STACK_DIR"
  env_lines >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  log "wrote ${ENV_FILE#"$REPO_ROOT"/}:"
  sed 's/^/    /' "$ENV_FILE" >&2
}

cmd_up() {
  local what="${1:-all}"
  case "$what" in
    all|es|redis) ;;
    *) die "unknown target '$what' (expected all, es or redis)" ;;
  esac
  mkdir -p "$STACK_DIR"
  if [[ "$what" == all || "$what" == redis ]]; then
    source_redis_up
    queue_redis_up
  fi
  if [[ "$what" == all || "$what" == es ]]; then
    es_up
  fi
  write_env
}

stop_pid() { # NAME PID
  local name="$1" pid="$2" i
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$name did not exit after 30s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

cmd_down() {
  local what="${1:-all}" pid stopped=0
  case "$what" in
    all|es|redis) ;;
    *) die "unknown target '$what' (expected all, es or redis)" ;;
  esac
  if [[ "$what" == all || "$what" == es ]]; then
    if pid="$(es_pid)"; then stop_pid "Elasticsearch" "$pid"; stopped=1; fi
    rm -f "$ES_DIR/es.pid"
  fi
  if [[ "$what" == all || "$what" == redis ]]; then
    if pid="$(redis_pid "$REDIS_DIR")"; then stop_pid "source redis" "$pid"; stopped=1; fi
    if pid="$(redis_pid "$QUEUE_DIR")"; then stop_pid "queue redis" "$pid"; stopped=1; fi
    rm -f "$REDIS_DIR/redis.pid" "$QUEUE_DIR/redis.pid"
  fi
  if [[ "$what" == all ]]; then rm -f "$ENV_FILE"; else write_env; fi
  if (( stopped )); then
    log "$what in ${STACK_DIR#"$REPO_ROOT"/} stopped"
  else
    log "nothing running in ${STACK_DIR#"$REPO_ROOT"/}"
  fi
}

cmd_status() {
  local pid port rel="${STACK_DIR#"$REPO_ROOT"/}"
  echo "stack dir: $rel"
  if pid="$(es_pid)"; then
    port="$(es_port)"
    if es_healthy "$port"; then
      echo "elasticsearch: running   pid $pid   http://127.0.0.1:$port"
    else
      echo "elasticsearch: starting/unhealthy   pid $pid   http://127.0.0.1:$port"
    fi
  else
    echo "elasticsearch: stopped"
  fi
  if pid="$(redis_pid "$REDIS_DIR")"; then
    echo "source redis:  running   pid $pid   redis://127.0.0.1:$(redis_port "$REDIS_DIR")"
  else
    echo "source redis:  stopped"
  fi
  if pid="$(redis_pid "$QUEUE_DIR")"; then
    echo "queue redis:   running   pid $pid   redis://127.0.0.1:$(redis_port "$QUEUE_DIR")"
  else
    echo "queue redis:   stopped"
  fi
  if [[ -s "$ENV_FILE" ]]; then
    echo "env file: $rel/env"
  fi
}

cmd_env() {
  if [[ -s "$ENV_FILE" ]]; then
    cat "$ENV_FILE"
  else
    env_lines
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    fetch) cmd_fetch ;;
    -h|--help|help) usage ;;
    "") usage; exit 2 ;;
    *) log "unknown command '$cmd'"; usage; exit 2 ;;
  esac
}

main "$@"
