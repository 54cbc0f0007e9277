#!/usr/bin/env bash
# The Kafka stage on a real Apache Kafka broker (KRaft, one node, loopback):
# the scenario in 6 partitions, Confluent-framed Avro, consumed with
# --close-at-eof; the output topics, read back by confluent-kafka and
# python3-avro (not our code), hold exactly the rows and streaks that
# `replay` gives for the same events. Then the same in JSON, with one bad
# message of every kind mixed in: each in the dead-letter topic with its
# headers and untouched bytes, the totals unchanged.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
K=$B/kafka
PY=/usr/bin/python3
BROKER="bash $SRC/tests/kafka/broker.sh"
tmp=$(mktemp -d)
trap '$BROKER stop "$K" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

$BROKER install "$K"
envs=$($BROKER start "$K" message.max.bytes=8388608)
eval "$envs"
echo "broker at $KAFKA_BROKERS"
for p in avro json replay; do
  $BROKER create-topic "$K" "$p.events" 6
  $BROKER create-topic "$K" "$p.rollups" 3 cleanup.policy=compact
  $BROKER create-topic "$K" "$p.streaks" 1 cleanup.policy=compact
  $BROKER create-topic "$K" "$p.dlq" 1 max.message.bytes=8388608
done
run() { # format, extra args...
  local f=$1; shift
  "$T" run --brokers "$KAFKA_BROKERS" --group "it-$f" --input-topic "$f.events" \
    --rollups-topic "$f.rollups" --streaks-topic "$f.streaks" \
    --dlq-topic "$f.dlq" --close-at-eof --workers 2 --metrics-addr 127.0.0.1:0 \
    -X message.max.bytes=8388608 "$@"
}

echo "== replay of the same events (the reference)"
"$T" gen --scenario april-2026 --out "$tmp/s.jsonl"
"$T" replay --out "$tmp/ref" "$tmp/s.jsonl"

echo "== Avro in, Avro out"
"$T" gen --scenario april-2026 --brokers "$KAFKA_BROKERS" --input-topic avro.events
run avro
$PY "$SRC/tests/kafka/check_outputs.py" "$KAFKA_BROKERS" "$SRC" "$tmp/ref" \
  --format avro --rollups avro.rollups --streaks avro.streaks

echo "== JSON in, JSON out, bad messages mixed in"
"$T" gen --scenario april-2026 --format jsonl --brokers "$KAFKA_BROKERS" \
  --input-topic json.events
$PY "$SRC/tests/kafka/inject_bad.py" "$KAFKA_BROKERS" json.events "$tmp/bad.json"
run json --input-format json --output-format json
$PY "$SRC/tests/kafka/check_outputs.py" "$KAFKA_BROKERS" "$SRC" "$tmp/ref" \
  --format json --rollups json.rollups --streaks json.streaks \
  --dlq json.dlq --expect-dlq "$tmp/bad.json"

echo "== replay --brokers writes the same rows to topics"
"$T" replay --brokers "$KAFKA_BROKERS" --rollups-topic replay.rollups \
  --streaks-topic replay.streaks --dlq-topic replay.dlq "$tmp/s.jsonl"
$PY "$SRC/tests/kafka/check_outputs.py" "$KAFKA_BROKERS" "$SRC" "$tmp/ref" \
  --format avro --rollups replay.rollups --streaks replay.streaks

echo "== a restart resumes from the commit and skips what is final"
# A second run of the finished group reads only what a commit could not
# pass (the retained weeks) and changes no row's content.
run avro 2>"$tmp/rerun.err"
grep -o "run: .*" "$tmp/rerun.err"
$PY "$SRC/tests/kafka/check_outputs.py" "$KAFKA_BROKERS" "$SRC" "$tmp/ref" \
  --format avro --rollups avro.rollups --streaks avro.streaks --latest
echo "== SIGTERM: stop consuming, deliver, commit, exit 0"
"$T" run --brokers "$KAFKA_BROKERS" --group it-term --input-topic json.events \
  --input-format json --rollups-topic json.rollups --streaks-topic json.streaks \
  --dlq-topic json.dlq -X message.max.bytes=8388608 --metrics-addr 127.0.0.1:0 \
  2>"$tmp/term.err" &
pid=$!
sleep 6
kill -TERM $pid
if ! wait $pid; then cat "$tmp/term.err" >&2; echo "FAIL: exit status after SIGTERM" >&2; exit 1; fi
grep -q "run: stopped: 598741 messages" "$tmp/term.err" ||
  { cat "$tmp/term.err" >&2; echo "FAIL: not every message read before SIGTERM" >&2; exit 1; }
grep -Eq "[1-9][0-9]* commits" "$tmp/term.err" ||
  { echo "FAIL: no commit on SIGTERM" >&2; exit 1; }
echo "== SIGTERM with the broker frozen: --shutdown-timeout ends the stop, exit 1, nothing lost"
# A broker that stops answering (SIGSTOP) held the stop of an exactly-once
# run 60 s in a transaction commit, longer than Docker or Kubernetes wait
# before SIGKILL. With --shutdown-timeout 3s the run says where it was stuck
# and exits 1; a restart then gives exactly the reference rows.
for t in frozen.rollups frozen.streaks frozen.dlq; do
  $BROKER create-topic "$K" "$t" 1 max.message.bytes=8388608
done
frozen=("$T" run --brokers "$KAFKA_BROKERS" --group it-frozen --input-topic json.events
  --input-format json --rollups-topic frozen.rollups --streaks-topic frozen.streaks
  --dlq-topic frozen.dlq -X message.max.bytes=8388608 -X session.timeout.ms=6000)
"${frozen[@]}" --shutdown-timeout 3s 2>"$tmp/frozen.err" &
pid=$!
for _ in $(seq 1 300); do grep -q '"week closed"' "$tmp/frozen.err" && break; sleep 0.1; done
sleep 2
bpid=$(cat "$K/pid")
kill -STOP "$bpid"
t0=$(date +%s%N)
kill -TERM $pid
rc=0; wait $pid || rc=$?
kill -CONT "$bpid"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "exit $rc after $ms ms"
grep -o '"msg":"run: the stop did not finish[^}]*' "$tmp/frozen.err" || true
[ "$rc" = 1 ] || { tail -5 "$tmp/frozen.err" >&2; echo "FAIL: exit $rc, expected 1" >&2; exit 1; }
[ "$ms" -ge 2900 ] && [ "$ms" -lt 10000 ] ||
  { echo "FAIL: the stop took $ms ms with --shutdown-timeout 3s" >&2; exit 1; }
# The frozen broker holds the transaction's commit (in the loop or in the
# stop's last cycle).
grep -Eq '"phase":"committing (a|the last) transaction","shutdown_timeout_ms":3000' "$tmp/frozen.err" ||
  { tail -5 "$tmp/frozen.err" >&2; echo "FAIL: no line naming the phase" >&2; exit 1; }
"${frozen[@]}" --close-at-eof 2>"$tmp/frozen2.err" ||
  { tail -20 "$tmp/frozen2.err" >&2; echo "FAIL: the restart after the forced exit" >&2; exit 1; }
grep -o '"msg":"run: closed[^"]*' "$tmp/frozen2.err"
$PY "$SRC/tests/kafka/check_outputs.py" "$KAFKA_BROKERS" "$SRC" "$tmp/ref" \
  --format avro --rollups frozen.rollups --streaks frozen.streaks --latest
echo "it_kafka_run: all ok"
