#!/usr/bin/env python3
"""Produces events of weeks the stage has already closed: three of
2026-W10 (late: revised by default) and one of 2026-W01 (older than the 12
retained weeks: dead letter too_late), Avro in Confluent framing (schema id
1) encoded by python3-avro, one per partition 0..3. Appends the same events
as JSON Lines to JSONL (so that `replay` of the scenario plus them is the
reference) and writes the dead letter they must make to DLQ_OUT, for
check_outputs.py --expect-dlq.

usage: late_events.py BROKERS TOPIC SRC_DIR JSONL DLQ_OUT"""
import base64
import io
import json
import os
import struct
import sys

import avro.io
import avro.schema
from confluent_kafka import Producer

brokers, topic, src, jsonl, dlq_out = sys.argv[1:]
import datetime
UTC = datetime.timezone.utc
W10 = 1772409600000  # Monday 2026-03-02
W01 = 1766966400000  # Monday 2025-12-29, first day of 2026-W01
schema = avro.schema.parse(open(os.path.join(src, "schemas", "token_event.avsc")).read())
events = [
    ("late", dict(request_id="late-1", event_time=W10 + 3 * 86400000,
                  model="deepseek/deepseek-chat-v3", origin=None,
                  prompt_tokens=1000000, completion_tokens=234567, provider=None)),
    ("late", dict(request_id="late-2", event_time=W10 + 5 * 86400000,
                  model="openai/gpt-5", origin=None, prompt_tokens=7000,
                  completion_tokens=3, provider="openai")),
    ("late", dict(request_id="late-3", event_time=W10 + 86400000,
                  model="new-author/brand-new-model", origin="KR",
                  prompt_tokens=42, completion_tokens=0, provider=None)),
    ("too_late", dict(request_id="too-late", event_time=W01 + 3600000,
                      model="qwen/qwen3", origin=None, prompt_tokens=5,
                      completion_tokens=5, provider=None)),
]
p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
expect = []
with open(jsonl, "a") as f:
    for i, (why, e) in enumerate(events):
        buf = io.BytesIO()
        buf.write(struct.pack(">bI", 0, 1))
        rec = dict(e)  # python3-avro wants a datetime for timestamp-millis
        rec["event_time"] = datetime.datetime.fromtimestamp(e["event_time"] / 1000, UTC)
        avro.io.DatumWriter(schema).write(rec, avro.io.BinaryEncoder(buf))
        value = buf.getvalue()
        key = ("late-%d" % i).encode()
        p.produce(topic, value=value, key=key, partition=i % 4)
        f.write(json.dumps(e) + "\n")
        if why == "too_late":
            expect.append({"reason": why,
                           "value_b64": base64.b64encode(value).decode(),
                           "key_b64": base64.b64encode(key).decode()})
if p.flush(30):
    raise SystemExit("late events not delivered")
json.dump(expect, open(dlq_out, "w"))
print("late_events: %d produced to %s (%d must be dead letters)"
      % (len(events), topic, len(expect)))
