#!/usr/bin/env bash
# Every model counted on a real broker (issue 11): a week of 1,000,000
# distinct models through `tokentally run` exactly-once, killed -9 in the
# middle of the input and again in the middle of the big week's close,
# restarted each time with the same group: the latest row of every (week,
# model) equals an independent recount of the input file, no row missing
# or extra, no duplicate revision, no dead letter (tests/kafka/cardinality.py
# on the helpers of tests/kafka/scenarios.py and recount.py). The broker
# keeps its default message.max.bytes (1 MiB): the stage's internal topics
# must carry their own limit for its 4 MiB parts. Prints the figures (time
# to produce, each run's time, peak RSS and restore, largest records).
# TT_CARD_MODELS (50000), TT_CARD_BIG (1000000), TT_CARD_AFTER (50000);
# TT_CARD_KEEP=1 keeps the stage logs.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRC/tests/kafka/up.sh" kafka-card "${TT_CARD_KEEP:-0}"
/usr/bin/python3 "$SRC/tests/kafka/cardinality.py" --brokers "$KAFKA_BROKERS" \
  --binary "$T" --src "$SRC" --tmp "$tmp" --models "${TT_CARD_MODELS:-50000}" \
  --big "${TT_CARD_BIG:-1000000}" --after "${TT_CARD_AFTER:-50000}"
