#!/usr/bin/env python3
"""Reads tokentally's output topics with an independent client
(confluent-kafka) and decoder (python3-avro with schemas/*.avsc, or json),
and compares them with what `tokentally replay` wrote for the same events.

usage: check_outputs.py BROKERS SRC_DIR REPLAY_DIR --format avro|json
         [--rollups T] [--streaks T] [--dlq T] [--expect-dlq FILE]

--expect-dlq names a JSON file: a list of {"reason", "value_b64" (or null),
"key_b64"} that must be exactly the dead-letter topic's content (any order).
Exits non-zero with a reason on any difference."""
import argparse
import base64
import datetime
import io
import json
import os
import struct
import sys

import avro.io
import avro.schema
from confluent_kafka import Consumer, TopicPartition

IDS = {"rollups": 2, "streaks": 3}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def read_topic(brokers, topic):
    c = Consumer({"bootstrap.servers": brokers, "group.id": "check-" + topic,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True,
                  "isolation.level": "read_committed"})
    md = c.list_topics(topic, timeout=30)
    parts = list(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, eof = [], set()
    while len(eof) < len(parts):
        m = c.poll(5.0)
        if m is None:
            raise SystemExit("timeout reading %s" % topic)
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            raise SystemExit("reading %s: %s" % (topic, m.error()))
        out.append(m)
    c.close()
    return out


def decode(msgs, kind, fmt, schema):
    recs = []
    reader = avro.io.DatumReader(schema)
    for m in msgs:
        v = m.value()
        if fmt == "avro":
            magic, sid = struct.unpack(">bI", v[:5])
            if magic != 0 or sid != IDS[kind]:
                raise SystemExit("%s: bad Confluent header %r" % (kind, v[:5]))
            buf = io.BytesIO(v[5:])
            r = reader.read(avro.io.BinaryDecoder(buf))
            if buf.tell() != len(v) - 5:
                raise SystemExit("%s: trailing bytes after the record" % kind)
            # python3-avro reads timestamp-millis as datetime
            for k, x in r.items():
                if isinstance(x, datetime.datetime):
                    r[k] = (x - EPOCH) // datetime.timedelta(milliseconds=1)
        else:
            r = json.loads(v)
        key = m.key().decode()
        want = ("%s/%s/%s" % (r["week"], r["dimension"], r["key"])
                if kind == "rollups" else r["rule"])
        if key != want:
            raise SystemExit("%s: key %r, record says %r" % (kind, key, want))
        r.pop("emitted_at")
        recs.append(r)
    return recs


def canon(rs):
    return sorted(json.dumps(r, sort_keys=True) for r in rs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("brokers")
    ap.add_argument("src")
    ap.add_argument("replay")
    ap.add_argument("--format", default="avro")
    ap.add_argument("--rollups", default="token-usage.rollups")
    ap.add_argument("--streaks", default="token-usage.streaks")
    ap.add_argument("--dlq", default="token-usage.dead-letters")
    ap.add_argument("--expect-dlq")
    ap.add_argument("--latest", action="store_true",
                    help="compare the latest record of every key only "
                    "(after a restart, rows are emitted again)")
    a = ap.parse_args()
    errors = []
    for kind, topic, f in (("rollups", a.rollups, "weekly_rollup.avsc"),
                           ("streaks", a.streaks, "streak_change.avsc")):
        schema = avro.schema.parse(open(os.path.join(a.src, "schemas", f)).read())
        got = decode(read_topic(a.brokers, topic), kind, a.format, schema)
        want = []
        for line in open(os.path.join(a.replay, kind + ".jsonl")):
            r = json.loads(line)
            r.pop("emitted_at")
            want.append(r)
        if a.latest:
            ident = ((lambda r: (r["week"], r["dimension"], r["key"]))
                     if kind == "rollups" else (lambda r: (r["rule"], r["week"])))
            n = len(got)
            got = list({ident(r): r for r in got}.values())
            want = list({ident(r): r for r in want}.values())
            # FINAL again after a restart, same content: compare content.
            for r in got + want:
                r.pop("status", None)
                r.pop("revision", None)
            print("%s: %d records, %d keys" % (topic, n, len(got)))
        if canon(got) != canon(want):
            g, w = set(canon(got)), set(canon(want))
            errors.append("%s: %d records, replay %d; only in topic: %s; "
                          "only in replay: %s" % (kind, len(got), len(want),
                                                  sorted(g - w)[:2],
                                                  sorted(w - g)[:2]))
        else:
            print("%s: %d records equal to replay's" % (topic, len(got)))
    if a.expect_dlq:
        want = json.load(open(a.expect_dlq))
        got = read_topic(a.brokers, a.dlq)
        seen = []
        for m in got:
            h = {k: v.decode() for k, v in (m.headers() or [])}
            for k in ("tokentally.reason", "tokentally.detail",
                      "tokentally.topic", "tokentally.partition",
                      "tokentally.offset"):
                if k not in h:
                    errors.append("dead letter without header %s" % k)
            seen.append({"reason": h.get("tokentally.reason"),
                         "value_b64": None if m.value() is None
                         else base64.b64encode(m.value()).decode(),
                         "key_b64": None if m.key() is None
                         else base64.b64encode(m.key()).decode()})
        key = lambda d: json.dumps(d, sort_keys=True)
        if sorted(map(key, seen)) != sorted(map(key, want)):
            errors.append("dead letters differ: got %d, want %d; reasons got %s"
                          % (len(seen), len(want),
                             sorted(d["reason"] for d in seen)))
        else:
            print("%s: %d dead letters with their original bytes and headers"
                  % (a.dlq, len(seen)))
    for e in errors:
        print("MISMATCH: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
