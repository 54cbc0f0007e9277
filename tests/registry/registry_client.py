#!/usr/bin/env python3
"""Kafka clients that know the Schema Registry URL and nothing else about the
schemas (confluent-kafka's SchemaRegistryClient, AvroSerializer and
AvroDeserializer; fastavro underneath). Used by tests/it_registry.sh.

  registry_client.py consume --brokers B --registry URL --out FILE TOPIC...
      reads every record of the topics from the beginning until each
      partition is at its end; one JSON line per record to FILE:
      {"topic", "key", "schema_id", "value"}, the value decoded with the
      writer schema fetched from the registry by the id in its header.

  registry_client.py produce-v2 --brokers B --registry URL --topic T
                                --events FILE --count N
      the first N TokenEvents of FILE (JSON Lines) written with a second
      version of the TokenEvent schema (fields in reverse order, plus a
      field with a default), registered by the serializer under T-value.
"""
import argparse
import json
import sys

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import (AvroDeserializer,
                                                  AvroSerializer)
from confluent_kafka.serialization import MessageField, SerializationContext


def consume(args):
    registry = SchemaRegistryClient({"url": args.registry})
    decode = AvroDeserializer(registry)  # writer schemas by id only
    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": "it-registry-python",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    })
    parts = []
    for topic in args.topics:
        md = consumer.list_topics(topic, timeout=10).topics[topic]
        if md.error:
            sys.exit(f"topic {topic}: {md.error}")
        parts += [TopicPartition(topic, p, 0) for p in md.partitions]
    consumer.assign(parts)
    pending = {(tp.topic, tp.partition) for tp in parts}
    n = 0
    with open(args.out, "w") as out:
        while pending:
            m = consumer.poll(10.0)
            if m is None:
                sys.exit(f"no record within 10 s; still reading {sorted(pending)}")
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard((m.topic(), m.partition()))
                    continue
                sys.exit(f"consumer: {m.error()}")
            raw = m.value()
            schema_id = int.from_bytes(raw[1:5], "big") if raw and raw[0] == 0 else None
            value = decode(raw, SerializationContext(m.topic(), MessageField.VALUE))
            key = m.key().decode() if m.key() is not None else None
            out.write(json.dumps({"topic": m.topic(), "key": key,
                                  "schema_id": schema_id, "value": value},
                                 default=str) + "\n")
            n += 1
    consumer.close()
    print(f"consume: {n} records decoded with writer schemas from {args.registry}")


def produce_v2(args):
    with open(args.schema) as f:
        v1 = json.load(f)
    v2 = dict(v1)
    v2["fields"] = list(reversed(v1["fields"])) + [
        {"name": "region", "type": "string", "default": "unknown"}]
    registry = SchemaRegistryClient({"url": args.registry})
    encode = AvroSerializer(registry, json.dumps(v2),
                            conf={"auto.register.schemas": True})
    producer = Producer({"bootstrap.servers": args.brokers})
    tokens = 0
    with open(args.events) as f:
        events = [json.loads(line) for _, line in zip(range(args.count), f)]
    for ev in events:
        ev["region"] = "eu-west"
        tokens += ev["prompt_tokens"] + ev["completion_tokens"]
        producer.produce(args.topic, key=ev["request_id"].encode(),
                         value=encode(ev, SerializationContext(args.topic, MessageField.VALUE)))
    if producer.flush(30):
        sys.exit("produce-v2: not every record was delivered")
    print(json.dumps({"events": len(events), "tokens": tokens}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("consume")
    c.add_argument("--brokers", required=True)
    c.add_argument("--registry", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("topics", nargs="+")
    p = sub.add_parser("produce-v2")
    p.add_argument("--brokers", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--schema", required=True, help="schemas/token_event.avsc")
    p.add_argument("--events", required=True)
    p.add_argument("--count", type=int, default=100)
    args = ap.parse_args()
    {"consume": consume, "produce-v2": produce_v2}[args.cmd](args)


if __name__ == "__main__":
    main()
