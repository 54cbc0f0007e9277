#!/usr/bin/env bash
# The documentation as a test: tests/doc_readme.py runs every shell block
# marked `<!-- doc-test -->` of README.md and docs/*.md, in one shell, in
# this order: README.md (the tour), docs/operations.md (a Kafka of your own:
# topics, gen, run, tail, the Python example), docs/consuming.md, then the
# other docs/*.md by name; each file top to bottom. They run in a folder
# laid out like the repository (build/tokentally, tests/, schemas/),
# against a Kafka broker of its own, and each `<!-- doc-test: expect -->`
# block's lines are checked in the output of the block before it. A
# marked block in any docs/*.md runs, so no command shown there can rot
# unseen. The commands read the broker's address
# from $KAFKA_BROKERS, exported here; `python3` is Debian's (the README's
# fresh Debian machine: python3-confluent-kafka, python3-avro) and
# `kafka-topics.sh` the one broker.sh installs. Then the Python example,
# run from / (schemas found from its own place) with python3-avro, must
# decode exactly what `tail` decodes. TT_DOC_ROOT checks the README.md and
# docs/ of another folder (a copy with a block broken, to show it fails).
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
K=${TT_KAFKA_DIR:-$B/kafka-readme}   # as tests/kafka/up.sh
DOCS=${TT_DOC_ROOT:-$SRC}
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

# README.md first (its tour makes out/), then operations.md (the broker,
# topics and run that consuming.md's blocks, if any, would read), then
# consuming.md, then every other docs/*.md in name order.
docs=("$DOCS/README.md" "$DOCS/docs/operations.md" "$DOCS/docs/consuming.md")
for f in "$DOCS"/docs/*.md; do
  case ${f##*/} in operations.md | consuming.md) ;; *) docs+=("$f") ;; esac
done
/usr/bin/python3 "$SRC/tests/doc_readme.py" "$tmp/work" "${docs[@]}" ||
  fail "the documentation's blocks"

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
