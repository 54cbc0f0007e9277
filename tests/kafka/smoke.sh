#!/usr/bin/env bash
# Smoke test of the real Kafka broker that the integration tests use
# (tests/kafka/broker.sh): install, start, a 6-partition topic, 1000 keyed
# messages produced with kcat (idempotent producer) and read back, a
# consumer group, librdkafka 2.0.2 against it, stop.  Prints the timings.
#   bash tests/kafka/smoke.sh        (TT_BUILD_DIR, default build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
broker=$here/broker.sh
kdir=${TT_BUILD_DIR:-build}/kafka
mkdir -p "$kdir"
kdir=$(cd "$kdir" && pwd)

passed=0 failed=0
ok()   { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
now()  { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b - a}'; }

if ! command -v kcat >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kcat >/dev/null
fi

# Install: cold if $kdir/lib is missing, warm otherwise; a second call
# must be a no-op that prints nothing and runs no Maven.
kind=cold; [ -f "$kdir/lib/.installed" ] && kind=warm
[ "$kind" = cold ] && [ -d "$kdir/m2" ] && kind="cold jars, warm Maven cache"
t0=$(now)
"$broker" install "$kdir"
t1=$(now)
install_s=$(secs "$t0" "$t1")
t0=$(now)
out=$("$broker" install "$kdir" 2>&1)
t1=$(now)
warm_s=$(secs "$t0" "$t1")
if [ -z "$out" ]; then ok "a second install is a no-op (${warm_s} s, printed nothing)"
else fail "a second install printed: $out"; fi

trap '"$broker" stop "$kdir"' EXIT
t0=$(now)
# Not `eval "$(broker.sh start ...)"` alone: eval of an empty string returns
# 0, so a failed start would go unnoticed even under set -e.
envs=$("$broker" start "$kdir")
eval "$envs"
t1=$(now)
start_s=$(secs "$t0" "$t1")
echo "broker $KAFKA_VERSION at $KAFKA_BROKERS (pid $KAFKA_PID)"

topic=smoke-$$
t0=$(now)
"$broker" create-topic "$kdir" "$topic" 6
t1=$(now)
topic_s=$(secs "$t0" "$t1")
parts=$(kcat -b "$KAFKA_BROKERS" -L -t "$topic" | grep -c "partition [0-9]*, leader 1" || true)
if [ "$parts" = 6 ]; then ok "topic $topic has 6 partitions"; else fail "topic $topic has $parts partitions"; fi

# librdkafka's version, and the protocol features it negotiated with the
# broker (ApiVersions): the idempotent producer needs a broker >= 0.11.
# kcat links the system librdkafka.so.1: the one the stage builds against.
ver=$(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -n1 || true)
dev=$(pkg-config --modversion rdkafka 2>/dev/null || echo "")
if [ -n "$ver" ] && { [ -z "$dev" ] || [ "$ver" = "librdkafka $dev" ]; }; then
  ok "kcat runs ${ver}${dev:+, the version the stage builds against (pkg-config rdkafka)}"
else fail "kcat runs ${ver:-an unknown librdkafka}, the stage builds against ${dev:-?}"; fi
feats=$(kcat -b "$KAFKA_BROKERS" -L -X debug=feature 2>&1 |
        sed -n 's/.*Enabling feature \([A-Za-z0-9_]*\).*/\1/p' | sort -u | tr '\n' ' ' | sed 's/ $//' || true)
if [[ " $feats" == *" IdempotentProducer "* && " $feats" == *" MsgVer2 "* ]]; then
  ok "$ver negotiated with Kafka $KAFKA_VERSION: $feats"
else fail "$ver feature negotiation: ${feats:-nothing logged}"; fi

n=1000
t0=$(now)
seq 1 "$n" | awk '{printf "key-%d:value-%d\n", $1, $1}' |
  kcat -P -b "$KAFKA_BROKERS" -t "$topic" -K: -X enable.idempotence=true \
       -X linger.ms=5
t1=$(now)
produce_s=$(secs "$t0" "$t1")

got=$(timeout 60 kcat -C -b "$KAFKA_BROKERS" -t "$topic" -e -o beginning -q | wc -l || true)
if [ "$got" = "$n" ]; then ok "consumed exactly $n messages back"; else fail "consumed $got of $n"; fi

# The values themselves, and the partitions they landed in (keyed: spread).
timeout 60 kcat -C -b "$KAFKA_BROKERS" -t "$topic" -e -o beginning -q -f '%p %k %s\n' \
  > "$kdir/smoke.out" || true
if diff -q <(awk '{print $3}' "$kdir/smoke.out" | sort) \
           <(seq 1 "$n" | awk '{print "value-" $1}' | sort) >/dev/null &&
   awk '{ if ("key-" substr($3, 7) != $2) bad++ } END { exit bad > 0 }' "$kdir/smoke.out"; then
  ok "every key and value came back once, unchanged"
else fail "keys or values differ (see $kdir/smoke.out)"; fi
used=$(awk '{print $1}' "$kdir/smoke.out" | sort -u | wc -l)
if [ "$used" = 6 ]; then ok "keyed messages spread over all 6 partitions"
else fail "messages in $used of 6 partitions"; fi

# A consumer group (group coordinator, __consumer_offsets, commits).
got=$(timeout 60 kcat -b "$KAFKA_BROKERS" -G "smoke-group-$$" -X auto.offset.reset=earliest \
        -e -q "$topic" | wc -l || true)
if [ "$got" = "$n" ]; then ok "consumer group read all $n"; else fail "consumer group read $got of $n"; fi

t0=$(now)
trap - EXIT
"$broker" stop "$kdir"
t1=$(now)
stop_s=$(secs "$t0" "$t1")
if [ ! -e "$kdir/env" ] && ! ls -d "$kdir"/data-* >/dev/null 2>&1 &&
   ! kill -0 "$KAFKA_PID" 2>/dev/null; then
  ok "stop ended the broker and removed its data"
else fail "stop left the broker or its data behind"; fi

echo "timings: install ${install_s} s ($kind), install again ${warm_s} s," \
     "start ${start_s} s, create-topic ${topic_s} s, produce ${n} ${produce_s} s, stop ${stop_s} s"
echo "kafka-smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
