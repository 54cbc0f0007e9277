#!/usr/bin/env bash
# kafka-run-class.sh CLASS ARGS...: a Kafka class on the jars of
# /opt/kafka/libs. KAFKA_HEAP_OPTS, KAFKA_OPTS and KAFKA_LOG4J_OPTS as in
# Kafka's distribution; the tools' defaults start fast.
heap=${KAFKA_HEAP_OPTS:--Xmx256m}
log4j=${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:/opt/kafka/config/tools-log4j.properties}
[ -f /opt/kafka/config/tools-log4j.properties ] ||
  log4j=${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:/etc/kafka/docker/tools-log4j.properties}
# shellcheck disable=SC2086
exec java $heap ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:TieredStopAtLevel=1 -XX:+UseSerialGC} \
  -Djava.awt.headless=true $log4j ${KAFKA_OPTS:-} -cp '/opt/kafka/libs/*' "$@"
