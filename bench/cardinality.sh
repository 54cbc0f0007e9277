#!/usr/bin/env bash
# tokentally high-cardinality benchmark (issue 11): a replay of 12 weeks with
# the same 100,000 models each (1.2 M events, one request per model and
# week: every event a new (week, model) cell, every cell a row written), and
# in the same run DuckDB doing the same work on the same file (GROUP BY week,
# model with prev_tokens, growth, share and rank, written out as JSON Lines;
# bench/duckdb_cardinality.mjs), the april-2026 scenario replay as the
# low-cardinality reference, and heap allocations per event.
#
# A benchmark, not a test: it prints figures and never fails on speed. It
# fails when a command fails, and prints MISMATCH when tokentally and DuckDB
# disagree on a MODEL row or tokentally writes dead letters.
#
# Environment (all optional):
#   BENCH_BUILD_DIR   release build dir         (default: <repo>/build-bench)
#   BENCH_TOKENTALLY  use this binary, skip the build
#   BENCH_BASELINE    a second binary (e.g. main before the change) measured
#                     the same way in the same run, for before/after figures
#   BENCH_DATA_DIR    generated inputs          (default: bench/data)
#   BENCH_WEEKS, BENCH_MODELS   the file's shape (default: 12, 100000)
#   BENCH_REPEAT      runs per row; the median by wall is shown (default: 5)
#   BENCH_DUCKDB_THREADS        DuckDB threads  (default: 2)
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BUILD=${BENCH_BUILD_DIR:-$repo/build-bench}
DATA=${BENCH_DATA_DIR:-$here/data}
WEEKS=${BENCH_WEEKS:-12}
MODELS=${BENCH_MODELS:-100000}
REPEAT=${BENCH_REPEAT:-5}
DUCK_THREADS=${BENCH_DUCKDB_THREADS:-2}

# shellcheck source=bench/setup.sh
. "$here/setup.sh"

gen_hash=$(sha256sum "$repo/tests/gen_cardinality.py" | cut -c1-16)
HC=$DATA/cardinality-$WEEKS-x-$MODELS-$gen_hash.jsonl
SMALL=$DATA/cardinality-$WEEKS-x-$((MODELS / 10))-$gen_hash.jsonl
[ -f "$HC" ] || python3 "$repo/tests/gen_cardinality.py" --weeks "$WEEKS" --models "$MODELS" "$HC"
[ -f "$SMALL" ] || python3 "$repo/tests/gen_cardinality.py" --weeks "$WEEKS" --models "$((MODELS / 10))" "$SMALL"
APRIL=$DATA/april-2026-default.jsonl
[ -f "$APRIL" ] || "$TT" gen --scenario april-2026 --out "$APRIL"
cat "$HC" "$SMALL" "$APRIL" >/dev/null # inputs in the page cache

# CPU ticks from /proc/stat: "total steal". Steal is time the hypervisor gave
# this VM's CPUs to others: on a shared VM the same binary's wall and CPU
# seconds move with it (here by up to 1.5x within an hour).
cpu_ticks() { awk '/^cpu /{ t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $9; exit }' /proc/stat; }

summary_field() { grep '^replay:' "$1" | tail -1 | sed -E "s/.* ([0-9]+) $2.*/\\1/"; }

# row BINARY LABEL FILE: REPEAT timed replays, one line of figures.
row() {
        local bin=$1 label=$2 file=$3 i
        : >"$WORK/times"
        local t0 s0 t1 s1
        read -r t0 s0 < <(cpu_ticks)
        for ((i = 1; i <= REPEAT; i++)); do
                rm -rf "$WORK/out"
                /usr/bin/time -f '%e %U %S %M' -o "$WORK/t" \
                        "$bin" replay --out "$WORK/out" "$file" 2>"$WORK/err" ||
                        { cat "$WORK/err" >&2; die "replay failed: $bin replay $file"; }
                cat "$WORK/t" >>"$WORK/times"
        done
        read -r t1 s1 < <(cpu_ticks)
        local events dead rows
        events=$(summary_field "$WORK/err" events)
        dead=$(summary_field "$WORK/err" dead)
        rows=$(wc -l <"$WORK/out/rollups.jsonl")
        [ "$dead" = 0 ] || [ "${label%%:*}" = baseline ] ||
                log "MISMATCH: $label: $dead dead letters"
        sort -n "$WORK/times" | awk -v ev="$events" -v rows="$rows" -v n="$REPEAT" \
                -v label="$label" -v dead="$dead" -v steal="$(((s1 - s0) * 1000 / (t1 - t0 + 1)))" '
                { wall[NR] = $1; cpu[NR] = $2 + $3; if ($4 > rss) rss = $4 }
                END {
                        m = int((n + 1) / 2)
                        printf "%-34s %9d %6d %7.2f %11.0f %7.2f %12.0f %11.0f %8.1f %6.1f  %.2f..%.2f\n",
                                label, ev, dead, wall[m], ev / wall[m], cpu[m], ev / cpu[m],
                                rows / wall[m], rss / 1024, steal / 10, wall[1], wall[n]
                }'
}

printf 'tokentally high-cardinality benchmark  %s  %s cores  %s\n' "$(date -u +%FT%TZ)" \
        "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
printf 'binary %s (git %s)  runs per row %s (median by wall)  load average before: %s\n\n' \
        "$TT" "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')" "$REPEAT" \
        "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %9s %6s %7s %11s %7s %12s %11s %8s %6s  %s\n' replay events dead wall_s events/s \
        cpu_s events/CPU-s rows/s RSS_MiB steal% 'wall min..max'
bins=("$TT")
[ -n "${BENCH_BASELINE:-}" ] && bins+=("$BENCH_BASELINE")
for bin in "${bins[@]}"; do
        tag=$([ "$bin" = "$TT" ] && echo this || echo baseline)
        row "$bin" "$tag: $WEEKS x $MODELS models" "$HC"
        [ "$bin" = "$TT" ] && cp "$WORK/out/rollups.jsonl" "$WORK/tt.jsonl"
        row "$bin" "$tag: april-2026 scenario" "$APRIL"
done
printf '(events/s and rows/s per wall second, events/CPU-s per user+sys second, of the\n'
printf ' median run by wall; RSS = the largest peak resident set of the runs;\n'
printf ' steal%% = CPU time the hypervisor took from this VM during the row'"'"'s runs)\n\n'

# ---------------------------------------------------------------- DuckDB ---
: >"$WORK/duck"
for ((i = 1; i <= REPEAT; i++)); do
        /usr/bin/time -f '%e %U %S %M' -o "$WORK/dt" node "$here/duckdb_cardinality.mjs" \
                "$HC" "$WORK/duck.jsonl" "$DUCK_THREADS" >"$WORK/duck.out" ||
                die "DuckDB failed: node bench/duckdb_cardinality.mjs $HC OUT $DUCK_THREADS"
        echo "$(grep -o 'query_s=[0-9.]*' "$WORK/duck.out" | cut -d= -f2) $(cat "$WORK/dt")" >>"$WORK/duck"
done
events=$(wc -l <"$HC")
drows=$(grep -o 'rows=[0-9]*' "$WORK/duck.out" | cut -d= -f2)
printf 'DuckDB %s, the same file, the same rows written (%s MODEL rows):\n' \
        "$(grep -o 'v[0-9.]*' "$WORK/duck.out" | head -1) threads=$DUCK_THREADS" "$drows"
sort -n "$WORK/duck" | awk -v ev="$events" -v rows="$drows" -v n="$REPEAT" '
        { q[NR] = $1; wall[NR] = $2; cpu[NR] = $3 + $4; if ($5 > rss) rss = $5 }
        END {
                m = int((n + 1) / 2)
                printf "  query (timed in node) %.2f s = %.0f events/s, %.0f rows/s (%.2f..%.2f)\n",
                        q[m], ev / q[m], rows / q[m], q[1], q[n]
                printf "  node process: %.2f s wall, %.2f CPU-s = %.0f events/CPU-s, peak RSS %.0f MiB\n",
                        wall[m], cpu[m], ev / cpu[m], rss / 1024
        }'
# Both wrote the same MODEL rows? (week, key, tokens, requests, prev, rank,
# and share and growth to 12 significant digits: DuckDB computes them in
# its own order of operations.)
norm() {
        awk '
        function raw(name,  i, s) {
          i = index($0, "\"" name "\":"); if (!i) return "null"
          s = substr($0, i + length(name) + 3); return substr(s, 1, match(s, /[,}]/) - 1)
        }
        function g(s) { return s == "null" ? s : sprintf("%.12g", s + 0) }
        raw("dimension") == "\"MODEL\"" {
          print raw("week"), raw("key"), raw("tokens"), raw("requests"), raw("prev_tokens"),
                raw("rank"), g(raw("share_pct")), g(raw("wow_growth_pct"))
        }' "$1" | LC_ALL=C sort
}
if cmp -s <(norm "$WORK/tt.jsonl") <(norm "$WORK/duck.jsonl"); then
        echo "  MODEL rows: identical to tokentally's"
else
        echo "  MISMATCH: MODEL rows differ (< tokentally, > DuckDB):"
        diff <(norm "$WORK/tt.jsonl") <(norm "$WORK/duck.jsonl") | head -6
fi
echo

# ----------------------------------------------------------- allocations ---
# jemalloc's statistics at exit (MALLOC_CONF=stats_print:true): allocations
# served by the arenas, for 1/10 of the models and for all of them. Every
# event of this file is a new (week, model) cell; the tables grow by
# doubling, so allocations grow with log(cells), not with events.
allocs() {
        MALLOC_CONF=stats_print:true "$TT" replay --out "$WORK/a" "$1" 2>"$WORK/a.err" >/dev/null
        awk -v ev="$(summary_field "$WORK/a.err" events)" '
                /^Merged arenas stats:/ { merged = 1 }
                merged && $1 == "small:" && !s { s = 1; sm = $3 }
                merged && $1 == "large:" && !l { l = 1; lm = $3 }
                END { print ev, (s && l) ? sm + lm : "?" }' "$WORK/a.err"
}
read -r e1 a1 < <(allocs "$SMALL")
read -r e2 a2 < <(allocs "$HC")
awk -v e1="$e1" -v a1="$a1" -v e2="$e2" -v a2="$a2" 'BEGIN {
        if (a1 == "?") { print "allocations: jemalloc statistics not available"; exit }
        printf "heap allocations: %d for %d events, %d for %d events: %+d for %+d events = %.4f per event\n",
                a1, e1, a2, e2, a2 - a1, e2 - e1, (a2 - a1) / (e2 - e1)
}'
