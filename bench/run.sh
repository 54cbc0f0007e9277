#!/usr/bin/env bash
# tokentally benchmark: replay throughput, CPU cost and peak RSS on a generated
# file of >= 10 M events, as JSON Lines and as Avro OCF (deflate), with the
# default, 1 and 2 workers; the same weekly GROUP BY in DuckDB on the same
# JSON Lines file; heap allocation counts at ~1 M vs ~10 M events.
#
# This is a benchmark, not a test: it prints figures and never fails on speed.
# It does fail when a command fails (crash, non-zero exit), and prints
# "MISMATCH" lines when outputs disagree (formats, worker counts, DuckDB,
# the SPEC §9 headline).
#
# Environment (all optional):
#   BENCH_BUILD_DIR    release build dir            (default: <repo>/build-bench)
#   BENCH_TOKENTALLY   use this binary, skip the build
#   BENCH_DATA_DIR     generated inputs             (default: bench/data)
#   BENCH_SCALE        gen --scale of the big file  (default: 1.7e-3, ~10.2 M events)
#   BENCH_SMALL_SCALE  gen --scale of the small one (default: 1.7e-4, ~1.0 M events)
#   BENCH_SEED         gen --seed                   (default: 1)
#   BENCH_REPEAT       runs per configuration; the median by wall is shown,
#                      and the best events/s (default: 5)
#   BENCH_DUCKDB_THREADS  DuckDB threads            (default: 2)
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
BUILD=${BENCH_BUILD_DIR:-$repo/build-bench}
DATA=${BENCH_DATA_DIR:-$here/data}
SCALE=${BENCH_SCALE:-1.7e-3}
SMALL_SCALE=${BENCH_SMALL_SCALE:-1.7e-4}
SEED=${BENCH_SEED:-1}
REPEAT=${BENCH_REPEAT:-5}
DUCK_THREADS=${BENCH_DUCKDB_THREADS:-2}
MIN_EVENTS=10000000

# shellcheck source=bench/setup.sh
. "$here/setup.sh"

# ------------------------------------------------------------ input files ---
# Reused when present and generated with the same parameters and the same
# generator sources (a stamp file next to each input records both).
gen_hash=$(cd "$repo" && cat pipeline/core/gen.c pipeline/cli/cmd_gen.c | sha256sum | cut -c1-16)
gen_file() { # scale ext -> prints the path
        local scale=$1 ext=$2 f stamp want
        f=$DATA/april-2026-scale$scale-seed$SEED.$ext
        stamp=$f.params
        want="scenario=april-2026 scale=$scale seed=$SEED format=$ext gen_src=$gen_hash"
        [ "$ext" = avro ] && want="$want codec=deflate"
        if [ -f "$f" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
                log "reusing $f"
        else
                log "generating $f"
                local fmt=(--format jsonl)
                [ "$ext" = avro ] && fmt=(--format avro --codec deflate)
                rm -f "$f" "$stamp"
                "$TT" gen --scenario april-2026 --scale "$scale" --seed "$SEED" \
                        "${fmt[@]}" --out "$f.tmp" >&2
                mv "$f.tmp" "$f"
                printf '%s\n' "$want" >"$stamp"
        fi
        printf '%s\n' "$f"
}
BIG_JSONL=$(gen_file "$SCALE" jsonl)
BIG_AVRO=$(gen_file "$SCALE" avro)
SMALL_JSONL=$(gen_file "$SMALL_SCALE" jsonl)
SMALL_AVRO=$(gen_file "$SMALL_SCALE" avro)
# Measure the program, not the disk: the inputs start in the page cache.
cat "$BIG_JSONL" "$BIG_AVRO" "$SMALL_JSONL" "$SMALL_AVRO" >/dev/null

# ----------------------------------------------------------------- replay ---
# run_replay TAG FILE [replay options...]: one timed run; leaves
# $WORK/TAG.time ("wall user sys maxrss_kib"), TAG.err, and outputs in TAG.out/.
run_replay() {
        local tag=$1 file=$2; shift 2
        rm -rf "$WORK/$tag.out"
        if ! /usr/bin/time -f '%e %U %S %M' -o "$WORK/$tag.time" \
                "$TT" replay --out "$WORK/$tag.out" "$@" "$file" 2>"$WORK/$tag.err"; then
                cat "$WORK/$tag.err" >&2
                die "replay failed: $TT replay --out DIR $* $file"
        fi
}
summary_field() { # errfile word -> number before that word in the summary line
        grep '^replay:' "$1" | tail -1 | sed -E "s/.* ([0-9]+) $2.*/\\1/"
}
norm() { sed -E 's/"emitted_at":[0-9]+//' "$1"; }

printf 'tokentally benchmark  %s  %s cores  %s\n' "$(date -u +%FT%TZ)" "$(nproc)" \
        "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
printf 'binary %s (git %s)  scale %s  seed %s  runs per row %s (median by wall)\n\n' \
        "$TT" "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "$SCALE" "$SEED" "$REPEAT"

declare -A EVS BEST  # tag -> events per wall-second of the median / best run
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
printf '%-6s %-11s %11s %8s %13s %8s %13s %9s  %-11s %s\n' format workers events \
        wall_s 'events/s' cpu_s 'events/CPU-s' 'RSS_MiB' 'wall min..max' 'best events/s'
ref_out=""
mismatch=0
for fmt in jsonl avro; do
        file=$BIG_JSONL; [ "$fmt" = avro ] && file=$BIG_AVRO
        for w in default 1 2; do
                opts=(); [ "$w" != default ] && opts=(--workers "$w")
                : >"$WORK/times"
                for ((i = 1; i <= REPEAT; i++)); do
                        run_replay "$fmt-$w-$i" "$file" "${opts[@]}"
                        cat "$WORK/$fmt-$w-$i.time" >>"$WORK/times"
                done
                tag=$fmt-$w-1
                events=$(summary_field "$WORK/$tag.err" events)
                accepted=$(summary_field "$WORK/$tag.err" accepted)
                dlq=$(summary_field "$WORK/$tag.err" dead)
                [ "$accepted" = "$events" ] && [ "$dlq" = 0 ] ||
                        { log "MISMATCH: $fmt workers=$w: $events events, $accepted accepted, $dlq dead letters"; mismatch=1; }
                [ "$events" -ge "$MIN_EVENTS" ] || [ "$w" != default ] ||
                        log "warning: only $events events at scale $SCALE (< $MIN_EVENTS)"
                # Same rows (apart from emitted_at) for every run, worker count and format.
                for ((i = 1; i <= REPEAT; i++)); do
                        o=$WORK/$fmt-$w-$i.out
                        if [ -z "$ref_out" ]; then ref_out=$o; continue; fi
                        for f in rollups streaks dead-letters; do
                                cmp -s <(norm "$ref_out/$f.jsonl") <(norm "$o/$f.jsonl") ||
                                        { log "MISMATCH: $f.jsonl of $fmt workers=$w run $i differs from $(basename "$ref_out")"; mismatch=1; }
                        done
                done
                sort -n "$WORK/times" | awk -v ev="$events" -v fmt="$fmt" -v w="$w" -v n="$REPEAT" -v nproc="$(nproc)" '
                        { wall[NR] = $1; cpu[NR] = $2 + $3; if ($4 > rss) rss = $4 }
                        END {
                                m = int((n + 1) / 2)
                                printf "%-6s %-11s %11d %8.2f %13.0f %8.2f %13.0f %9.1f  %-11s %13.0f\n",
                                        fmt, (w == "default" ? "default(" nproc ")" : w), ev,
                                        wall[m], ev / wall[m], cpu[m], ev / cpu[m], rss / 1024,
                                        sprintf("%.2f..%.2f", wall[1], wall[n]), ev / wall[1]
                        }'
                EVS[$fmt-$w]=$(sort -n "$WORK/times" | awk -v ev="$events" -v n="$REPEAT" \
                        '{ wall[NR] = $1 } END { printf "%.0f", ev / wall[int((n + 1) / 2)] }')
                BEST[$fmt-$w]=$(sort -n "$WORK/times" | awk -v ev="$events" \
                        'NR == 1 { printf "%.0f", ev / $1 }')
                # Keep only the first run's outputs of each configuration.
                for ((i = 2; i <= REPEAT; i++)); do rm -rf "$WORK/$fmt-$w-$i.out"; done
        done
done
printf '(events/s = events / wall seconds; events/CPU-s = events / (user + sys) seconds;\n'
printf ' wall_s, events/s, cpu_s, events/CPU-s are from the median run by wall;\n'
printf ' RSS = peak resident set size, the largest of the runs)\n'
printf 'load average before the runs: %s\n\n' "$load_before"

# SPEC §9 headline at this scale: 2026-W14 ORIGIN CN = 12.96e12 x scale, TOTAL = 27e12 x scale.
if command -v jq >/dev/null; then
        read -r want_cn want_total < <(awk -v s="$SCALE" 'BEGIN { printf "%.0f %.0f\n", 12.96e12 * s, 27e12 * s }')
        pick() { jq -rs --arg d "$1" --arg k "$2" \
                '[.[] | select(.week == "2026-W14" and .dimension == $d and .key == $k)] | max_by(.revision) | "\(.tokens) \(.wow_growth_pct) \(.share_pct)"' \
                "$ref_out/rollups.jsonl"; }
        read -r cn cn_growth cn_share < <(pick ORIGIN CN)
        read -r _ us _ < <(pick ORIGIN US)
        read -r total _ < <(pick TOTAL '*')
        printf 'headline 2026-W14: CN %s tokens (expected %s), growth %.2f%%, share %.2f%%; US growth %.2f%%; TOTAL %s (expected %s)' \
                "$cn" "$want_cn" "$cn_growth" "$cn_share" "$us" "$total" "$want_total"
        if [ "$cn" = "$want_cn" ] && [ "$total" = "$want_total" ]; then echo "  ok"; else echo "  MISMATCH"; mismatch=1; fi
fi
[ "$mismatch" = 0 ] && echo "outputs: identical rows (apart from emitted_at) across formats, worker counts and runs"
echo

# ----------------------------------------------------------------- DuckDB ---
# The same weekly GROUP BY over the same JSON Lines file, in the same run.
: >"$WORK/duck"
for ((i = 1; i <= REPEAT; i++)); do
        /usr/bin/time -f '%e %U %S %M' -o "$WORK/duck.time" \
                node "$here/duckdb_query.mjs" "$BIG_JSONL" "$DUCK_THREADS" \
                "$ref_out/rollups.jsonl" >"$WORK/duck.out" ||
                die "DuckDB query failed: node bench/duckdb_query.mjs $BIG_JSONL $DUCK_THREADS"
        grep '^check' "$WORK/duck.out" | grep -q '^check ok' || { grep '^check' "$WORK/duck.out"; mismatch=1; }
        q=$(grep -o 'query_s=[0-9.]*' "$WORK/duck.out" | cut -d= -f2)
        echo "$q $(cat "$WORK/duck.time")" >>"$WORK/duck"
done
duck_head=$(grep '^duckdb' "$WORK/duck.out" | sed 's/ query_s=.*//')
duck_events=$(grep -o 'events=[0-9]*' "$WORK/duck.out" | cut -d= -f2)
printf 'DuckDB: %s on %s\n' "$duck_head" "$(basename "$BIG_JSONL")"
grep -h '^check' "$WORK/duck.out"
sort -n "$WORK/duck" | awk -v ev="$duck_events" -v n="$REPEAT" \
        -v tt1="${EVS[jsonl-default]}" -v tt2="${EVS[jsonl-2]}" \
        -v bt1="${BEST[jsonl-default]}" -v bt2="${BEST[jsonl-2]}" '
        { q[NR] = $1; wall[NR] = $2; cpu[NR] = $3 + $4; if ($5 > rss) rss = $5 }
        END {
                m = int((n + 1) / 2)
                printf "  query (timed inside node, median of %d): %.3f s  (%.3f..%.3f)  = %.0f events/s\n",
                        n, q[m], q[1], q[n], ev / q[m]
                printf "  node process (/usr/bin/time, same run): %.2f s wall, %.2f CPU-s, peak RSS %.0f MiB\n",
                        wall[m], cpu[m], rss / 1024
                printf "  ratio tokentally/DuckDB, JSON Lines events/s (wall), median vs median: %.2fx (default workers), %.2fx (--workers 2)\n",
                        tt1 / (ev / q[m]), tt2 / (ev / q[m])
                printf "  ratio tokentally/DuckDB, JSON Lines events/s (wall), best vs best:     %.2fx (default workers), %.2fx (--workers 2)\n",
                        bt1 / (ev / q[1]), bt2 / (ev / q[1])
        }'
echo

# ------------------------------------------------------------ allocations ---
# jemalloc (linked into tokentally) prints its statistics at exit with
# MALLOC_CONF=stats_print:true. "Merged arenas" small/large nmalloc count
# every allocation served by the arenas (thread caches are filled from them);
# nrequests counts malloc/calloc/realloc calls that reached jemalloc. If they
# do not grow with the number of events, the hot path does not allocate.
alloc_run() { # tag file -> "events small_nmalloc large_nmalloc small_nreq large_nreq rss_kib"
        local tag=$1 file=$2
        rm -rf "$WORK/$tag.out"
        MALLOC_CONF=stats_print:true /usr/bin/time -f '%M' -o "$WORK/$tag.time" \
                "$TT" replay --out "$WORK/$tag.out" "$file" 2>"$WORK/$tag.err" ||
                die "replay failed: MALLOC_CONF=stats_print:true $TT replay --out DIR $file"
        awk -v ev="$(summary_field "$WORK/$tag.err" events)" -v rss="$(cat "$WORK/$tag.time")" '
                /^Merged arenas stats:/ { merged = 1 }
                merged && $1 == "small:" && !s { s = 1; sm = $3; sr = $7 }
                merged && $1 == "large:" && !l { l = 1; lm = $3; lr = $7 }
                END { if (!s || !l) { print ev, "?", "?", "?", "?", rss } else print ev, sm, lm, sr, lr, rss }' \
                "$WORK/$tag.err"
}
echo "heap allocations (jemalloc stats at exit, default workers):"
printf '%-6s %11s %14s %14s %14s %14s %9s\n' format events 'small nmalloc' 'large nmalloc' \
        'small nreq' 'large nreq' 'RSS_MiB'
for fmt in jsonl avro; do
        small=$SMALL_JSONL big=$BIG_JSONL
        [ "$fmt" = avro ] && small=$SMALL_AVRO big=$BIG_AVRO
        a=$(alloc_run "$fmt-small" "$small")
        b=$(alloc_run "$fmt-big" "$big")
        for r in "$a" "$b"; do
                # shellcheck disable=SC2086
                set -- $r
                printf '%-6s %11s %14s %14s %14s %14s %9.1f\n' "$fmt" "$1" "$2" "$3" "$4" "$5" "$(awk -v k="$6" 'BEGIN{print k/1024}')"
        done
        awk -v a="$a" -v b="$b" -v fmt="$fmt" 'BEGIN {
                split(a, x, " "); split(b, y, " ")
                if (x[2] == "?") { print "  " fmt ": jemalloc statistics not available"; exit }
                d = (y[2] + y[3]) - (x[2] + x[3]); de = y[1] - x[1]
                printf "  %s: %+d allocations for %+d events = %.7f allocations per event\n", fmt, d, de, d / de
        }'
done
echo

# ------------------------------------------------------------------- perf ---
if command -v perf >/dev/null &&
        perf stat -x, -e instructions -o "$WORK/perf.probe" true 2>/dev/null &&
        ! grep -q 'not supported\|not counted' "$WORK/perf.probe"; then
        echo "perf stat -e instructions (default workers):"
        for fmt in jsonl avro; do
                file=$BIG_JSONL; [ "$fmt" = avro ] && file=$BIG_AVRO
                perf stat -x, -e instructions -o "$WORK/perf.$fmt" \
                        "$TT" replay --out "$WORK/perf.out" "$file" 2>"$WORK/perf.err"
                ins=$(grep instructions "$WORK/perf.$fmt" | cut -d, -f1)
                ev=$(summary_field "$WORK/perf.err" events)
                awk -v i="$ins" -v e="$ev" -v f="$fmt" 'BEGIN { printf "  %-6s %.0f instructions, %.0f per event\n", f, i, i / e }'
        done
else
        echo "perf stat: hardware counters not supported here, skipped"
fi

[ "$mismatch" = 0 ] || { echo; echo "some outputs did not match (see MISMATCH above)"; }
