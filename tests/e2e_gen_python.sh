#!/usr/bin/env bash
# gen's files read back by code that is not ours: Python's avro.datafile for
# the .avro container and Python's json (and gzip) for JSON Lines. Checks the
# headline W14 totals, that every format carries the same records, and that
# the output is deterministic (stdout equals the file byte for byte).
set -euo pipefail

: "${TT_BINARY:?TT_BINARY must point at the tokentally binary}"
: "${TT_SOURCE_DIR:?TT_SOURCE_DIR must point at the source tree}"
PY=/usr/bin/python3

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$TT_BINARY" gen --scenario april-2026 --out "$tmp/x.avro"
"$TT_BINARY" gen --scenario april-2026 --out "$tmp/x.jsonl"
"$TT_BINARY" gen --scenario april-2026 --out "$tmp/x.jsonl.gz"
"$TT_BINARY" gen --scenario april-2026 --out - >"$tmp/stdout.jsonl"
cmp "$tmp/x.jsonl" "$tmp/stdout.jsonl"

"$PY" - "$tmp" "$TT_SOURCE_DIR" <<'EOF'
import datetime, gzip, json, sys
import avro.datafile, avro.io

tmp, src = sys.argv[1], sys.argv[2]
origins = json.load(open(src + "/schemas/origins.json"))
schema = json.load(open(src + "/schemas/token_event.avsc"))
W14 = 1774828800000          # Mon 2026-03-30 00:00 UTC
WEEK = 7 * 86400 * 1000
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

def ms(v):
    # python3-avro turns timestamp-millis into an aware datetime.
    if isinstance(v, datetime.datetime):
        return (v - EPOCH) // datetime.timedelta(milliseconds=1)
    return v

def tally(records):
    n, by = 0, {}
    for r in records:
        n += 1
        t = ms(r["event_time"])
        week = (t - W14) // WEEK
        origin = r["origin"] or origins.get(r["model"].split("/")[0], "ZZ")
        key = (week, origin)
        by[key] = by.get(key, 0) + r["prompt_tokens"] + r["completion_tokens"]
        yield r
    tally.result = (n, by)

def check(name, n, by):
    cn, us = by.get((0, "CN"), 0), by.get((0, "US"), 0)
    total = sum(v for (w, _), v in by.items() if w == 0)
    cn13, us13 = by[(-1, "CN")], by[(-1, "US")]
    errors = []
    if cn != 1296000000: errors.append(f"W14 CN {cn} != 1296000000")
    if us != 303000000: errors.append(f"W14 US {us} != 303000000")
    if total != 2700000000: errors.append(f"W14 total {total} != 2.7e9")
    if f"{(cn - cn13) / cn13 * 100:.2f}" != "31.48": errors.append("CN growth")
    if f"{(us - us13) / us13 * 100:.2f}" != "0.76": errors.append("US growth")
    if not 300000 <= n <= 700000: errors.append(f"{n} records")
    if errors:
        sys.exit(f"{name}: " + "; ".join(errors))
    return n

reader = avro.datafile.DataFileReader(open(tmp + "/x.avro", "rb"),
                                      avro.io.DatumReader())
if json.loads(reader.get_meta("avro.schema")) != schema:
    sys.exit("x.avro: writer schema differs from schemas/token_event.avsc")
if reader.get_meta("avro.codec") != b"deflate":
    sys.exit(f"x.avro: codec {reader.get_meta('avro.codec')}, want deflate")

def lines(path, opener):
    with opener(path, "rb") as f:
        for line in f:
            yield json.loads(line)

avro_it = tally(reader)
json_it = lines(tmp + "/x.jsonl", open)
gz_it = lines(tmp + "/x.jsonl.gz", gzip.open)
fields = [f["name"] for f in schema["fields"]]
i = 0
for a in avro_it:
    j, g = next(json_it, None), next(gz_it, None)
    if j is None or g is None:
        sys.exit(f"JSON Lines files end early, at record {i}")
    if list(j) != fields:
        sys.exit(f"x.jsonl record {i}: keys {list(j)}, want {fields}")
    a = dict(a, event_time=ms(a["event_time"]))
    if a != j or j != g:
        sys.exit(f"record {i} differs:\n avro {a}\n json {j}\n gz   {g}")
    i += 1
if next(json_it, None) is not None or next(gz_it, None) is not None:
    sys.exit(f"JSON Lines files have more records than x.avro ({i})")
n = check("x.avro", *tally.result)
print(f"gen: {n} records, W14 totals exact in .avro, .jsonl and .jsonl.gz")
EOF
