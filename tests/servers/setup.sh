#!/usr/bin/env bash
# Install and build every real server the shipper tests talk to. Idempotent; everything is cached
# under ${QUARRY_SERVERS_CACHE:-$HOME/.cache/quarry/servers} (Maven repo and Go caches included,
# so an empty cache dir is a true cold start). Prints the time of each step; exits non-zero with a
# message naming the failed step.
#
#   tests/servers/setup.sh            # everything
#   tests/servers/setup.sh kafka es   # only some steps: apt user kafka es os otelcol lumberjack
set -euo pipefail
# shellcheck source=versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

M2=$QUARRY_SERVERS_CACHE/m2
export GOMODCACHE=$QUARRY_SERVERS_CACHE/go/mod GOCACHE=$QUARRY_SERVERS_CACHE/go/build GOFLAGS=-modcacherw
export GOTOOLCHAIN=local
LOGDIR=$QUARRY_SERVERS_CACHE/setup-logs
mkdir -p "$QUARRY_SERVERS_CACHE/bin" "$M2" "$LOGDIR"

STEP=""; STEP_T0=0; SETUP_T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
on_error() {
  echo "setup.sh: FAILED in step '$STEP' after $(elapsed "$STEP_T0")s" >&2
  [[ -f $LOGDIR/$STEP.log ]] && { echo "--- last lines of $LOGDIR/$STEP.log ---" >&2; tail -n 40 "$LOGDIR/$STEP.log" >&2; }
}
trap on_error ERR
step() { STEP=$1; STEP_T0=$(date +%s.%N); echo "setup.sh: [$STEP] $2"; : > "$LOGDIR/$STEP.log"; }
done_step() { echo "setup.sh: [$STEP] ${1:-done} in $(elapsed "$STEP_T0")s"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "setup.sh: '$1' not found; $2" >&2; exit 2; }; }
mvn_q() { mvn -B -q -Dmaven.repo.local="$M2" "$@" >>"$LOGDIR/$STEP.log" 2>&1; }
# `runuser` as the server user must be able to read the unpacked distributions.
world_readable() { chmod -R a+rX "$1"; }

WANT=${*:-apt user kafka es os otelcol lumberjack}
want() { [[ " $WANT " == *" $1 "* ]]; }

if want apt; then
  step apt "Debian packages (kcat, rsyslog + omkafka/omelasticsearch, unzip, openssl; iptables, pci.ids, usb.ids for the live table tests)"
  pkgs=(kcat rsyslog rsyslog-kafka rsyslog-elasticsearch unzip openssl iptables pci.ids usb.ids openssh-client iproute2)
  missing=()
  for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || { echo "setup.sh: need root to apt-get install ${missing[*]}" >&2; exit 2; }
    apt-get update >>"$LOGDIR/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOGDIR/apt.log" 2>&1
  fi
  kcat -V >>"$LOGDIR/apt.log" 2>&1 || kcat -V 2>&1 | grep -q kcat
  rsyslogd -v >>"$LOGDIR/apt.log" 2>&1
  for so in omkafka omelasticsearch; do
    ls /usr/lib/x86_64-linux-gnu/rsyslog/$so.so /usr/lib/*/rsyslog/$so.so >/dev/null 2>&1 \
      || dpkg -L rsyslog-kafka rsyslog-elasticsearch | grep -q "/$so.so" \
      || { echo "setup.sh: rsyslog module $so.so missing" >&2; exit 1; }
  done
  # rsyslog must parse a config that loads both output modules (-N1 = check config only).
  cat > "$LOGDIR/rsyslog-check.conf" <<'RSC'
module(load="omkafka")
module(load="omelasticsearch")
action(type="omkafka" topic="quarry-check" broker=["127.0.0.1:9"])
action(type="omelasticsearch" server="127.0.0.1" serverport="9" searchIndex="quarry-check")
RSC
  rsyslogd -N1 -f "$LOGDIR/rsyslog-check.conf" >>"$LOGDIR/apt.log" 2>&1
  done_step "${#missing[@]} installed; kcat $(kcat -V 2>&1 | grep -o 'Version [0-9.]*'), rsyslogd $(rsyslogd -v 2>&1 | head -1 | awk '{print $2}')"
fi

if want user; then
  step user "non-root user '$SERVER_USER' for Elasticsearch/OpenSearch"
  if ! id "$SERVER_USER" >/dev/null 2>&1; then
    [[ $(id -u) == 0 ]] || { echo "setup.sh: need root to create user $SERVER_USER" >&2; exit 2; }
    useradd --system --no-create-home --shell /usr/sbin/nologin "$SERVER_USER"
  fi
  done_step
fi

if want kafka; then
  step kafka "Kafka $KAFKA_VERSION broker classpath from Maven Central"
  need mvn "install Maven: apt-get install -y maven"
  if [[ ! -f $KAFKA_HOME/.complete ]]; then
    rm -rf "$KAFKA_HOME"; mkdir -p "$KAFKA_HOME"
    mvn_q -f "$SERVERS_SRC/kafka/pom.xml" "$MVN_DEP_PLUGIN:copy-dependencies" \
      -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
      -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/lib"
    grep -q 'kafka/tools/StorageTool.class' <(unzip -l "$KAFKA_HOME/lib/kafka_2.13-$KAFKA_VERSION.jar") \
      || { echo "setup.sh: kafka.tools.StorageTool not in kafka_2.13-$KAFKA_VERSION.jar" >&2; exit 1; }
    compgen -G "$KAFKA_HOME/lib/log4j-slf4j-impl-*.jar" >/dev/null || { echo "setup.sh: SLF4J binding missing" >&2; exit 1; }
    touch "$KAFKA_HOME/.complete"
  fi
  # kafka-tools (TopicCommand, ConfigCommand behind kafka-topics.sh / kafka-configs.sh) for deploy/kafka's
  # script in tests/deploy/test_siem_kafka.py; kept out of lib/ so the broker's classpath stays as it was.
  if [[ ! -f $KAFKA_HOME/tools/kafka-tools-$KAFKA_VERSION.jar ]]; then
    mvn_q "$MVN_DEP_PLUGIN:copy" -Dartifact="org.apache.kafka:kafka-tools:$KAFKA_VERSION" -DoutputDirectory="$KAFKA_HOME/tools"
  fi
  done_step "$(ls "$KAFKA_HOME/lib" | wc -l) jars, $(du -sh "$KAFKA_HOME" | cut -f1)"
fi

fetch_zip() {  # groupId artifactId version destdir
  local g=$1 a=$2 v=$3 dest=$4 tmp
  if [[ ! -f $dest/.complete ]]; then
    need mvn "install Maven: apt-get install -y maven"
    need unzip "install unzip: apt-get install -y unzip"
    tmp=$QUARRY_SERVERS_CACHE/dl; mkdir -p "$tmp"
    mvn_q "$MVN_DEP_PLUGIN:copy" -Dartifact="$g:$a:$v:zip" -DoutputDirectory="$tmp"
    rm -rf "$dest" "$tmp/$a-$v"
    unzip -q -o "$tmp/$a-$v.zip" -d "$tmp"
    mv "$tmp/$a-$v" "$dest"
    rm -f "$tmp/$a-$v.zip"
    chmod +x "$dest"/bin/*
    world_readable "$dest"
    touch "$dest/.complete"
  fi
}

if want es; then
  step es "Elasticsearch $ES_VERSION integ-test zip from Maven Central"
  fetch_zip org.elasticsearch.distribution.integ-test-zip elasticsearch "$ES_VERSION" "$ES_HOME"
  [[ -x $JAVA25_HOME/bin/java ]] || echo "setup.sh: warning: $JAVA25_HOME/bin/java missing (Elasticsearch 9 needs JDK >= 21)"
  done_step "$(du -sh "$ES_HOME" | cut -f1)"
fi

if want os; then
  step os "OpenSearch $OS_VERSION integ-test zip from Maven Central"
  fetch_zip org.opensearch.distribution.integ-test-zip opensearch "$OS_VERSION" "$OS_HOME"
  [[ -x $JAVA17_HOME/bin/java ]] || echo "setup.sh: warning: $JAVA17_HOME/bin/java missing (OpenSearch 2.19 needs JDK 17)"
  done_step "$(du -sh "$OS_HOME" | cut -f1)"
fi

if want otelcol; then
  step otelcol "OpenTelemetry Collector (ocb $OTELCOL_BUILDER_VERSION): splunkhec receiver + file exporter"
  need go "install Go >= 1.24 (https://go.dev/dl or apt-get install -y golang)"
  key=$(cat "$SERVERS_SRC/otelcol/builder.yaml" <(echo "$OTELCOL_BUILDER_VERSION") <(go version) | sha256sum | cut -c1-16)
  if [[ ! -x $OTELCOL_BIN || $(cat "$OTELCOL_BIN.key" 2>/dev/null) != "$key" ]]; then
    ocb=$QUARRY_SERVERS_CACHE/bin/ocb-$OTELCOL_BUILDER_VERSION
    if [[ ! -x $ocb ]]; then
      GOBIN=$QUARRY_SERVERS_CACHE/go/gobin go install "go.opentelemetry.io/collector/cmd/builder@$OTELCOL_BUILDER_VERSION" >>"$LOGDIR/otelcol.log" 2>&1
      mv "$QUARRY_SERVERS_CACHE/go/gobin/builder" "$ocb"
    fi
    work=$QUARRY_SERVERS_CACHE/otelcol-build; rm -rf "$work"; mkdir -p "$work"
    cp "$SERVERS_SRC/otelcol/builder.yaml" "$work/"
    # The checksum database (reached through the proxy) has no entries for some of these module
    # versions (404), so skip it for the collector's own module families; go.sum still pins hashes.
    (cd "$work" && GONOSUMDB=github.com/open-telemetry/opentelemetry-collector-contrib,go.opentelemetry.io \
      "$ocb" --config=builder.yaml) >>"$LOGDIR/otelcol.log" 2>&1
    mv "$work/build/otelcol-quarry" "$OTELCOL_BIN"
    echo "$key" > "$OTELCOL_BIN.key"
  fi
  "$OTELCOL_BIN" components >>"$LOGDIR/otelcol.log" 2>&1
  done_step "$(du -h "$OTELCOL_BIN" | cut -f1) binary"
fi

if want lumberjack; then
  step lumberjack "lumberjack v2 server (github.com/elastic/go-lumber $GO_LUMBER_VERSION)"
  need go "install Go >= 1.22 (https://go.dev/dl or apt-get install -y golang)"
  key=$(cat "$SERVERS_SRC"/lumberjack/{go.mod,go.sum,main.go} <(go version) | sha256sum | cut -c1-16)
  if [[ ! -x $LUMBERJACK_BIN || $(cat "$LUMBERJACK_BIN.key" 2>/dev/null) != "$key" ]]; then
    (cd "$SERVERS_SRC/lumberjack" && go build -trimpath -ldflags='-s -w' -o "$LUMBERJACK_BIN" .) >>"$LOGDIR/lumberjack.log" 2>&1
    echo "$key" > "$LUMBERJACK_BIN.key"
  fi
  done_step
fi

STEP=total
echo "setup.sh: all done in $(elapsed "$SETUP_T0")s (cache: $QUARRY_SERVERS_CACHE, $(du -sh "$QUARRY_SERVERS_CACHE" | cut -f1))"
