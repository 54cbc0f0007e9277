#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz (clang, ASan + UBSan) in
# build-fuzz and runs each for a bounded time, one at a time on one core,
# at low priority (nice 15: brokers and builds share the machine).
#
#   bash tests/fuzz/run.sh [--seconds N] [--merge] [HARNESS...]
#
#   --seconds N  time per harness (default 15: the step of tests/run.sh;
#                1800 for the long runs of docs/operations.md, "Hostile input")
#   --merge      afterwards, minimise the working corpus (its inputs under
#                600 bytes) back into tests/fuzz/corpus/<name>, the small
#                corpus kept in git
#   HARNESS      json_event avro_event ... (default: every fuzz_*.c)
#
# FUZZ_BUILD_DIR (default build-fuzz) is the build folder, so that a long
# run and the short step of tests/run.sh can run side by side.
# Each harness starts from tests/fuzz/corpus/<name> plus
# tests/fuzz/regressions/<name> and grows a working corpus under
# build-fuzz/corpus/<name>. A crash, leak or sanitizer report stops that
# harness, copies the input to tests/fuzz/regressions/<name>/ (replayed
# from then on by tests/unit_fuzz_regress.c) and fails the script. Logs:
# build-fuzz/logs/<name>.log; one line per run is appended to
# build-fuzz/logs/summary.tsv (harness, seconds, executions, cov, ft,
# corpus size, result).
set -euo pipefail
# The repository's top (the script may run from a copy inside it, so that
# editing it does not disturb a long run reading it).
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
B=${FUZZ_BUILD_DIR:-build-fuzz}
seconds=15
merge=0
names=()
while (($#)); do
  case $1 in
    --seconds) seconds=${2:?--seconds N}; shift 2 ;;
    --merge) merge=1; shift ;;
    -*) echo "tests/fuzz/run.sh: unknown option $1" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
if ((${#names[@]} == 0)); then
  for f in tests/fuzz/fuzz_*.c; do
    n=$(basename "$f" .c)
    [ "$n" = fuzz_targets ] || names+=("${n#fuzz_}")
  done
fi

# clang 14 and its libFuzzer runtime, only when missing.
bash tests/install-deps.sh --fuzz
CC=clang-14 cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTT_FUZZ=ON >/dev/null
mkdir -p $B/logs
if ! nice -n 15 cmake --build "$B" -j "$(nproc)" >$B/logs/build.log 2>&1; then
  tail -30 $B/logs/build.log >&2
  exit 1
fi

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
failed=()
for n in "${names[@]}"; do
  bin=$B/fuzz_$n
  work=$B/corpus/$n
  seeds=tests/fuzz/corpus/$n
  regress=tests/fuzz/regressions/$n
  crashes=$B/crashes/$n
  mkdir -p "$work" "$crashes"
  cp -n "$seeds"/* "$work"/ 2>/dev/null || true
  [ -d "$regress" ] && cp -n "$regress"/* "$work"/ 2>/dev/null || true
  log=$B/logs/$n.log
  rc=0
  # -jobs=1 -workers=1: one process, one core. -timeout: an input that
  # takes 10 s is a hang worth keeping.
  nice -n 15 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$work" >"$log" 2>&1 || rc=$?
  line=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
  cov=$(echo "$line" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || echo 0)
  ft=$(echo "$line" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+' || echo 0)
  corp=$(echo "$line" | grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' | cut -d' ' -f2 || echo 0)
  result=ok
  if ((rc)); then
    result=crash
    failed+=("$n")
    mkdir -p "$regress"
    for c in "$crashes"/*; do
      [ -f "$c" ] && cp "$c" "$regress/" && echo "fuzz $n: kept $c in $regress/" >&2
    done
    tail -40 "$log" >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$n" "$seconds" \
    "${execs:-0}" "${cov:-0}" "${ft:-0}" "${corp:-0}" "$result" >>$B/logs/summary.tsv
  echo "fuzz $n: ${seconds}s, ${execs:-0} executions, cov ${cov:-0}, ft ${ft:-0}, corpus ${corp:-0}: $result"
  if ((merge)) && [ $result = ok ]; then
    # Minimised into a fresh folder from the inputs under 600 bytes (the
    # kept corpus stays small: partials went from 1.4 MB to 190 KB keeping
    # 1034 of 1039 edges); replaced only when that kept something.
    tmp=$(mktemp -d)
    small=$(mktemp -d)
    find "$work" -type f -size -600c -exec cp {} "$small"/ \;
    if nice -n 15 "$bin" -merge=1 "$tmp" "$seeds" "$small" >>"$log" 2>&1 &&
      [ -n "$(ls -A "$tmp")" ]; then
      rm -rf "$seeds" && mkdir -p "$seeds" && cp "$tmp"/* "$seeds"/
    fi
    rm -rf "$tmp" "$small"
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: crashes in ${failed[*]} (inputs kept under tests/fuzz/regressions/)" >&2
  exit 1
fi
