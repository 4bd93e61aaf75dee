#!/usr/bin/env bash
# elasticsearch single node on 127.0.0.1 (security off), run as the non-root user $SERVER_USER (quarry-test).
#   elasticsearch.sh start DATA_DIR PORT     # DATA_DIR must be traversable by that user (e.g. under /tmp)
#   elasticsearch.sh restart DATA_DIR    # after stop: same port and data path (indices kept)
#   elasticsearch.sh stop|status DATA_DIR
# Server log: DATA_DIR/logs/quarry-test.log; launcher output: DATA_DIR/elasticsearch.out.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cmd=${1:-}; DATA=${2:-}; [[ -n $cmd && -n $DATA ]] || die "usage: $0 start|stop|status DATA_DIR [PORT]"
case $cmd in
start) search_start elasticsearch "$DATA" "${3:?PORT}" ;;
restart) [[ -f $DATA/port ]] || die "no $DATA/port: use start first"; search_start elasticsearch "$DATA" "$(cat "$DATA/port")" ;;
stop) stop_pid "$DATA/elasticsearch.pid" 60 ;;
status) status_pid "$DATA/elasticsearch.pid" ;;
*) die "unknown command $cmd" ;;
esac
