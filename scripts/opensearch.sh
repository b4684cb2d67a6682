#!/usr/bin/env bash
# Local OpenSearch for development, tests and CI: one node (the default) or a small cluster on 127.0.0.1,
# plugin-free (the default) or with the k-NN and neural-search plugins.
#
# Usage: scripts/opensearch.sh {fetch|start|stop|status|start-node I|stop-node I}
#
# Assembles OpenSearch from Maven Central (the only registry reachable here): the
# integ-test-zip distribution. The 2.19.x zips hold only core + transport-netty4 (no security
# plugin), so this script adds the mapper-extras module (rank_feature / rank_features fields) and
# analysis-common (whitespace tokenizer and friends), writing their plugin descriptors itself because
# Maven Central serves them as plain jars. The 3.x zips (e.g. 3.6.0) already ship every module
# (mapper-extras, analysis-common, lang-painless, transport-grpc, ...); a module the zip has is
# left as it is. OpenSearch 3.x needs Java 21+ (see find_java_home); Java 17 runs 2.19.x.
#
# Plugin flavour (OPENSEARCH_NEURAL=1): core plus the k-NN and neural-search plugins, whose
# version must match core exactly (plugin <core>.0). Maven Central serves both for 2.19.1
# (org.opensearch.plugin:opensearch-knn:2.19.1.0, neural-search:2.19.1.0; the default) and 3.6.0
# (opensearch-knn:3.6.0.0, neural-search:3.6.0.0; OPENSEARCH_VERSION=3.6.0); k-NN alone also as
# 3.4.0.0 and 3.5.0.0. For 2.19.1 the lang-painless module (k-NN extends it; jar, its pom's
# dependencies and a plugin-security.policy) is assembled like the other modules; 3.6.0 ships it
# (and transport-grpc, which both 3.6 plugins also extend). Then
# `opensearch-plugin install --batch file://...` of k-NN and neural-search. It lives in
# opensearch-<version>-neural and runs in run-neural-<port> (cluster-neural-<port>), beside the
# plugin-free install, so both stay cached. Maven Central has no checksum next to the
# neural-search zips nor the k-NN 3.6.0.0 zip, so their SHA-256 are pinned below. The Maven k-NN
# zips have no native libraries (no plugins/opensearch-knn/lib/*.so, unlike the official
# distribution). The node still starts, and neural_sparse (query_tokens on rank_features), hybrid,
# normalization-processor, score-ranker-processor (rrf), hybrid_score_explanation and
# neural_sparse_two_phase_processor work, as do knn_vector fields with engine lucene. On 3.6.0 the
# sparse_vector field (method seismic, needs index setting index.sparse: true; pure Java) works too,
# but only with token ids the client has folded below 32768: 3.6.0 folds ids modulo 65536 into a
# signed short, so a document id whose fold is >= 32768 fails the shard at refresh
# (NegativeArraySizeException; the index goes red) once a segment reaches approximate_threshold
# docs, and such a query id fails the search. But indexing into a knn_vector field with engine
# faiss (the default) or nmslib KILLS THE NODE (fatal UnsatisfiedLinkError: no
# opensearchknn_faiss_avx2 in java.library.path; seen on 2.19.1 and 3.6.0).
# LD_LIBRARY_PATH is pointed at plugins/opensearch-knn/lib in case such libraries are copied there
# by hand. A hybrid query needs a search pipeline with a normalization-processor or
# score-ranker-processor; without one, 2.19.1 and 3.6.0 return internal marker hits (scores like -9.5E9)
# instead of an error.
#
# Cluster (OPENSEARCH_NODES=N, N > 1): N nodes of cluster sparse-demo-<port> on 127.0.0.1;
# node I (0..N-1) answers HTTP on OPENSEARCH_PORT+I and talks transport on
# OPENSEARCH_TRANSPORT_PORT+I, with its own config/data/logs/pid under
# <cache>/cluster[-neural]-<port>/node<I>. Pass a port
# base that does not overlap a single node's (e.g. OPENSEARCH_PORT=9250 next to CI's 9200).
# start waits until the cluster has N nodes and is yellow/green; stop-node I stops node I
# (SIGTERM, then SIGKILL after OPENSEARCH_STOP_GRACE s) and start-node I starts it again and
# waits until it has rejoined. With 2 nodes only node 0 is cluster-manager-eligible (node 1 has
# roles data, ingest, remote_cluster_client), so stop-node 1 leaves a yellow cluster while
# stop-node 0 leaves node 1 without a cluster manager (no health, no writes) until it is back;
# from 3 nodes on all are eligible and any one may be stopped. `status` marks the manager (*).
# Call every command with the same environment as start (stop also finds the other flavour's
# and the cluster's nodes on the same port base).
#
# Environment:
#   OPENSEARCH_VERSION   default 2.19.6, 2.19.1 with OPENSEARCH_NEURAL=1 (Java 17 runs 2.19.x);
#                        3.6.0 (with or without OPENSEARCH_NEURAL=1) needs Java 21+
#   OPENSEARCH_JAVA_HOME the JDK to run OpenSearch with; must be new enough (11+ for 2.x, 21+ for 3.x)
#                        or the script stops. Else JAVA_HOME or the java on PATH, whichever first is
#                        new enough, else the newest JDK in /usr/lib/jvm/* or /opt/java/* (e.g. Temurin
#                        25 for 3.x beside a default Java 17)
#   OPENSEARCH_NEURAL=1  add the k-NN and neural-search plugins (see above)
#   OPENSEARCH_NODES     number of nodes, default 1 (a single-node cluster, discovery.type single-node)
#   OPENSEARCH_PORT      HTTP port (of node 0), default 9200 (bound to 127.0.0.1 only)
#   OPENSEARCH_TRANSPORT_PORT  transport port of node 0 when NODES > 1, default OPENSEARCH_PORT+1000
#                        (a single node keeps OpenSearch's default range 9300-9400)
#   OPENSEARCH_CACHE     install/cache dir, default <repo>/.cache/opensearch
#   OPENSEARCH_HEAP      JVM heap per node, default 512m (384m per node when NODES > 1)
#   OPENSEARCH_USER_NAME unprivileged user used when run as root, default opensearch
#   OPENSEARCH_START_TIMEOUT seconds to wait for yellow/green health, default 120 (+60 per extra node)
#   OPENSEARCH_STOP_GRACE seconds between SIGTERM and SIGKILL, default 60
#   OPENSEARCH_EXTRA_JAVA_OPTS extra JVM options
#   MAVEN_REPO           default https://repo1.maven.org/maven2
#
# Idempotent: fetch skips what is cached and verified; start returns at once when the
# node(s) are already up (and starts only the missing nodes of a cluster); stop is a no-op
# when they are down.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEURAL="${OPENSEARCH_NEURAL:-0}"
if [[ "$NEURAL" == "1" ]]; then
    VERSION="${OPENSEARCH_VERSION:-2.19.1}"
    FLAVOUR="-neural"
else
    VERSION="${OPENSEARCH_VERSION:-2.19.6}"
    FLAVOUR=""
fi
PLUGIN_VERSION="$VERSION.0"
NODES="${OPENSEARCH_NODES:-1}"
PORT="${OPENSEARCH_PORT:-9200}"
TRANSPORT_PORT="${OPENSEARCH_TRANSPORT_PORT:-$((PORT + 1000))}"
CACHE="${OPENSEARCH_CACHE:-$REPO_ROOT/.cache/opensearch}"
if [[ "$NODES" =~ ^[1-9][0-9]*$ ]] && (( NODES > 1 )); then
    HEAP="${OPENSEARCH_HEAP:-384m}"
else
    HEAP="${OPENSEARCH_HEAP:-512m}"
fi
OS_USER="${OPENSEARCH_USER_NAME:-opensearch}"
STOP_GRACE="${OPENSEARCH_STOP_GRACE:-60}"
MAVEN="${MAVEN_REPO:-https://repo1.maven.org/maven2}"

log() { echo "[opensearch.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ "$NODES" =~ ^[1-9][0-9]*$ ]] || die "OPENSEARCH_NODES must be a positive integer, got '$NODES'"
[[ "$PORT" =~ ^[0-9]+$ && "$TRANSPORT_PORT" =~ ^[0-9]+$ ]] || die "ports must be numbers"
TIMEOUT="${OPENSEARCH_START_TIMEOUT:-$((120 + 60 * (NODES - 1)))}"

DOWNLOADS="$CACHE/downloads"
HOME_DIR="$CACHE/opensearch-$VERSION$FLAVOUR"
if (( NODES == 1 )); then
    CLUSTER_NAME="sparse-demo-local"
else
    CLUSTER_NAME="sparse-demo-$PORT"
fi
CLUSTER_DIR="$CACHE/cluster$FLAVOUR-$PORT"
# Cluster-manager-eligible nodes: 0..MANAGERS-1. Two eligible nodes would put only one of them
# (whichever wins) in the voting configuration, so losing that one would leave the other without
# a cluster manager; with 2 nodes only node 0 is eligible, so stop-node 1 is always survivable.
# From 3 nodes on all are eligible and any one node can be lost.
if (( NODES == 2 )); then MANAGERS=1; else MANAGERS="$NODES"; fi

# Node I's paths: select_node I sets NODE_INDEX NODE_NAME NODE_PORT RUN_DIR CONF_DIR PID_FILE URL LOG_FILE.
select_node() {
    NODE_INDEX="$1"
    NODE_PORT=$((PORT + NODE_INDEX))
    if (( NODES == 1 )); then
        RUN_DIR="$CACHE/run$FLAVOUR-$PORT"
        NODE_NAME="local-$PORT"
    else
        RUN_DIR="$CLUSTER_DIR/node$NODE_INDEX"
        NODE_NAME="node$NODE_INDEX-$PORT"
    fi
    CONF_DIR="$RUN_DIR/config"
    PID_FILE="$RUN_DIR/opensearch.pid"
    URL="http://127.0.0.1:$NODE_PORT"
    LOG_FILE="$RUN_DIR/logs/$CLUSTER_NAME.log"
}
select_node 0

# --- download -----------------------------------------------------------------------------

maven_path() { # group artifact version ext -> path in the repository
    local group="${1//.//}"
    echo "$group/$2/$3/$2-$3.$4"
}

# SHA-256 pins for files Maven Central serves without a .sha1 (checked instead of a .sha1).
# neural-search-2.19.1.0.zip: no .sha1/.md5/.pom next to it (404); pinned from the zip whose
# opensearch-neural-search-2.19.1.0.jar manifest says Change 5ea6d30b, built 2025-02-27.
# neural-search-3.6.0.0.zip and opensearch-knn-3.6.0.0.zip: no .sha1/.md5/.sha256/.pom either;
# pinned from the zips whose jar manifests say neural-search Change 84943265, built 2026-04-04,
# and k-NN 3.6.0.0 (opensearch.version=3.6.0).
pinned_sha256() { # file name -> expected sha256, or nothing
    case "$1" in
        neural-search-2.19.1.0.zip) echo b17ca1d774692902c58cbae102bf463970740c31d81446866e8eabd336e285aa ;;
        neural-search-3.6.0.0.zip) echo 6ef1b206e79391e2e36268e32dc34d27fd8b8a59a8eb0a7393c97d53b038e433 ;;
        opensearch-knn-3.6.0.0.zip) echo ac392ca28a39b3bf290648a422ef30cb149dda2963a9d7feb26060e932341c9a ;;
    esac
}

download() { # group artifact version ext -> prints local file
    local rel file pin
    rel="$(maven_path "$@")"
    file="$DOWNLOADS/$(basename "$rel")"
    pin="$(pinned_sha256 "$(basename "$rel")")"
    mkdir -p "$DOWNLOADS"
    if [[ -n "$pin" ]]; then
        if [[ -s "$file" ]] && verify_sha256 "$file" "$pin"; then
            echo "$file"; return 0
        fi
    elif [[ -s "$file" && -s "$file.sha1" ]] && verify_sha1 "$file"; then
        echo "$file"; return 0
    fi
    log "downloading $MAVEN/$rel"
    curl -fsSL --retry 3 --retry-delay 2 -o "$file.part" "$MAVEN/$rel" \
        || die "could not download $MAVEN/$rel"
    if [[ -n "$pin" ]]; then
        mv "$file.part" "$file"
        verify_sha256 "$file" "$pin" || { rm -f "$file"; die "checksum mismatch for $file (pinned sha256 $pin)"; }
        echo "$file"; return 0
    fi
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

verify_sha256() { # file expected
    [[ "$(sha256sum "$1" | awk '{print $1}')" == "$2" ]]
}

pom_dependencies() { # pom -> "group artifact version" per compile/runtime dependency (not exclusions)
    awk '
        /<exclusions>/ { excl = 1 } /<\/exclusions>/ { excl = 0; next } excl { next }
        /<dependency>/ { g = a = v = s = "" }
        /<groupId>/ { g = $0; gsub(/.*<groupId>|<\/groupId>.*/, "", g) }
        /<artifactId>/ { a = $0; gsub(/.*<artifactId>|<\/artifactId>.*/, "", a) }
        /<version>/ { v = $0; gsub(/.*<version>|<\/version>.*/, "", v) }
        /<scope>/ { s = $0; gsub(/.*<scope>|<\/scope>.*/, "", s) }
        /<\/dependency>/ { if (s == "" || s == "compile" || s == "runtime") print g, a, v }
    ' "$1"
}

write_module() { # name classname jar... (descriptor; extended.plugins empty)
    local name="$1" classname="$2" dir="$HOME_DIR/modules/$1"
    shift 2
    mkdir -p "$dir"
    cp "$@" "$dir/"
    cat >"$dir/plugin-descriptor.properties" <<EOF
description=$name module (assembled from Maven Central by scripts/opensearch.sh)
version=$VERSION
name=$name
classname=$classname
java.version=11
opensearch.version=$VERSION
custom.foldername=
extended.plugins=
has.native.controller=false
EOF
}

write_painless_module() { # lang-painless: the jar, its pom's dependencies (asm, antlr, painless-spi), its policy
    local pom jars=() group artifact version
    jars+=("$(download org.opensearch.plugin lang-painless "$VERSION" jar)")
    pom="$(download org.opensearch.plugin lang-painless "$VERSION" pom)"
    while read -r group artifact version; do
        [[ "$group:$artifact" == "org.opensearch:opensearch" ]] && continue # core itself, already in lib/
        jars+=("$(download "$group" "$artifact" "$version" jar)")
    done < <(pom_dependencies "$pom")
    write_module lang-painless org.opensearch.painless.PainlessPlugin "${jars[@]}"
    # The policy of modules/lang-painless in the OpenSearch sources.
    cat >"$HOME_DIR/modules/lang-painless/plugin-security.policy" <<'EOF'
grant {
  // needed to generate runtime classes
  permission java.lang.RuntimePermission "createClassLoader";

  // needed to find the classloader to load whitelisted classes from
  permission java.lang.RuntimePermission "getClassLoader";
};
EOF
}

install_plugin() { # artifact -> bin/opensearch-plugin install --batch file://<zip>
    local zip java_home
    zip="$(download org.opensearch.plugin "$1" "$PLUGIN_VERSION" zip)"
    java_home="$(find_java_home)"
    log "installing plugin $1 $PLUGIN_VERSION"
    env -u JAVA_TOOL_OPTIONS OPENSEARCH_JAVA_HOME="$java_home" OPENSEARCH_PATH_CONF="$HOME_DIR/config" \
        "$HOME_DIR/bin/opensearch-plugin" install --batch "file://$zip" >&2 \
        || die "opensearch-plugin install of $zip failed"
}

cmd_fetch() {
    if [[ "$NEURAL" == "1" && "$VERSION" != "2.19.1" && "$VERSION" != "3.6.0" ]]; then
        log "note: Maven Central serves neural-search only as 2.19.1.0 and 3.6.0.0 (k-NN as 2.19.1.0," \
            "3.4.0.0, 3.5.0.0, 3.6.0.0); OPENSEARCH_VERSION=$VERSION needs plugins $PLUGIN_VERSION"
    fi
    if [[ -x "$HOME_DIR/bin/opensearch" && -f "$HOME_DIR/.assembled" ]]; then
        log "OpenSearch $VERSION$FLAVOUR already assembled in $HOME_DIR"
        return 0
    fi
    local zip mapper analysis tmp
    zip="$(download org.opensearch.distribution.integ-test-zip opensearch "$VERSION" zip)"
    tmp="$CACHE/unzip.$$"
    rm -rf "$tmp" "$HOME_DIR"
    mkdir -p "$tmp"
    unzip -q "$zip" -d "$tmp"
    mv "$tmp/opensearch-$VERSION" "$HOME_DIR"
    rm -rf "$tmp"
    # 2.19.x zips lack these modules; 3.x zips ship them (then nothing is downloaded or written).
    if [[ ! -d "$HOME_DIR/modules/mapper-extras" ]]; then
        mapper="$(download org.opensearch.plugin mapper-extras-client "$VERSION" jar)"
        write_module mapper-extras org.opensearch.index.mapper.MapperExtrasPlugin "$mapper"
    fi
    if [[ ! -d "$HOME_DIR/modules/analysis-common" ]]; then
        analysis="$(download org.opensearch.plugin analysis-common "$VERSION" jar)"
        write_module analysis-common org.opensearch.analysis.common.CommonAnalysisPlugin "$analysis"
    fi
    if [[ "$NEURAL" == "1" ]]; then
        [[ -d "$HOME_DIR/modules/lang-painless" ]] || write_painless_module
        install_plugin opensearch-knn # neural-search extends k-NN, so k-NN first
        install_plugin neural-search
    fi
    touch "$HOME_DIR/.assembled"
    log "assembled OpenSearch $VERSION$FLAVOUR in $HOME_DIR"
}

# --- run ----------------------------------------------------------------------------------

required_java() { # the oldest Java major version that runs OpenSearch $VERSION
    case "$VERSION" in
        [01].* | 2.*) echo 11 ;;
        *) echo 21 ;;
    esac
}

java_major() { # JDK home -> its major version (17, 21, 25), or nothing
    local v=""
    [[ -r "$1/release" ]] && v="$(sed -n 's/^JAVA_VERSION="\(.*\)"$/\1/p' "$1/release")"
    [[ -z "$v" && -x "$1/bin/java" ]] && v="$("$1/bin/java" -version 2>&1 | sed -n '1s/.* version "\([^"]*\)".*/\1/p')"
    v="${v#1.}"      # 1.8.0_x -> 8
    v="${v%%[.+_-]*}"
    if [[ "$v" =~ ^[0-9]+$ ]]; then echo "$v"; fi
}

# OPENSEARCH_JAVA_HOME if set (it must be new enough), else JAVA_HOME, else the java on PATH, else
# the newest JDK under /usr/lib/jvm or /opt/java: the first that is new enough for $VERSION.
find_java_home() {
    local need major home java best="" best_major=0
    need="$(required_java)"
    if [[ -n "${OPENSEARCH_JAVA_HOME:-}" ]]; then
        major="$(java_major "$OPENSEARCH_JAVA_HOME")"
        (( ${major:-0} >= need )) \
            || die "OPENSEARCH_JAVA_HOME=$OPENSEARCH_JAVA_HOME is Java ${major:-unknown}; OpenSearch $VERSION needs Java $need+"
        echo "$OPENSEARCH_JAVA_HOME"; return
    fi
    if [[ -n "${JAVA_HOME:-}" ]]; then
        major="$(java_major "$JAVA_HOME")"
        if (( ${major:-0} >= need )); then echo "$JAVA_HOME"; return; fi
        log "JAVA_HOME=$JAVA_HOME is Java ${major:-unknown}, OpenSearch $VERSION needs $need+; looking further"
    fi
    if java="$(command -v java)"; then
        home="$(dirname "$(dirname "$(readlink -f "$java")")")"
        major="$(java_major "$home")"
        if (( ${major:-0} >= need )); then echo "$home"; return; fi
    fi
    for home in /usr/lib/jvm/* /opt/java/*; do
        [[ -x "$home/bin/java" && ! -L "$home" ]] || continue
        major="$(java_major "$home")"
        if (( ${major:-0} >= need && ${major:-0} > best_major )); then best="$home"; best_major="$major"; fi
    done
    [[ -n "$best" ]] && { echo "$best"; return; }
    die "OpenSearch $VERSION needs Java $need+ and none was found (OPENSEARCH_JAVA_HOME, JAVA_HOME, java on PATH," \
        "/usr/lib/jvm/*, /opt/java/*); install one (e.g. apt-get install openjdk-$need-jdk-headless) or set OPENSEARCH_JAVA_HOME"
}

health_body() { curl -fsS --max-time 2 "$URL/_cluster/health" 2>/dev/null; }

healthy() { # the selected node answers and its cluster is yellow/green (and has NODES nodes in a cluster)
    local body
    body="$(health_body)" || return 1
    [[ "$body" == *'"status":"green"'* || "$body" == *'"status":"yellow"'* ]] || return 1
    (( NODES == 1 )) || [[ "$body" == *"\"number_of_nodes\":$NODES,"* ]]
}

answers() { curl -fsS --max-time 2 -o /dev/null "$URL/" 2>/dev/null; }

pid_alive() { # pid conf_dir -> the pid is alive and is the java of that config
    [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 1
    # Guard against a stale pid file whose number now belongs to another process.
    [[ ! -r "/proc/$1/cmdline" ]] || tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null)"
    pid_alive "$pid" "$CONF_DIR" && echo "$pid"
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

write_config() { # for the selected node
    mkdir -p "$CONF_DIR" "$RUN_DIR/data" "$RUN_DIR/logs"
    cp -n "$HOME_DIR/config/"* "$CONF_DIR/" 2>/dev/null || true
    # jvm.options writes GC logs, heap dumps and crash files relative to the install (logs/, data/),
    # which nodes sharing an install would share: point them into this node's run dir.
    sed -i -e "s#file=logs/gc.log#file=$RUN_DIR/logs/gc.log#" -e "s#HeapDumpPath=data\$#HeapDumpPath=$RUN_DIR/data#" \
        -e "s#ErrorFile=logs/#ErrorFile=$RUN_DIR/logs/#" "$CONF_DIR/jvm.options"
    {
        cat <<EOF
# Written by scripts/opensearch.sh; edits are overwritten on start.
cluster.name: $CLUSTER_NAME
node.name: $NODE_NAME
network.host: 127.0.0.1
http.port: $NODE_PORT
EOF
        if (( NODES == 1 )); then
            echo "discovery.type: single-node"
        else
            local i seeds="" names=""
            for ((i = 0; i < NODES; i++)); do
                seeds+="${seeds:+, }\"127.0.0.1:$((TRANSPORT_PORT + i))\""
                (( i < MANAGERS )) && names+="${names:+, }\"node$i-$PORT\""
            done
            echo "transport.port: $((TRANSPORT_PORT + NODE_INDEX))"
            echo "discovery.seed_hosts: [$seeds]"
            # Used only to bootstrap a new cluster; ignored once the node has joined one.
            echo "cluster.initial_cluster_manager_nodes: [$names]"
            (( NODE_INDEX < MANAGERS )) || echo "node.roles: [data, ingest, remote_cluster_client]"
        fi
        cat <<EOF
path.data: $RUN_DIR/data
path.logs: $RUN_DIR/logs
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
EOF
    } >"$CONF_DIR/opensearch.yml"
}

JAVA_HOME_FOUND=""
prepare() { # fetch, find java, create the user: once per command
    [[ -n "$JAVA_HOME_FOUND" ]] && return 0
    cmd_fetch
    JAVA_HOME_FOUND="$(find_java_home)"
    [[ -x "$JAVA_HOME_FOUND/bin/java" ]] || die "no java at $JAVA_HOME_FOUND/bin/java"
    if [[ "$(id -u)" == "0" ]]; then
        ensure_user
        chown -R "$OS_USER:" "$HOME_DIR"
        # The user must be able to reach the install through every parent folder.
        if ! runuser -u "$OS_USER" -- test -x "$HOME_DIR/bin/opensearch"; then
            die "user $OS_USER cannot reach $HOME_DIR (a parent folder is not world-executable); set OPENSEARCH_CACHE to a reachable folder"
        fi
    fi
}

launch_node() { # the selected node, as a daemon
    prepare
    write_config
    rm -f "$PID_FILE"
    [[ "$(id -u)" == "0" ]] && chown -R "$OS_USER:" "$RUN_DIR"
    log "starting OpenSearch $VERSION$FLAVOUR node $NODE_NAME on $URL (heap $HEAP, logs in $RUN_DIR/logs)"
    # LD_LIBRARY_PATH: where k-NN looks for its JNI libraries (absent from the Maven zip; see the header).
    as_user env -u JAVA_TOOL_OPTIONS \
        OPENSEARCH_JAVA_HOME="$JAVA_HOME_FOUND" \
        OPENSEARCH_PATH_CONF="$CONF_DIR" \
        OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${OPENSEARCH_EXTRA_JAVA_OPTS:-}" \
        LD_LIBRARY_PATH="$HOME_DIR/plugins/opensearch-knn/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$HOME_DIR/bin/opensearch" -d -p "$PID_FILE" \
        >"$RUN_DIR/logs/stdout.log" 2>&1 \
        || { tail -n 40 "$RUN_DIR/logs/stdout.log" >&2 || true; die "OpenSearch node $NODE_NAME failed to start"; }
}

node_exited() { # the selected node: no live pid in the pid file and no java process reading its config
    # (The daemon writes its pid file some seconds into start-up; on a busy machine that can take well over 5 s.)
    ! running_pid >/dev/null && ! pgrep -f -- "$CONF_DIR" >/dev/null
}

check_plugins() { # with OPENSEARCH_NEURAL=1, a node found running must have neural-search
    [[ "$NEURAL" == "1" ]] || return 0
    curl -fsS --max-time 5 "$URL/_cat/plugins?h=component" 2>/dev/null | grep -qE '^opensearch-neural-search[[:space:]]*$' \
        || die "the node at $URL has no neural-search plugin (OPENSEARCH_NEURAL=1); stop it or use another OPENSEARCH_PORT"
}

wait_healthy() { # node indexes -> until each answers a yellow/green health with NODES nodes
    local waited=0 i
    while :; do
        local ready=1
        for i in "$@"; do
            select_node "$i"
            healthy || { ready=0; break; }
        done
        (( ready )) && break
        if (( waited >= TIMEOUT )); then
            tail -n 40 "$LOG_FILE" >&2 2>/dev/null || true
            die "OpenSearch did not reach yellow/green health (with $NODES node(s)) within ${TIMEOUT}s"
        fi
        if (( waited > 10 )); then
            for i in "$@"; do
                select_node "$i"
                if node_exited; then
                    tail -n 40 "$LOG_FILE" >&2 2>/dev/null || true
                    tail -n 20 "$RUN_DIR/logs/stdout.log" >&2 2>/dev/null || true
                    die "OpenSearch node $NODE_NAME exited during start-up"
                fi
            done
        fi
        sleep 1; waited=$((waited + 1))
    done
    WAITED="$waited"
}

cmd_start_single() {
    local pid
    select_node 0
    if pid="$(running_pid)" && healthy; then
        check_plugins
        log "already running (pid $pid) at $URL"
        return 0
    fi
    if healthy; then
        check_plugins
        log "a node already answers at $URL (not started by this script); using it"
        return 0
    fi
    if pid="$(running_pid)"; then
        log "pid $pid is alive but not healthy yet; waiting"
    else
        launch_node
    fi
    wait_healthy 0
    select_node 0
    log "up at $URL (pid $(running_pid || echo '?'), ${WAITED}s)"
}

start_nodes() { # node indexes: launch those not running (in parallel), then wait until they are in a cluster of NODES
    local i pids=() failed=0
    for i in "$@"; do
        select_node "$i"
        if running_pid >/dev/null; then
            log "node $NODE_NAME already running (pid $(running_pid)) at $URL"
        elif answers; then
            die "port $NODE_PORT answers but not for node $NODE_NAME of this script (another process holds it)"
        else
            prepare
            launch_node &
            pids+=("$!")
        fi
    done
    for i in "${pids[@]}"; do wait "$i" || failed=1; done
    (( failed == 0 )) || die "a node failed to start (see above)"
    wait_healthy "$@"
    log "cluster $CLUSTER_NAME up with $NODES nodes at http://127.0.0.1:$PORT..$((PORT + NODES - 1)) (${WAITED}s)"
}

cmd_start() {
    if (( NODES == 1 )); then cmd_start_single; return; fi
    local i all=()
    for ((i = 0; i < NODES; i++)); do all+=("$i"); done
    start_nodes "${all[@]}"
    select_node 0
    check_plugins
}

node_index_arg() { # validates the I of start-node/stop-node
    if ! [[ "${1:-}" =~ ^[0-9]+$ ]] || (( $1 >= NODES )); then
        die "node index must be 0..$((NODES - 1)) (OPENSEARCH_NODES=$NODES), got '${1:-}'"
    fi
}

cmd_start_node() {
    node_index_arg "${1:-}"
    if (( NODES == 1 )); then cmd_start_single; return; fi
    start_nodes "$1"
}

stop_pid_files() { # pid files -> SIGTERM all live ones, wait STOP_GRACE s, SIGKILL the rest
    local f pid conf pids=() files=()
    for f in "$@"; do
        [[ -f "$f" ]] || continue
        pid="$(cat "$f" 2>/dev/null)"
        conf="$(dirname "$f")/config"
        if pid_alive "$pid" "$conf"; then
            log "stopping pid $pid ($(dirname "$f"))"
            kill "$pid" 2>/dev/null || true
            pids+=("$pid"); files+=("$f")
        else
            log "not running (no live pid in $f)"
            rm -f "$f"
        fi
    done
    (( ${#pids[@]} )) || return 0
    local left waited=0 p
    while :; do
        left=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
        (( left )) || { rm -f "${files[@]}"; log "stopped"; return 0; }
        (( waited >= STOP_GRACE )) && break
        sleep 1; waited=$((waited + 1))
    done
    for p in "${pids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            log "pid $p ignored SIGTERM for ${STOP_GRACE}s; sending SIGKILL"
            kill -9 "$p" 2>/dev/null || true
        fi
    done
    rm -f "${files[@]}"
}

cmd_stop() { # every node of this port base this script started: single node or cluster, either flavour
    local files=() f
    for f in "$CACHE/run-$PORT" "$CACHE/run-neural-$PORT" "$CACHE"/cluster-"$PORT"/node* "$CACHE"/cluster-neural-"$PORT"/node*; do
        [[ -f "$f/opensearch.pid" ]] && files+=("$f/opensearch.pid")
    done
    if (( ${#files[@]} == 0 )); then
        log "not running (no live pid in $PID_FILE)"
        return 0
    fi
    stop_pid_files "${files[@]}"
}

cmd_stop_node() {
    node_index_arg "${1:-}"
    select_node "$1"
    if ! running_pid >/dev/null; then
        log "node $NODE_NAME not running (no live pid in $PID_FILE)"
        rm -f "$PID_FILE"
        return 0
    fi
    stop_pid_files "$PID_FILE"
}

cmd_status() {
    local pid
    if (( NODES == 1 )); then
        if healthy; then
            pid="$(running_pid || echo 'not started by this script')"
            echo "running at $URL (pid $pid)"
            curl -fsS --max-time 2 "$URL/_cluster/health?pretty" || true
            [[ "$NEURAL" == "1" ]] && { curl -fsS --max-time 2 "$URL/_cat/plugins?v" || true; }
            return 0
        fi
        if pid="$(running_pid)"; then
            echo "pid $pid alive but $URL is not healthy"
            return 1
        fi
        echo "not running ($URL)"
        return 3
    fi
    local i up=0 ask=""
    echo "cluster $CLUSTER_NAME ($NODES nodes, OpenSearch $VERSION$FLAVOUR)"
    for ((i = 0; i < NODES; i++)); do
        select_node "$i"
        if pid="$(running_pid)"; then
            up=$((up + 1))
            if answers; then ask="${ask:-$URL}"; echo "node $i $NODE_NAME: pid $pid, answers at $URL";
            else echo "node $i $NODE_NAME: pid $pid, not answering at $URL"; fi
        else
            echo "node $i $NODE_NAME: not running ($URL)"
        fi
    done
    if [[ -n "$ask" ]]; then
        curl -fsS --max-time 5 "$ask/_cat/nodes?v&h=name,http_address,node.role,cluster_manager,heap.max&s=name" 2>/dev/null \
            || echo "(_cat/nodes does not answer within 5 s: no cluster manager?)"
        curl -fsS --max-time 5 "$ask/_cluster/health?pretty" 2>/dev/null || true
    fi
    select_node 0
    if (( up == 0 )); then return 3; fi
    healthy && (( up == NODES )) && return 0
    return 1
}

case "${1:-}" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    start-node) cmd_start_node "${2:-}" ;;
    stop-node) cmd_stop_node "${2:-}" ;;
    *) echo "usage: $0 {fetch|start|stop|status|start-node I|stop-node I}" >&2; exit 2 ;;
esac
