#!/usr/bin/env bash
# demo --serve: after the leaderboard, the page and the JSON API of the
# embedded cluster's output topics at the printed URL, caught up with what
# replay of the same scenario writes (380 rollups, 30 streak changes, 10
# weeks; 2026-W14's origins the same tokens as replay's rows), the page's
# HTML at /; SIGINT ends it with exit 0. Without --serve, demo says how to
# get the page.
set -euo pipefail
T=${TT_BINARY:-build/tokentally}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$T" gen --out "$tmp/s.avro" 2>/dev/null
"$T" replay --out "$tmp/ref" "$tmp/s.avro" 2>/dev/null

"$T" demo --serve --listen 127.0.0.1:0 --workers 2 > "$tmp/out" 2> "$tmp/err" &
pid=$!
for _ in $(seq 1 600); do
  grep -q "^ready:" "$tmp/out" && break
  kill -0 "$pid" 2>/dev/null || fail "demo exited early: $(tail -3 "$tmp/err")"
  sleep 0.5
done
grep -qx "ready: caught up with 380 WeeklyRollup and 30 StreakChange records, 10 weeks; following" "$tmp/out" ||
  fail "no ready line: $(tail -3 "$tmp/out")"
url=$(sed -n 's|^serving \(http://127.0.0.1:[0-9]*\)/ .*|\1|p' "$tmp/out")
[ -n "$url" ] || fail "no URL line"
/usr/bin/python3 - "$url" "$tmp/ref/rollups.jsonl" <<'PY' || fail "API and page"
import json, sys, urllib.request
url, ref = sys.argv[1], sys.argv[2]
want = {}
for line in open(ref):
    r = json.loads(line)
    if r["week"] == "2026-W14" and r["dimension"] == "ORIGIN":
        want[r["key"]] = r["tokens"]
get = lambda p: urllib.request.urlopen(url + p, timeout=30)
assert get("/readyz").read() == b"ready\n"
w = json.load(get("/api/v1/weeks"))
assert len(w["weeks"]) == 10 and w["newest"] == "2026-W14", w
rows = json.load(get("/api/v1/weeks/2026-W14?dimension=origin&top=100"))["rows"]
got = {r["key"]: r["tokens"] for r in rows}
assert got == want, (got, want)
page = get("/").read().decode()
assert page.startswith("<!DOCTYPE html>") and "api/v1/page" in page
print("demo --serve: %d origins of 2026-W14 as replay counts them" % len(got))
PY
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "demo --serve exited $rc on SIGINT"
echo "PASS: demo --serve"
