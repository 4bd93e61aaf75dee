#!/usr/bin/env bash
# opensearch single node on 127.0.0.1 (security off), run as the non-root user $SERVER_USER (quarry-test).
#   opensearch.sh start DATA_DIR PORT     # DATA_DIR must be traversable by that user (e.g. under /tmp)
#   opensearch.sh restart DATA_DIR    # after stop: same port and data path (indices kept)
#   opensearch.sh stop|status DATA_DIR
# Server log: DATA_DIR/logs/quarry-test.log; launcher output: DATA_DIR/opensearch.out.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cmd=${1:-}; DATA=${2:-}; [[ -n $cmd && -n $DATA ]] || die "usage: $0 start|stop|status DATA_DIR [PORT]"
case $cmd in
start) search_start opensearch "$DATA" "${3:?PORT}" ;;
restart) [[ -f $DATA/port ]] || die "no $DATA/port: use start first"; search_start opensearch "$DATA" "$(cat "$DATA/port")" ;;
stop) stop_pid "$DATA/opensearch.pid" 60 ;;
status) status_pid "$DATA/opensearch.pid" ;;
*) die "unknown command $cmd" ;;
esac
