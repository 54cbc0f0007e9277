#!/usr/bin/env bash
# Runs tests/cli_table_replay.tsv: each row a tokentally command line, the
# exit code it must give and a regex its stderr must match (the table's
# header says how rows are written). Rows are kept plain so that they can
# join the option-error table of tests/cli_table.sh later.
set -euo pipefail
T=${TT_BINARY:-build/tokentally}
SRC=${TT_SOURCE_DIR:-.}
SRC=$(cd "$SRC" && pwd)
T=$(cd "$(dirname "$T")" && pwd)/$(basename "$T")
TABLE=${1:-$SRC/tests/cli_table_replay.tsv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Fixtures: the scenario at 1e-6 as JSON Lines, OCF and gzip'd OCF.
"$T" gen --scale 1e-6 --out "$tmp/s.jsonl" 2>/dev/null
"$T" gen --scale 1e-6 --out "$tmp/s.avro" 2>/dev/null
gzip -c "$tmp/s.avro" > "$tmp/s.avro.gz"
: > "$tmp/empty.jsonl"
N=$(wc -l < "$tmp/s.jsonl")                # the independent count
JSONL_BYTES=$(stat -c %s "$tmp/s.jsonl")
[ "$N" -gt 1000 ] || { echo "FAIL: fixture has only $N events" >&2; exit 1; }

fill() {
  local s=$1
  s=${s//@TMP@/$tmp}; s=${s//@SRC@/$SRC}; s=${s//@N@/$N}
  s=${s//@JSONL_BYTES@/$JSONL_BYTES}
  printf '%s' "$s"
}

rows=0 failed=0
while IFS=$'\t' read -r cmd want regex; do
  case $cmd in ''|'#'*) continue ;; esac
  rows=$((rows + 1))
  line=$(fill "$cmd")
  re=$(fill "$regex")
  set +e
  (cd "$tmp" && eval "\"\$T\" $line") > "$tmp/stdout" 2> "$tmp/stderr"
  got=$?
  set -e
  if [ "$got" != "$want" ] || ! grep -Eq -- "$re" "$tmp/stderr"; then
    failed=$((failed + 1))
    echo "FAIL: tokentally $line" >&2
    echo "  exit $got (want $want); stderr must match: $re" >&2
    sed 's/^/  stderr: /' "$tmp/stderr" | head -5 >&2
  else
    echo "ok  [$got] tokentally $line"
  fi
done < "$TABLE"
[ "$rows" -gt 0 ] || { echo "FAIL: no rows in $TABLE" >&2; exit 1; }
echo "$rows rows, $failed failed"
[ "$failed" -eq 0 ]
