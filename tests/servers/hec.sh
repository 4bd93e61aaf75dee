#!/usr/bin/env bash
# Splunk HEC receiver: the OpenTelemetry Collector built by setup.sh (splunkhec receiver -> file exporter).
#   hec.sh start DATA_DIR PORT [TOKEN]
#   hec.sh add-token DATA_DIR TOKEN      # tokens file is re-read by bearertokenauth on change
#   hec.sh restart DATA_DIR              # after stop: same port, tokens and output files (appended to)
#   hec.sh stop|status DATA_DIR
# Accepts "Authorization: Splunk <token>" for every token in DATA_DIR/tokens (one per line).
# Received logs are written as OTLP-JSON lines to DATA_DIR/out/<token>.jsonl (one file per token,
# through the file exporter's group_by on the passed-through token). Log: DATA_DIR/otelcol.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cmd=${1:-}; DATA=${2:-}; [[ -n $cmd && -n $DATA ]] || die "usage: $0 start|add-token|stop|status DATA_DIR [PORT|TOKEN]"
PIDF=$DATA/otelcol.pid; LOG=$DATA/otelcol.log
launch() {
  nohup "$OTELCOL_BIN" --config="$DATA/otelcol.yaml" >>"$LOG" 2>&1 </dev/null &
  echo $! > "$PIDF"
  wait_port "$PORT" "$PIDF" "$LOG" "${HEC_START_TIMEOUT:-60}" || { stop_pid "$PIDF" 5; die "collector did not start"; }
}
case $cmd in
start)
  PORT=${3:?PORT}; TOKEN=${4:-00000000-0000-0000-0000-000000000000}
  [[ -x $OTELCOL_BIN ]] || die "collector not built ($OTELCOL_BIN): run tests/servers/setup.sh otelcol"
  pid_alive "$PIDF" && die "already running (pid $(cat "$PIDF"))"
  port_open "$PORT" && die "port $PORT is already in use"
  mkdir -p "$DATA/out"; : > "$LOG"
  echo "$TOKEN" > "$DATA/tokens"
  cat > "$DATA/otelcol.yaml" <<YAML
extensions:
  bearertokenauth/hec:
    scheme: Splunk
    filename: $DATA/tokens
  ack: {}
receivers:
  splunk_hec:
    endpoint: 127.0.0.1:$PORT
    access_token_passthrough: true
    auth:
      authenticator: bearertokenauth/hec
    ack:
      extension: ack
exporters:
  file:
    path: $DATA/out/*.jsonl
    flush_interval: 50ms
    append: true  # a restart (or a file reopened after LRU eviction) must not truncate what was received
    group_by:
      enabled: true
      resource_attribute: com.splunk.hec.access_token
service:
  extensions: [bearertokenauth/hec, ack]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
  pipelines:
    logs:
      receivers: [splunk_hec]
      exporters: [file]
YAML
  launch
  echo "HEC receiver on http://127.0.0.1:$PORT (pid $(cat "$PIDF"), output $DATA/out, log $LOG)"
  ;;
restart)
  [[ -f $DATA/otelcol.yaml ]] || die "no $DATA/otelcol.yaml: use start first"
  pid_alive "$PIDF" && die "already running (pid $(cat "$PIDF"))"
  PORT=$(sed -n 's/^ *endpoint: 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$DATA/otelcol.yaml")
  port_open "$PORT" && die "port $PORT is already in use"
  echo "--- restart $(date -u +%FT%TZ) ---" >> "$LOG"
  launch
  echo "HEC receiver restarted on http://127.0.0.1:$PORT (pid $(cat "$PIDF"))"
  ;;
add-token) echo "${3:?TOKEN}" >> "$DATA/tokens" ;;
stop) stop_pid "$PIDF" 30 ;;
status) status_pid "$PIDF" ;;
*) die "unknown command $cmd" ;;
esac
