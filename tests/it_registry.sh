#!/usr/bin/env bash
# The Schema Registry client and --schema-registry against a real registry
# (tests/registry/registry.sh: a Confluent-API implementation built from
# the Go module proxy) next to a real Kafka broker:
#  (a) the C client (tests/it_registry_client.c): schemas/weekly_rollup.avsc
#      registers with an id, again with the same id, comes back by id equal
#      as JSON; a BACKWARD-compatible change gets a new id, an incompatible
#      one is refused with the registry's reason (the subject's BACKWARD
#      comes from the client's PUT /config: the global level is NONE here);
#      TokenEvent decoders by writer schema id (tt_registry_event_decoder);
#  (b) when `run` has --schema-registry: gen registers TokenEvent under
#      <input-topic>-value, run registers WeeklyRollup and StreakChange
#      under <topic>-value (BACKWARD) and frames the outputs with those ids,
#      and a Python consumer that knows only the registry URL decodes every
#      output record: the same rows as `replay` of the same events;
#  (c) then TokenEvents written by Python with a second TokenEvent schema
#      version (fields reordered, one added) are decoded by `run` through
#      the writer schema it fetches by id: none is a dead letter.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
CLIENT=${TT_REGISTRY_CLIENT:-$B/it_registry_client}
K=$B/kafka-registry
R=$B/registry
FASTAVRO_VERSION=1.10.0
BROKER="bash $SRC/tests/kafka/broker.sh"
REGISTRY="bash $SRC/tests/registry/registry.sh"
tmp=$(mktemp -d)
trap '$REGISTRY stop "$R" >/dev/null 2>&1 || true; $BROKER stop "$K" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export TOKENTALLY_METRICS_ADDR=off

$BROKER install "$K"
$REGISTRY install "$R"
envs=$($BROKER start "$K")
eval "$envs"
envs=$($REGISTRY start "$R" "$KAFKA_BROKERS")
eval "$envs"
echo "broker at $KAFKA_BROKERS, registry at $TT_REGISTRY_URL"
URL=$TT_REGISTRY_URL

echo "== (a) the C client"
curl -fsS -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
  -d '{"compatibility":"NONE"}' "$URL/config" >/dev/null
/usr/bin/python3 - "$SRC/schemas/weekly_rollup.avsc" "$tmp" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ok = dict(s, fields=s["fields"] + [{"name": "note", "type": ["null", "string"], "default": None}])
bad = dict(s, fields=s["fields"] + [{"name": "extra", "type": "long"}])
json.dump(ok, open(sys.argv[2] + "/compatible.avsc", "w"), indent=2)
json.dump(bad, open(sys.argv[2] + "/incompatible.avsc", "w"), indent=2)
PY
"$CLIENT" "$URL" it-client-value "$SRC/schemas/weekly_rollup.avsc" \
  "$tmp/compatible.avsc" "$tmp/incompatible.avsc" "$tmp/fetched.avsc" |
  tee "$tmp/client.out"
grep -qx "13 passed, 0 failed" "$tmp/client.out" || fail "C client checks"
/usr/bin/python3 - "$SRC/schemas/weekly_rollup.avsc" "$tmp/fetched.avsc" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a == b, "the schema fetched by id differs from the one registered"
print("fetched schema equals schemas/weekly_rollup.avsc as JSON")
PY
curl -fsS "$URL/config/it-client-value" | grep -q '"BACKWARD"' ||
  fail "subject compatibility is not BACKWARD"

# fastavro is not packaged by Debian: a venv that sees the Debian packages
# (confluent-kafka, requests) plus fastavro from PyPI, kept in the build
# folder (its own, so that tests running in parallel do not race).
VENV=$B/pyenv-registry
if ! "$VENV/bin/python" -c "import fastavro, confluent_kafka, requests; assert fastavro.__version__ == '$FASTAVRO_VERSION'" 2>/dev/null; then
  rm -rf "$VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    --cache-dir "$B/pip-cache" "fastavro==$FASTAVRO_VERSION"
fi
PY=$VENV/bin/python
PYC="$PY $SRC/tests/registry/registry_client.py"

echo "== (b) gen and run with --schema-registry; Python decodes the outputs"
$BROKER create-topic "$K" reg.events 6
$BROKER create-topic "$K" reg.rollups 3 cleanup.policy=compact
$BROKER create-topic "$K" reg.streaks 1 cleanup.policy=compact
$BROKER create-topic "$K" reg.dlq 1
SCALE=2e-5
"$T" gen --scenario april-2026 --scale "$SCALE" --out "$tmp/s.jsonl"
"$T" replay --out "$tmp/ref" "$tmp/s.jsonl" 2>/dev/null
"$T" gen --scenario april-2026 --scale "$SCALE" --brokers "$KAFKA_BROKERS" \
  --input-topic reg.events --schema-registry "$URL"
run_() {
  "$T" run --brokers "$KAFKA_BROKERS" --close-at-eof --workers 2 \
    --schema-registry "$URL" "$@"
}
run_ --group it-registry --input-topic reg.events --rollups-topic reg.rollups \
  --streaks-topic reg.streaks --dlq-topic reg.dlq 2>"$tmp/run.err" ||
  { cat "$tmp/run.err" >&2; fail "run"; }
grep -o '"msg":"run: [^"]*"' "$tmp/run.err" || true
for s in reg.events reg.rollups reg.streaks; do
  curl -fsS "$URL/config/$s-value" | grep -q '"BACKWARD"' || fail "$s-value is not BACKWARD"
  curl -fsS "$URL/subjects/$s-value/versions/latest" >"$tmp/$s.latest"
done
TT_REGISTRY_URL= $PYC consume --brokers "$KAFKA_BROKERS" --registry "$URL" \
  --out "$tmp/decoded.jsonl" reg.rollups reg.streaks
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
recs = [json.loads(l) for l in open(d + "/decoded.jsonl")]
ids = {t: json.load(open("%s/%s.latest" % (d, t)))["id"]
       for t in ("reg.events", "reg.rollups", "reg.streaks")}
assert len(set(ids.values())) == 3, ids
for m in recs:
    assert m["schema_id"] == ids[m["topic"]], (m["topic"], m["schema_id"], ids)
def row(v):
    return (v["week"], v["dimension"], v["key"], v["tokens"], v["requests"],
            v["rank"], v["status"], v["revision"])
def streak(v):
    return (v["rule"], v["week"], v["kind"], v["holder"], v["length_weeks"])
got_r = sorted(row(m["value"]) for m in recs if m["topic"] == "reg.rollups")
got_s = sorted(streak(m["value"]) for m in recs if m["topic"] == "reg.streaks")
ref_r = sorted(row(json.loads(l)) for l in open(d + "/ref/rollups.jsonl"))
ref_s = sorted(streak(json.loads(l)) for l in open(d + "/ref/streaks.jsonl"))
assert got_r == ref_r, "decoded rollups differ from replay's"
assert got_s == ref_s, "decoded streaks differ from replay's"
for m in recs:
    if m["topic"] == "reg.rollups":
        v = m["value"]
        assert m["key"] == "%s/%s/%s" % (v["week"], v["dimension"], v["key"])
print("registry ids %s; %d rollups and %d streaks decoded by a consumer that "
      "knows only the registry URL, equal to replay's" % (ids, len(got_r), len(got_s)))
PY

echo "== (c) TokenEvents of a second schema version, decoded by id"
$BROKER create-topic "$K" reg2.events 2
$BROKER create-topic "$K" reg2.rollups 1
$BROKER create-topic "$K" reg2.streaks 1
$BROKER create-topic "$K" reg2.dlq 1
# Version 1 first, as gen would have registered it; the serializer then
# registers version 2 under BACKWARD (the added field has a default).
/usr/bin/python3 - "$URL" "$SRC/schemas/token_event.avsc" <<'PY'
import json, sys, urllib.request
url, schema = sys.argv[1], open(sys.argv[2]).read()
def call(method, path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    return json.load(urllib.request.urlopen(req))
call("PUT", "/config/reg2.events-value", {"compatibility": "BACKWARD"})
print("TokenEvent v1 under reg2.events-value:", call("POST", "/subjects/reg2.events-value/versions", {"schema": schema}))
PY
$PYC produce-v2 --brokers "$KAFKA_BROKERS" --registry "$URL" --topic reg2.events \
  --schema "$SRC/schemas/token_event.avsc" --events "$tmp/s.jsonl" --count 200 |
  tee "$tmp/v2.json"
curl -fsS "$URL/subjects/reg2.events-value/versions/latest" >"$tmp/v2.latest"
curl -fsS "$URL/subjects/reg2.events-value/versions" | grep -qx '\[1,2\]' ||
  fail "reg2.events-value should have versions 1 and 2"
run_ --group it-registry-v2 --input-topic reg2.events --rollups-topic reg2.rollups \
  --streaks-topic reg2.streaks --dlq-topic reg2.dlq 2>"$tmp/run2.err" ||
  { cat "$tmp/run2.err" >&2; fail "run (v2)"; }
grep -o '"msg":"run: [^"]*"' "$tmp/run2.err" | tee "$tmp/run2.sum"
grep -q ": 200 messages, 200 accepted, 0 dead letters" "$tmp/run2.sum" ||
  fail "v2 events were not all accepted"
$PYC consume --brokers "$KAFKA_BROKERS" --registry "$URL" \
  --out "$tmp/decoded2.jsonl" reg2.rollups
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
want = json.load(open(d + "/v2.json"))["tokens"]
v2 = json.load(open(d + "/v2.latest"))
fields = [f["name"] for f in json.loads(v2["schema"])["fields"]]
assert fields[0] == "provider" and fields[-1] == "region", fields
recs = [json.loads(l)["value"] for l in open(d + "/decoded2.jsonl")]
got = sum(v["tokens"] for v in recs
          if v["dimension"] == "ORIGIN" and v["status"] == "FINAL")
assert got == want, (got, want)
print("writer schema id %d (fields %s): 200 events, %d tokens by origin" %
      (v2["id"], ",".join(fields), got))
PY
echo "3 passed, 0 failed"
