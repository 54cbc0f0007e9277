#!/usr/bin/env python3
"""A week of 1,000,000 distinct models through `tokentally run`
exactly-once on a real broker, killed -9 twice and restarted (issue 11),
driven by tests/it_kafka_cardinality.sh.

Input (tests/gen_cardinality.py, JSON): a week of MODELS models, the week
of BIG distinct models, and a week of AFTER models whose watermark closes
the big one; produced as they are to a 6-partition topic (key request_id,
partition crc32(key) mod 6, as scenarios.py does). Then:
  run 1  killed -9 once the group has committed KILL1 of the input
         offsets: the big week is open and in the changelog in parts;
  run 2  restores it, reads on, killed -9 while the transaction that
         closes the big week holds at least KILL2 uncommitted rollups;
  run 3  restores the whole open week and finishes (--close-at-eof).
The output topics, read read_committed, are checked by scenarios.py's
Run.verify against recount.py run on the input file: the latest record of
every key (every field but emitted_at), no key missing or extra, no (key,
revision) twice, every streak, no dead letter. Printed: time to produce,
each run's wall time, peak RSS and restore (log line "merger state
restored"), and the largest records of the partials and state topics,
which must stay near the stage's 4 MiB cut and below the topic's
max.message.bytes (the broker keeps its default message.max.bytes).

usage: cardinality.py --brokers B --binary T --src DIR --tmp DIR
                      [--models 50000] [--big 1000000] [--after 50000]"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eos_check  # noqa: E402
import scenarios  # noqa: E402
from scenarios import Failure, check  # noqa: E402

PART_MAX = 4 << 20  # the stage's cut of partial and state records
# A record is cut after the cell that passed the cut: at most one cell
# (a 256-byte slug and its counts) above it.
PART_SLACK = 1024


def log_lines(stage):
    """The JSON log lines of this run of the stage."""
    out = []
    with open(stage.log, "rb") as f:
        f.seek(stage.log_from)
        for line in f.read().decode(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def ts(line):
    return datetime.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def restore_figures(stage):
    """From the stage's log: the restore's own ms, the records read, the
    state keys, and the seconds from "stage starting" to the restore's
    end."""
    lines = log_lines(stage)
    start = next((x for x in lines if x.get("msg") == "stage starting"), None)
    r = next((x for x in lines if x.get("msg") == "merger state restored"), None)
    if not start or not r:
        return None
    return {"ms": r["ms"], "records": r["records_read"], "keys": r["state_keys"],
            "bytes": r.get("bytes"), "from_start_s": ts(r) - ts(start),
            "waited": any(str(x.get("msg", "")).startswith("merger restore waits")
                          for x in lines)}


def until(stage, what, cond, timeout=300, every=0.05):
    """Polls cond() until true; Failure if the stage exits first."""
    deadline = time.monotonic() + timeout
    while not cond():
        check(stage.p.poll() is None,
              "the stage exited (%s) before %s (log %s)" % (stage.p.returncode, what, stage.log))
        check(time.monotonic() < deadline, "no %s in %d s (log %s)" % (what, timeout, stage.log))
        time.sleep(every)


def record_sizes(brokers, topic):
    """(count, largest value) of every record of topic, committed or not."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "card-sizes",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": "read_uncommitted"})
    c.assign([TopicPartition(topic, 0, 0)])
    n, big = 0, 0
    while True:
        m = c.poll(10)
        check(m is not None, "reading %s: no end" % topic)
        if m.error():
            check(m.error().code() == scenarios.EOF_CODE, "reading %s: %s" % (topic, m.error()))
            break
        n += 1
        big = max(big, len(m.value() or b""))
    c.close()
    return n, big


def topic_max_bytes(kafka, topic):
    f = kafka.admin.describe_configs([ConfigResource("topic", topic)])
    cfg = list(f.values())[0].result(30)
    return int(cfg["max.message.bytes"].value)


def main():
    ap = argparse.ArgumentParser()
    for a in ("--brokers", "--binary", "--src", "--tmp"):
        ap.add_argument(a, required=True)
    ap.add_argument("--models", type=int, default=50000)
    ap.add_argument("--big", type=int, default=1000000)
    ap.add_argument("--after", type=int, default=50000)
    a = ap.parse_args()
    t_all = time.monotonic()
    ctx = scenarios.Ctx()
    ctx.binary, ctx.tmp = a.binary, a.tmp
    ctx.kafka = scenarios.Kafka(a.brokers)
    ctx.codec = scenarios.Codec(a.src)
    fig = []

    def note(s):
        print("[%5.1f s] %s" % (time.monotonic() - t_all, s), flush=True)

    path = os.path.join(a.tmp, "in.jsonl")
    subprocess.run([sys.executable, os.path.join(a.src, "tests", "gen_cardinality.py"),
                    "--weeks", "1", "--models", str(a.models), "--big", str(a.big),
                    "--after", str(a.after), path], check=True)
    payloads, events = [], []
    with open(path, "rb") as f:
        for line in f:
            ev = json.loads(line)
            events.append(ev)
            payloads.append((ev["request_id"].encode(), line.rstrip(b"\n")))
    big_week = scenarios.recount.week_of(events[a.models]["event_time"])
    check(len({e["model"] for e in events if
               scenarios.recount.week_of(e["event_time"]) == big_week}) == a.big,
          "the input's week %s has not %d distinct models" % (big_week, a.big))
    note("input: %d events, week %s with %d distinct models" % (len(events), big_week, a.big))

    r = scenarios.Run(ctx, "card", "exactly-once", input_format="json",
                      output_format="json", partitions=6)
    t0 = time.monotonic()
    ctx.kafka.produce(r.input, r.nparts, payloads)
    r.events = events
    del payloads
    fig.append("produce %.1f s" % (time.monotonic() - t0))
    note("produced in %.1f s to %s (6 partitions)" % (time.monotonic() - t0, r.input))

    g = Consumer({"bootstrap.servers": a.brokers, "group.id": r.group,
                  "enable.auto.commit": False})
    in_parts = list(range(r.nparts))
    out_parts = sorted(g.list_topics(r.name + ".rollups", timeout=30)
                       .topics[r.name + ".rollups"].partitions)
    kill1 = len(events) * 45 // 100

    def committed():
        return eos_check.committed_sum(g, r.input, in_parts) or 0

    def open_rows():
        """rollup records written but not committed yet (the open
        transaction's): log end minus last stable offset."""
        hi = eos_check.high_watermarks(a.brokers, r.name + ".rollups", out_parts)
        lso = sum(g.get_watermark_offsets(TopicPartition(r.name + ".rollups", p),
                                          timeout=10, cached=False)[1] for p in out_parts)
        return sum(hi.values()) - lso

    runs = []
    # run 1: killed -9 mid-input
    s = r.stage("a", ["--close-at-eof"], timed=True)
    until(s, "%d input offsets committed" % kill1, lambda: committed() >= kill1, every=0.1)
    done = committed()
    s.kill9()
    runs.append(("run 1 (kill -9 at %d of %d input offsets committed)" % (done, len(events)), s))
    note("run 1: kill -9 after %.1f s, %d input offsets committed" % (s.seconds, done))

    # run 2: restores, killed -9 in the middle of the big week's close
    kill2 = a.big // 5
    s = r.stage("a", ["--close-at-eof"], timed=True)
    # the close writes 10^6 rows in one transaction (seconds): polled
    # every 50 ms, the kill lands while they are being written
    until(s, "%d open rollup records" % kill2, lambda: open_rows() >= kill2, every=0.05)
    pending = open_rows()
    s.kill9()
    runs.append(("run 2 (kill -9 with %d rollups of an open transaction)" % pending, s))
    note("run 2: kill -9 after %.1f s, %d rollup records in the open transaction" %
         (s.seconds, pending))

    # run 3: restores the whole open week, finishes
    s, last = r.run_eof(timeout=600, timed=True)
    runs.append(("run 3 (--close-at-eof to the end)", s))
    note("run 3: %s" % last.get("msg"))
    g.close()

    for name, s in runs:
        rf = restore_figures(s)
        rs = ("restore %d ms (%d records read, %d state keys), restored %.2f s after start%s"
              % (rf["ms"], rf["records"], rf["keys"], rf["from_start_s"],
                 ", waited for an open transaction" if rf["waited"] else "")
              if rf else "no restore logged")
        fig.append("%s: %.1f s, peak RSS %d MiB, %s" % (name, s.seconds, s.maxrss_kib() // 1024, rs))
        note(fig[-1])
    check(restore_figures(runs[2][1]) and restore_figures(runs[2][1])["keys"] > 0,
          "run 3 restored no state")

    for t in (r.group + ".partials", r.group + ".state"):
        n, big = record_sizes(a.brokers, t)
        mx = topic_max_bytes(ctx.kafka, t)
        fig.append("%s: %d records, largest %d bytes (max.message.bytes %d)" % (t, n, big, mx))
        note(fig[-1])
        check(big > 1 << 20, "%s: no record over 1 MiB: the big week was not cut in parts" % t)
        check(big <= PART_MAX + PART_SLACK and big <= mx,
              "%s: a record of %d bytes, over the 4 MiB cut" % (t, big))

    t0 = time.monotonic()
    v = r.verify()
    note("verified in %.1f s: %s" % (time.monotonic() - t0, v))
    fig.append("total %.1f s" % (time.monotonic() - t_all))
    print("figures: " + "; ".join(fig))


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
