#!/usr/bin/env bash
# demo --keep: the embedded cluster outlives the leaderboard, its address is
# printed only then, another process reads the output topics from it (380
# rollups and 30 streak changes: the april-2026 scenario's 10 weeks, as
# replay counts them), and SIGINT ends it with exit 0. Without --keep no
# address is printed (the cluster is gone when demo exits).
set -euo pipefail
T=${TT_BINARY:-build/tokentally}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# The reference counts, from replay of the same scenario.
"$T" gen --out "$tmp/s.avro" 2>/dev/null
"$T" replay --out "$tmp/ref" "$tmp/s.avro" 2>/dev/null
nroll=$(wc -l < "$tmp/ref/rollups.jsonl")
nstreak=$(wc -l < "$tmp/ref/streaks.jsonl")

"$T" demo --keep --workers 2 > "$tmp/out" 2> "$tmp/err" &
pid=$!
for _ in $(seq 1 600); do
  grep -q "stays up at" "$tmp/out" && break
  kill -0 "$pid" 2>/dev/null || fail "demo exited early: $(tail -3 "$tmp/err")"
  sleep 0.5
done
addr=$(sed -n 's/^The embedded Kafka cluster stays up at \([0-9.]*:[0-9]*\) until Ctrl-C.*/\1/p' "$tmp/out")
[ -n "$addr" ] || fail "no address line: $(tail -3 "$tmp/out")"
# The address appears nowhere before the leaderboard is done.
[ "$(grep -c "$addr" "$tmp/out")" = 2 ] || fail "address printed elsewhere: $(grep -n "$addr" "$tmp/out")"
"$T" tail --brokers "$addr" --from-beginning --exit-at-eof \
  --topic token-usage.rollups,token-usage.streaks > "$tmp/tail.jsonl" 2>"$tmp/tail.err" ||
  fail "tail against the kept cluster: $(tail -3 "$tmp/tail.err")"
r=$(grep -c '"type":"WeeklyRollup"' "$tmp/tail.jsonl" || true)
s=$(grep -c '"type":"StreakChange"' "$tmp/tail.jsonl" || true)
[ "$r" = "$nroll" ] && [ "$s" = "$nstreak" ] ||
  fail "tail read $r rollups and $s streak changes, replay gives $nroll and $nstreak"
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "demo --keep after SIGINT: exit $rc"
echo "ok  demo --keep at $addr: $r rollups, $s streak changes read by tail; SIGINT -> exit 0"

"$T" demo --workers 2 > "$tmp/out2" 2>/dev/null || fail "demo: exit $?"
! grep -Eq '127\.0\.0\.1|localhost|:[0-9]{4,5}' "$tmp/out2" ||
  fail "demo without --keep names an address: $(grep -E '127\.0\.0\.1|:[0-9]{4,5}' "$tmp/out2")"
grep -q -- "--keep keeps it up" "$tmp/out2" || fail "demo without --keep: no hint of --keep"
echo "ok  demo without --keep: no address printed"
