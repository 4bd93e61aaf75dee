# Helpers shared by the per-server start/stop scripts (sourced). shellcheck shell=bash
# shellcheck source=versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT PIDFILE LOG SECONDS: wait until PORT accepts connections while the process lives.
wait_port() {
  local port=$1 pidf=$2 log=$3 secs=$4 i
  for ((i = 0; i < secs * 4; i++)); do
    port_open "$port" && return 0
    pid_alive "$pidf" || { echo "process exited before port $port opened; last log lines:" >&2; tail -n 60 "$log" >&2; return 1; }
    sleep 0.25
  done
  echo "port $port not open after ${secs}s; last log lines:" >&2; tail -n 60 "$log" >&2; return 1
}

# stop_pid PIDFILE [SECONDS]: SIGTERM, wait, then SIGKILL the one process recorded in PIDFILE.
stop_pid() {
  local pidf=$1 secs=${2:-30} pid i
  [[ -f $pidf ]] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 4; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then echo "pid $pid still alive after ${secs}s, sending SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidf"
}

status_pid() { if pid_alive "$1"; then echo "running (pid $(cat "$1"))"; else echo "stopped"; return 3; fi; }

# as_server_user CMD...: run as $SERVER_USER when root (Elasticsearch/OpenSearch refuse root), else as self.
as_server_user() {
  if [[ $(id -u) == 0 ]]; then runuser -u "$SERVER_USER" -- "$@"; else "$@"; fi
}

# make_instance_home DIST_HOME INSTANCE_HOME: a per-instance home whose bin/lib/modules are hard links
# into the cached distribution (cheap; the cache lives under root's 0700 $HOME, which the server user
# cannot traverse) and whose config/ is a real copy owned by the server user.
make_instance_home() {
  local dist=$1 home=$2 d
  rm -rf "$home"; mkdir -p "$home"
  for d in bin lib modules plugins; do
    [[ -e $dist/$d ]] || continue
    cp -al "$dist/$d" "$home/$d" 2>/dev/null || cp -a "$dist/$d" "$home/$d"
  done
  cp -r "$dist/config" "$home/config"
  mkdir -p "$home/plugins"
}

# search_start FLAVOR DATA PORT: FLAVOR = elasticsearch | opensearch
search_start() {
  local flavor=$1 DATA=$2 PORT=$3 dist java_home env_prefix tport log pidf i
  pidf=$DATA/$flavor.pid; log=$DATA/$flavor.out
  case $flavor in
    elasticsearch) dist=$ES_HOME; java_home=${ES_JAVA_HOME_OVERRIDE:-$JAVA25_HOME}; env_prefix=ES ;;
    opensearch) dist=$OS_HOME; java_home=${OS_JAVA_HOME_OVERRIDE:-$JAVA17_HOME}; env_prefix=OPENSEARCH ;;
  esac
  [[ -f $dist/.complete ]] || die "$flavor not installed in $dist: run tests/servers/setup.sh"
  [[ -x $java_home/bin/java ]] || die "no JDK at $java_home"
  pid_alive "$pidf" && die "already running (pid $(cat "$pidf"))"
  if [[ $(id -u) == 0 ]]; then
    id "$SERVER_USER" >/dev/null 2>&1 || die "user $SERVER_USER missing: run tests/servers/setup.sh user"
  fi
  port_open "$PORT" && die "port $PORT is already in use"
  mkdir -p "$DATA"; chmod 755 "$DATA"
  tport=${TRANSPORT_PORT:-0}
  echo "$PORT" > "$DATA/port"  # for restart: same port, same path.data
  make_instance_home "$dist" "$DATA/home"
  mkdir -p "$DATA/data" "$DATA/logs" "$DATA/tmp" "$DATA/run" "$DATA/home/logs"
  # no GC log files (relative paths in jvm.options; not needed for tests)
  sed -i '/-Xlog:gc/d; /-XX:+AlwaysPreTouch/d' "$DATA/home/config/jvm.options"
  {
    echo "cluster.name: quarry-test"
    echo "node.name: n1"
    echo "network.host: 127.0.0.1"
    echo "http.port: $PORT"
    [[ $tport != 0 ]] && echo "transport.port: $tport"
    echo "discovery.type: single-node"
    echo "path.data: $DATA/data"
    echo "path.logs: $DATA/logs"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    echo "action.destructive_requires_name: false"
    [[ $flavor == elasticsearch ]] && echo "xpack.security.enabled: false"
  } >> "$DATA/home/config/$flavor.yml"
  : > "$log"
  if [[ $(id -u) == 0 ]]; then
    chown -R "$SERVER_USER" "$DATA/home/config" "$DATA/home/logs" "$DATA/data" "$DATA/logs" "$DATA/tmp" "$DATA/run" "$log"
    chown "$SERVER_USER" "$DATA/home" "$DATA/home/plugins"
    as_server_user test -x "$DATA" || die "$SERVER_USER cannot reach $DATA (a parent folder is not traversable)"
  fi
  # -d: the launcher returns once the node started (or failed); -p: pid file of the server JVM.
  as_server_user env "${env_prefix}_JAVA_HOME=$java_home" "${env_prefix}_PATH_CONF=$DATA/home/config" \
    "${env_prefix}_JAVA_OPTS=-Xms${SEARCH_HEAP:-512m} -Xmx${SEARCH_HEAP:-512m} -XX:TieredStopAtLevel=1" \
    "${env_prefix}_TMPDIR=$DATA/tmp" JAVA_HOME="$java_home" \
    "$DATA/home/bin/$flavor" -d -p "$DATA/run/$flavor.pid" >>"$log" 2>&1 </dev/null \
    || { tail -n 60 "$log" >&2; tail -n 60 "$DATA/logs/quarry-test.log" >&2 2>/dev/null; die "$flavor failed to start"; }
  for ((i = 0; i < 40; i++)); do [[ -s $DATA/run/$flavor.pid ]] && break; sleep 0.25; done
  cp "$DATA/run/$flavor.pid" "$pidf"
  wait_port "$PORT" "$pidf" "$DATA/logs/quarry-test.log" "${SEARCH_START_TIMEOUT:-180}" || { stop_pid "$pidf" 5; die "$flavor did not open port $PORT"; }
  for ((i = 0; i < 480; i++)); do
    curl -fsS "http://127.0.0.1:$PORT/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1 && break
    pid_alive "$pidf" || { tail -n 60 "$DATA/logs/quarry-test.log" >&2; die "$flavor exited"; }
    sleep 0.25
  done
  echo "$flavor started on http://127.0.0.1:$PORT (pid $(cat "$pidf"), logs $DATA/logs)"
}
