#!/usr/bin/env python3
"""Checks the output topics of a run that was killed, restarted, scaled out
or cut off from its broker against `tokentally replay` of the same events.
Reads with confluent-kafka (read_committed) and python3-avro, not our code.

usage: eos_check.py BROKERS SRC_DIR REPLAY_DIR --exactly-once|--at-least-once
         [--rollups T] [--streaks T] [--settle SECONDS]

(a) the latest record of every rollup key (Kafka key, offset order within
    its partition) equals replay's latest row of that key in every field but
    emitted_at; every key of replay is there and no other;
(b) no (week, dimension, key, revision) twice among FINAL/REVISED records:
    with --exactly-once a failure, with --at-least-once a figure;
(c) streaks: --exactly-once: the records equal replay's (same multiset);
    --at-least-once: the latest record of every (rule, week) equals replay's.
Figures: records read, FINAL, REVISED and PROVISIONAL counts, duplicates,
and FINAL/REVISED records whose content is not replay's row of their key
(a row emitted with wrong counts, later corrected).

Before reading, waits (up to --settle s, default 120) until no transaction
is open on the output topics: a consumer in read_committed stops at the
last stable offset, so the records after an open transaction (say, of an
instance killed and never restarted, until transaction.timeout.ms aborts
it) would otherwise be missed.

watch mode, for recovery times (prints nothing on stdout):
  eos_check.py --watch BROKERS GROUP IN_TOPIC OUT_TOPIC OUTFILE SECONDS
writes "ready" to OUTFILE.ready once it has the group's committed offsets
of IN_TOPIC and the end of OUT_TOPIC, then watches both for up to SECONDS
and writes to OUTFILE two epoch times (s): the first new committed record
of OUT_TOPIC, the first move of the committed offsets ("none" if none).

  eos_check.py --caught-up BROKERS GROUP TOPIC SECONDS
waits until the group's committed offsets are the end of every partition
of TOPIC (exit 1 after SECONDS).

Prints figures; exits non-zero with a one-line reason on any failure."""
import argparse
import collections
import json
import os
import sys
import time

import avro.schema
from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_outputs import canon, decode  # noqa: E402

PARTITION_EOF = -191


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def high_watermarks(brokers, topic, parts):
    # read_uncommitted: the log end, open transactions included (a
    # read_committed consumer may be answered with the last stable offset)
    c = Consumer({"bootstrap.servers": brokers, "group.id": "eos-check-hw",
                  "enable.auto.commit": False,
                  "isolation.level": "read_uncommitted"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p),
                                           timeout=10, cached=False)[1]
                for p in parts}
    finally:
        c.close()


def read_committed(brokers, topic, settle):
    """Every committed record of topic, in offset order per partition, once
    every partition's end of read_committed is the log end."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "eos-check-" + topic,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True,
                  "isolation.level": "read_committed"})
    md = c.list_topics(topic, timeout=30)
    if topic not in md.topics or md.topics[topic].error is not None:
        fail("no topic %s" % topic)
    parts = sorted(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out, eof = [], {}
    deadline = time.time() + settle
    idle_since = time.time()
    while True:
        m = c.poll(0.5)
        if m is None:
            if time.time() - idle_since > settle + 10:
                fail("reading %s: no message and no end for %d s" % (topic, settle + 10))
        elif m.error():
            if m.error().code() != PARTITION_EOF:
                fail("reading %s: %s" % (topic, m.error()))
            eof[m.partition()] = m.offset()
            idle_since = time.time()
        else:
            out.append(m)
            eof.pop(m.partition(), None)
            idle_since = time.time()
            continue
        if len(eof) == len(parts):
            hw = high_watermarks(brokers, topic, parts)
            open_ = {p: (eof[p], hw[p]) for p in parts if eof[p] < hw[p]}
            if not open_:
                break
            if time.time() > deadline:
                fail("%s: transactions still open after %d s (partition: "
                     "(last stable offset, log end)) %s" % (topic, settle, open_))
            time.sleep(0.5)
    c.close()
    return out


def reference(replay_dir, kind):
    rows = []
    for line in open(os.path.join(replay_dir, kind + ".jsonl")):
        r = json.loads(line)
        r.pop("emitted_at")
        rows.append(r)
    return rows


def rollup_id(r):
    return (r["week"], r["dimension"], r["key"])


def dumps(r):
    return json.dumps(r, sort_keys=True)


def check(a):
    eos = a.exactly_once
    schemas = {}
    for kind, f in (("rollups", "weekly_rollup.avsc"), ("streaks", "streak_change.avsc")):
        with open(os.path.join(a.src, "schemas", f)) as fh:
            schemas[kind] = avro.schema.parse(fh.read())
    t0 = time.time()
    rmsgs = read_committed(a.brokers, a.rollups, a.settle)
    smsgs = read_committed(a.brokers, a.streaks, a.settle)
    rollups = decode(rmsgs, "rollups", "avro", schemas["rollups"])
    streaks = decode(smsgs, "streaks", "avro", schemas["streaks"])
    errors = []

    # (a) latest per key; decode keeps the order of read_committed, which
    # is offset order within a partition, and a key lives in one partition
    by_status = collections.Counter(r["status"] for r in rollups)
    latest = {}
    for r in rollups:
        latest[rollup_id(r)] = r
    want = {}
    for r in reference(a.replay, "rollups"):
        want[rollup_id(r)] = r
    missing = sorted(set(want) - set(latest))
    extra = sorted(set(latest) - set(want))
    differ = sorted(k for k in set(want) & set(latest)
                    if dumps(want[k]) != dumps(latest[k]))
    if missing:
        errors.append("rollups: %d keys of replay missing, e.g. %s" % (len(missing), missing[:3]))
    if extra:
        errors.append("rollups: %d keys not in replay, e.g. %s" % (len(extra), extra[:3]))
    if differ:
        k = differ[0]
        errors.append("rollups: the latest record of %d keys differs from replay's, e.g. "
                      "%s: topic %s, replay %s" % (len(differ), "/".join(k),
                                                   dumps(latest[k]), dumps(want[k])))

    # (b) duplicates among FINAL/REVISED
    seen = collections.Counter((*rollup_id(r), r["revision"]) for r in rollups
                               if r["status"] in ("FINAL", "REVISED"))
    dups = {k: n for k, n in seen.items() if n > 1}
    ndups = sum(n - 1 for n in dups.values())
    if eos and dups:
        errors.append("rollups: %d duplicate FINAL/REVISED records (%d keys), e.g. %s"
                      % (ndups, len(dups), sorted(dups.items())[:3]))

    # A figure: FINAL/REVISED records whose content (status and revision
    # aside) is not replay's row of that key, say a row counted twice.
    def content(r):
        return dumps({k: v for k, v in r.items() if k not in ("status", "revision")})
    wrong = sum(1 for r in rollups if r["status"] != "PROVISIONAL"
                and rollup_id(r) in want and content(r) != content(want[rollup_id(r)]))

    # (c) streaks
    swant = reference(a.replay, "streaks")
    sdups = sum(n - 1 for n in collections.Counter(map(dumps, streaks)).values() if n > 1)
    if eos:
        if canon(streaks) != canon(swant):
            g, w = collections.Counter(map(dumps, streaks)), collections.Counter(map(dumps, swant))
            errors.append("streaks: %d records, replay %d; only in topic (or more often): %s; "
                          "only in replay: %s" % (len(streaks), len(swant),
                                                  sorted((g - w).elements())[:2],
                                                  sorted((w - g).elements())[:2]))
    else:
        ident = lambda r: (r["rule"], r["week"])  # noqa: E731
        gl = {ident(r): r for r in streaks}
        wl = {ident(r): r for r in swant}
        bad = sorted(k for k in set(gl) | set(wl)
                     if k not in gl or k not in wl or dumps(gl[k]) != dumps(wl[k]))
        if bad:
            k = bad[0]
            errors.append("streaks: the latest record of %d (rule, week) differs from replay's, "
                          "e.g. %s: topic %s, replay %s" % (len(bad), k, gl.get(k), wl.get(k)))

    print("eos_check (%s): rollups %d records read (%d keys; replay %d): FINAL %d, REVISED %d, "
          "PROVISIONAL %d; duplicates %d (%d keys); FINAL/REVISED unlike replay's row %d; streaks %d records read (replay %d), "
          "duplicates %d; read in %.1f s"
          % ("exactly-once" if eos else "at-least-once", len(rollups), len(latest), len(want),
             by_status["FINAL"], by_status["REVISED"], by_status["PROVISIONAL"], ndups, len(dups), wrong,
             len(streaks), len(swant), sdups, time.time() - t0))
    if dups and not eos:
        print("duplicates (at-least-once, allowed): %s%s"
              % (", ".join("%s/%s/%s rev %d x%d" % (*k, n) for k, n in sorted(dups.items())[:5]),
                 " ..." if len(dups) > 5 else ""))
    if errors:
        for e in errors[1:]:
            print("MISMATCH: " + e, file=sys.stderr)
        fail(errors[0])
    print("eos_check: ok")


def committed_sum(c, topic, parts, timeout=2):
    """The group's committed offsets of topic, summed; None when the
    coordinator does not answer in time (a new group, a broker restart)."""
    try:
        offs = c.committed([TopicPartition(topic, p) for p in parts], timeout=timeout)
    except Exception:  # noqa: BLE001 (KafkaException: timed out, coordinator loading)
        return None
    return sum(max(tp.offset, 0) for tp in offs)


def watch(brokers, group, in_topic, out_topic, outfile, seconds):
    """Times to the first commit of group on in_topic and to the first new
    committed record of out_topic, as epoch seconds or none."""
    g = Consumer({"bootstrap.servers": brokers, "group.id": group,
                  "enable.auto.commit": False})
    in_parts = sorted(g.list_topics(in_topic, timeout=30).topics[in_topic].partitions)
    # None while a killed instance's transaction is open: the broker then
    # answers "unstable offsets" until it is aborted
    before = committed_sum(g, in_topic, in_parts, 2)
    out_parts = sorted(g.list_topics(out_topic, timeout=30).topics[out_topic].partitions)
    hw = high_watermarks(brokers, out_topic, out_parts)
    c = Consumer({"bootstrap.servers": brokers, "group.id": "eos-check-watch",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    c.assign([TopicPartition(out_topic, p, hw[p]) for p in out_parts])
    with open(outfile + ".ready", "w") as f:
        f.write("ready\n")
    end = time.time() + seconds
    record = commit = None

    def save():  # after every finding: the caller may kill this process
        with open(outfile + ".tmp", "w") as f:
            f.write(" ".join("none" if t is None else "%.3f" % t
                             for t in (record, commit)) + "\n")
        os.replace(outfile + ".tmp", outfile)
    save()
    while time.time() < end and (record is None or commit is None):
        if record is None:
            m = c.poll(0.05)
            if m is not None and not m.error():
                record = time.time()
                save()
        else:
            time.sleep(0.05)
        if commit is None and before is not None:
            now = committed_sum(g, in_topic, in_parts)
            if now is not None and now != before:
                commit = time.time()
                save()
    c.close()
    g.close()


def caught_up(brokers, group, topic, seconds):
    """Waits until group's committed offsets are the end of every partition
    of topic; exit status 1 after seconds."""
    g = Consumer({"bootstrap.servers": brokers, "group.id": group,
                  "enable.auto.commit": False})
    parts = sorted(g.list_topics(topic, timeout=30).topics[topic].partitions)
    t0 = time.time()
    lag = None
    while time.time() - t0 < seconds:
        try:
            offs = g.committed([TopicPartition(topic, p) for p in parts], timeout=5)
            ends = [g.get_watermark_offsets(TopicPartition(topic, p), timeout=5,
                                            cached=False)[1] for p in parts]
            lag = sum(e - max(o.offset, 0) for o, e in zip(offs, ends))
            if lag == 0:
                print("caught up after %.1f s" % (time.time() - t0))
                return 0
        except Exception:  # noqa: BLE001 (coordinator not available yet)
            pass
        time.sleep(0.2)
    print("not caught up after %d s (lag %s)" % (seconds, lag))
    return 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--caught-up":
        brokers, group, topic, seconds = sys.argv[2:6]
        sys.exit(caught_up(brokers, group, topic, float(seconds)))
    if len(sys.argv) > 1 and sys.argv[1] == "--watch":
        brokers, group, in_topic, out_topic, outfile, seconds = sys.argv[2:8]
        watch(brokers, group, in_topic, out_topic, outfile, float(seconds))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("brokers")
    ap.add_argument("src")
    ap.add_argument("replay")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--exactly-once", action="store_true")
    g.add_argument("--at-least-once", action="store_true")
    ap.add_argument("--rollups", default="token-usage.rollups")
    ap.add_argument("--streaks", default="token-usage.streaks")
    ap.add_argument("--settle", type=float, default=120.0)
    check(ap.parse_args())


if __name__ == "__main__":
    main()
