# Pinned versions and cache layout shared by setup.sh and the per-server scripts (sourced, not run).
# shellcheck shell=bash
KAFKA_VERSION=4.4.0
LOG4J_VERSION=2.25.5          # matches log4j-core pulled by kafka-server 4.4.0
ES_VERSION=9.3.2              # newest 9.x integ-test zip present on Maven Central (2026-11); 9.3.0/9.4.x are not
OS_VERSION=2.19.6
OTELCOL_BUILDER_VERSION=v0.158.0
GO_LUMBER_VERSION=v0.1.1
MVN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

QUARRY_SERVERS_CACHE=${QUARRY_SERVERS_CACHE:-$HOME/.cache/quarry/servers}
SERVERS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JAVA17_HOME=${QUARRY_JAVA17_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
JAVA25_HOME=${QUARRY_JAVA25_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
SERVER_USER=${QUARRY_SERVER_USER:-quarry-test}

KAFKA_HOME=$QUARRY_SERVERS_CACHE/kafka-$KAFKA_VERSION
ES_HOME=$QUARRY_SERVERS_CACHE/elasticsearch-$ES_VERSION
OS_HOME=$QUARRY_SERVERS_CACHE/opensearch-$OS_VERSION
OTELCOL_BIN=$QUARRY_SERVERS_CACHE/bin/otelcol-quarry
LUMBERJACK_BIN=$QUARRY_SERVERS_CACHE/bin/lumberjack-server
