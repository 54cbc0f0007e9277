#!/usr/bin/env python3
"""Produces one bad JSON-format input message of every dead-letter kind a
Kafka message can carry (late and too_late depend on how far the other
partitions are, so the replay and unit tests cover them), plus a message with no value and one of 1 MB, to
the input topic, and writes the dead letters they must become (reason and
exact bytes) to OUT as JSON, for check_outputs.py --expect-dlq.

usage: inject_bad.py BROKERS TOPIC OUT"""
import base64
import json
import sys
import time

from confluent_kafka import Producer

brokers, topic, out = sys.argv[1:]
W14 = 1774828800000  # Monday 2026-03-30, start of 2026-W14


def ev(**kw):
    e = {"request_id": "bad", "event_time": W14 + 3600000,
         "model": "openai/gpt-5", "origin": None, "prompt_tokens": 1,
         "completion_tokens": 1, "provider": None}
    e.update(kw)
    return json.dumps({k: v for k, v in e.items() if v is not ...}).encode()


now = int(time.time() * 1000)
cases = [
    ("malformed", b"this is not json"),
    ("malformed", b'{"request_id": "x", "event_time": '),
    ("malformed", ev(prompt_tokens="ten")),
    ("missing_field", ev(model=...)),
    ("negative_tokens", ev(prompt_tokens=-5)),
    ("tokens_too_large", ev(prompt_tokens=10000000, completion_tokens=1)),
    ("time_out_of_range", ev(event_time=946684799999)),
    ("time_out_of_range", ev(event_time=4102444800000)),
    ("bad_model", ev(model="no-slash")),
    ("bad_model", ev(model="a/" + "x" * 300)),
    ("bad_origin", ev(origin="china")),
    ("future_time", ev(event_time=now + 3 * 3600 * 1000)),
    ("malformed", None),                          # no value at all
    ("malformed", b"x" * 1000000),                # 1 MB
]
p = Producer({"bootstrap.servers": brokers, "message.max.bytes": 2000000})
errors = []
expect = []
for i, (reason, value) in enumerate(cases):
    key = ("bad-%d" % i).encode()
    p.produce(topic, value=value, key=key,
              on_delivery=lambda err, msg: err and errors.append(str(err)))
    expect.append({"reason": reason, "key_b64": base64.b64encode(key).decode(),
                   "value_b64": None if value is None
                   else base64.b64encode(value).decode()})
p.flush(30)
if errors:
    raise SystemExit("producing bad messages: %s" % errors)
json.dump(expect, open(out, "w"))
print("produced %d bad messages" % len(cases))
