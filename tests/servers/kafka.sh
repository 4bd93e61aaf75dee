#!/usr/bin/env bash
# Kafka broker (KRaft combined broker+controller, one node) on 127.0.0.1.
#   kafka.sh start DATA_DIR PORT [CONTROLLER_PORT [SASL_SSL_PORT]]
#   kafka.sh restart DATA_DIR     # after stop: same ports and log dirs (formats only if meta.properties is missing)
#   kafka.sh stop|status DATA_DIR
# PORT is the PLAINTEXT listener. With SASL_SSL_PORT, a SASL_SSL listener is added: TLS with a CA
# generated here (DATA_DIR/tls/ca.pem), SCRAM-SHA-512 user quarry-scram and PLAIN user quarry-plain
# (passwords in DATA_DIR/credentials.env). Log: DATA_DIR/kafka.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cmd=${1:-}; DATA=${2:-}; [[ -n $cmd && -n $DATA ]] || die "usage: $0 start|stop|status DATA_DIR [PORT [CONTROLLER_PORT [SASL_SSL_PORT]]]"
PIDF=$DATA/kafka.pid; LOG=$DATA/kafka.log

gen_tls() {  # CA + server certificate for 127.0.0.1/localhost, PEM (key in PKCS#8, as Kafka's PEM keystore wants)
  local t=$DATA/tls; mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Quarry test CA" \
    -keyout "$t/ca.key" -out "$t/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$t/openssl.log"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$t/server.key" -out "$t/server.csr" 2>>"$t/openssl.log"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$t/server.ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 30 \
    -extfile "$t/server.ext" -out "$t/server.crt" 2>>"$t/openssl.log"
  openssl pkcs8 -topk8 -nocrypt -in "$t/server.key" -out "$t/server.p8" 2>>"$t/openssl.log"
  cat "$t/server.p8" "$t/server.crt" "$t/ca.pem" > "$t/server-keystore.pem"
}

java_setup() {  # JAVA and JOPTS for StorageTool and the broker
  JAVA=${KAFKA_JAVA_HOME:-$JAVA17_HOME}/bin/java
  JOPTS=(-Xms256m -Xmx${KAFKA_HEAP:-512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent
         -XX:TieredStopAtLevel=1 -Xshare:auto -Djava.awt.headless=true
         "-Dlog4j2.configurationFile=$DATA/log4j2.properties" "-Dkafka.logs.dir=$DATA")
}

format_storage() {  # a new cluster id; "$@" are extra StorageTool format arguments (SCRAM users)
  CID=$("$JAVA" "${JOPTS[@]}" -cp "$KAFKA_HOME/lib/*" kafka.tools.StorageTool random-uuid 2>&1) \
    || { echo "$CID" >> "$LOG"; tail -n 40 "$LOG" >&2; die "StorageTool random-uuid failed (java: $JAVA)"; }
  CID=$(tail -n 1 <<<"$CID")
  "$JAVA" "${JOPTS[@]}" -cp "$KAFKA_HOME/lib/*" kafka.tools.StorageTool format -t "$CID" \
    -c "$DATA/server.properties" "$@" >>"$LOG" 2>&1 || { tail -n 40 "$LOG" >&2; die "storage format failed"; }
}

launch() {  # start the broker on $DATA/server.properties and wait for PORT (and SPORT when set)
  nohup "$JAVA" "${JOPTS[@]}" -cp "$KAFKA_HOME/lib/*" kafka.Kafka "$DATA/server.properties" >>"$LOG" 2>&1 </dev/null &
  echo $! > "$PIDF"
  wait_port "$PORT" "$PIDF" "$LOG" "${KAFKA_START_TIMEOUT:-120}" || { stop_pid "$PIDF" 5; die "broker did not start"; }
  [[ -z $SPORT ]] || wait_port "$SPORT" "$PIDF" "$LOG" 30 || { stop_pid "$PIDF" 5; die "SASL_SSL listener did not open"; }
}

case $cmd in
start)
  PORT=${3:?PORT}; CPORT=${4:-$((PORT + 1))}; SPORT=${5:-}
  [[ -f $KAFKA_HOME/.complete ]] || die "Kafka not installed in $KAFKA_HOME: run tests/servers/setup.sh kafka"
  pid_alive "$PIDF" && die "already running (pid $(cat "$PIDF"))"
  for p in "$PORT" "$CPORT" $SPORT; do port_open "$p" && die "port $p is already in use"; done
  mkdir -p "$DATA"; : > "$LOG"
  listeners="PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT"
  advertised="PLAINTEXT://127.0.0.1:$PORT"
  protomap="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [[ -n $SPORT ]]; then
    listeners+=",SASL_SSL://127.0.0.1:$SPORT"; advertised+=",SASL_SSL://127.0.0.1:$SPORT"; protomap+=",SASL_SSL:SASL_SSL"
  fi
  cat > "$DATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protomap
log.dirs=$DATA/kraft
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
log.cleaner.dedupe.buffer.size=16777216
message.max.bytes=10485760
PROPS
  format_extra=()
  if [[ -n $SPORT ]]; then
    gen_tls || die "TLS material generation failed: see $DATA/tls/openssl.log"
    SCRAM_PW=scram-$(openssl rand -hex 8); PLAIN_PW=plain-$(openssl rand -hex 8)
    printf 'KAFKA_SCRAM_USER=quarry-scram\nKAFKA_SCRAM_PASSWORD=%s\nKAFKA_PLAIN_USER=quarry-plain\nKAFKA_PLAIN_PASSWORD=%s\nKAFKA_CA=%s\n' \
      "$SCRAM_PW" "$PLAIN_PW" "$DATA/tls/ca.pem" > "$DATA/credentials.env"
    cat >> "$DATA/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_quarry-plain="$PLAIN_PW";
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$DATA/tls/server-keystore.pem
listener.name.sasl_ssl.ssl.client.auth=none
PROPS
    format_extra=(--add-scram "SCRAM-SHA-512=[name=quarry-scram,password=$SCRAM_PW]")
  fi
  cat > "$DATA/log4j2.properties" <<'L4J'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.server.name = org.apache.kafka.server
logger.server.level = INFO
L4J
  java_setup
  format_storage "${format_extra[@]}"
  launch
  echo "kafka started: PLAINTEXT 127.0.0.1:$PORT${SPORT:+, SASL_SSL 127.0.0.1:$SPORT} (pid $(cat "$PIDF"), log $LOG)"
  ;;
restart)
  # Same server.properties (ports, listeners, SASL users) and the same log dirs, so topics and offsets survive.
  [[ -f $DATA/server.properties ]] || die "no $DATA/server.properties: use start first"
  pid_alive "$PIDF" && die "already running (pid $(cat "$PIDF"))"
  listeners=$(sed -n 's/^listeners=//p' "$DATA/server.properties")
  PORT=$(grep -o 'PLAINTEXT://127\.0\.0\.1:[0-9]*' <<<"$listeners" | head -n 1 | cut -d: -f3)
  SPORT=$(grep -o 'SASL_SSL://127\.0\.0\.1:[0-9]*' <<<"$listeners" | cut -d: -f3 || true)
  for p in $(grep -o '127\.0\.0\.1:[0-9]*' <<<"$listeners" | cut -d: -f2); do port_open "$p" && die "port $p is already in use"; done
  echo "--- restart $(date -u +%FT%TZ) ---" >> "$LOG"
  java_setup
  if [[ ! -f $DATA/kraft/meta.properties ]]; then
    format_extra=()
    if [[ -f $DATA/credentials.env ]]; then
      # shellcheck disable=SC1091
      source "$DATA/credentials.env"
      format_extra=(--add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]")
    fi
    format_storage "${format_extra[@]}"
  fi
  launch
  echo "kafka restarted: PLAINTEXT 127.0.0.1:$PORT${SPORT:+, SASL_SSL 127.0.0.1:$SPORT} (pid $(cat "$PIDF"), log $LOG)"
  ;;
stop) stop_pid "$PIDF" 60 ;;
status) status_pid "$PIDF" ;;
*) die "unknown command $cmd" ;;
esac
