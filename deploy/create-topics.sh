#!/bin/bash
# Create cityheart's Kafka topics (if missing) with their partitions, replication and retention.
# Run by the `kafka-topics` service of docker-compose.yml with Apache Kafka's own tools.
# The names are config.yaml's defaults (kafka.topics); DEPARTMENTS lists incidents.departments
# ids, one dispatch queue each. Keep both in step with your config.yaml.
set -euo pipefail

bootstrap="${BOOTSTRAP:-kafka:9092}"
partitions="${PARTITIONS:-6}"
replication="${REPLICATION:-1}"
departments="${DEPARTMENTS:-environment-bureau traffic-police water-authority grid-operator emergency-management operations}"
day=86400000

create() {  # topic, retention.ms (-1: forever)
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$1" --partitions "$partitions" --replication-factor "$replication" \
    --config "retention.ms=$2" --config min.insync.replicas=$(( replication > 1 ? 2 : 1 ))
}

create readings $(( 7 * day ))            # raw readings; history keeps them in TimescaleDB
create readings.dlq $(( 30 * day ))       # bad payloads, for investigation
create vitals $(( 7 * day ))
create alerts $(( 90 * day ))
create reports $(( 90 * day ))             # reports from people and systems (POST /reports)
create incidents -1                        # read from the start by the recorder's watch
create incident-commands -1
create incident-command-results -1
for department in $departments; do
  create "dispatch.$department" $(( 30 * day ))
done
/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$bootstrap" --list
