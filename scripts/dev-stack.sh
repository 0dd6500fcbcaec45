#!/usr/bin/env bash
# Local service stack for redis-es-sync: a search engine (Elasticsearch or OpenSearch, single
# node) + two Redis servers (a "source" Redis with keyspace notifications, and a persistent
# "queue" Redis for BullMQ). Used by tests, benchmarks and the README demo.
#
# Usage:
#   bash scripts/dev-stack.sh fetch                 download + unpack the engines (all the tests use, or ENGINE's)
#   bash scripts/dev-stack.sh up [all|es|redis]     start services (default: all; es = the engine); reuses running ones
#   bash scripts/dev-stack.sh down [all|es|redis]   stop what this state dir started (default: all)
#   bash scripts/dev-stack.sh status                show what runs and where
#   bash scripts/dev-stack.sh env                   print the env file (KEY=VALUE lines)
#
# Environment:
#   STACK_DIR         state dir (pids, data, logs, env file); default .stack, relative to repo root
#   ENGINE            elasticsearch (default) or opensearch; OS_VERSION alone implies opensearch
#   ES_VERSION        Elasticsearch version (Maven integ-test-zip); default 8.19.9 (9.x works too)
#   OS_VERSION        OpenSearch version (Maven integ-test-zip); default 2.19.6 (3.x works too)
#                     `fetch` with none of ENGINE/ES_VERSION/OS_VERSION: ES 8.19.9 and 9.2.0, OpenSearch 2.19.6 and 3.6.0
#   ES_PORT           engine http port; default: the port it had before in this state dir,
#                     else 9200 if free, else a free port; `auto` (here and for the Redis ports): always a free port
#   ES_HEAP           engine heap (-Xms/-Xmx); default 768m
#   ES_USER           unprivileged user the engine runs as when this script runs as root; default redis-es-sync
#   ES_START_TIMEOUT  seconds to wait for cluster health yellow; default 180
#   ES_JAVA_HOME      JDK to run the engine with (the integ-test-zip has no bundled JDK); default: JAVA_HOME
#                     or the java on PATH when new enough, else the oldest fitting JDK under JVM_DIR
#                     (/usr/lib/jvm): Java 17+ for Elasticsearch 8 / OpenSearch 2, 21+ for 9 / 3
#   REDIS_PORT        source Redis port; default 6380 if free, else a free port
#   QUEUE_REDIS_PORT  queue Redis port; default 6381 if free, else a free port
#   REDIS_SERVER      redis-server binary; default /usr/bin/redis-server or the one on PATH
#
# The env file ($STACK_DIR/env) contains only plain KEY=VALUE lines (ELASTICSEARCH_URL is the
# engine's URL for either engine, SINK_ENGINE names it), so it works with
# `node --env-file=.stack/env ...` and with `set -a; source .stack/env; set +a`.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

STACK_DIR="${STACK_DIR:-.stack}"
case "$STACK_DIR" in
  /*) ;;
  *) STACK_DIR="$REPO_ROOT/$STACK_DIR" ;;
esac

# What the caller chose, before defaults: `fetch` without ENGINE, ES_VERSION or OS_VERSION gets
# every distribution the tests need; with any of them, only that engine.
FETCH_ALL=1
[[ -n "${ENGINE:-}${ES_VERSION:-}${OS_VERSION:-}" ]] && FETCH_ALL=0
if [[ -z "${ENGINE:-}" && -z "${ES_VERSION:-}" && -n "${OS_VERSION:-}" ]]; then ENGINE=opensearch; fi
ENGINE="${ENGINE:-elasticsearch}"
case "$ENGINE" in
  elasticsearch|opensearch) ;;
  *) printf '[dev-stack] ERROR: ENGINE=%s: expected elasticsearch or opensearch\n' "$ENGINE" >&2; exit 1 ;;
esac
ES_VERSION="${ES_VERSION:-8.19.9}"
OS_VERSION="${OS_VERSION:-2.19.6}"
ES_HEAP="${ES_HEAP:-768m}"
ES_USER="${ES_USER:-redis-es-sync}"
ES_START_TIMEOUT="${ES_START_TIMEOUT:-180}"
JVM_DIR="${JVM_DIR:-/usr/lib/jvm}"
# The distributions `fetch` gets by default: the engine matrix of the tests.
ALL_DISTRIBUTIONS="elasticsearch:8.19.9 elasticsearch:9.2.0 opensearch:2.19.6 opensearch:3.6.0"

REDIS_DIR="$STACK_DIR/redis"
QUEUE_DIR="$STACK_DIR/queue-redis"
ENV_FILE="$STACK_DIR/env"

log() { printf '[dev-stack] %s\n' "$*" >&2; }
die() { printf '[dev-stack] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
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

# engine_vars PRODUCT VERSION -> sets E_* for one distribution (and its state in $STACK_DIR)
engine_vars() {
  E_PRODUCT="$1"
  E_VERSION="$2"
  E_MAJOR="${E_VERSION%%.*}"
  [[ "$E_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || die "$E_PRODUCT version '$E_VERSION' is not x.y.z"
  case "$E_PRODUCT" in
    elasticsearch)
      E_NAME=Elasticsearch
      E_ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${E_VERSION}:zip"
      E_MAIN_CLASS=org.elasticsearch
      # Elasticsearch 9 runs on Java 21+, 8.x on 17+.
      if (( E_MAJOR >= 9 )); then E_MIN_JAVA=21; else E_MIN_JAVA=17; fi
      ;;
    opensearch)
      E_NAME=OpenSearch
      E_ARTIFACT="org.opensearch.distribution.integ-test-zip:opensearch:${E_VERSION}:zip"
      E_MAIN_CLASS=org.opensearch
      # OpenSearch 3 runs on Java 21+, 2.x on 11+ (17 here).
      if (( E_MAJOR >= 3 )); then E_MIN_JAVA=21; else E_MIN_JAVA=17; fi
      ;;
  esac
  E_CACHE="$REPO_ROOT/.cache/$E_PRODUCT"
  E_ZIP="$E_CACHE/$E_PRODUCT-$E_VERSION.zip"
  E_HOME="$E_CACHE/$E_PRODUCT-$E_VERSION"
  E_DIR="$STACK_DIR/$E_PRODUCT"
}

engine_version_of() { # PRODUCT -> the version asked for that product
  if [[ "$1" == opensearch ]]; then echo "$OS_VERSION"; else echo "$ES_VERSION"; fi
}

java_major() { # JAVA_HOME -> major version (17, 21, 25, ...) or nothing
  local jh="$1" v=""
  [[ -x "$jh/bin/java" ]] || return 1
  if [[ -r "$jh/release" ]]; then
    v="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$jh/release")"
  fi
  if [[ -z "$v" ]]; then
    v="$("$jh/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')"
  fi
  [[ -n "$v" ]] && echo "$v"
}

# java_home MIN -> a JDK of Java MIN or newer. ES_JAVA_HOME is taken as given (it must be new
# enough); then JAVA_HOME and the java on PATH when new enough; then the oldest JDK under
# $JVM_DIR that is (Java 17 for Elasticsearch 8 / OpenSearch 2, 21+ for Elasticsearch 9 / OpenSearch 3).
java_home() {
  local min="$1" jh major java best="" best_major=""
  if [[ -n "${ES_JAVA_HOME:-}" ]]; then
    major="$(java_major "$ES_JAVA_HOME")" || die "ES_JAVA_HOME '$ES_JAVA_HOME' has no bin/java"
    (( major >= min )) || die "ES_JAVA_HOME '$ES_JAVA_HOME' is Java $major; $E_NAME $E_VERSION needs Java $min+"
    echo "$ES_JAVA_HOME"
    return 0
  fi
  local candidates=()
  [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME")
  java="$(command -v java || true)"
  [[ -n "$java" ]] && candidates+=("$(dirname "$(dirname "$(readlink -f "$java")")")")
  for jh in "${candidates[@]}"; do
    if major="$(java_major "$jh")" && (( major >= min )); then echo "$jh"; return 0; fi
  done
  for jh in "$JVM_DIR"/*; do
    [[ -L "$jh" ]] && continue
    major="$(java_major "$jh")" || continue
    if (( major >= min )) && { [[ -z "$best" ]] || (( major < best_major )); }; then
      best="$jh"
      best_major="$major"
    fi
  done
  [[ -n "$best" ]] && { echo "$best"; return 0; }
  die "$E_NAME $E_VERSION needs Java $min+ and none was found (JAVA_HOME, PATH, $JVM_DIR/*): install a JDK $min+ (e.g. Temurin 25 in $JVM_DIR) or set ES_JAVA_HOME (the integ-test-zip has no bundled JDK)"
}

is_root() { [[ "$(id -u)" == 0 ]]; }

ensure_es_user() {
  is_root || return 0
  if ! id -u "$ES_USER" >/dev/null 2>&1; then
    log "creating system user '$ES_USER' (Elasticsearch and OpenSearch refuse to run as root)"
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
fetch_one() { # after engine_vars: download (maven) and unpack one distribution into .cache/
  if [[ -x "$E_HOME/bin/$E_PRODUCT" ]]; then
    log "$E_NAME $E_VERSION already unpacked at ${E_HOME#"$REPO_ROOT"/}"
    return 0
  fi
  mkdir -p "$E_CACHE"
  if [[ ! -s "$E_ZIP" ]]; then
    command -v mvn >/dev/null 2>&1 || die "maven (mvn) is required to download $E_ARTIFACT"
    log "downloading $E_ARTIFACT with maven ..."
    local tmp
    tmp="$(mktemp -d "$E_CACHE/.download.XXXXXX")"
    if ! mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
        -Dartifact="$E_ARTIFACT" -DoutputDirectory="$tmp" -Dmdep.overWriteIfNewer=true \
        </dev/null >"$tmp/mvn.log" 2>&1; then
      tail -n 40 "$tmp/mvn.log" >&2 || true
      rm -rf "$tmp"
      die "maven could not download $E_ARTIFACT (is $E_NAME $E_VERSION published as integ-test-zip?)"
    fi
    mv "$tmp/$E_PRODUCT-$E_VERSION.zip" "$E_ZIP"
    rm -rf "$tmp"
  fi
  log "unpacking $(basename "$E_ZIP") ..."
  local tmpx
  tmpx="$(mktemp -d "$E_CACHE/.unpack.XXXXXX")"
  unzip -q "$E_ZIP" -d "$tmpx" || { rm -rf "$tmpx"; die "unzip of $E_ZIP failed"; }
  [[ -x "$tmpx/$E_PRODUCT-$E_VERSION/bin/$E_PRODUCT" ]] || { rm -rf "$tmpx"; die "unexpected zip layout in $E_ZIP"; }
  rm -rf "$E_HOME"
  mv "$tmpx/$E_PRODUCT-$E_VERSION" "$E_HOME"
  rm -rf "$tmpx"
  # The engine's user must be able to read the distribution.
  chmod -R a+rX "$E_HOME"
  log "$E_NAME $E_VERSION ready at ${E_HOME#"$REPO_ROOT"/}"
}

cmd_fetch() {
  local dist
  if (( FETCH_ALL )); then
    for dist in $ALL_DISTRIBUTIONS; do
      engine_vars "${dist%%:*}" "${dist#*:}"
      fetch_one
    done
  else
    engine_vars "$ENGINE" "$(engine_version_of "$ENGINE")"
    fetch_one
  fi
}

# ---------------------------------------------------------------------------
# search engine (Elasticsearch or OpenSearch, one per state dir)
# ---------------------------------------------------------------------------
# engine_pid PRODUCT -> pid of that product's node in this state dir, if it runs
engine_pid() {
  local main=org.elasticsearch
  [[ "$1" == opensearch ]] && main=org.opensearch
  # es.pid for either product: the name stacks started by earlier versions of this script use.
  pid_alive "$STACK_DIR/$1/es.pid" "$main"
}
engine_port() { cat "$STACK_DIR/$1/http.port" 2>/dev/null || true; }
engine_running_version() { cat "$STACK_DIR/$1/version" 2>/dev/null || true; }
# running_product -> the product whose node runs in this state dir (none: exit 1)
running_product() {
  local p
  for p in elasticsearch opensearch; do
    if engine_pid "$p" >/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

engine_healthy() { # PORT
  http_get "http://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null \
    | grep -Eq '"status":"(yellow|green)"'
}

engine_fail() {
  log "$E_NAME did not become healthy: $1"
  local f
  for f in "$E_DIR/stdout.log" "$E_DIR/logs/redis-es-sync-dev.log"; do
    if [[ -s "$f" ]]; then
      log "---- tail of ${f#"$REPO_ROOT"/} ----"
      tail -n 60 "$f" >&2
    fi
  done
  exit 1
}

engine_up() {
  engine_vars "$ENGINE" "$(engine_version_of "$ENGINE")"
  local pid port other
  other="$(running_product || true)"
  if [[ -n "$other" && "$other" != "$E_PRODUCT" ]]; then
    die "$other already runs in ${STACK_DIR#"$REPO_ROOT"/}: stop it first (bash scripts/dev-stack.sh down es) or use another STACK_DIR"
  fi
  if pid="$(engine_pid "$E_PRODUCT")"; then
    local running
    running="$(engine_running_version "$E_PRODUCT")"
    if [[ -n "$running" && "$running" != "$E_VERSION" ]]; then
      die "$E_NAME $running already runs in ${STACK_DIR#"$REPO_ROOT"/}, not $E_VERSION: stop it first (bash scripts/dev-stack.sh down es)"
    fi
    port="$(engine_port "$E_PRODUCT")"
    if [[ -n "$port" ]] && engine_healthy "$port"; then
      log "$E_NAME already running (pid $pid) on http://127.0.0.1:$port"
      return 0
    fi
    log "$E_NAME process $pid exists but is not healthy yet; waiting"
  else
    fetch_one
    ensure_es_user
    local jh http_port transport_port
    jh="$(java_home "$E_MIN_JAVA")"
    # The same port as last time, so clients that survived a restart reconnect.
    local previous_port
    previous_port="$(engine_port "$E_PRODUCT")"
    http_port="$(pick_port "${ES_PORT:-}" "${previous_port:-9200}")"
    transport_port="$(pick_port "" "")"

    # Fresh config dir per state dir (the engine writes its keystore into the config dir).
    rm -rf "$E_DIR/config" "$E_DIR/tmp"
    mkdir -p "$E_DIR/config" "$E_DIR/data" "$E_DIR/logs" "$E_DIR/tmp"
    cp -R "$E_HOME/config/." "$E_DIR/config/"
    mkdir -p "$E_DIR/config/jvm.options.d"
    {
      cat <<EOC
# generated by scripts/dev-stack.sh -- do not edit, rewritten on every start
cluster.name: redis-es-sync-dev
node.name: dev-node
discovery.type: single-node
network.host: 127.0.0.1
http.port: $http_port
transport.port: $transport_port
path.data: $E_DIR/data
path.logs: $E_DIR/logs
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
EOC
      # The Elasticsearch integ-test-zip ships the x-pack-core and x-pack-security modules;
      # OpenSearch's has no security plugin at all, so there is nothing to turn off.
      [[ "$E_PRODUCT" == elasticsearch ]] && echo 'xpack.security.enabled: false'
    } >"$E_DIR/config/$E_PRODUCT.yml"
    if [[ "$E_PRODUCT" == opensearch ]]; then
      # OpenSearch starts in its home directory, which its user cannot write: its jvm.options
      # paths relative to it (gc log, heap dumps, error files) go to the state dir instead.
      sed -i -e '/-Xlog:gc\|-Xloggc:/d' \
        -e "s#HeapDumpPath=data#HeapDumpPath=$E_DIR/data#" -e "s#ErrorFile=logs/#ErrorFile=$E_DIR/logs/#" \
        "$E_DIR/config/jvm.options"
    fi
    # Heap. The stock jvm.options writes a rotating gc.log (up to 32 x 64 MB) into
    # path.logs; disable JVM logging except warnings to keep the state dir small.
    cat >"$E_DIR/config/jvm.options.d/dev-stack.options" <<EOC
-Xms$ES_HEAP
-Xmx$ES_HEAP
-Xlog:disable
-Xlog:all=warning:stderr:utctime,level,tags
EOC
    echo "$http_port" >"$E_DIR/http.port"
    echo "$E_VERSION" >"$E_DIR/version"
    rm -f "$E_DIR/es.pid" "$E_DIR/stdout.log"
    if is_root; then
      chown -R "$ES_USER:" "$E_DIR"
      as_es_user test -x "$E_HOME/bin/$E_PRODUCT" \
        || die "user '$ES_USER' cannot access $E_HOME (check permissions of the parent directories)"
      as_es_user test -w "$E_DIR/data" \
        || die "user '$ES_USER' cannot write $E_DIR (check permissions of the parent directories)"
    fi

    log "starting $E_NAME $E_VERSION on http://127.0.0.1:$http_port (Java $(java_major "$jh") at $jh, heap $ES_HEAP, transport $transport_port)"
    local env_vars
    if [[ "$E_PRODUCT" == opensearch ]]; then
      env_vars=(OPENSEARCH_JAVA_HOME="$jh" OPENSEARCH_PATH_CONF="$E_DIR/config" OPENSEARCH_TMPDIR="$E_DIR/tmp"
        OPENSEARCH_JAVA_OPTS="${ES_JAVA_OPTS:-}")
    else
      env_vars=(ES_JAVA_HOME="$jh" ES_PATH_CONF="$E_DIR/config" ES_TMPDIR="$E_DIR/tmp" ES_JAVA_OPTS="${ES_JAVA_OPTS:-}")
    fi
    # -d daemonizes once the node has started; -p writes the pid file.
    if ! (cd "$E_DIR" && as_es_user env -u JAVA_HOME "${env_vars[@]}" \
          "$E_HOME/bin/$E_PRODUCT" -d -p "$E_DIR/es.pid" \
          </dev/null >"$E_DIR/stdout.log" 2>&1); then
      engine_fail "bin/$E_PRODUCT exited with an error"
    fi
  fi

  port="$(engine_port "$E_PRODUCT")"
  local deadline=$(( SECONDS + ES_START_TIMEOUT ))
  until engine_healthy "$port"; do
    # OpenSearch's -d returns before the node writes its pid file: until then, its JVM is
    # the process started with this state dir's config.
    if ! engine_pid "$E_PRODUCT" >/dev/null && ! grep -qsaF -- "path.conf=$E_DIR/config" /proc/[0-9]*/cmdline; then
      engine_fail "process exited"
    fi
    if (( SECONDS >= deadline )); then
      engine_fail "timed out after ${ES_START_TIMEOUT}s"
    fi
    sleep 1
  done
  log "$E_NAME $E_VERSION is up (pid $(engine_pid "$E_PRODUCT")) on http://127.0.0.1:$port"
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
  local product
  # ELASTICSEARCH_URL for either engine: the tool's configuration reads it for both.
  if product="$(running_product)" && port="$(engine_port "$product")" && [[ -n "$port" ]]; then
    echo "ELASTICSEARCH_URL=http://127.0.0.1:$port"
    echo "SINK_ENGINE=$product"
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
    engine_up
  fi
  write_env
}

stop_pid() { # NAME PID
  local name="$1" pid="$2" i
  log "stopping $name (pid $pid)"
  # A node a test paused (SIGSTOP) handles SIGTERM only once it runs again.
  kill -CONT "$pid" 2>/dev/null || true
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
    local product
    for product in elasticsearch opensearch; do
      if pid="$(engine_pid "$product")"; then stop_pid "$product" "$pid"; stopped=1; fi
      rm -f "$STACK_DIR/$product/es.pid"
    done
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
  local product
  if product="$(running_product)" && pid="$(engine_pid "$product")"; then
    port="$(engine_port "$product")"
    if engine_healthy "$port"; then
      echo "$product $(engine_running_version "$product"): running   pid $pid   http://127.0.0.1:$port"
    else
      echo "$product $(engine_running_version "$product"): starting/unhealthy   pid $pid   http://127.0.0.1:$port"
    fi
  else
    echo "search engine: stopped"
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
