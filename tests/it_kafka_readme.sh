#!/usr/bin/env bash
# The README as a test: tests/doc_readme.py runs every shell block marked
# `<!-- doc-test -->`, in order, in a folder laid out like the repository
# (build/tokentally, tests/, schemas/), against a Kafka broker of its own,
# and checks each `<!-- doc-test: expect -->` block's lines in the output
# of the block before it. The README's commands read the broker's address
# from $KAFKA_BROKERS, exported here; `python3` is Debian's (the README's
# fresh Debian machine: python3-confluent-kafka, python3-avro) and
# `kafka-topics.sh` the one broker.sh installs. Then the Python example,
# run from / (schemas found from its own place) with python3-avro, must
# decode exactly what `tail` decodes. TT_DOC_README checks another copy of
# the README (to show that a broken one fails).
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
K=$B/kafka-readme
README=${TT_DOC_README:-$SRC/README.md}
BROKER="bash $SRC/tests/kafka/broker.sh"
tmp=$(mktemp -d)
trap '$BROKER stop "$K" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

$BROKER install "$K"
envs=$($BROKER start "$K")
eval "$envs"
echo "broker at $KAFKA_BROKERS"

# A fresh user's shell: no TOKENTALLY_* settings, except no metrics
# listener (run's default port 9464 is wanted by tests running in parallel).
for v in $(env | sed -n 's/^\(TOKENTALLY_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export TOKENTALLY_METRICS_ADDR=off
mkdir -p "$tmp/work/build" "$tmp/bin"
ln -s "$SRC/tests" "$SRC/schemas" "$tmp/work/"
ln -s "$T" "$tmp/work/build/tokentally"
ln -s /usr/bin/python3 "$tmp/bin/python3"
export PATH=$tmp/bin:$K/bin:$PATH

/usr/bin/python3 "$SRC/tests/doc_readme.py" "$README" "$tmp/work" || fail "the README's blocks"

echo "== the Python example from / with python3-avro equals tail"
(cd / && python3 "$SRC/tests/examples/consume_outputs.py" --brokers "$KAFKA_BROKERS" \
  token-usage.rollups token-usage.streaks) >"$tmp/example.jsonl" 2>"$tmp/example.err" ||
  { cat "$tmp/example.err" >&2; fail "the example from /"; }
"$T" tail --brokers "$KAFKA_BROKERS" --from-beginning --exit-at-eof \
  --topic token-usage.rollups,token-usage.streaks >"$tmp/tail.jsonl" 2>/dev/null
/usr/bin/python3 - "$tmp/example.jsonl" "$tmp/tail.jsonl" <<'PY'
import json, sys
ex = [json.loads(l) for l in open(sys.argv[1])]
tail = [json.loads(l) for l in open(sys.argv[2])]
n = {}
for r in ex:
    n[r["topic"]] = n.get(r["topic"], 0) + 1
if n != {"token-usage.rollups": 380, "token-usage.streaks": 30}:
    sys.exit("the example decoded %r" % n)
a = sorted(json.dumps([r["topic"], r["key"], r["value"]], sort_keys=True) for r in ex)
b = sorted(json.dumps([r["topic"], r["key"], r["value"]], sort_keys=True) for r in tail)
if a != b:
    sys.exit("python3-avro and tail decode the topics differently")
print("example (python3-avro, run from /): 380 rollups and 30 streaks, equal to tail's")
PY
echo "it_kafka_readme: all ok"
