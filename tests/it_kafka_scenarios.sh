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
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
K=${TT_KAFKA_DIR:-$B/kafka-scn}   # its own: ctest runs the it_kafka_* in parallel
BROKER="bash $SRC/tests/kafka/broker.sh"
tmp=$(mktemp -d)
cleanup() {
  $BROKER stop "$K" >/dev/null 2>&1 || true
  if [ "${TT_SCN_KEEP:-0}" = 1 ]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
$BROKER install "$K"
envs=$($BROKER start "$K")
eval "$envs"
args=(--brokers "$KAFKA_BROKERS" --binary "$T" --src "$SRC" --tmp "$tmp"
      --guarantee "${TT_SCN_GUARANTEE:-all}" --repeat "${TT_SCN_REPEAT:-1}")
[ -n "${TT_SCN_SEED:-}" ] && args+=(--seed "$TT_SCN_SEED")
# shellcheck disable=SC2086
/usr/bin/python3 "$SRC/tests/kafka/scenarios.py" "${args[@]}" ${TT_SCN_NAMES:-}
