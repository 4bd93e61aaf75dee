#!/usr/bin/env bash
# Create (or converge) the Kafka topics Quarry's kafka shipper writes to, from topics.properties.
#
#   deploy/kafka/create-topics.sh --bootstrap-server kafka1:9092 [--command-config admin.properties]
#                                 [--properties FILE] [--replication-factor N] [--min-insync-replicas N]
#                                 [--dry-run]
#
# For each topic: kafka-topics.sh --create --if-not-exists with the partitions, replication factor and
# configs, then kafka-configs.sh --alter --add-config with the same configs, so a second run (or a changed
# properties file) converges topics that already exist. Partitions are never reduced (Kafka cannot); a topic
# with fewer partitions than asked is reported, not changed (adding partitions moves keys to other partitions:
# do it on purpose with kafka-topics.sh --alter).
#
# Environment: KAFKA_BIN = folder holding kafka-topics.sh and kafka-configs.sh (default: found on PATH).
# Exit status: 0 done, 1 a Kafka command failed (its output is shown), 2 bad arguments or properties.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROPS=$HERE/topics.properties
BOOTSTRAP= ; COMMAND_CONFIG= ; RF_OVERRIDE= ; MINISR_OVERRIDE= ; DRY=0

die() { echo "create-topics.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
  --bootstrap-server) BOOTSTRAP=${2:?--bootstrap-server needs HOST:PORT}; shift 2 ;;
  --command-config) COMMAND_CONFIG=${2:?--command-config needs a file}; shift 2 ;;
  --properties) PROPS=${2:?--properties needs a file}; shift 2 ;;
  --replication-factor) RF_OVERRIDE=${2:?--replication-factor needs N}; shift 2 ;;
  --min-insync-replicas) MINISR_OVERRIDE=${2:?--min-insync-replicas needs N}; shift 2 ;;
  --dry-run) DRY=1; shift ;;
  -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
  *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ -n $BOOTSTRAP ]] || die "--bootstrap-server HOST:PORT is required"
[[ -r $PROPS ]] || die "cannot read properties file $PROPS"
[[ -z $COMMAND_CONFIG || -r $COMMAND_CONFIG ]] || die "cannot read --command-config file $COMMAND_CONFIG"
for n in "$RF_OVERRIDE" "$MINISR_OVERRIDE"; do
  [[ -z $n || $n =~ ^[1-9][0-9]*$ ]] || die "expected a whole number >= 1, got '$n'"
done

declare -A P=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
  lineno=$((lineno + 1))
  line=${line%$'\r'}
  [[ -z ${line//[[:space:]]/} || $line =~ ^[[:space:]]*# ]] && continue
  [[ $line =~ ^([A-Za-z0-9._-]+)=(.*)$ ]] || die "$PROPS line $lineno: expected key=value, got '$line'"
  P[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done < "$PROPS"

[[ -n ${P[topics]:-} ]] || die "$PROPS: 'topics' (comma-separated topic names) is required"
IFS=, read -r -a TOPICS <<< "${P[topics]}"

get() {  # get TOPIC KEY: the per-topic value, else the default
  local k="topic.$1.$2"
  if [[ -n ${P[$k]+x} ]]; then echo "${P[$k]}"; else echo "${P[$2]:-}"; fi
}

tool() {  # tool NAME: the kafka-*.sh script
  if [[ -n ${KAFKA_BIN:-} ]]; then
    [[ -x $KAFKA_BIN/$1 || $DRY == 1 ]] || die "$KAFKA_BIN/$1 is not an executable file (KAFKA_BIN)"
    echo "$KAFKA_BIN/$1"
  elif command -v "$1" >/dev/null; then command -v "$1"
  elif [[ $DRY == 1 ]]; then echo "$1"
  else die "$1 not on PATH: set KAFKA_BIN to Kafka's bin folder"
  fi
}

OUT=
run() {  # show, then run (or only show with --dry-run); a failure stops the script with the tool's output
  echo "+ $*"
  OUT=
  [[ $DRY == 1 ]] && return 0
  if ! OUT=$("$@" 2>&1); then echo "$OUT" >&2; echo "create-topics.sh: failed: $*" >&2; exit 1; fi
  [[ -z $OUT ]] || echo "$OUT"
}

declare -A WANT_PARTS=() SUMMARY=()
TOPICS_SH=$(tool kafka-topics.sh); CONFIGS_SH=$(tool kafka-configs.sh)
AUTH=()
[[ -n $COMMAND_CONFIG ]] && AUTH=(--command-config "$COMMAND_CONFIG")

for t in "${TOPICS[@]}"; do
  t=${t//[[:space:]]/}
  [[ $t =~ ^[A-Za-z0-9._-]{1,249}$ && $t != . && $t != .. ]] || die "invalid topic name '$t'"
  parts=$(get "$t" partitions); rf=${RF_OVERRIDE:-$(get "$t" replication.factor)}
  [[ $parts =~ ^[1-9][0-9]*$ ]] || die "$t: partitions must be a whole number >= 1, got '$parts'"
  [[ $rf =~ ^[1-9][0-9]*$ ]] || die "$t: replication.factor must be a whole number >= 1, got '$rf'"
  declare -A C=()
  for k in "${!P[@]}"; do
    [[ $k == config.* ]] && C[${k#config.}]=${P[$k]}
  done
  for k in "${!P[@]}"; do
    [[ $k == topic.$t.config.* ]] && C[${k#topic.$t.config.}]=${P[$k]}
  done
  [[ -n $MINISR_OVERRIDE ]] && C[min.insync.replicas]=$MINISR_OVERRIDE
  if [[ -n ${C[min.insync.replicas]:-} && ${C[min.insync.replicas]} -gt $rf ]]; then
    die "$t: min.insync.replicas (${C[min.insync.replicas]}) > replication factor ($rf): acks=all writes would fail; pass --min-insync-replicas"
  fi
  cfg_args=(); add_config=
  for k in $(printf '%s\n' "${!C[@]}" | sort); do
    cfg_args+=(--config "$k=${C[$k]}")
    add_config+="${add_config:+,}$k=${C[$k]}"
  done
  run "$TOPICS_SH" --bootstrap-server "$BOOTSTRAP" "${AUTH[@]}" --create --if-not-exists \
    --topic "$t" --partitions "$parts" --replication-factor "$rf" "${cfg_args[@]}"
  # a topic that was just created has its configs; one that existed gets them now (converge)
  if [[ -n $add_config && $OUT != *"Created topic"* ]]; then
    run "$CONFIGS_SH" --bootstrap-server "$BOOTSTRAP" "${AUTH[@]}" --alter --entity-type topics \
      --entity-name "$t" --add-config "$add_config"
  fi
  WANT_PARTS[$t]=$parts; SUMMARY[$t]="replication factor $rf, ${#C[@]} configs"
  unset C
done
[[ $DRY == 1 ]] && exit 0

# one describe for every topic (a JVM start each is slow): partitions as they are now
names=$(IFS='|'; echo "${TOPICS[*]//[[:space:]]/}")
desc=$("$TOPICS_SH" --bootstrap-server "$BOOTSTRAP" "${AUTH[@]}" --describe --topic "^($names)\$" 2>&1) ||
  { echo "$desc" >&2; echo "create-topics.sh: describe failed" >&2; exit 1; }
for t in "${TOPICS[@]}"; do
  t=${t//[[:space:]]/}
  have=$(awk -v t="$t" '$1 == "Topic:" && $2 == t { for (i = 1; i < NF; i++) if ($i == "PartitionCount:") print $(i + 1) }' <<< "$desc")
  [[ -n $have ]] || { echo "$desc" >&2; echo "create-topics.sh: topic $t not in the describe output" >&2; exit 1; }
  if (( have < WANT_PARTS[$t] )); then
    echo "warn $t has $have partitions, ${WANT_PARTS[$t]} asked: not changed (see the header of this script)"
  fi
  echo "ok   $t: $have partitions, ${SUMMARY[$t]}"
done
