#!/usr/bin/env bash
# Local single-node OpenSearch for development, tests and CI.
#
# Usage: scripts/opensearch.sh {fetch|start|stop|status}
#
# Assembles OpenSearch from Maven Central (the only registry reachable here): the
# integ-test-zip distribution (core + transport-netty4, no security plugin) plus the
# mapper-extras module (rank_feature / rank_features fields) and analysis-common
# (whitespace tokenizer and friends). Plugin descriptors for the two modules are written
# by this script because Maven Central serves them as plain jars.
#
# Environment:
#   OPENSEARCH_VERSION   default 2.19.6 (Java 17 runs 2.19.x; 3.x needs Java 21)
#   OPENSEARCH_PORT      HTTP port, default 9200 (bound to 127.0.0.1 only)
#   OPENSEARCH_CACHE     install/cache dir, default <repo>/.cache/opensearch
#   OPENSEARCH_HEAP      JVM heap, default 512m
#   OPENSEARCH_USER_NAME unprivileged user used when run as root, default opensearch
#   OPENSEARCH_START_TIMEOUT seconds to wait for yellow/green health, default 120
#   OPENSEARCH_NEURAL=1  try to add the neural-search plugin: it is NOT published on
#                        Maven Central (see neural_note below), so this fails with a reason.
#   MAVEN_REPO           default https://repo1.maven.org/maven2
#
# Idempotent: fetch skips what is cached and verified; start returns at once when the
# node is already up; stop is a no-op when it is down.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${OPENSEARCH_VERSION:-2.19.6}"
PORT="${OPENSEARCH_PORT:-9200}"
CACHE="${OPENSEARCH_CACHE:-$REPO_ROOT/.cache/opensearch}"
HEAP="${OPENSEARCH_HEAP:-512m}"
OS_USER="${OPENSEARCH_USER_NAME:-opensearch}"
TIMEOUT="${OPENSEARCH_START_TIMEOUT:-120}"
MAVEN="${MAVEN_REPO:-https://repo1.maven.org/maven2}"

DOWNLOADS="$CACHE/downloads"
HOME_DIR="$CACHE/opensearch-$VERSION"
RUN_DIR="$CACHE/run-$PORT"
CONF_DIR="$RUN_DIR/config"
PID_FILE="$RUN_DIR/opensearch.pid"
URL="http://127.0.0.1:$PORT"

log() { echo "[opensearch.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- download -----------------------------------------------------------------------------

maven_path() { # group artifact version ext -> path in the repository
    local group="${1//.//}"
    echo "$group/$2/$3/$2-$3.$4"
}

download() { # group artifact version ext -> prints local file
    local rel file
    rel="$(maven_path "$@")"
    file="$DOWNLOADS/$(basename "$rel")"
    mkdir -p "$DOWNLOADS"
    if [[ -s "$file" && -s "$file.sha1" ]] && verify_sha1 "$file"; then
        echo "$file"; return 0
    fi
    log "downloading $MAVEN/$rel"
    curl -fsSL --retry 3 --retry-delay 2 -o "$file.part" "$MAVEN/$rel" \
        || die "could not download $MAVEN/$rel"
    curl -fsSL --retry 3 -o "$file.sha1" "$MAVEN/$rel.sha1" \
        || die "could not download $MAVEN/$rel.sha1"
    mv "$file.part" "$file"
    verify_sha1 "$file" || { rm -f "$file" "$file.sha1"; die "checksum mismatch for $file"; }
    echo "$file"
}

verify_sha1() {
    local expected actual
    expected="$(awk '{print $1}' "$1.sha1")"
    actual="$(sha1sum "$1" | awk '{print $1}')"
    [[ "$expected" == "$actual" ]]
}

write_module() { # name classname jar
    local dir="$HOME_DIR/modules/$1"
    mkdir -p "$dir"
    cp "$3" "$dir/"
    cat >"$dir/plugin-descriptor.properties" <<EOF
description=$1 module (assembled from Maven Central by scripts/opensearch.sh)
version=$VERSION
name=$1
classname=$2
java.version=11
opensearch.version=$VERSION
custom.foldername=
extended.plugins=
has.native.controller=false
EOF
}

neural_note() {
    cat >&2 <<'EOF'
[opensearch.sh] neural-search is not available from Maven Central:
  - org.opensearch.plugin:opensearch-neural-search (any version) is not published there
    (maven-metadata.xml answers 404); OpenSearch ships the plugin zip only from its own
    artifacts site, which this network cannot reach.
  - Its dependencies would not be cheap either: opensearch-ml-plugin 2.19.1.0 is a 363 MB
    zip and opensearch-knn is served only as 2.19.1.0, so the whole stack would have to be
    pinned to OpenSearch 2.19.1, not 2.19.6.
  The rank_features + rank_feature(linear) query scores the same dot product, so the app
  and the tests use that; sparse_demo.index.opensearch switches to neural_sparse by itself
  when it finds the plugin on a real cluster.
EOF
}

cmd_fetch() {
    if [[ -x "$HOME_DIR/bin/opensearch" && -f "$HOME_DIR/.assembled" ]]; then
        log "OpenSearch $VERSION already assembled in $HOME_DIR"
    else
        local zip mapper analysis tmp
        zip="$(download org.opensearch.distribution.integ-test-zip opensearch "$VERSION" zip)"
        mapper="$(download org.opensearch.plugin mapper-extras-client "$VERSION" jar)"
        analysis="$(download org.opensearch.plugin analysis-common "$VERSION" jar)"
        tmp="$CACHE/unzip.$$"
        rm -rf "$tmp" "$HOME_DIR"
        mkdir -p "$tmp"
        unzip -q "$zip" -d "$tmp"
        mv "$tmp/opensearch-$VERSION" "$HOME_DIR"
        rm -rf "$tmp"
        write_module mapper-extras org.opensearch.index.mapper.MapperExtrasPlugin "$mapper"
        write_module analysis-common org.opensearch.analysis.common.CommonAnalysisPlugin "$analysis"
        touch "$HOME_DIR/.assembled"
        log "assembled OpenSearch $VERSION in $HOME_DIR"
    fi
    if [[ "${OPENSEARCH_NEURAL:-0}" == "1" ]]; then
        local meta="$MAVEN/org/opensearch/plugin/opensearch-neural-search/maven-metadata.xml"
        if curl -fsS -o /dev/null "$meta"; then
            die "neural-search metadata is now on Maven Central ($meta); installing it is not implemented yet"
        fi
        neural_note
        die "OPENSEARCH_NEURAL=1 requested but the neural-search plugin cannot be fetched"
    fi
}

# --- run ----------------------------------------------------------------------------------

find_java_home() {
    if [[ -n "${OPENSEARCH_JAVA_HOME:-}" ]]; then echo "$OPENSEARCH_JAVA_HOME"; return; fi
    if [[ -n "${JAVA_HOME:-}" ]]; then echo "$JAVA_HOME"; return; fi
    local java
    java="$(command -v java)" || die "no java on PATH; install a JDK 17 (apt-get install openjdk-17-jdk-headless)"
    dirname "$(dirname "$(readlink -f "$java")")"
}

healthy() {
    local body
    body="$(curl -fsS --max-time 2 "$URL/_cluster/health" 2>/dev/null)" || return 1
    [[ "$body" == *'"status":"green"'* || "$body" == *'"status":"yellow"'* ]]
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ensure_user() {
    if ! id "$OS_USER" >/dev/null 2>&1; then
        log "creating unprivileged user $OS_USER"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER" 2>/dev/null \
            || useradd -r -M -s /bin/false "$OS_USER"
    fi
}

as_user() {
    if [[ "$(id -u)" == "0" ]]; then
        runuser -u "$OS_USER" -- "$@"
    else
        "$@"
    fi
}

write_config() {
    mkdir -p "$CONF_DIR" "$RUN_DIR/data" "$RUN_DIR/logs"
    cp -n "$HOME_DIR/config/"* "$CONF_DIR/" 2>/dev/null || true
    cat >"$CONF_DIR/opensearch.yml" <<EOF
# Written by scripts/opensearch.sh; edits are overwritten on start.
cluster.name: sparse-demo-local
node.name: local-$PORT
network.host: 127.0.0.1
http.port: $PORT
discovery.type: single-node
path.data: $RUN_DIR/data
path.logs: $RUN_DIR/logs
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
EOF
}

cmd_start() {
    local pid
    if pid="$(running_pid)" && healthy; then
        log "already running (pid $pid) at $URL"
        return 0
    fi
    if healthy; then
        log "a node already answers at $URL (not started by this script); using it"
        return 0
    fi
    if pid="$(running_pid)"; then
        log "pid $pid is alive but not healthy yet; waiting"
    else
        cmd_fetch
        local java_home
        java_home="$(find_java_home)"
        [[ -x "$java_home/bin/java" ]] || die "no java at $java_home/bin/java"
        write_config
        rm -f "$PID_FILE"
        if [[ "$(id -u)" == "0" ]]; then
            ensure_user
            chown -R "$OS_USER:" "$HOME_DIR" "$RUN_DIR"
            # The user must be able to reach the install through every parent folder.
            if ! runuser -u "$OS_USER" -- test -x "$HOME_DIR/bin/opensearch"; then
                die "user $OS_USER cannot reach $HOME_DIR (a parent folder is not world-executable); set OPENSEARCH_CACHE to a reachable folder"
            fi
        fi
        log "starting OpenSearch $VERSION on $URL (heap $HEAP, logs in $RUN_DIR/logs)"
        as_user env -u JAVA_TOOL_OPTIONS \
            OPENSEARCH_JAVA_HOME="$java_home" \
            OPENSEARCH_PATH_CONF="$CONF_DIR" \
            OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${OPENSEARCH_EXTRA_JAVA_OPTS:-}" \
            "$HOME_DIR/bin/opensearch" -d -p "$PID_FILE" \
            >"$RUN_DIR/logs/stdout.log" 2>&1 \
            || { tail -n 40 "$RUN_DIR/logs/stdout.log" >&2 || true; die "OpenSearch failed to start"; }
    fi
    local waited=0
    until healthy; do
        if (( waited >= TIMEOUT )); then
            tail -n 40 "$RUN_DIR/logs/sparse-demo-local.log" >&2 2>/dev/null || true
            die "OpenSearch did not reach yellow/green health within ${TIMEOUT}s"
        fi
        # Exited: no live pid in the pid file and no java process reading this node's config. (The daemon
        # writes its pid file some seconds into start-up; on a busy machine that can take well over 5 s.)
        if ! running_pid >/dev/null && ! pgrep -f -- "$CONF_DIR" >/dev/null && (( waited > 10 )); then
            tail -n 40 "$RUN_DIR/logs/sparse-demo-local.log" >&2 2>/dev/null || true
            tail -n 20 "$RUN_DIR/logs/stdout.log" >&2 2>/dev/null || true
            die "OpenSearch exited during start-up"
        fi
        sleep 1; waited=$((waited + 1))
    done
    log "up at $URL (pid $(running_pid || echo '?'), ${waited}s)"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running (no live pid in $PID_FILE)"
        rm -f "$PID_FILE"
        return 0
    fi
    log "stopping pid $pid"
    kill "$pid"
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$PID_FILE"; log "stopped"; return 0; }
        sleep 1
    done
    log "pid $pid ignored SIGTERM for 60s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
}

cmd_status() {
    local pid
    if healthy; then
        pid="$(running_pid || echo 'not started by this script')"
        echo "running at $URL (pid $pid)"
        curl -fsS --max-time 2 "$URL/_cluster/health?pretty" || true
        return 0
    fi
    if pid="$(running_pid)"; then
        echo "pid $pid alive but $URL is not healthy"
        return 1
    fi
    echo "not running ($URL)"
    return 3
}

case "${1:-}" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 {fetch|start|stop|status}" >&2; exit 2 ;;
esac
