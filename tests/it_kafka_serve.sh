#!/usr/bin/env bash
# `tokentally serve` and `report` on a real Apache Kafka broker, checked by
# tests/serve/check_serve.py against an independent recount of the events
# (tests/kafka/recount.py) and in real headless Chromium (Debian's
# chromium, driven over the DevTools protocol): the april-2026 scenario
# through `run`, then serve's JSON API (exact bodies, ETag/304, 404/400, a
# 1 MB query string, slow clients), the page's DOM (2026-W14, CN 1.296 G,
# +31.48%, 48.00%, the streak sentence, one chart series per origin with 10
# weeks), a screenshot in the build folder (serve-page.png), a late
# 2026-W14 event through `run` shown REVISED without a reload, a new week
# shown PROVISIONAL while `run` keeps it open, and the report files (--in a
# replay folder, --brokers) opened offline.
# TT_KAFKA_DIR overrides the broker folder (build/kafka-serve).
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRC/tests/kafka/up.sh" kafka-serve "${TT_SERVE_KEEP:-0}"
fail() { echo "FAIL: $*" >&2; exit 1; }
export TOKENTALLY_METRICS_ADDR=off
command -v chromium >/dev/null || fail "chromium is not installed (bash tests/install-deps.sh)"

$BROKER create-topic "$K" serve.events 6
$BROKER create-topic "$K" serve.rollups 3 cleanup.policy=compact
$BROKER create-topic "$K" serve.streaks 1 cleanup.policy=compact
$BROKER create-topic "$K" serve.dlq 1

echo "== the scenario through run, and replay of the same events"
"$T" gen --scenario april-2026 --out "$tmp/events.jsonl"
"$T" replay --out "$tmp/ref" "$tmp/events.jsonl" 2>/dev/null
"$T" gen --scenario april-2026 --brokers "$KAFKA_BROKERS" --input-topic serve.events
run_stage() {
  "$T" run --brokers "$KAFKA_BROKERS" --group it-serve --input-topic serve.events \
    --rollups-topic serve.rollups --streaks-topic serve.streaks --dlq-topic serve.dlq \
    --close-at-eof --workers 2 2>>"$tmp/run.err" || { cat "$tmp/run.err" >&2; return 1; }
}
run_stage || fail "run"

echo "== report --in (the replay folder) and --brokers (the topics)"
"$T" report --in "$tmp/ref" --out "$B/serve-report.html"
"$T" report --brokers "$KAFKA_BROKERS" --rollups-topic serve.rollups \
  --streaks-topic serve.streaks --out "$tmp/report-brokers.html"
# emitted_at is not on the page: the same records give the same bytes.
cmp "$B/serve-report.html" "$tmp/report-brokers.html" ||
  fail "report --in and report --brokers differ"

echo "== serve"
"$T" serve --brokers "$KAFKA_BROKERS" --rollups-topic serve.rollups \
  --streaks-topic serve.streaks --listen 127.0.0.1:0 >"$tmp/serve.out" 2>"$tmp/serve.err" &
SERVE_PID=$!
stop_all() {
  kill $SERVE_PID 2>/dev/null || true
  if [ -s "$tmp/open.pid" ]; then
    kill -TERM "$(cat "$tmp/open.pid")" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$(cat "$tmp/open.pid")" 2>/dev/null || break; sleep 0.2; done
  fi
  up_cleanup
}
trap stop_all EXIT
for _ in $(seq 600); do
  grep -q "^ready:" "$tmp/serve.out" && break
  kill -0 $SERVE_PID 2>/dev/null || { cat "$tmp/serve.err" >&2; fail "serve exited"; }
  sleep 0.1
done
cat "$tmp/serve.out"
grep -q "^ready: caught up with 380 WeeklyRollup and 30 StreakChange records, 10 weeks" \
  "$tmp/serve.out" || fail "serve not ready with 380 rollups and 30 streaks"
URL=$(sed -n 's|^serving \(http://[^/]*\)/.*|\1|p' "$tmp/serve.out")

# The late event: produced, then counted by the same group's next run.
cat >"$tmp/late.sh" <<LATE
set -e
/usr/bin/python3 "$SRC/tests/serve/produce_events.py" "$KAFKA_BROKERS" serve.events "$SRC"
$(declare -f run_stage)
run_stage
LATE
# Events of a new week, then the stage left running: the week stays open
# and is emitted PROVISIONAL every second (stopped at exit).
cat >"$tmp/open.sh" <<OPEN
set -e
/usr/bin/python3 "$SRC/tests/serve/produce_events.py" "$KAFKA_BROKERS" serve.events "$SRC"
"$T" run --brokers "$KAFKA_BROKERS" --group it-serve --input-topic serve.events \\
  --rollups-topic serve.rollups --streaks-topic serve.streaks --dlq-topic serve.dlq \\
  --workers 2 --emit-interval 1s --commit-interval 200ms 2>>"$tmp/open.err" >/dev/null &
echo \$! >"$tmp/open.pid"
OPEN
export T KAFKA_BROKERS tmp
late_cmd="bash $tmp/late.sh"
open_cmd="bash $tmp/open.sh"
/usr/bin/python3 "$SRC/tests/serve/check_serve.py" "$URL" "$tmp/events.jsonl" "$SRC" \
  "$B/serve-page.png" "$late_cmd" "$B/serve-report.html" "$tmp/report-brokers.html" \
  "$open_cmd"

kill -TERM $SERVE_PID
wait $SERVE_PID || fail "serve did not exit 0 on SIGTERM"
echo "PASS: serve and report (screenshot $B/serve-page.png)"
