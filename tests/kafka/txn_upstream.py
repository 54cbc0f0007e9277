#!/usr/bin/env python3
"""An upstream transactional producer: 10 committed transactions of 100
JSON TokenEvents (2026-W14, 2 partitions) and, between them, one aborted
transaction of 50 events. A read_committed stage must count exactly the
1,000 committed events: the control markers (one offset per partition per
transaction) and the aborted records are gaps in the offsets it reads.

usage: txn_upstream.py BROKERS TOPIC"""
import json
import sys

from confluent_kafka import Producer

brokers, topic = sys.argv[1:]
p = Producer({"bootstrap.servers": brokers, "transactional.id": topic + "-upstream"})
p.init_transactions()
W14 = 1774828800000
n = 0
for t in range(11):
    p.begin_transaction()
    for i in range(100 if t != 5 else 50):
        e = {"request_id": "r%d-%d" % (t, i), "event_time": W14 + n * 1000,
             "model": "openai/gpt-5", "origin": None, "prompt_tokens": 10,
             "completion_tokens": 1, "provider": None}
        p.produce(topic, json.dumps(e).encode(), partition=n % 2)
        n += 1
    # Every record delivered first, so that the aborted ones are really in
    # the log (gaps the stage must skip), and so that the end of the
    # transaction never races its AddPartitionsToTxn: aborting with records
    # still queued got INVALID_TXN_STATE from the broker under load
    # (librdkafka 2.0.2), a fatal error of this harness, not of the stage.
    if p.flush(60) != 0:
        sys.exit("txn_upstream: records still undelivered after 60 s")
    if t == 5:
        p.abort_transaction(60)
    else:
        p.commit_transaction(60)
print("txn_upstream: 1000 committed, 50 aborted events in %s" % topic)
