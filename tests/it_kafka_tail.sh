#!/usr/bin/env bash
# `tokentally tail` and the Python consumer example of docs/consuming.md on a real
# Apache Kafka broker: the april-2026 scenario through `run`, then
#  (a) tail --format table prints the headline (CN 2026-W14 1,296,000,000,
#      +31.48%, 48.00% of the week, 5 consecutive weeks);
#  (b) tail --format json gives exactly the rows and streaks of `replay`
#      for the same events (emitted_at aside), with the Kafka keys;
#  (c) tests/examples/consume_outputs.py (confluent-kafka + fastavro, in a
#      venv under the build folder) decodes every output record: 380
#      rollups and 30 streaks, the same keys and values as tail's.
# Then the same for JSON outputs and a dead letter.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
K=$B/kafka-tail
FASTAVRO_VERSION=1.10.0
BROKER="bash $SRC/tests/kafka/broker.sh"
tmp=$(mktemp -d)
trap '$BROKER stop "$K" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# No metrics listener: `run` would take the default port, which the other
# tests running in parallel want too.
export TOKENTALLY_METRICS_ADDR=off

# fastavro is not packaged by Debian: a venv that sees the Debian packages
# (confluent-kafka) plus fastavro from PyPI, kept in the build folder.
VENV=$B/pyenv
if ! "$VENV/bin/python" -c "import fastavro, confluent_kafka; assert fastavro.__version__ == '$FASTAVRO_VERSION'" 2>/dev/null; then
  rm -rf "$VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    --cache-dir "$B/pip-cache" "fastavro==$FASTAVRO_VERSION"
fi
PY=$VENV/bin/python

$BROKER install "$K"
envs=$($BROKER start "$K")
eval "$envs"
echo "broker at $KAFKA_BROKERS"
for p in avro json; do
  $BROKER create-topic "$K" "$p.events" 6
  $BROKER create-topic "$K" "$p.rollups" 3 cleanup.policy=compact
  $BROKER create-topic "$K" "$p.streaks" 1 cleanup.policy=compact
  $BROKER create-topic "$K" "$p.dlq" 1
done

echo "== the scenario through run, and replay of the same events"
"$T" gen --scenario april-2026 --out "$tmp/s.jsonl"
"$T" replay --out "$tmp/ref" "$tmp/s.jsonl" 2>/dev/null
"$T" gen --scenario april-2026 --brokers "$KAFKA_BROKERS" --input-topic avro.events
"$T" run --brokers "$KAFKA_BROKERS" --group it-tail --input-topic avro.events \
  --rollups-topic avro.rollups --streaks-topic avro.streaks --dlq-topic avro.dlq \
  --close-at-eof --workers 2 2>"$tmp/run.err" || { cat "$tmp/run.err" >&2; fail "run"; }

tail_() { "$T" tail --brokers "$KAFKA_BROKERS" --from-beginning --exit-at-eof "$@"; }

echo "== (a) tail --format table"
tail_ --format table --topic avro.rollups --topic avro.streaks >"$tmp/table.txt" 2>"$tmp/table.err"
cat "$tmp/table.txt"
for want in "avro.rollups,avro.streaks: 410 records" \
  "2026-W14 CN 1.296 G +31.48% 48.0%" \
  "Origins of 2026-W14" \
  "1 CN 1,296,000,000 985,701,247 +31.48% 48.00% FINAL" \
  "2 US 303,000,000 300,714,569 +0.76% 11.22% FINAL" \
  "1. deepseek/deepseek-chat-v3" \
  "Streaks after 2026-W14" \
  "leader:origin:CN,US CN has led for 5 consecutive weeks, 327.72% ahead of US"; do
  tr -s ' ' <"$tmp/table.txt" | grep -qF -- "$want" || fail "table lacks: $want"
done
# One topic alone, given by the environment, comma-free.
TOKENTALLY_TOPIC=avro.streaks TOKENTALLY_FORMAT=table tail_ >"$tmp/streaks.txt" 2>/dev/null
tr -s ' ' <"$tmp/streaks.txt" |
  grep -qF "leader:model deepseek/deepseek-chat-v3 has led for 5 consecutive weeks" || { cat "$tmp/streaks.txt"; fail "streaks table"; }
grep -q "Weekly tokens" "$tmp/streaks.txt" && fail "streaks table shows rollups"

echo "== (b) tail --format json equals replay"
tail_ --topic avro.rollups,avro.streaks >"$tmp/tail.jsonl" 2>"$tmp/tail.err"
cat "$tmp/tail.err"
grep -qx "tail: 380 WeeklyRollup, 30 StreakChange, 0 dead letters, 0 not recognised" \
  "$tmp/tail.err" || fail "tail json counts"
compare_ref() { # tail.jsonl: values equal to replay's rows, keys right
  /usr/bin/python3 - "$1" "$tmp/ref" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
def ref(name):
    rows = [json.loads(l) for l in open("%s/%s" % (sys.argv[2], name))]
    for r in rows:
        r.pop("emitted_at")
    return sorted(json.dumps(r, sort_keys=True) for r in rows)
got = {"WeeklyRollup": [], "StreakChange": []}
for m in recs:
    v = dict(m["value"])
    want_key = ("%s/%s/%s" % (v["week"], v["dimension"], v["key"])
                if m["type"] == "WeeklyRollup" else v["rule"])
    if m["key"] != want_key:
        sys.exit("key %r for %r" % (m["key"], want_key))
    if not isinstance(v.pop("emitted_at"), int):
        sys.exit("emitted_at is not epoch ms")
    got[m["type"]].append(json.dumps(v, sort_keys=True))
for t, f in (("WeeklyRollup", "rollups.jsonl"), ("StreakChange", "streaks.jsonl")):
    if sorted(got[t]) != ref(f):
        sys.exit("%s differ from replay's %s" % (t, f))
print("tail: %d rollups, %d streaks equal to replay" % (
    len(got["WeeklyRollup"]), len(got["StreakChange"])))
PY
}
compare_ref "$tmp/tail.jsonl"

echo "== other schema ids (a registry's): told by the body"
$BROKER create-topic "$K" reg.mixed 1 >/dev/null
/usr/bin/python3 - "$KAFKA_BROKERS" "$tmp/tail.jsonl" <<'PY'
import sys
from confluent_kafka import Consumer, Producer, TopicPartition
brokers = sys.argv[1]
c = Consumer({"bootstrap.servers": brokers, "group.id": "it-tail-reg"})
vals = {}
for topic in ("avro.rollups", "avro.streaks"):
    c.assign([TopicPartition(topic, 0, 0)])
    m = c.poll(30)
    assert m is not None and not m.error(), m and m.error()
    vals[topic] = (m.key(), m.value())
c.close()
p = Producer({"bootstrap.servers": brokers})
for topic, sid in (("avro.rollups", 101), ("avro.streaks", 102)):
    key, v = vals[topic]
    p.produce("reg.mixed", key=key, value=v[:1] + sid.to_bytes(4, "big") + v[5:])
p.produce("reg.mixed", key=b"x", value=b"\0\0\0\0\x02" + b"\x01\x02")
p.flush(30)
PY
tail_ --topic reg.mixed >"$tmp/reg.jsonl" 2>/dev/null
/usr/bin/python3 - "$tmp/reg.jsonl" <<'PY'
import sys, json
types = [json.loads(l)["type"] for l in open(sys.argv[1])]
assert types == ["WeeklyRollup", "StreakChange", "Unknown"], types
print("schema ids 101, 102 and a bad body:", types)
PY

echo "== (c) the Python consumer example (confluent-kafka + fastavro)"
# docs/consuming.md shows the file itself: the two must not drift apart.
/usr/bin/python3 - "$SRC/docs/consuming.md" "$SRC/tests/examples/consume_outputs.py" <<'PY'
import sys
readme, example = open(sys.argv[1]).read(), open(sys.argv[2]).read()
part = readme.split("\n## A consumer in Python\n", 1)[1]
block = part.split("```python\n", 1)[1].split("\n```", 1)[0]
if block.strip("\n") != example.strip("\n"):
    sys.exit("docs/consuming.md's Python example differs from tests/examples/consume_outputs.py")
PY
(cd "$SRC" && "$PY" tests/examples/consume_outputs.py --brokers "$KAFKA_BROKERS" \
  avro.rollups avro.streaks) >"$tmp/example.jsonl" 2>"$tmp/example.err"
cat "$tmp/example.err"
grep -qx "410 records, 383 keys" "$tmp/example.err" || fail "example summary"
grep -qF "2026-W14 CN      1296000000 tokens  +31.48%  48.00% of the week, FINAL rev 0" \
  "$tmp/example.err" || fail "example headline"
/usr/bin/python3 - "$tmp/example.jsonl" "$tmp/tail.jsonl" <<'PY'
import json, sys
ex = [json.loads(l) for l in open(sys.argv[1])]
tail = [json.loads(l) for l in open(sys.argv[2])]
n = {"avro.rollups": 0, "avro.streaks": 0}
for r in ex:
    n[r["topic"]] += 1
if n != {"avro.rollups": 380, "avro.streaks": 30}:
    sys.exit("the example decoded %r" % n)
a = sorted(json.dumps([r["topic"], r["key"], r["value"]], sort_keys=True) for r in ex)
b = sorted(json.dumps([r["topic"], r["key"], r["value"]], sort_keys=True) for r in tail)
if a != b:
    sys.exit("fastavro and tail decode the topics differently")
print("example: 380 rollups and 30 streaks, the same keys and values as tail")
PY

echo "== JSON outputs and a dead letter"
"$T" gen --scenario april-2026 --format jsonl --brokers "$KAFKA_BROKERS" \
  --input-topic json.events
printf 'not json\n' | kcat -P -b "$KAFKA_BROKERS" -t json.events -p 0 -k bad
"$T" run --brokers "$KAFKA_BROKERS" --group it-tail-json --input-topic json.events \
  --input-format json --output-format json --rollups-topic json.rollups \
  --streaks-topic json.streaks --dlq-topic json.dlq --close-at-eof --workers 2 \
  2>"$tmp/run2.err" || { cat "$tmp/run2.err" >&2; fail "run json"; }
tail_ --topic json.rollups,json.streaks >"$tmp/tail2.jsonl" 2>/dev/null
compare_ref "$tmp/tail2.jsonl"
tail_ --format table --topic json.rollups,json.streaks,json.dlq >"$tmp/table2.txt" 2>/dev/null
tr -s ' ' <"$tmp/table2.txt" |
  grep -qF "1 CN 1,296,000,000 985,701,247 +31.48% 48.00% FINAL" || { cat "$tmp/table2.txt"; fail "table of JSON outputs"; }
grep -Eq "^  malformed +1$" "$tmp/table2.txt" || { cat "$tmp/table2.txt"; fail "dead letter count"; }
tail_ --topic json.dlq >"$tmp/dlq.jsonl" 2>/dev/null
/usr/bin/python3 - "$tmp/dlq.jsonl" <<'PY'
import base64, json, sys
[d] = [json.loads(l) for l in open(sys.argv[1])]
v = d["value"]
assert d["type"] == "DeadLetter" and d["key"] == "bad", d
assert v["reason"] == "malformed" and v["topic"] == "json.events", v
assert v["partition"] == 0 and isinstance(v["offset"], int), v
assert base64.b64decode(v["payload_base64"]) == b"not json", v
print("dead letter:", v["reason"], v["detail"])
PY

echo "== following: new records appear, SIGTERM exits 0"
"$T" tail --brokers "$KAFKA_BROKERS" --topic json.streaks >"$tmp/follow.jsonl" 2>/dev/null &
pid=$!
sleep 3
"$T" replay --brokers "$KAFKA_BROKERS" --output-format json --rollups-topic json.rollups \
  --streaks-topic json.streaks --dlq-topic json.dlq "$tmp/s.jsonl" 2>/dev/null
for _ in $(seq 50); do [ "$(wc -l <"$tmp/follow.jsonl")" -ge 30 ] && break; sleep 0.2; done
kill -TERM $pid
wait $pid || fail "tail exit status after SIGTERM"
[ "$(wc -l <"$tmp/follow.jsonl")" -eq 30 ] || fail "followed $(wc -l <"$tmp/follow.jsonl") streaks, want the 30 new ones"
echo "it_kafka_tail: all ok"
