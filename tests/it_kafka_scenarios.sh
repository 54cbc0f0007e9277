#!/usr/bin/env bash
# The scenario harness (tests/kafka/scenarios.py, issue 9) on a real Apache
# Kafka broker: every scenario once per guarantee, each checked against an
# independent recount in Python. The long repetitions are the same script:
#   TT_SCN_REPEAT=20 TT_SCN_NAMES=fresh_eof TT_SCN_GUARANTEE=exactly-once \
#     bash tests/it_kafka_scenarios.sh
# TT_SCN_NAMES (default: all), TT_SCN_GUARANTEE (all), TT_SCN_REPEAT (1),
# TT_SCN_SEED (the time), TT_SCN_KEEP=1 keeps the stage logs.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRC/tests/kafka/up.sh" kafka-scn "${TT_SCN_KEEP:-0}"
args=(--brokers "$KAFKA_BROKERS" --binary "$T" --src "$SRC" --tmp "$tmp"
      --guarantee "${TT_SCN_GUARANTEE:-all}" --repeat "${TT_SCN_REPEAT:-1}")
[ -n "${TT_SCN_SEED:-}" ] && args+=(--seed "$TT_SCN_SEED")
# shellcheck disable=SC2086
/usr/bin/python3 "$SRC/tests/kafka/scenarios.py" "${args[@]}" ${TT_SCN_NAMES:-}
