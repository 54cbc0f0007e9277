#!/usr/bin/env bash
# Exactly-once on a real Apache Kafka broker (issue 4), >= 1 M events of
# the april-2026 scenario, the output topics checked by
# tests/kafka/eos_check.py (confluent-kafka read_committed + python3-avro)
# against `replay` of the same events:
#   kill    one instance (eos-a), `kill -9` ten times while gen streams the
#           events, then a last run with --close-at-eof: no duplicate
#           FINAL/REVISED record, every row and streak as replay's; prints
#           the time from each restart to its first offset commit (which,
#           exactly-once, is the commit of its first transaction of output)
#   multi   three instances (eos-1..3), eos-2 killed -9 mid-run, eos-4
#           joining later; then the survivors with --close-at-eof
#   broker  the broker stopped for 30 s mid-run (data kept), the stage
#           survives or is restarted (the output says which)
#   alo     the kill test with --guarantee at-least-once: duplicates are
#           allowed, counted and printed; the latest rows are replay's
# TT_EOS_CASES selects cases ("kill multi broker late upstream alo", the default: all);
# TT_EOS_SCALE (2e-4: 1.2 M events), TT_EOS_RATE (events/s of gen while
# streaming), TT_EOS_KILLS (10); TT_EOS_KEEP=1 keeps the stage logs;
# TT_EOS_DRY=1 runs the exactly-once cases at-least-once and checks them so
# (to try the harness on a stage without exactly-once; multi then differs
# from replay, as at-least-once instances merge nothing).
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
K=${TT_KAFKA_DIR:-$B/kafka-eos}   # its own: ctest runs the it_kafka_* in parallel
PY=/usr/bin/python3
BROKER="bash $SRC/tests/kafka/broker.sh"
CHECK="$SRC/tests/kafka/eos_check.py"
CASES=${TT_EOS_CASES:-kill multi broker late upstream alo}
SCALE=${TT_EOS_SCALE:-2e-4}
RATE=${TT_EOS_RATE:-90000}
# The kill cases stream slower, so that all ten kills land while events
# still arrive (ten runs of 1.5-4 s plus restarts: about 35 s).
KILL_RATE=${TT_EOS_KILL_RATE:-34000}
KILLS=${TT_EOS_KILLS:-10}
EO=exactly-once
[ "${TT_EOS_DRY:-0}" = 1 ] && EO=at-least-once
tmp=$(mktemp -d)
cleanup() {
  # Our own background jobs only (children not yet reaped: no pid reuse).
  local p
  for p in $(jobs -p); do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  $BROKER stop "$K" >/dev/null 2>&1 || true
  if [ "${TT_EOS_KEEP:-0}" = 1 ]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
T0=$SECONDS
note() { echo "[$((SECONDS - T0)) s] $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b - a}'; }
rand_sleep() { awk -v r="$RANDOM" 'BEGIN{printf "%.2f", 1.5 + 2.5 * r / 32767}'; } # 1.5-4 s: most runs get past their first transaction (about 1 s after start)

$BROKER install "$K"
envs=$($BROKER start "$K" message.max.bytes=8388608)   # broker.sh sets transaction.state.log.*
eval "$envs"
note "broker at $KAFKA_BROKERS"

note "reference: replay of the same events"
"$T" gen --scenario april-2026 --scale "$SCALE" --out "$tmp/s.jsonl"
nev=$(wc -l < "$tmp/s.jsonl")
[ "$nev" -ge 1000000 ] || die "only $nev events at scale $SCALE; the issue wants >= 1 M"
"$T" replay --out "$tmp/ref" "$tmp/s.jsonl" 2>&1 | sed 's/^/  /'

topics() { # prefix
  $BROKER create-topic "$K" "$1.events" 6 2>/dev/null
  # Not compacted: compaction could hide a duplicate from the check.
  $BROKER create-topic "$K" "$1.rollups" 3 2>/dev/null
  $BROKER create-topic "$K" "$1.streaks" 1 2>/dev/null
  $BROKER create-topic "$K" "$1.dlq" 1 max.message.bytes=8388608 2>/dev/null
}

gen_bg() { # prefix [rate]: produce the events in the background, GEN_PID
  "$T" gen --scenario april-2026 --scale "$SCALE" --brokers "$KAFKA_BROKERS" \
    --input-topic "$1.events" --rate "${2:-0}" -X message.max.bytes=8388608 \
    -X enable.idempotence=true \
    >"$tmp/$1.gen.log" 2>&1 &
  GEN_PID=$!
}
gen_wait() { # prefix
  wait "$GEN_PID" || { cat "$tmp/$1.gen.log" >&2; die "gen failed"; }
  note "gen: $(grep -o 'gen: .*' "$tmp/$1.gen.log" | tail -n 1)"
}

# stage PREFIX GUARANTEE ID [args...]: the stage in the background, logs in
# $tmp/PREFIX.ID.N.log; STAGE_PID, STAGE_LOG.
declare -A RUNS=()
stage() {
  local p=$1 g=$2 id=$3; shift 3
  local n=$((${RUNS[$p.$id]:-0} + 1))
  RUNS[$p.$id]=$n
  local args=(run --brokers "$KAFKA_BROKERS" --group "$p" --input-topic "$p.events"
              --rollups-topic "$p.rollups" --streaks-topic "$p.streaks" --dlq-topic "$p.dlq"
              --guarantee "$g" --workers 2 --metrics-addr 127.0.0.1:0
              -X message.max.bytes=8388608 -X session.timeout.ms=6000)
  if [ "$g" = exactly-once ]; then
    args+=(--state-topic "$p.state" --partials-topic "$p.partials" --instance-id "$id")
  else
    # Static membership for the restarts to rejoin at once, as the
    # exactly-once stage derives it from --instance-id.
    args+=(-X "group.instance.id=$p-$id")
  fi
  STAGE_LOG=$tmp/$p.$id.$n.log
  "$T" "${args[@]}" "$@" 2>"$STAGE_LOG" &
  STAGE_PID=$!
}
# stage_wait PID LOG SECONDS: its exit status (124 after SECONDS, then killed)
stage_wait() {
  local pid=$1 log=$2 i
  for ((i = 0; i < $3 * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      local rc=0
      wait "$pid" || rc=$?
      return $rc
    fi
    sleep 0.1
  done
  # A hang is a bug to find: every thread's stack before the kill.
  if command -v gdb >/dev/null; then
    timeout 60 gdb -p "$pid" -batch -ex "thread apply all bt" >"$log.stacks" 2>&1 || true
    echo "  (threads of the hung stage: $log.stacks)" >&2
    grep -E '^(Thread|#)' "$log.stacks" | head -n 120 >&2 || true
  fi
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "  (still running after $3 s: killed; log $log:)" >&2
  tail -n 5 "$log" >&2
  return 124
}
summary() { grep -o '"msg":"run: [^"]*"\|run: [^"]*' "$1" | tail -n 1 || true; }
check() { # prefix --exactly-once|--at-least-once; status 1 on a mismatch
  $PY "$CHECK" "$KAFKA_BROKERS" "$SRC" "$tmp/ref" "$2" --rollups "$1.rollups" \
    --streaks "$1.streaks" | sed 's/^/  /'
}

# The time from a (re)start to the first new committed record of the
# rollups topic and to the group's first offset commit (exactly-once, the
# commit of its first transaction): watch_start PREFIX SECONDS before the
# start; watch_end T0 prints "first record X s, first commit Y s".
watch_start() {
  rm -f "$tmp/w" "$tmp/w.ready"
  $PY "$CHECK" --watch "$KAFKA_BROKERS" "$1" "$1.events" "$1.rollups" "$tmp/w" "$2" &
  WATCH_PID=$!
  while [ ! -f "$tmp/w.ready" ] && kill -0 $WATCH_PID 2>/dev/null; do sleep 0.02; done
}
watch_end() { # t0 [wait]
  local r c
  [ -n "${2:-}" ] || kill "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  r=none c=none
  [ ! -f "$tmp/w" ] || read -r r c < "$tmp/w" || true
  [ "$r" = none ] || r="$(elapsed "$1" "$r") s"
  [ "$c" = none ] || c="$(elapsed "$1" "$c") s"
  W_RECORD=$r W_COMMIT=$c
}

# kill -9 test: KILLS restarts of one instance while gen streams, then a
# last run with --close-at-eof.
kill_case() { # prefix guarantee
  local p=$1 g=$2 i d t0 rec=() com=() rc=0 busy=0
  topics "$p"
  gen_bg "$p" "$KILL_RATE"
  for ((i = 1; i <= KILLS; i++)); do
    d=$(rand_sleep)
    watch_start "$p" "$d"
    t0=$(now)
    # PROVISIONAL rows every second: a restarted stage shows output as
    # soon as it works again (the recovery time printed below).
    stage "$p" "$g" eos-a --emit-interval 1s
    sleep "$d"
    if ! kill -0 "$STAGE_PID" 2>/dev/null; then
      rc=0; wait "$STAGE_PID" || rc=$?
      tail -n 5 "$STAGE_LOG" >&2
      die "$p: the stage exited $rc by itself before kill -9 #$i"
    fi
    kill -9 "$STAGE_PID" 2>/dev/null || true
    wait "$STAGE_PID" 2>/dev/null || true
    watch_end "$t0" wait
    rec+=("${W_RECORD% s}"); com+=("${W_COMMIT% s}")
    [ "$W_RECORD$W_COMMIT" = nonenone ] || busy=$((busy + 1))
    note "$p: kill -9 #$i after $d s (restart to first new record: $W_RECORD, to first commit: $W_COMMIT)"
  done
  note "$p: restart to first new record: ${rec[*]}"
  note "$p: restart to first commit:     ${com[*]}"
  note "$p: $busy of $KILLS runs wrote or committed something before their kill -9"
  if [ $busy -eq 0 ]; then
    note "$p: WARNING: no restart wrote or committed anything before its kill -9:" \
         "the kills interrupted no processing (a restart that waits for the killed" \
         "member's session timeout, without static membership, gets no partition)"
  fi
  gen_wait "$p"
  # The last restart, all events in the topic, most of them in the state.
  watch_start "$p" 60
  t0=$(now)
  stage "$p" "$g" eos-a --close-at-eof
  stage_wait "$STAGE_PID" "$STAGE_LOG" 180 || rc=$?
  if [ $rc -ne 0 ]; then tail -n 20 "$STAGE_LOG" >&2; die "$p: eos-a --close-at-eof exited $rc"; fi
  watch_end "$t0"
  note "$p: eos-a --close-at-eof done in $(elapsed "$t0" "$(now)") s (first new record" \
       "after $W_RECORD, first commit after $W_COMMIT): $(summary "$STAGE_LOG")"
}

# Events of weeks the merger has closed, produced once 2026-W13 is closed:
# the fronts forward them whole, the merger revises 2026-W10 (REVISED rows
# whose latest equal replay's recount with them) and dead-letters the
# 2026-W01 one as too_late with its original bytes.
late_case() {
  local p=late n
  topics $p
  cp "$tmp/s.jsonl" "$tmp/late.jsonl"
  gen_bg $p 0
  gen_wait $p
  stage $p $EO eos-l
  for ((n = 0; n < 600; n++)); do
    grep -q '"week closed","week":"2026-W13"' "$STAGE_LOG" && break
    kill -0 "$STAGE_PID" 2>/dev/null || { tail -n 5 "$STAGE_LOG" >&2; die "late: the stage exited"; }
    sleep 0.1
  done
  grep -q '"week closed","week":"2026-W13"' "$STAGE_LOG" || die "late: 2026-W13 did not close in 60 s"
  $PY "$SRC/tests/kafka/late_events.py" "$KAFKA_BROKERS" $p.events "$SRC" \
    "$tmp/late.jsonl" "$tmp/late.dlq.json" | sed 's/^/  /'
  sleep 3 # a dozen transactions
  kill -TERM "$STAGE_PID"
  stage_wait "$STAGE_PID" "$STAGE_LOG" 60 || die "late: exit status after SIGTERM"
  grep -q '"forwarded":4' "$STAGE_LOG" ||
    die "late: not the 4 events forwarded: $(grep -o '"forwarded":[0-9]*' "$STAGE_LOG")"
  note "late: $(summary "$STAGE_LOG")"
  stage $p $EO eos-l --close-at-eof
  stage_wait "$STAGE_PID" "$STAGE_LOG" 120 || die "late: the --close-at-eof run failed"
  "$T" replay --out "$tmp/ref-late" "$tmp/late.jsonl" 2>&1 | sed 's/^/  /'
  $PY "$SRC/tests/kafka/check_outputs.py" "$KAFKA_BROKERS" "$SRC" "$tmp/ref-late" \
    --format avro --rollups $p.rollups --streaks $p.streaks --latest \
    --dlq $p.dlq --expect-dlq "$tmp/late.dlq.json" | sed 's/^/  /'
  [ "${PIPESTATUS[0]}" = 0 ] || die "late: outputs differ from replay's"
}

# Input written by a transactional producer: control markers and an
# aborted transaction leave gaps in the offsets; every committed event
# counts once and the stage does not stall on them.
upstream_case() {
  local p=upstream
  $BROKER create-topic "$K" "$p.events" 2 2>/dev/null
  $BROKER create-topic "$K" "$p.rollups" 1 2>/dev/null
  $BROKER create-topic "$K" "$p.streaks" 1 2>/dev/null
  $BROKER create-topic "$K" "$p.dlq" 1 2>/dev/null
  $PY "$SRC/tests/kafka/txn_upstream.py" "$KAFKA_BROKERS" $p.events | sed 's/^/  /'
  stage $p $EO eos-u --input-format json --close-at-eof
  stage_wait "$STAGE_PID" "$STAGE_LOG" 120 || die "upstream: the stage failed"
  note "upstream: $(summary "$STAGE_LOG")"
  summary "$STAGE_LOG" | grep -q ": 1000 messages, 1000 accepted, 0 dead letters" ||
    die "upstream: not exactly the 1,000 committed events"
}

run_case() {
  local c=$1 t0=$SECONDS
  echo
  note "== case $c"
  # (not `run --help | grep -q`: grep leaves at the first match, the help
  # still being written gets SIGPIPE, and pipefail fails the test)
  if [ "$c" != alo ] && [ $EO = exactly-once ] && ! grep -q -- --instance-id <<<"$("$T" run --help 2>&1)"; then
    die "case $c: $T has no --instance-id (no exactly-once yet); TT_EOS_CASES=alo or TT_EOS_DRY=1"
  fi
  case $c in
    kill)
      kill_case kill $EO
      check kill --$EO || die "kill: eos_check --$EO" ;;
    late)
      late_case ;;
    upstream)
      upstream_case ;;
    alo)
      kill_case alo at-least-once
      check alo --at-least-once || die "alo: eos_check --at-least-once" ;;
    multi)
      # While gen streams: eos-1..3, eos-2 killed -9 after 5 s, eos-4 joins
      # 4 s later. Without --close-at-eof: an instance that catches up with
      # gen would be at the end of its partitions before gen is done. Then
      # the survivors are stopped (SIGTERM: commit, exit 0) and run again,
      # all three at once, with --close-at-eof, until every one has exited.
      local p=multi id pids=() logs=() k rc
      topics $p
      gen_bg $p "$RATE"
      declare -A PID=() LOG=()
      for id in eos-1 eos-2 eos-3; do stage $p $EO $id; PID[$id]=$STAGE_PID; LOG[$id]=$STAGE_LOG; done
      sleep 5
      kill -9 "${PID[eos-2]}"; wait "${PID[eos-2]}" 2>/dev/null || true
      note "$p: eos-2 killed -9"
      sleep 4
      stage $p $EO eos-4; PID[eos-4]=$STAGE_PID; LOG[eos-4]=$STAGE_LOG
      note "$p: eos-4 joined"
      gen_wait $p
      sleep 3
      for id in eos-1 eos-3 eos-4; do
        kill -0 "${PID[$id]}" 2>/dev/null || { tail -n 20 "${LOG[$id]}" >&2; die "$p: $id exited before the end"; }
        kill -TERM "${PID[$id]}"
      done
      for id in eos-1 eos-3 eos-4; do
        rc=0; stage_wait "${PID[$id]}" "${LOG[$id]}" 60 || rc=$?
        [ $rc -eq 0 ] || { tail -n 20 "${LOG[$id]}" >&2; die "$p: $id exited $rc after SIGTERM"; }
        note "$p: $id stopped: $(summary "${LOG[$id]}")"
      done
      for id in eos-1 eos-3 eos-4; do stage $p $EO $id --close-at-eof; PID[$id]=$STAGE_PID; LOG[$id]=$STAGE_LOG; done
      for id in eos-1 eos-3 eos-4; do
        rc=0; stage_wait "${PID[$id]}" "${LOG[$id]}" 180 || rc=$?
        [ $rc -eq 0 ] || { tail -n 20 "${LOG[$id]}" >&2; die "$p: $id --close-at-eof exited $rc"; }
        note "$p: $id --close-at-eof done: $(summary "${LOG[$id]}")"
      done
      if [ $EO = exactly-once ]; then check $p --$EO || die "$p: eos_check --$EO"
      else check $p --$EO || note "$p: (dry run) a mismatch is expected: at-least-once merges no partials"; fi ;;
    broker)
      # While gen streams, 5 s in: gen frozen (SIGSTOP: its librdkafka
      # queue would overflow in 30 s; idempotent, so its retries add no
      # duplicate event), the broker stopped for 30 s with its data kept,
      # then both back. The stage runs on; if it exits, the script restarts
      # it. After gen: SIGTERM (commit, exit 0), then --close-at-eof.
      local p=broker rc=0 restarts=0 spid slog
      topics $p
      gen_bg $p "$RATE"
      stage $p $EO eos-b; spid=$STAGE_PID; slog=$STAGE_LOG
      sleep 5
      kill -STOP "$GEN_PID"
      $BROKER pause "$K"
      note "$p: broker stopped (gen frozen)"
      sleep 30
      $BROKER resume "$K"
      kill -CONT "$GEN_PID"
      note "$p: broker back"
      restart_if_dead() {
        kill -0 "$spid" 2>/dev/null && return 0
        rc=0; wait "$spid" || rc=$?
        restarts=$((restarts + 1))
        [ $restarts -le 5 ] || { tail -n 20 "$slog" >&2; die "$p: the stage exited $restarts times"; }
        note "$p: the stage exited $rc ($(grep -o '"msg":"[^"]*"' "$slog" | tail -n 1)): restarted by the script"
        stage $p $EO eos-b; spid=$STAGE_PID; slog=$STAGE_LOG
      }
      while kill -0 "$GEN_PID" 2>/dev/null; do restart_if_dead; sleep 0.5; done
      gen_wait $p
      restart_if_dead
      if [ $EO = exactly-once ]; then
        # Its offsets commit with its output: all of it out and committed.
        note "$p: stage $($PY "$CHECK" --caught-up "$KAFKA_BROKERS" $p $p.events 90 || true)"
      else
        sleep 6 # at-least-once commits conservatively (the oldest open week)
      fi
      kill -0 "$spid" 2>/dev/null || { tail -n 20 "$slog" >&2; die "$p: the stage exited after the outage"; }
      kill -TERM "$spid" 2>/dev/null || true
      rc=0; stage_wait "$spid" "$slog" 60 || rc=$?
      [ $rc -eq 0 ] || { tail -n 20 "$slog" >&2; die "$p: the stage exited $rc after SIGTERM"; }
      if [ $restarts -eq 0 ]; then note "$p: the stage survived the outage ($(grep -c "resuming from the last commit" "$slog") in-process restart(s) after aborted transactions): $(summary "$slog")"
      else note "$p: the stage survived only with $restarts restart(s) by the script: $(summary "$slog")"; fi
      stage $p $EO eos-b --close-at-eof
      rc=0; stage_wait "$STAGE_PID" "$STAGE_LOG" 180 || rc=$?
      [ $rc -eq 0 ] || { tail -n 20 "$STAGE_LOG" >&2; die "$p: eos-b --close-at-eof exited $rc"; }
      note "$p: eos-b --close-at-eof done: $(summary "$STAGE_LOG")"
      check $p --$EO || die "$p: eos_check --$EO" ;;
    *) die "unknown case $c (TT_EOS_CASES: kill multi broker late upstream alo)" ;;
  esac
  note "== case $c done in $((SECONDS - t0)) s"
}

for c in $CASES; do run_case "$c"; done
note "it_kafka_eos: all ok ($CASES)"
