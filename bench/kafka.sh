#!/usr/bin/env bash
# The Kafka stage on a real broker, against kcat on the same topic in the
# same run (issue 3, "A benchmark on the real broker").  A benchmark, not a
# test: it prints figures and never fails because of speed.  It stops if a
# command fails, and prints MISMATCH if a run did not read every event.
#
#   bash bench/kafka.sh        # about 3-4 min here
#
# 1. Builds the Release binary into build-kbench/ (BENCH_TOKENTALLY=path
#    uses an existing binary instead), installs Kafka 3.9.2 under
#    build-kbench/kafka (tests/kafka/broker.sh; the jars stay between runs)
#    and starts a fresh broker (stopped and its data deleted on exit).
# 2. Topics: the input with 6 partitions, rollups (3) and streaks (1)
#    compacted, dead letters (1), and an empty 6-partition topic.
# 3. Loads the april-2026 scenario with `tokentally gen --brokers` (Confluent
#    Avro, keyed by request_id; idempotent producer) with
#    -X linger.ms=50 -X batch.num.messages=10000 -X compression.codec=lz4:
#    10,178,205 events at --scale 1.7e-3 --seed 1.  Every run starts a fresh
#    broker, so every run loads (about 9 s here).
# 4. Rounds (BENCH_KAFKA_REPEAT, default 5), interleaved so that drift in
#    the machine's load hits every configuration alike, each timed with
#    /usr/bin/time -f '%e %U %S %M':
#      kcat          kcat -C -t T -e -o beginning -q > /dev/null
#                    (librdkafka defaults: queued.min.messages=100000,
#                    queued.max.messages.kbytes=65536)
#      kcat qmin=1M  the same with -X queued.min.messages=1000000
#      stage w2/w1   tokentally run --group fresh-<random> --close-at-eof
#                    --workers 2 / 1 with the stage's own queue settings
#                    (pipeline/kafka/stage.c make_consumer: queued.min.messages=
#                    1000000, queued.max.messages.kbytes=65536)
#      stage ... lrk the same with -X queued.min.messages=100000
#                    -X queued.max.messages.kbytes=65536: librdkafka's
#                    defaults, i.e. what the stage did without its override
#    and the stage on the empty topic (w2): its fixed cost (start, join the
#    group, see EOF everywhere, close, exit).
# 5. Prints the median run (by wall time) of each configuration: events/s
#    (wall), CPU seconds (user+sys), events per CPU-second, the largest peak
#    RSS of its runs, the broker JVM's CPU seconds during the run, and stage/kcat ratios.  The
#    issue's targets: stage >= 0.9 x kcat's rate, >= 1 M events/CPU-s.
# 6. One more stage --workers 2 run with its threads' CPU sampled from /proc:
#    librdkafka's broker thread (fetch, decompress, parse, one op per
#    message) against the workers (decode, check, count).
#
# Environment: BENCH_KAFKA_SCALE (1.7e-3), BENCH_KAFKA_SEED (1),
# BENCH_KAFKA_REPEAT (5), BENCH_KAFKA_CODEC (lz4; none, snappy, zstd, ...),
# BENCH_KAFKA_PARTITIONS (6), BENCH_KAFKA_BUILD_DIR (build-kbench),
# BENCH_TOKENTALLY (an existing binary; skips the build).
set -euo pipefail
# The stage serves /metrics; a free port keeps runs from colliding.
export TOKENTALLY_METRICS_ADDR=127.0.0.1:0
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

SCALE=${BENCH_KAFKA_SCALE:-1.7e-3}
SEED=${BENCH_KAFKA_SEED:-1}
REPEAT=${BENCH_KAFKA_REPEAT:-5}
CODEC=${BENCH_KAFKA_CODEC:-lz4}
PARTS=${BENCH_KAFKA_PARTITIONS:-6}
BUILD=${BENCH_KAFKA_BUILD_DIR:-build-kbench}
BROKER="bash $root/tests/kafka/broker.sh"

note() { echo "kafka.sh: $*" >&2; }
now() { date +%s.%N; }

apt_get() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
[ -x /usr/bin/time ] || apt_get time
command -v kcat >/dev/null 2>&1 || apt_get kcat

mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
if [ -n "${BENCH_TOKENTALLY:-}" ]; then
  T=$BENCH_TOKENTALLY
else
  note "building the Release binary in $BUILD"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD" tokentally >/dev/null
  T=$BUILD/tokentally
fi
K=$BUILD/kafka
tmp=$(mktemp -d "$BUILD/kbench-XXXXXX")
$BROKER install "$K"
trap '$BROKER stop "$K" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
envs=$($BROKER start "$K" message.max.bytes=8388608)
eval "$envs"
B=$KAFKA_BROKERS

topic=bench.events
$BROKER create-topic "$K" "$topic" "$PARTS" >/dev/null 2>&1
$BROKER create-topic "$K" bench.empty "$PARTS" >/dev/null 2>&1
$BROKER create-topic "$K" bench.rollups 3 cleanup.policy=compact >/dev/null 2>&1
$BROKER create-topic "$K" bench.streaks 1 cleanup.policy=compact >/dev/null 2>&1
$BROKER create-topic "$K" bench.dlq 1 max.message.bytes=8388608 >/dev/null 2>&1

# The broker's user+sys CPU seconds so far.
tick=$(getconf CLK_TCK)
broker_cpu() { awk -v t="$tick" '{printf "%.2f", ($14 + $15) / t}' "/proc/$KAFKA_PID/stat"; }

# ---- load ------------------------------------------------------------------
note "loading --scale $SCALE --seed $SEED into $topic ($PARTS partitions, codec $CODEC)"
load_args=(-X linger.ms=50 -X batch.num.messages=10000 -X "compression.codec=$CODEC")
/usr/bin/time -o "$tmp/load.time" -f '%e %U %S %M' \
  "$T" gen --scenario april-2026 --scale "$SCALE" --seed "$SEED" \
  --brokers "$B" --input-topic "$topic" "${load_args[@]}" 2>"$tmp/load.err" ||
  { cat "$tmp/load.err" >&2; exit 1; }
events=$(sed -n 's/^gen: \([0-9]*\) records delivered.*/\1/p' "$tmp/load.err")
[ -n "$events" ] || { cat "$tmp/load.err" >&2; exit 1; }
# What the topic holds: end offsets (no transactions, so offsets are dense).
in_topic=$(kcat -b "$B" -C -t "$topic" -o -1 -e -q -f '%o\n' | awk '{s += $1 + 1} END {print s + 0}')
log_bytes=$(du -sb "$(cat "$K/datadir")"/"$topic"-* | awk '{s += $1} END {print s}')
read -r load_wall load_user load_sys load_rss < "$tmp/load.time"

# ---- runs ------------------------------------------------------------------
stage_args=(run --brokers "$B" --input-topic "$topic" --rollups-topic bench.rollups
            --streaks-topic bench.streaks --dlq-topic bench.dlq --close-at-eof
            --guarantee at-least-once)
lrk=(-X queued.min.messages=100000 -X queued.max.messages.kbytes=65536)
# TT_BENCH_CONFIGS="stage-w2 stage-w2-eos" runs a subset.
read -ra configs <<<"${TT_BENCH_CONFIGS:-kcat kcat-qmin1M stage-w2 stage-w2-eos stage-w1 stage-w2-lrk stage-w1-lrk}"
declare -A label=(
  [kcat]="kcat (librdkafka defaults)"
  [kcat-qmin1M]="kcat -X queued.min.messages=1000000"
  [stage-w2]="stage --workers 2"
  [stage-w2-eos]="stage --workers 2 --guarantee exactly-once"
  [stage-w1]="stage --workers 1"
  [stage-w2-lrk]="stage --workers 2, librdkafka queue defaults"
  [stage-w1-lrk]="stage --workers 1, librdkafka queue defaults"
  [stage-empty]="stage --workers 2, empty topic (fixed cost)"
)

runone() { # config round
  local c=$1 r=$2 out=$tmp/$1.$2 b0 b1
  local group=fresh-$c-$r-$$-$RANDOM
  b0=$(broker_cpu)
  case $c in
    kcat) /usr/bin/time -o "$out.time" -f '%e %U %S %M' \
            kcat -b "$B" -C -t "$topic" -e -o beginning -q >/dev/null 2>"$out.err" ;;
    kcat-qmin1M) /usr/bin/time -o "$out.time" -f '%e %U %S %M' \
            kcat -b "$B" -C -t "$topic" -e -o beginning -q \
            -X queued.min.messages=1000000 >/dev/null 2>"$out.err" ;;
    stage-w2) /usr/bin/time -o "$out.time" -f '%e %U %S %M' \
            "$T" "${stage_args[@]}" --group "$group" --workers 2 2>"$out.err" ;;
    stage-w2-eos) /usr/bin/time -o "$out.time" -f '%e %U %S %M' \
            "$T" "${stage_args[@]}" --group "$group" --workers 2 \
            --guarantee exactly-once --instance-id "$group" 2>"$out.err" ;;
    stage-w1) /usr/bin/time -o "$out.time" -f '%e %U %S %M' \
            "$T" "${stage_args[@]}" --group "$group" --workers 1 2>"$out.err" ;;
    stage-w2-lrk) /usr/bin/time -o "$out.time" -f '%e %U %S %M' \
            "$T" "${stage_args[@]}" --group "$group" --workers 2 "${lrk[@]}" 2>"$out.err" ;;
    stage-w1-lrk) /usr/bin/time -o "$out.time" -f '%e %U %S %M' \
            "$T" "${stage_args[@]}" --group "$group" --workers 1 "${lrk[@]}" 2>"$out.err" ;;
    stage-empty) /usr/bin/time -o "$out.time" -f '%e %U %S %M' \
            "$T" "${stage_args[@]/$topic/bench.empty}" --group "$group" --workers 2 \
            2>"$out.err" ;;
  esac || { cat "$out.err" >&2; exit 1; }
  b1=$(broker_cpu)
  local want=$events n
  [ "$c" = stage-empty ] && want=0
  if [[ $c == stage* ]]; then
    n=$(sed -n 's/.*run: \([0-9]*\) messages, \([0-9]*\) accepted.*/\1 \2/p' "$out.err")
    [ "$n" = "$want $want" ] || echo "MISMATCH $c round $r: run read/accepted '$n', expected $want"
  fi
  echo "$(cat "$out.time") $(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", b - a}')" >> "$tmp/$c.rows"
}

# The first group of a new broker creates __consumer_offsets (about 1 s):
# not part of any measured run.
"$T" "${stage_args[@]/$topic/bench.empty}" --group warm-up-$$ --workers 1 2>"$tmp/warm-up.err" ||
  { cat "$tmp/warm-up.err" >&2; exit 1; }
note "$REPEAT rounds of: ${configs[*]} stage-empty"
for ((r = 1; r <= REPEAT; r++)); do
  for c in "${configs[@]}" stage-empty; do runone "$c" "$r"; done
done

# Where the stage's CPU goes, by thread: one more --workers 2 run, its
# threads' user+sys ticks sampled from /proc every 0.1 s (pure bash, no
# forks while it runs).  Both librdkafka clients (consumer, output producer)
# name their broker threads rdk:broker*; the producer's is nearly idle here.
threads_run() {
  local pid t c st f tid
  local -A tname=() tticks=()
  "$T" "${stage_args[@]}" --group "fresh-threads-$$-$RANDOM" --workers 2 2>"$tmp/threads.err" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for t in /proc/"$pid"/task/*; do
      { read -r c < "$t/comm" && read -r st < "$t/stat"; } 2>/dev/null || continue
      f=(${st##*) })
      tid=${t##*/}
      [ "$tid" = "$pid" ] && c="main (coordinator)"
      [ "$c" = tokentally ] && c="workers (2)"
      tname[$tid]=$c
      tticks[$tid]=$((f[11] + f[12]))   # a thread's last sample before it ended
    done
    sleep 0.1
  done
  wait "$pid" || { cat "$tmp/threads.err" >&2; exit 1; }
  for tid in "${!tname[@]}"; do printf '%s\t%s\n' "${tname[$tid]}" "${tticks[$tid]}"; done > "$tmp/threads.snap"
}
threads_run

# ---- report ----------------------------------------------------------------
# median row by wall time: wall user sys rss_kb broker_cpu
median() { sort -n -k1,1 "$tmp/$1.rows" | awk '{r[NR] = $0} END {print r[int((NR + 1) / 2)]}'; }
declare -A rate
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
echo
echo "Kafka benchmark: $(date -u +%Y-%m-%dT%H:%MZ), commit $commit, $(nproc) cores,"
echo "Kafka $KAFKA_VERSION (one KRaft node on loopback), $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -n1)"
echo
printf 'load: %s events (topic end offsets: %s) into %s partitions, codec %s, in %.1f s = %.0f events/s\n' \
  "$events" "$in_topic" "$PARTS" "$CODEC" "$load_wall" "$(awk -v n="$events" -v w="$load_wall" 'BEGIN{print n / w}')"
printf '      gen %s; %.2f CPU-s; log on disk %.0f MiB\n' "${load_args[*]}" \
  "$(awk -v u="$load_user" -v s="$load_sys" 'BEGIN{print u + s}')" "$(awk -v b="$log_bytes" 'BEGIN{print b / 1048576}')"
[ "$in_topic" = "$events" ] || echo "MISMATCH: the topic holds $in_topic messages, gen delivered $events"
echo
echo "median of $REPEAT runs by wall time; events/s = events / wall; CPU = user + sys of the process;"
echo "RSS = the largest peak RSS of the runs; broker CPU = the Kafka JVM's user + sys during the run"
printf '| %-46s | %6s | %9s | %6s | %12s | %8s | %9s | %s |\n' \
  configuration "wall s" events/s "CPU s" events/CPU-s "RSS MiB" "broker CPU" "wall min..max"
printf '|%s|\n' "$(printf -- '-%.0s' {1..48})|--------|-----------|--------|--------------|----------|------------|---------------"
for c in "${configs[@]}" stage-empty; do
  read -r wall user sys rss bcpu <<<"$(median "$c")"
  range=$(sort -n -k1,1 "$tmp/$c.rows" | awk 'NR == 1 {a = $1} {b = $1} END {printf "%.2f..%.2f", a, b}')
  rss=$(awk '$4 > m {m = $4} END {print m}' "$tmp/$c.rows")   # the largest of the runs
  n=$events; [ "$c" = stage-empty ] && n=0
  rate[$c]=$(awk -v n="$n" -v w="$wall" 'BEGIN{printf "%.0f", n / w}')
  awk -v l="${label[$c]}" -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v bc="$bcpu" -v rg="$range" 'BEGIN{
    cpu = u + s
    printf "| %-46s | %6.2f | %9s | %6.2f | %12s | %8.1f | %9.2f s | %s |\n", l, w,
      n ? sprintf("%.2f M", n / w / 1e6) : "-", cpu,
      n ? sprintf("%.2f M", n / cpu / 1e6) : "-", m / 1024, bc, rg }'
done
echo
if [ -n "${rate[kcat]:-}" ] && [ -n "${rate[kcat-qmin1M]:-}" ]; then
  echo "stage / kcat, events/s (target >= 0.90):"
  for c in stage-w2 stage-w2-eos stage-w1 stage-w2-lrk stage-w1-lrk; do
    [ -n "${rate[$c]:-}" ] || continue
    awk -v l="${label[$c]}" -v a="${rate[$c]}" -v k="${rate[kcat]}" -v k2="${rate[kcat-qmin1M]}" 'BEGIN{
      printf "  %-46s %.2f x kcat, %.2f x kcat qmin=1M\n", l, a / k, a / k2 }'
  done
fi
if [ -n "${rate[stage-w2-eos]:-}" ] && [ -n "${rate[stage-w2]:-}" ]; then
  awk -v a="${rate[stage-w2-eos]}" -v b="${rate[stage-w2]}" 'BEGIN{
    printf "exactly-once / at-least-once, events/s (same run): %.2f\n", a / b }'
fi
read -r ew _ <<<"$(median stage-empty)"
awk -v n="$events" -v w="$(median stage-w2 | cut -d' ' -f1)" -v e="$ew" 'BEGIN{
  printf "stage --workers 2 without its fixed cost (%.2f s): %.2f M events/s\n", e, n / (w - e) / 1e6 }'
echo
echo "CPU by thread, one more stage --workers 2 run (user+sys s, sampled every 0.1 s):"
awk -F'\t' -v t="$tick" '{s[$1] += $2} END {for (k in s) printf "  %-22s %6.2f\n", k, s[k] / t}' \
  "$tmp/threads.snap" | sort -k1,1
echo "  (rdk:broker1: the connection thread of broker 1 in each librdkafka client, the"
echo "  consumer's fetching and parsing plus the output producer's, nearly idle;"
echo "  rdk:broker-1: bootstrap; rdk:main: librdkafka's timers)"
