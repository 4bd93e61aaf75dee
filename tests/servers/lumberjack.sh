#!/usr/bin/env bash
# Lumberjack v2 (Logstash beats input) peer built by setup.sh from github.com/elastic/go-lumber.
#   lumberjack.sh start DATA_DIR PORT
#   lumberjack.sh switch DATA_DIR OUTPUT_FILE   # later batches go to OUTPUT_FILE (created when switched)
#   lumberjack.sh restart DATA_DIR    # after stop: same port, appends to the current output file
#   lumberjack.sh stop|status DATA_DIR
# Each event is written as one JSON line (initially DATA_DIR/events.jsonl); a batch is ACKed after
# its events were written. Log: DATA_DIR/lumberjack.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cmd=${1:-}; DATA=${2:-}; [[ -n $cmd && -n $DATA ]] || die "usage: $0 start|switch|stop|status DATA_DIR [PORT|FILE]"
PIDF=$DATA/lumberjack.pid; LOG=$DATA/lumberjack.log
launch() {  # launch OUTPUT_FILE: the server appends to it (O_APPEND)
  nohup "$LUMBERJACK_BIN" -addr "127.0.0.1:$PORT" -out "$1" -control "$DATA/control" \
    >>"$LOG" 2>&1 </dev/null &
  echo $! > "$PIDF"
  wait_port "$PORT" "$PIDF" "$LOG" 30 || { stop_pid "$PIDF" 5; die "lumberjack server did not start"; }
}
case $cmd in
start)
  PORT=${3:?PORT}
  [[ -x $LUMBERJACK_BIN ]] || die "lumberjack server not built ($LUMBERJACK_BIN): run tests/servers/setup.sh lumberjack"
  pid_alive "$PIDF" && die "already running (pid $(cat "$PIDF"))"
  port_open "$PORT" && die "port $PORT is already in use"
  mkdir -p "$DATA"; : > "$LOG"
  echo "$PORT" > "$DATA/port"
  launch "$DATA/events.jsonl"
  echo "lumberjack v2 server on 127.0.0.1:$PORT (pid $(cat "$PIDF"), log $LOG)"
  ;;
restart)
  [[ -f $DATA/port ]] || die "no $DATA/port: use start first"
  pid_alive "$PIDF" && die "already running (pid $(cat "$PIDF"))"
  PORT=$(cat "$DATA/port"); port_open "$PORT" && die "port $PORT is already in use"
  OUT=$DATA/events.jsonl; [[ -s $DATA/control ]] && OUT=$(cat "$DATA/control")  # the file it last switched to
  launch "$OUT"
  echo "lumberjack v2 server restarted on 127.0.0.1:$PORT (pid $(cat "$PIDF")), appending to $OUT"
  ;;
switch)
  OUT=${3:?OUTPUT_FILE}; rm -f "$OUT"
  echo "$OUT" > "$DATA/control.tmp"; mv "$DATA/control.tmp" "$DATA/control"
  kill -HUP "$(cat "$PIDF")"
  for ((i = 0; i < 200; i++)); do [[ -e $OUT ]] && exit 0; sleep 0.05; done
  die "server did not switch to $OUT"
  ;;
stop) stop_pid "$PIDF" 15 ;;
status) status_pid "$PIDF" ;;
*) die "unknown command $cmd" ;;
esac
