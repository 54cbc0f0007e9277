#!/usr/bin/env bash
# End to end at high cardinality (issue 11): 12 weeks of the same 100,000
# models (one request per model and week), then one week of 1,000,000
# distinct models, replayed with the defaults (no --max-keys): no dead
# letter, and every WeeklyRollup equal to an independent recount done here in
# awk and sort from the input file (tokens, prompt/completion tokens,
# requests, origin, prev_tokens, growth, share and rank: exact, as doubles
# compare equal), with no row missing or extra. Then --max-keys: the events
# of the models past the bound are dead letters key_limit with their bytes.
set -euo pipefail
T=${TT_BINARY:-build/tokentally}
SRC=${TT_SOURCE_DIR:-.}
PY=/usr/bin/python3
export LC_ALL=C # sort and awk compare keys as bytes, as the rank tie-break
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

# The recount. Cells by (week, dimension, key): prompt, completion,
# requests, and the origin of the latest event (ties: the larger code).
# Weeks are named from 2026-W01's Monday; the input stays within 2026.
awk -v OFS='\t' '
function num(name,  i) {
  i = index($0, "\"" name "\":")
  if (!i) { print "bad input line " NR > "/dev/stderr"; exit 1 }
  return substr($0, i + length(name) + 3) + 0
}
function str(name,  i, s) {
  i = index($0, "\"" name "\":\"")
  if (!i) return ""
  s = substr($0, i + length(name) + 4)
  return substr(s, 1, index(s, "\"") - 1)
}
function add(k, p, c, t, o) {
  P[k] += p; C[k] += c; R[k]++
  if (!(k in LT) || t > LT[k] || (t == LT[k] && o > LO[k])) { LT[k] = t; LO[k] = o }
}
FNR == NR { # the origin map: "author": "CC",
  if (split($0, f, "\"") >= 4) map[f[2]] = f[4]
  next
}
{
  t = num("event_time"); m = str("model"); o = str("origin")
  if (o == "") { a = substr(m, 1, index(m, "/") - 1); o = (a in map) ? map[a] : "ZZ" }
  w = int((t - 1766966400000) / 604800000) + 1
  if (t < 1766966400000 || w > 53) { print "outside 2026: " t > "/dev/stderr"; exit 1 }
  p = num("prompt_tokens"); c = num("completion_tokens")
  add(w SUBSEP "MODEL" SUBSEP m, p, c, t, o)
  add(w SUBSEP "ORIGIN" SUBSEP o, p, c, t, o)
  add(w SUBSEP "TOTAL" SUBSEP "*", p, c, t, o)
}
END {
  for (k in R) {
    split(k, f, SUBSEP)
    printf "%d\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%s\n", f[1], f[2], f[3],
      P[k] + C[k], P[k], C[k], R[k], f[2] == "MODEL" ? LO[k] : "null"
  }
}' "$SRC/schemas/origins.json" "$tmp/in.jsonl" > "$tmp/cells"

# Rank within (week, dimension): tokens descending, then key in byte order;
# share of the week's TOTAL; prev_tokens: the same key the week before.
sort -t "$(printf '\t')" -k1,1n -k2,2 -k4,4nr -k3,3 "$tmp/cells" > "$tmp/ranked"
awk -F '\t' '
FNR == NR { tok[$1, $2, $3] = $4; if ($2 == "TOTAL") total[$1] = $4; next }
{
  key = $1 SUBSEP $2
  rank = key == last ? rank + 1 : 1; last = key
  pk = ($1 - 1) SUBSEP $2 SUBSEP $3
  prev = (pk in tok) ? tok[pk] : "null"
  growth = prev == "null" || prev == 0 ? "null" : sprintf("%.17g", ($4 - prev) / prev * 100)
  share = total[$1] ? sprintf("%.17g", $4 * 100 / total[$1]) : "0"
  printf "2026-W%02d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\tFINAL\t0\n",
    $1, $2, $3, $4, $5, $6, $7, $8, prev == "null" ? prev : sprintf("%.0f", prev),
    growth, share, rank
}' "$tmp/cells" "$tmp/ranked" | sort > "$tmp/expected"

# tokentally's rows in the same form (numbers read and printed the same way).
awk '
function raw(name,  i, s) {
  i = index($0, "\"" name "\":")
  s = substr($0, i + length(name) + 3)
  return substr(s, 1, match(s, /[,}]/) - 1)
}
function str(name,  s) { s = raw(name); return s == "null" ? s : substr(s, 2, length(s) - 2) }
function int_or_null(name,  s) { s = raw(name); return s == "null" ? s : sprintf("%.0f", s + 0) }
function dbl_or_null(name,  s) { s = raw(name); return s == "null" ? s : sprintf("%.17g", s + 0) }
{
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
    str("week"), str("dimension"), str("key"), int_or_null("tokens"),
    int_or_null("prompt_tokens"), int_or_null("completion_tokens"),
    int_or_null("requests"), str("origin"), int_or_null("prev_tokens"),
    dbl_or_null("wow_growth_pct"), dbl_or_null("share_pct"), raw("rank"),
    str("status"), raw("revision")
}' "$tmp/out/rollups.jsonl" | sort > "$tmp/actual"

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
