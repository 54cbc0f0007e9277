#!/usr/bin/env python3
"""Produces the TokenEvents of stdin (JSON Lines, TokenEvent field names)
to TOPIC as Confluent-framed Avro (schema id 1), encoded by python3-avro.

usage: produce_events.py BROKERS TOPIC SRC_DIR < events.jsonl"""
import datetime
import io
import json
import os
import struct
import sys

import avro.io
import avro.schema
from confluent_kafka import Producer

brokers, topic, src = sys.argv[1:4]
schema = avro.schema.parse(open(os.path.join(src, "schemas", "token_event.avsc")).read())
p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
n = 0
for line in sys.stdin:
    if not line.strip():
        continue
    e = json.loads(line)
    rec = dict(e)  # python3-avro wants a datetime for timestamp-millis
    rec["event_time"] = datetime.datetime.fromtimestamp(
        e["event_time"] / 1000, datetime.timezone.utc)
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, 1))
    avro.io.DatumWriter(schema).write(rec, avro.io.BinaryEncoder(buf))
    p.produce(topic, value=buf.getvalue(), key=e["request_id"].encode())
    n += 1
if p.flush(30):
    raise SystemExit("events not delivered")
print("produce_events: %d produced to %s" % (n, topic))
