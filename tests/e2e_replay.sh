#!/usr/bin/env bash
# End to end: gen | replay reproduces the headline through JSON Lines and
# through OCF; outputs are identical with 1 or 2 workers and across runs
# (apart from emitted_at); every bad-input kind goes to dead-letters.jsonl
# with its reason, offset and original bytes, and the totals are those of
# the valid events alone; late events revise, or are dead letters.
set -euo pipefail
T=${TT_BINARY:-build/tokentally}
SRC=${TT_SOURCE_DIR:-.}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

strip() { # drop emitted_at so that runs can be compared byte for byte
  sed -E 's/,"emitted_at":[0-9]+//' "$1"
}
same() {
  for f in rollups.jsonl streaks.jsonl dead-letters.jsonl; do
    if ! cmp -s <(strip "$1/$f") <(strip "$2/$f"); then
      echo "FAIL: $1/$f and $2/$f differ" >&2
      diff <(strip "$1/$f") <(strip "$2/$f") | head -5 >&2
      exit 1
    fi
  done
}

echo "== gen | replay (JSON Lines on a pipe)"
"$T" gen --scenario april-2026 --out - | "$T" replay --out "$tmp/j" --workers 2 -
$PY "$SRC/tests/headline.py" --check "$tmp/j" >/dev/null

echo "== OCF, 1 and 2 workers, twice"
"$T" gen --scenario april-2026 --out "$tmp/s.avro"
"$T" replay --out "$tmp/o1" --workers 1 "$tmp/s.avro"
"$T" replay --out "$tmp/o2" --workers 2 "$tmp/s.avro"
"$T" replay --out "$tmp/o3" --workers 2 "$tmp/s.avro"
$PY "$SRC/tests/headline.py" --check "$tmp/o1" >/dev/null
same "$tmp/o1" "$tmp/o2"
same "$tmp/o2" "$tmp/o3"
same "$tmp/o1" "$tmp/j"   # the same events through either format
test "$(wc -l < "$tmp/o1/dead-letters.jsonl")" -eq 0

echo "== --emit-provisional: PROVISIONAL rows by watermark progress, same FINAL rows"
"$T" replay --emit-provisional --emit-interval 1d --out "$tmp/p" "$tmp/s.avro"
$PY - "$tmp/p" "$tmp/o1" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/rollups.jsonl")]
prov = [r for r in rows if r["status"] == "PROVISIONAL"]
assert len(prov) > 100 and all(r["revision"] == 0 for r in prov), len(prov)
# every week's PROVISIONAL rows come before its FINAL ones
seen_final = set()
for r in rows:
    if r["status"] == "FINAL":
        seen_final.add(r["week"])
    else:
        assert r["week"] not in seen_final, r
strip = lambda rs: [json.dumps({k: v for k, v in r.items() if k != "emitted_at"})
                    for r in rs if r["status"] != "PROVISIONAL"]
ref = [json.loads(l) for l in open(sys.argv[2] + "/rollups.jsonl")]
assert strip(rows) == strip(ref)
print("provisional rows:", len(prov))
PYEOF

echo "== gzip JSON Lines"
"$T" gen --scenario april-2026 --out "$tmp/s.jsonl.gz"
"$T" replay --out "$tmp/g" "$tmp/s.jsonl.gz"
same "$tmp/o1" "$tmp/g"

echo "== every bad-input kind mixed in"
"$T" gen --scenario april-2026 --invalid-rate 0.002 --out "$tmp/bad.jsonl"
"$T" replay --out "$tmp/b" "$tmp/bad.jsonl"
$PY - "$tmp/bad.jsonl" "$tmp/b" "$tmp/o1" <<'PYEOF'
import base64, json, sys
src, out, good = sys.argv[1:]
lines = open(src, "rb").read().split(b"\n")
reasons = {}
for dl in map(json.loads, open(out + "/dead-letters.jsonl")):
    assert dl["source"] == src, dl
    raw = base64.b64decode(dl["payload_base64"])
    assert lines[dl["offset"]].rstrip(b"\r") == raw, (dl, lines[dl["offset"]])
    assert dl["detail"], dl
    reasons[dl["reason"]] = reasons.get(dl["reason"], 0) + 1
want = {"malformed", "missing_field", "negative_tokens", "tokens_too_large",
        "time_out_of_range", "bad_model", "bad_origin"}
assert want <= set(reasons), (want - set(reasons), reasons)
strip = lambda p: [l.split(',"emitted_at"')[0] for l in open(p)]
assert strip(out + "/rollups.jsonl") == strip(good + "/rollups.jsonl")
assert strip(out + "/streaks.jsonl") == strip(good + "/streaks.jsonl")
print("dead letters by reason:", dict(sorted(reasons.items())))
PYEOF

echo "== late events: revise, dlq, too_late"
$PY - "$tmp/late.jsonl" <<'PYEOF'
import json, sys
W10 = 1772409600000  # Monday 2026-03-02, start of 2026-W10
W14 = 1774828800000
ev = lambda i, t, m, p: json.dumps({"request_id": "r%d" % i, "event_time": t,
    "model": m, "origin": None, "prompt_tokens": p, "completion_tokens": 1,
    "provider": None})
rows = [ev(0, W10 + 3600000, "openai/x", 99), ev(1, W14 + 3600000, "openai/x", 9),
        ev(2, W10 + 7200000, "qwen/q", 1000),          # late for 2026-W10
        "", ev(3, W14 + 7200000, "qwen/q", 5)]
open(sys.argv[1], "w").write("\n".join(rows) + "\n")
PYEOF
"$T" replay --out "$tmp/l1" "$tmp/late.jsonl"
"$T" replay --out "$tmp/l2" --late dlq "$tmp/late.jsonl"
"$T" replay --out "$tmp/l3" --retain-weeks 2 "$tmp/late.jsonl"
$PY - "$tmp" <<'PYEOF'
import json, sys
d = sys.argv[1]
rd = lambda p: [json.loads(l) for l in open(p)]
r1 = rd(d + "/l1/rollups.jsonl")
tot = [r for r in r1 if r["week"] == "2026-W10" and r["dimension"] == "TOTAL"]
assert [(r["status"], r["revision"], r["tokens"]) for r in tot] == \
    [("FINAL", 0, 100), ("REVISED", 1, 1101)], tot
cn = [r for r in r1 if r["week"] == "2026-W10" and r["key"] == "CN"]
assert [(r["status"], r["revision"]) for r in cn] == [("REVISED", 0)], cn
assert rd(d + "/l1/dead-letters.jsonl") == []
s = [x for x in rd(d + "/l1/streaks.jsonl")
     if x["rule"] == "leader:origin" and x["week"] == "2026-W10"]
assert [x["holder"] for x in s] == ["US", "CN"], s
for sub, reason in (("l2", "late"), ("l3", "too_late")):
    dl = rd(d + "/%s/dead-letters.jsonl" % sub)
    assert [(x["reason"], x["offset"]) for x in dl] == [(reason, 2)], dl
print("late: revise, dlq and too_late ok")
PYEOF

echo "== options from the environment"
TOKENTALLY_LATE=dlq "$T" replay --out "$tmp/l4" "$tmp/late.jsonl"
grep -q '"reason":"late"' "$tmp/l4/dead-letters.jsonl"
if TOKENTALLY_LATE=never "$T" replay --out "$tmp/x" "$tmp/late.jsonl" 2>"$tmp/err"; then exit 1; fi
grep -q "TOKENTALLY_LATE" "$tmp/err"

echo "== errors: unreadable file, bad option"
if "$T" replay --out "$tmp/x" /nonexistent.jsonl 2>"$tmp/err"; then exit 1; fi
grep -q "nonexistent" "$tmp/err"
if "$T" replay --out "$tmp/x" --bogus 1 "$tmp/late.jsonl" 2>"$tmp/err"; then exit 1; fi
grep -q "unknown option '--bogus'" "$tmp/err"
echo "e2e_replay: all ok"
