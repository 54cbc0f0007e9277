#!/usr/bin/env bash
# replay replaces its outputs only when the run succeeds: a run that fails
# (missing input, a directory as second input, a write error, SIGTERM in the
# middle of the input, every record a dead letter) leaves the previous
# rollups.jsonl, streaks.jsonl and dead-letters.jsonl byte-identical (sha256
# before and after) and no temporary behind; a run that succeeds replaces
# them. Expected row counts come from a recount of the events in Python.
set -euo pipefail
T=${TT_BINARY:-build/tokentally}
SRC=${TT_SOURCE_DIR:-.}
PY=/usr/bin/python3
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$T" gen --scale 1e-5 --out "$tmp/s.jsonl" 2>/dev/null
"$T" gen --scale 1e-6 --out "$tmp/small.jsonl" 2>/dev/null
"$T" gen --scale 1e-5 --invalid-rate 0.5 --seed 7 --out "$tmp/bad.jsonl" 2>/dev/null

recount() { # FINAL rows a replay of $1 must give: TOTAL, ORIGIN and MODEL keys per week
  $PY - "$1" "$SRC/schemas/origins.json" <<'PYEOF'
import json, sys, datetime
origins = json.load(open(sys.argv[2]))  # author -> origin, SPEC §2
keys = set()
for line in open(sys.argv[1]):
    e = json.loads(line)
    t = e["event_time"]
    if isinstance(t, str):
        t = datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000
    y, w, _ = datetime.datetime.fromtimestamp(t / 1000, datetime.timezone.utc).isocalendar()
    week = "%d-W%02d" % (y, w)
    keys |= {(week, "TOTAL", "*"), (week, "ORIGIN", e["origin"] or origins.get(e["model"].split("/")[0], "ZZ")), (week, "MODEL", e["model"])}
print(len(keys))
PYEOF
}

out=$tmp/out
hashes() { (cd "$out" && sha256sum rollups.jsonl streaks.jsonl dead-letters.jsonl); }
no_temps() { # nothing but the three outputs in the folder
  local extra
  extra=$(ls -A "$out" | grep -v -x -e rollups.jsonl -e streaks.jsonl -e dead-letters.jsonl || true)
  [ -z "$extra" ] || fail "$1: left behind in $out: $extra"
}
unchanged() { # $1: what failed
  [ "$(hashes)" = "$before" ] || fail "$1: outputs changed"
  no_temps "$1"
  echo "ok  $1: outputs byte-identical, no temporary left"
}

echo "== a good run"
"$T" replay --out "$out" "$tmp/s.jsonl" 2>/dev/null
want=$(recount "$tmp/s.jsonl")
got=$(wc -l < "$out/rollups.jsonl")
[ "$got" = "$want" ] || fail "rollups: $got lines, recount says $want"
[ "$(stat -c %a "$out/rollups.jsonl")" = "$(umask -S >/dev/null; printf '%o' $((0666 & ~$(umask))))" ] ||
  fail "rollups.jsonl mode $(stat -c %a "$out/rollups.jsonl"), want 0666 minus umask"
no_temps "good run"
before=$(hashes)
echo "ok  $got rollups (recount: $want)"

echo "== missing input"
if "$T" replay --out "$out" "$tmp/nosuch.jsonl" 2>"$tmp/err"; then fail "missing input: exit 0"; fi
grep -q "cannot open $tmp/nosuch.jsonl" "$tmp/err" || fail "missing input: $(cat "$tmp/err")"
unchanged "missing input"

echo "== a directory as the second input"
rc=0; "$T" replay --out "$out" "$tmp/small.jsonl" "$tmp" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] || fail "directory input: exit $rc"
unchanged "directory as second input"

echo "== a write error in the middle (file size limit, SIGXFSZ ignored: EFBIG)"
# The dead letters of bad.jsonl pass the 1 MiB write buffer long before the
# end of the input, and the 256 KiB limit stops that write.
rc=0; (trap '' XFSZ; ulimit -f 256; exec "$T" replay --out "$out" "$tmp/bad.jsonl") 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] || fail "write error: exit $rc: $(cat "$tmp/err")"
grep -q "writing $out/dead-letters.jsonl: File too large; nothing in $out was replaced" "$tmp/err" ||
  fail "write error: $(cat "$tmp/err")"
unchanged "write error"

echo "== SIGTERM in the middle of the input (a FIFO fed half the events)"
mkfifo "$tmp/fifo"
"$T" replay --out "$out" "$tmp/fifo" 2>"$tmp/err" &
pid=$!; pids+=("$pid")
exec 3>"$tmp/fifo"
half=$(( $(wc -l < "$tmp/s.jsonl") / 2 ))
head -n "$half" "$tmp/s.jsonl" >&3
for _ in $(seq 1 100); do  # its temporaries exist: it is running
  ls -A "$out" | grep -q '^\.rollups\.jsonl\.' && break
  sleep 0.1
done
ls -A "$out" | grep -q '^\.rollups\.jsonl\.' || fail "SIGTERM: no temporary while running"
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
exec 3>&-
[ "$rc" = 143 ] || fail "SIGTERM: exit $rc, want 143 (killed by SIGTERM)"
unchanged "SIGTERM mid-run"

echo "== every record a dead letter"
rc=0; "$T" replay --out "$out" "$SRC/README.md" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] || fail "all dead: exit $rc"
unchanged "all records dead letters"

echo "== a new folder is not left behind by a failed run"
rc=0; "$T" replay --out "$tmp/new" "$tmp/nosuch.jsonl" 2>/dev/null || rc=$?
[ "$rc" = 1 ] && [ ! -e "$tmp/new" ] || fail "new folder: exit $rc, exists: $(ls -d "$tmp/new" 2>&1)"
echo "ok  $tmp/new not created"

echo "== a run that succeeds replaces the outputs"
"$T" replay --out "$out" "$tmp/small.jsonl" 2>/dev/null
[ "$(hashes)" != "$before" ] || fail "a good run did not replace the outputs"
want=$(recount "$tmp/small.jsonl")
got=$(wc -l < "$out/rollups.jsonl")
[ "$got" = "$want" ] || fail "replaced rollups: $got lines, recount says $want"
no_temps "second good run"
echo "ok  replaced: $got rollups (recount: $want)"
