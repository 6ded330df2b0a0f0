#!/usr/bin/env bash
# Runs a Kafka main class with the jars in .local/kafka/libs, like Kafka's
# bin/kafka-run-class.sh. Examples:
#
#   scripts/kafka-run-class.sh org.apache.kafka.tools.TopicCommand \
#       --bootstrap-server 127.0.0.1:9092 --list
#   scripts/kafka-run-class.sh org.apache.kafka.tools.TopicCommand \
#       --bootstrap-server 127.0.0.1:9092 --create --topic t --partitions 3
#   echo hello | scripts/kafka-run-class.sh org.apache.kafka.tools.ConsoleProducer \
#       --bootstrap-server 127.0.0.1:9092 --topic t
#   scripts/kafka-run-class.sh org.apache.kafka.tools.consumer.ConsoleConsumer \
#       --bootstrap-server 127.0.0.1:9092 --topic t --from-beginning --max-messages 1
#
# KAFKA_TOOL_HEAP_OPTS overrides the heap (default -Xmx512m).
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/kafka.sh
source "${REPO_ROOT}/scripts/lib/kafka.sh"

(($# >= 1)) || { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
kafka_class_cmd "$@"
exec "${KAFKA_CMD[@]}"
