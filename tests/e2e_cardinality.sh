#!/usr/bin/env bash
# End to end at high cardinality (issue 11): 12 weeks of the same 100,000
# models (one request per model and week), then one week of 1,000,000
# distinct models, replayed with the defaults (no --max-keys): no dead
# letter, and every WeeklyRollup, in the order written, equal to an
# independent recount done here in Python from the input file (tokens,
# prompt/completion tokens, requests, origin, prev_tokens, growth, share
# and rank: exact, as doubles compare equal), with no row missing or extra.
# Then --max-keys: the events of the models past the bound are dead letters
# key_limit with their bytes.
set -euo pipefail
T=${TT_BINARY:-build/tokentally}
SRC=${TT_SOURCE_DIR:-.}
PY=/usr/bin/python3
export LC_ALL=C
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

$PY "$SRC/tests/gen_cardinality.py" --weeks 12 --models 100000 --big 1000000 \
  "$tmp/in.jsonl"
"$T" replay --out "$tmp/out" "$tmp/in.jsonl"
if [ -s "$tmp/out/dead-letters.jsonl" ]; then
  echo "FAIL: $(wc -l < "$tmp/out/dead-letters.jsonl") dead letters" >&2
  head -c 600 "$tmp/out/dead-letters.jsonl" >&2
  exit 1
fi

# tokentally's rows as text (numbers read and printed the same way as the
# recount prints them), in the order written. The line is split at ':' and
# ',' (no key or value here has them): names and values alternate, in the
# schema's field order, which is checked.
awk -F '[:,]' '
function n(s) { return s == "null" ? s : sprintf("%.0f", s + 0) }
function d(s) { return s == "null" ? s : sprintf("%.17g", s + 0) }
{
  if ($1 != "{\"week\"" || $11 != "\"tokens\"" || $25 != "\"rank\"" ||
      $29 != "\"revision\"") { print "unexpected row: " $0 > "/dev/stderr"; exit 1 }
  gsub(/"/, "")
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", $2, $6, $8,
    n($12), n($14), n($16), n($18), $10, n($20), d($22), d($24), $26, $28, $30
}' "$tmp/out/rollups.jsonl" > "$tmp/actual" &
actual=$!

# The recount, from the input file alone, in the order rows are written
# (weeks in order; TOTAL, ORIGIN by rank, MODEL by rank): cells by (week,
# dimension, key), the origin of a model's latest event (ties: the larger
# code), rank by tokens then key bytes, share of the week's total, prev and
# growth from the week before. Python's float arithmetic on these integers
# is the IEEE arithmetic of SPEC §4's formulas, and %.17g is exact.
$PY - "$SRC/schemas/origins.json" "$tmp/in.jsonl" > "$tmp/expected" <<'PYEOF'
import json, sys, datetime
amap = json.load(open(sys.argv[1]))
M, O, T = {}, {}, {}
WEEK, MONDAY = 604800000, 345600000  # 1970-01-05 was a Monday
for line in open(sys.argv[2]):
    # {"request_id":"r","event_time":T,"model":"m"[,"origin":"o"],
    #  "prompt_tokens":P,"completion_tokens":C}, split at its quotes
    f = line.split('"')
    if f[5] != "event_time" or f[7] != "model":
        sys.exit("bad input line: " + line)
    t, m = int(f[6][1:-1]), f[9]
    if f[11] == "origin":
        o, p, c = f[13], int(f[16][1:-1]), int(f[18][1:-2])
    else:
        o = amap.get(m.split("/", 1)[0], "ZZ")
        p, c = int(f[12][1:-1]), int(f[14][1:-2])
    w = (t - MONDAY) // WEEK
    x = M.get((w, m))
    if x is None:
        M[(w, m)] = [p, c, 1, t, o]
    else:
        x[0] += p; x[1] += c; x[2] += 1
        if t > x[3] or (t == x[3] and o > x[4]):
            x[3], x[4] = t, o
    for d, k in ((O, (w, o)), (T, (w, "*"))):
        x = d.get(k)
        if x is None:
            d[k] = [p, c, 1]
        else:
            x[0] += p; x[1] += c; x[2] += 1
tok = lambda x: x[0] + x[1]
name = {}
for w in {k[0] for k in T}:
    y, n, _ = datetime.datetime.fromtimestamp(
        (w * WEEK + MONDAY) / 1000, datetime.timezone.utc).isocalendar()
    name[w] = "%04d-W%02d" % (y, n)
out = []
for w in sorted(name):
    total = tok(T[(w, "*")])
    for dim, cells in (("TOTAL", T), ("ORIGIN", O), ("MODEL", M)):
        rows = sorted(((-tok(x), k[1].encode(), k[1], x)
                       for k, x in cells.items() if k[0] == w))
        for rank, (_, _, key, x) in enumerate(rows, 1):
            v = tok(x)
            px = cells.get((w - 1, key))
            prev = "null" if px is None else str(tok(px))
            growth = "null" if px is None or tok(px) == 0 else \
                "%.17g" % ((v - tok(px)) / tok(px) * 100)
            share = "%.17g" % (v * 100.0 / total) if total else "0"
            origin = x[4] if dim == "MODEL" else "null"
            out.append("%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\tFINAL\t0\n"
                       % (name[w], dim, key, v, x[0], x[1], x[2], origin, prev,
                          growth, share, rank))
sys.stdout.write("".join(out))
PYEOF
wait "$actual"
if ! cmp -s "$tmp/expected" "$tmp/actual"; then
  echo "FAIL: rows differ from the recount (< recount, > tokentally):" >&2
  diff "$tmp/expected" "$tmp/actual" | head -10 >&2
  exit 1
fi
echo "recount: $(wc -l < "$tmp/expected") rows equal, 0 dead letters"

# --max-keys is the operator's explicit bound: the events of the models past
# it in a week are dead letters key_limit carrying their original bytes,
# and the replay says so on stderr.
$PY "$SRC/tests/gen_cardinality.py" --weeks 2 --models 3000 "$tmp/small.jsonl"
"$T" replay --max-keys 1000 --out "$tmp/lim" "$tmp/small.jsonl" 2> "$tmp/lim.err"
grep -q "WARNING: --max-keys 1000 reached: 4000 valid events" "$tmp/lim.err" ||
  { echo "FAIL: no warning:" >&2; cat "$tmp/lim.err" >&2; exit 1; }
$PY - "$tmp/small.jsonl" "$tmp/lim" <<'PYEOF'
import base64, json, sys
lines = open(sys.argv[1], "rb").read().splitlines()
dead = [json.loads(l) for l in open(sys.argv[2] + "/dead-letters.jsonl")]
assert len(dead) == 4000, len(dead)
for d in dead:
    assert d["reason"] == "key_limit", d
    assert base64.b64decode(d["payload_base64"]) == lines[d["offset"]], d
# the first 1000 models of each week are counted, the others are not
rows = [json.loads(l) for l in open(sys.argv[2] + "/rollups.jsonl")]
models = [r for r in rows if r["dimension"] == "MODEL"]
assert len(models) == 2000, len(models)
assert all(int(r["key"].split("-")[-1]) < 1000 for r in models)
assert {r["requests"] for r in rows if r["dimension"] == "TOTAL"} == {1000}
print("--max-keys 1000: 4000 dead letters key_limit with their bytes")
PYEOF
