#!/usr/bin/env python3
"""Reads tokentally's output topics with confluent-kafka and an Avro library.

    python3 consume_outputs.py --brokers localhost:9092 \
        token-usage.rollups token-usage.streaks

Needs confluent-kafka and one of fastavro (pip) or Apache Avro's own
library (Debian: python3-confluent-kafka python3-avro). The schemas are
read from the repository's schemas/ folder, found from this file's place,
so it runs from any directory; --schemas DIR for a copy kept elsewhere.

Values are Avro in Confluent framing (byte 0, a 4-byte big-endian schema
id: 2 WeeklyRollup, 3 StreakChange, then the Avro body), or JSON objects
when the stage runs with --output-format json. The example reads every
partition from the beginning (no consumer group offsets), prints one JSON
line per record, keeps the latest record per key -- on these compacted
topics, the latest record of a key is the truth -- and prints a summary at
the end of the topics."""
import argparse
import datetime
import io
import json
import struct
import sys
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING

try:
    import fastavro
except ImportError:                              # Debian's python3-avro
    fastavro = None
    import avro.io
    import avro.schema

SCHEMA_FILES = {2: "weekly_rollup.avsc", 3: "streak_change.avsc"}
SCHEMA_DIR = Path(__file__).resolve().parent.parent.parent / "schemas"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def load_schemas(folder):
    schemas = {}
    for sid, name in SCHEMA_FILES.items():
        path = Path(folder) / name
        if not path.is_file():
            sys.exit("%s not found: give the folder of tokentally's *.avsc "
                     "with --schemas DIR" % path)
        text = path.read_text()
        schemas[sid] = (fastavro.parse_schema(json.loads(text)) if fastavro
                        else avro.schema.parse(text))
    return schemas


def decode(value, schemas):
    if value[:1] == b"{":                        # --output-format json
        return json.loads(value)
    magic, schema_id = struct.unpack(">bI", value[:5])
    if magic != 0 or schema_id not in schemas:
        raise ValueError("not a tokentally output record")
    body = io.BytesIO(value[5:])
    if fastavro:
        record = fastavro.schemaless_reader(body, schemas[schema_id])
    else:
        record = avro.io.DatumReader(schemas[schema_id]).read(
            avro.io.BinaryDecoder(body))
    for name, x in record.items():              # timestamp-millis -> epoch ms
        if isinstance(x, datetime.datetime):
            record[name] = (x - EPOCH) // datetime.timedelta(milliseconds=1)
    return record


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", default="localhost:9092")
    ap.add_argument("--schemas", default=SCHEMA_DIR, help="folder of *.avsc")
    ap.add_argument("topics", nargs="+")
    args = ap.parse_args()
    schemas = load_schemas(args.schemas)
    consumer = Consumer({"bootstrap.servers": args.brokers,
                         "group.id": "consume-outputs-example",
                         "enable.auto.commit": False,
                         "enable.partition.eof": True,
                         # tokentally writes in transactions
                         "isolation.level": "read_committed"})
    partitions = [TopicPartition(t, p, OFFSET_BEGINNING) for t in args.topics
                  for p in consumer.list_topics(t, timeout=30).topics[t].partitions]
    consumer.assign(partitions)
    at_end, latest, records = set(), {}, 0
    while len(at_end) < len(partitions):
        msg = consumer.poll(10.0)
        if msg is None:
            sys.exit("no message for 10 s")
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                at_end.add((msg.topic(), msg.partition()))
                continue
            sys.exit(str(msg.error()))
        if any(k.startswith("tokentally.") for k, _ in msg.headers() or []):
            continue                             # a dead letter: raw input bytes
        record = decode(msg.value(), schemas)
        key = msg.key().decode()
        latest[(msg.topic(), key)] = record
        records += 1
        print(json.dumps({"topic": msg.topic(), "key": key, "value": record}))
    consumer.close()
    print("%d records, %d keys" % (records, len(latest)), file=sys.stderr)
    origins = [r for r in latest.values() if r.get("dimension") == "ORIGIN"]
    if origins:                                  # the newest week, by rank
        week = max(r["week"] for r in origins)
        for r in sorted((r for r in origins if r["week"] == week),
                        key=lambda r: r["rank"]):
            growth = r["wow_growth_pct"]
            print("%s %-3s %14d tokens %8s %6.2f%% of the week, %s rev %d" % (
                week, r["key"], r["tokens"],
                "" if growth is None else "%+.2f%%" % growth,
                r["share_pct"], r["status"], r["revision"]), file=sys.stderr)

if __name__ == "__main__":
    main()
