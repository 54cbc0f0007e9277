#!/usr/bin/env python3
"""Scenario harness for `tokentally run` on a real Kafka broker (issue 9).

Each scenario of the table below lays out its topics, produces events the
way a real upstream would (keys = request_id, partition = crc32(key) mod N,
in time order with jitter, at a rate, or in transactions), runs the stage
one or more times (fresh group or the same group again, kills, several
instances), and checks the output topics, read read_committed by
confluent-kafka and decoded by python3-avro with schemas/*.avsc (or json),
against an independent recount in Python (recount.py), never against
tokentally's own replay:
  - the latest record of every rollup key equals the recount (all fields
    but emitted_at; every key there, no other);
  - the latest StreakChange of every (rule, week) equals the recount;
  - the dead letters are exactly the expected ones (reason, original bytes);
  - exactly-once: no (week, dimension, key, revision) twice among FINAL and
    REVISED records, and each key's revisions count up 0, 1, 2, ...;
  - every run exits as expected and its last log line says how it ended
    and what it emitted.
Every scenario runs once per guarantee (--guarantee all) unless it says
otherwise.

usage: scenarios.py --brokers B --binary T --src DIR --tmp DIR
                    [--guarantee all|exactly-once|at-least-once]
                    [--repeat N] [--docker-image IMAGE] [SCENARIO ...]
--docker-image runs every stage as `docker run --network host --read-only
IMAGE run ...` (tests/docker/container.sh): kill -9 is `docker kill -s
KILL`, SIGTERM reaches the container through the client (--sig-proxy).
Prints one line per scenario run and a closing "N passed, N failed" line;
exits 1 if any failed."""
import argparse
import base64
import datetime
import io
import json
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
import zlib

import avro.io
import avro.schema
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recount  # noqa: E402

EOF_CODE = -191  # _PARTITION_EOF
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
GUARANTEES = ("at-least-once", "exactly-once")

# Models of several origins: by the origin map (null origin), explicit, and
# unknown to the map (ZZ).
MODELS = [("deepseek/deepseek-chat-v3", None), ("qwen/qwen3-coder", None),
          ("moonshotai/kimi-k2", None), ("openai/gpt-5", None),
          ("anthropic/claude-sonnet-4", None), ("google/gemini-2.5-pro", None),
          ("mistralai/mistral-large", None), ("acme/forge-1", "DE"),
          ("someone/unknown-lab", None)]


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ---- events ----------------------------------------------------------------

def make_events(rng, first_week, nweeks, per_week, tag):
    """per_week events in each of nweeks ISO weeks from first_week, in time
    order with up to 5 minutes of jitter (well inside the 10 min grace)."""
    evs = []
    for i in range(nweeks):
        ws = recount.week_start_ms(recount.shift_week(first_week, i))
        # A different mix each week, so that leaders change.
        weights = [rng.uniform(0.2, 3.0) for _ in MODELS]
        for j in range(per_week):
            m, o = rng.choices(MODELS, weights)[0]
            t = ws + rng.randrange(7 * 86400 * 1000)
            evs.append({"request_id": "%s-%d-%d" % (tag, i, j), "event_time": t,
                        "model": m, "origin": o,
                        "prompt_tokens": rng.randrange(50, 20000),
                        "completion_tokens": rng.randrange(0, 4000),
                        "provider": "p%d" % rng.randrange(3)})
    evs.sort(key=lambda e: e["event_time"] + rng.randrange(300000))
    return evs


class Codec:
    def __init__(self, src):
        def parse(name):
            with open(os.path.join(src, "schemas", name)) as f:
                return avro.schema.parse(f.read())
        self.event = parse("token_event.avsc")
        self.schemas = {"rollups": parse("weekly_rollup.avsc"),
                        "streaks": parse("streak_change.avsc")}
        with open(os.path.join(src, "schemas", "origins.json")) as f:
            self.origins = json.load(f)

    def encode_event(self, ev, fmt):
        if fmt == "json":
            return json.dumps(ev).encode()
        b = io.BytesIO()
        b.write(struct.pack(">bI", 0, 1))
        # python3-avro takes timestamp-millis as a datetime
        ev = dict(ev, event_time=EPOCH + datetime.timedelta(milliseconds=ev["event_time"]))
        avro.io.DatumWriter(self.event).write(ev, avro.io.BinaryEncoder(b))
        return b.getvalue()

    def decode_output(self, kind, value, fmt):
        if fmt == "json":
            return json.loads(value)
        check(value[:1] == b"\0", "%s: no Confluent magic byte" % kind)
        r = avro.io.DatumReader(self.schemas[kind]).read(
            avro.io.BinaryDecoder(io.BytesIO(value[5:])))
        for k, v in r.items():
            if isinstance(v, datetime.datetime):
                r[k] = (v - EPOCH) // datetime.timedelta(milliseconds=1)
        return r


# ---- Kafka -------------------------------------------------------------------

class Kafka:
    def __init__(self, brokers):
        self.brokers = brokers
        self.admin = AdminClient({"bootstrap.servers": brokers})

    def create(self, topics):
        """topics: [(name, partitions, {config})]"""
        fs = self.admin.create_topics(
            [NewTopic(n, p, 1, config=c) for n, p, c in topics])
        for n, f in fs.items():
            f.result(30)
        # Wait until every partition has a leader.
        for n, p, _ in topics:
            for _ in range(100):
                md = self.admin.list_topics(n, timeout=10).topics.get(n)
                if md and not md.error and len(md.partitions) == p and all(
                        x.leader >= 0 for x in md.partitions.values()):
                    break
                time.sleep(0.1)

    def produce(self, topic, nparts, payloads, rate=0, txn=None,
                timestamp=None):
        """payloads: [(key, value)]. rate: messages/s (0: at once). txn: a
        list of (count, commit?) splitting payloads into transactions."""
        conf = {"bootstrap.servers": self.brokers, "linger.ms": 5,
                "enable.idempotence": True}
        if txn:
            conf["transactional.id"] = "scn-%s" % topic
        p = Producer(conf)
        if txn:
            p.init_transactions(30)
        chunks = txn or [(len(payloads), True)]
        i, t0 = 0, time.monotonic()
        for n, commit in chunks:
            if txn:
                p.begin_transaction()
            for k, v in payloads[i:i + n]:
                kw = {"timestamp": timestamp} if timestamp else {}
                while True:
                    try:
                        p.produce(topic, v, k, partition=zlib.crc32(k) % nparts, **kw)
                        break
                    except BufferError:
                        # the local queue is full (10^6 messages at once,
                        # it_kafka_cardinality): wait for deliveries
                        p.poll(0.05)
                i += 1
                if rate:
                    ahead = i / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        p.flush()
                        time.sleep(ahead)
                p.poll(0)
            if txn:
                # every record acknowledged before the end of the
                # transaction (librdkafka 2.0.2 failed an abort right after
                # produce with INVALID_TXN_STATE)
                p.flush(30)
                (p.commit_transaction if commit else p.abort_transaction)(30)
        left = p.flush(30)
        check(left == 0, "producer: %d messages not delivered" % left)

    def settle(self, topic, parts, timeout=60):
        """Waits until no transaction is open on topic: the last stable
        offset equals the log end. commit_transaction returns before the
        commit markers are written to the partitions, so a read_committed
        reader right after a stage exits may stop short of its last
        records."""
        ends = {}
        for iso in ("read_uncommitted", "read_committed"):
            c = Consumer({"bootstrap.servers": self.brokers,
                          "group.id": "scn-settle", "isolation.level": iso})
            ends[iso] = c
        try:
            deadline = time.monotonic() + timeout
            while True:
                hi = [ends["read_uncommitted"].get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10, cached=False)[1] for p in parts]
                lso = [ends["read_committed"].get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10, cached=False)[1] for p in parts]
                if hi == lso:
                    return
                check(time.monotonic() < deadline,
                      "%s: a transaction still open after %d s" % (topic, timeout))
                time.sleep(0.1)
        finally:
            for c in ends.values():
                c.close()

    def read(self, topic):
        c = Consumer({"bootstrap.servers": self.brokers,
                      "group.id": "scn-read-" + topic,
                      "enable.auto.commit": False,
                      "enable.partition.eof": True,
                      "isolation.level": "read_committed"})
        md = c.list_topics(topic, timeout=30).topics[topic]
        parts = sorted(md.partitions)
        self.settle(topic, parts)
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out, eof = [], set()
        deadline = time.monotonic() + 120
        while len(eof) < len(parts):
            check(time.monotonic() < deadline, "reading %s: no end" % topic)
            # in batches: a message at a time is most of the time of
            # reading 10^6 rows (it_kafka_cardinality)
            for m in c.consume(10000, 1.0):
                if m.error():
                    if m.error().code() == EOF_CODE:
                        eof.add(m.partition())
                        continue
                    raise Failure("reading %s: %s" % (topic, m.error()))
                out.append(m)
        c.close()
        return out


# ---- the stage -----------------------------------------------------------------

class Stage:
    seq = 0

    def __init__(self, ctx, name, guarantee, group, input_topic, instance,
                 extra, timed=False):
        self.log = os.path.join(ctx.tmp, "%s.%s.log" % (name, instance))
        # Harnesses that make their own Ctx (cardinality.py) run no container.
        self.docker = getattr(ctx, "docker", "docker")
        image = getattr(ctx, "docker_image", None)
        args = [ctx.binary, "run", "--brokers", ctx.kafka.brokers,
                "--group", group, "--input-topic", input_topic,
                "--rollups-topic", name + ".rollups",
                "--streaks-topic", name + ".streaks",
                "--dlq-topic", name + ".dlq", "--guarantee", guarantee,
                "--workers", "2", "--metrics-addr", "off",
                "-X", "session.timeout.ms=6000"]
        if guarantee == "exactly-once":
            args += ["--state-topic", group + ".state",
                     "--partials-topic", group + ".partials",
                     "--instance-id", instance]
        else:
            args += ["-X", "group.instance.id=%s-%s" % (group, instance)]
        if os.environ.get("TT_SCN_LOG_LEVEL"):
            args += ["--log-level", os.environ["TT_SCN_LOG_LEVEL"]]
        args += extra
        self.f = open(self.log, "ab")
        self.log_from = self.f.tell()  # this run's lines start here
        self.time_file = None
        if timed:
            # Peak RSS as time -v measures it: of the stage alone. (The
            # rusage of a child forked from this process would count the
            # harness's own pages until the exec.)
            self.time_file = "%s.%d.time" % (self.log, self.log_from)
            args = ["/usr/bin/time", "-f", "%e %M", "-o", self.time_file] + args
        self.container = None
        if image:
            # The image's binary instead of ctx.binary: one container per
            # stage run, named so that it can be killed.
            if timed:
                raise Failure("timed stages do not run in a container")
            Stage.seq += 1
            self.container = "tt-scn-%d-%d" % (os.getpid(), Stage.seq)
            args = [self.docker, "run", "--rm", "--name", self.container,
                    "--network", "host", "--read-only", image] + args[1:]
        self.args = args
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(args, stdout=self.f, stderr=self.f)
        self.seconds = None  # wall time, once it exited

    def _done(self):
        self.seconds = time.monotonic() - self.t0
        self.f.close()

    def wait(self, timeout):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_container()
            self.p.kill()
            self.p.wait()
            raise Failure("stage did not exit in %d s (log %s)" % (timeout, self.log))
        self._done()
        return rc

    def pid(self):
        """The stage's pid (not /usr/bin/time's)."""
        if not self.time_file:
            return self.p.pid
        for _ in range(100):
            try:
                with open("/proc/%d/task/%d/children" % (self.p.pid, self.p.pid)) as f:
                    kids = f.read().split()
            except OSError:
                kids = []
            if kids:
                return int(kids[0])
            time.sleep(0.01)
        raise Failure("no stage process under /usr/bin/time")

    def _kill_container(self):
        """SIGKILL to the stage in its container (killing the docker client
        would leave the container running). Retried until the container
        exists: a kill right after `docker run` may come before it."""
        for _ in range(200):
            r = subprocess.run([self.docker, "kill", "-s", "KILL", self.container],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0 or self.p.poll() is not None:
                return
            time.sleep(0.05)
        raise Failure("docker kill %s failed" % self.container)

    def kill9(self):
        if self.container:
            self._kill_container()
        else:
            os.kill(self.pid(), signal.SIGKILL)
        self.p.wait()
        self._done()

    def maxrss_kib(self):
        """Peak RSS of the stage in KiB (timed, once it exited), else None."""
        if not self.time_file:
            return None
        with open(self.time_file) as f:
            return int(f.read().split()[-1])

    def last_line(self):
        with open(self.log, "rb") as f:
            lines = [x for x in f.read().decode(errors="replace").splitlines() if x.strip()]
        for line in reversed(lines):
            try:
                return json.loads(line)
            except ValueError:
                continue
        return {}


# ---- one scenario run ------------------------------------------------------------

class Run:
    """One scenario under one guarantee: its own topics and group."""
    seq = 0

    def __init__(self, ctx, scenario, guarantee, compacted=False,
                 input_format="avro", output_format="avro", partitions=4,
                 dlq_config=None):
        Run.seq += 1
        self.ctx, self.g = ctx, guarantee
        self.name = "%s-%s-%d-%d" % (scenario, "eos" if guarantee == "exactly-once"
                                     else "alo", os.getpid(), Run.seq)
        self.group = self.name + ".g"
        self.input = self.name + ".events"
        self.nparts = partitions
        self.ifmt, self.ofmt = input_format, output_format
        self.events = []    # counted by the contract
        self.too_late = []  # (reason, value) expected dead letters
        self.stages = 0
        out_cfg = {"cleanup.policy": "compact"} if compacted else {}
        ctx.kafka.create([(self.input, partitions, {}),
                          (self.name + ".rollups", 3, out_cfg),
                          (self.name + ".streaks", 1, out_cfg),
                          (self.name + ".dlq", 1, dlq_config or {})])

    def payloads(self, evs):
        return [(e["request_id"].encode(), self.ctx.codec.encode_event(e, self.ifmt))
                for e in evs]

    def produce(self, evs, counted=True, **kw):
        self.ctx.kafka.produce(self.input, self.nparts, self.payloads(evs), **kw)
        if counted:
            self.events += evs

    def stage(self, instance="a", extra=(), group=None, timed=False):
        self.stages += 1
        ex = list(extra) + ["--input-format", self.ifmt,
                            "--output-format", self.ofmt]
        return Stage(self.ctx, self.name, self.g, group or self.group,
                     self.input, instance, ex, timed)

    def run_eof(self, instance="a", extra=(), group=None, timeout=120,
                expect_rc=0, timed=False):
        s = self.stage(instance, ["--close-at-eof"] + list(extra), group, timed)
        rc = s.wait(timeout)
        last = s.last_line()
        if rc != expect_rc:
            # The scratch folder goes with the test: keep the evidence.
            with open(s.log, "rb") as f:
                tail = f.read().decode(errors="replace").splitlines()[-30:]
            print("\n".join(["  | " + x for x in tail]), flush=True)
        check(rc == expect_rc, "run exited %d, expected %d: %s (log %s)" %
              (rc, expect_rc, last.get("msg"), s.log))
        if expect_rc == 0:
            check(str(last.get("msg", "")).startswith(
                "run: closed at the end of input"),
                "last log line is not the closing summary: %r" % last.get("msg"))
        return s, last

    def verify(self, extra_dead=()):
        k, codec = self.ctx.kafka, self.ctx.codec
        want = recount.rows(self.events, codec.origins)
        latest, seen, revs = {}, set(), {}
        n = {"FINAL": 0, "REVISED": 0, "PROVISIONAL": 0}
        dup = 0
        for m in k.read(self.name + ".rollups"):
            r = codec.decode_output("rollups", m.value(), self.ofmt)
            key = m.key().decode()
            check(key == "%s/%s/%s" % (r["week"], r["dimension"], r["key"]),
                  "rollup key %r does not match its record" % key)
            latest[key] = r
            n[r["status"]] += 1
            if r["status"] != "PROVISIONAL":
                t = (key, r["revision"])
                dup += t in seen
                seen.add(t)
                revs.setdefault(key, []).append(r["revision"])
        missing = sorted(set(want) - set(latest))
        extra = sorted(set(latest) - set(want))
        check(not missing, "%d rollup keys missing, e.g. %s" % (len(missing), missing[:3]))
        check(not extra, "%d rollup keys not in the recount, e.g. %s" % (len(extra), extra[:3]))
        for key, w in want.items():
            got = latest[key]
            check(got["status"] in ("FINAL", "REVISED"),
                  "%s: latest record is %s" % (key, got["status"]))
            for f, v in w.items():
                g = got[f]
                if isinstance(v, float) or isinstance(g, float):
                    ok = (v is None and g is None) or (
                        v is not None and g is not None and abs(g - v) <= 1e-9 * max(1.0, abs(v)))
                else:
                    ok = g == v
                check(ok, "%s: %s is %r, the recount says %r" % (key, f, g, v))
        if self.g == "exactly-once":
            check(dup == 0, "%d (week, dimension, key, revision) twice" % dup)
            for key, rs in revs.items():
                check(rs == list(range(rs[0], rs[0] + len(rs))),
                      "%s: revisions %s do not count up by one" % (key, rs))
        else:
            # at-least-once repeats records after a restart, but a key's
            # revision never goes down: the latest record has the highest.
            for key, rs in revs.items():
                check(rs == sorted(rs), "%s: revisions %s go down" % (key, rs))
        # streaks
        wants = recount.streaks(self.events, codec.origins)
        got_s = {}
        for m in k.read(self.name + ".streaks"):
            s = codec.decode_output("streaks", m.value(), self.ofmt)
            got_s[(s["rule"], s["week"])] = s
        check(set(got_s) == set(wants), "streak (rule, week) sets differ: missing %s, extra %s" %
              (sorted(set(wants) - set(got_s))[:3], sorted(set(got_s) - set(wants))[:3]))
        for kk, w in wants.items():
            for f, v in w.items():
                g = got_s[kk][f]
                ok = (abs(g - v) <= 1e-9 * max(1.0, abs(v))) if isinstance(v, float) and g is not None else g == v
                check(ok, "streak %s %s: %s is %r, the recount says %r" % (kk[0], kk[1], f, g, v))
        # dead letters: reason and original bytes
        dl = sorted((dict(m.headers() or []).get("tokentally.reason", b"").decode(),
                     base64.b64encode(m.value() or b"").decode())
                    for m in k.read(self.name + ".dlq"))
        exp = sorted((r, base64.b64encode(v).decode())
                     for r, v in list(self.too_late) + list(extra_dead))
        check(dl == exp, "dead letters %s, expected %s" %
              ([r for r, _ in dl], [r for r, _ in exp]))
        return "%d keys, FINAL %d, REVISED %d, PROVISIONAL %d, dup %d, %d streak weeks, %d dead" % (
            len(want), n["FINAL"], n["REVISED"], n["PROVISIONAL"], dup, len(wants), len(dl))


# ---- the scenarios -----------------------------------------------------------------

def sc_fresh_eof(ctx, g, rng):
    """A fresh group on a fresh topic, events produced first, one run with
    --close-at-eof: every row emitted (defect 1; also defect 4, since every
    exactly-once run creates its internal topics just before it starts)."""
    r = Run(ctx, "fresh", g)
    r.produce(make_events(rng, "2026-W02", 10, 300, "f"))
    _, last = r.run_eof()
    check(last.get("rollups", 0) > 0, "summary says 0 rollups: %r" % last.get("msg"))
    return r.verify()


def sc_fresh_compacted(ctx, g, rng):
    """The same with compacted output topics, JSON in and out."""
    r = Run(ctx, "compact", g, compacted=True, input_format="json",
            output_format="json")
    r.produce(make_events(rng, "2026-W02", 10, 300, "c"))
    r.run_eof()
    return r.verify()


def sc_backfill2(ctx, g, rng):
    """Two --close-at-eof runs of one group: the second reads late events of
    closed weeks, a new week, and one event 20 weeks older than the data
    (too_late): REVISED rows, the new week, the dead letter (defects 2, 3)."""
    r = Run(ctx, "backfill", g)
    r.produce(make_events(rng, "2026-W02", 8, 250, "b1"))
    r.run_eof()
    late = make_events(rng, "2026-W05", 4, 40, "b2")  # closed weeks
    new = make_events(rng, "2026-W10", 1, 200, "b3")
    old = make_events(rng, "2025-W30", 1, 1, "b4")
    r.produce(late + new)
    r.produce(old, counted=False)
    r.too_late += [("too_late", v) for _, v in r.payloads(old)]
    _, last = r.run_eof()
    check(last.get("rollups", 0) > 0, "second run emitted 0 rollups: %r" % last.get("msg"))
    return r.verify()


def sc_from_timestamp(ctx, g, rng):
    """--from-timestamp T on a fresh group counts exactly the messages with
    a timestamp at or after T (defect 5); --from-timestamp 1 all of them."""
    r = Run(ctx, "fromts", g)
    t = int(time.time() * 1000)
    before = make_events(rng, "2026-W02", 6, 100, "t1")
    after = make_events(rng, "2026-W04", 6, 120, "t2")
    r.produce(before, counted=False, timestamp=t - 3600000)
    r.produce(after, timestamp=t)
    r.run_eof(extra=["--from-timestamp", str(t)])
    a = r.verify()
    # A second fresh group over the same topic from timestamp 1: everything,
    # into its own outputs (a new Run reuses the topic through --group).
    r2 = Run(ctx, "fromts1", g)
    r2.input = r.input
    r2.events = before + after
    r2.run_eof(extra=["--from-timestamp", "1"])
    return a + "; from 1: " + r2.verify()


def sc_missing_output(ctx, g, rng):
    """An output topic that does not exist: exit 1 at once, naming it
    (defect 6), both guarantees."""
    r = Run(ctx, "missing", g)
    r.produce(make_events(rng, "2026-W02", 2, 50, "m"))
    t0 = time.monotonic()
    s, last = r.run_eof(extra=["--rollups-topic", r.name + ".nosuch"],
                        expect_rc=1, timeout=60)
    dt = time.monotonic() - t0
    with open(s.log) as f:
        log = f.read()
    check(r.name + ".nosuch" in str(last.get("msg", "")) + str(last.get("reason", "")),
          "last line does not name the missing topic: %r" % last)
    check("does not exist" in log, "no 'does not exist' in the log")
    return "exit 1 after %.1f s: %s" % (dt, last.get("reason") or last.get("msg"))


def sc_dlq_refused(ctx, g, rng):
    """A dead letter the broker refuses (its topic's max.message.bytes is
    smaller than the bad input message): no retry can deliver it, so the
    stage stops with the topic and the reason, exit 1, in both guarantees
    (exactly-once used to abort and redo the transaction forever)."""
    r = Run(ctx, "refused", g, dlq_config={"max.message.bytes": "2000"})
    r.produce(make_events(rng, "2026-W02", 2, 50, "d"))
    ctx.kafka.produce(r.input, r.nparts, [(b"junk", b"{" + b"x" * 20000)])
    t0 = time.monotonic()
    s, last = r.run_eof(expect_rc=1, timeout=90)
    why = str(last.get("reason", ""))
    check(r.name + ".dlq" in why and "MSG_SIZE_TOO_LARGE" in why,
          "last line does not name the topic and the reason: %r" % why)
    return "exit 1 after %.1f s: %s" % (time.monotonic() - t0, why)


def sc_kill_restart(ctx, g, rng):
    """Events streamed at 1,500/s; the stage killed -9 mid-stream, then a
    run with --close-at-eof: exact (exactly-once: no duplicate)."""
    r = Run(ctx, "kill", g)
    evs = make_events(rng, "2026-W02", 10, 450, "k")
    th = threading.Thread(target=r.produce, args=(evs,), kwargs={"rate": 1500})
    th.start()
    s = r.stage(extra=["--emit-interval", "1s"])
    time.sleep(rng.uniform(1.5, 2.5))
    s.kill9()
    th.join()
    r.run_eof()
    return r.verify()


def sc_upstream_txn(ctx, g, rng):
    """Input written in transactions by the producer, one aborted: exactly
    the committed events, no stall on the markers."""
    r = Run(ctx, "txn", g)
    evs = make_events(rng, "2026-W02", 6, 200, "u")
    chunks = [(200, True)] * 6
    chunks[2] = (200, False)
    r.produce(evs, counted=False, txn=chunks)
    r.events = evs[:400] + evs[600:]
    r.run_eof()
    return r.verify()


def sc_two_instances(ctx, g, rng):
    """Two exactly-once instances of a fresh group started together, both
    with --close-at-eof: both exit 0 (the front that is not the merger waits
    until the merger applied its counts), rows exact. At-least-once
    instances merge nothing: one instance per group there."""
    r = Run(ctx, "two", g, partitions=6)
    r.produce(make_events(rng, "2026-W02", 10, 300, "w"))
    a = r.stage("a", ["--close-at-eof"])
    b = r.stage("b", ["--close-at-eof"])
    ra, rb = a.wait(120), b.wait(120)
    check(ra == 0 and rb == 0, "exits %d, %d (logs %s %s)" % (ra, rb, a.log, b.log))
    merg = [x.last_line().get("merger") for x in (a, b)]
    check(1 in merg, "neither instance was the merger: %s" % merg)
    return r.verify() + "; merger flags %s" % merg


def sc_restart_long(ctx, g, rng):
    """16 weeks of history with --retain-weeks 4: a run that closes most
    weeks and is stopped (SIGTERM), then one with --close-at-eof. The
    weeks the restart reads again must keep their prev_tokens and streak
    lengths from the weeks before them."""
    r = Run(ctx, "long", g)
    r.produce(make_events(rng, "2026-W02", 16, 150, "l"))
    s = r.stage(extra=["--retain-weeks", "4", "--idle-timeout", "1s"])
    # until it has read everything (the weeks close as the watermark moves)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(s.log) as f:
            if '"week closed"' in f.read():
                break
        time.sleep(0.2)
    time.sleep(3)
    s.p.send_signal(signal.SIGTERM)
    check(s.wait(60) == 0, "SIGTERM: non-zero exit (log %s)" % s.log)
    r.run_eof(extra=["--retain-weeks", "4", "--idle-timeout", "1s"])
    return r.verify()


def sc_future_report(ctx, g, rng):
    """Live data (the last weeks before now) and a record on the partials
    topic, written by someone else, whose reports put every partition's
    watermark in 2099 (within the 2000-2099 range the decoder accepts). Taken
    as it is, it would close every week and make the later events of weeks
    older than 2099 minus --retain-weeks too_late dead letters. The merger
    holds such a report to now + --max-future + 5 min clock skew: the weeks
    before now close early at worst and are revised, every event counted."""
    r = Run(ctx, "future", g)
    now = int(time.time() * 1000)
    last = recount.shift_week(recount.week_of(now), -1)
    first = recount.shift_week(last, -3)
    evs = make_events(rng, first, 4, 250, "u")
    r.produce(evs[:100])
    r.run_eof()  # creates the internal topics, closes what it saw
    rec = b"C\x01" + struct.pack("<I", r.nparts)
    for pid in range(r.nparts):
        rec += struct.pack("<IqB", pid, 4070908800000, 0)  # 2099-01-01
    rec += struct.pack("<I", 0)
    ctx.kafka.produce(r.group + ".partials", 1, [(r.group.encode(), rec)])
    r.produce(evs[100:])
    s, _ = r.run_eof()
    fig = r.verify()
    with open(s.log, "rb") as f:
        held = [json.loads(l) for l in f if b"beyond --max-future" in l]
    check(held and held[0].get("reported") == 4070908800000,
          "no log line about the report held to the bound")
    return fig + ", %d report(s) held" % held[-1].get("count", 0)


SCENARIOS = {
    "fresh_eof": (sc_fresh_eof, GUARANTEES),
    "fresh_compacted": (sc_fresh_compacted, GUARANTEES),
    "backfill2": (sc_backfill2, GUARANTEES),
    "from_timestamp": (sc_from_timestamp, GUARANTEES),
    "missing_output": (sc_missing_output, GUARANTEES),
    "dlq_refused": (sc_dlq_refused, GUARANTEES),
    "kill_restart": (sc_kill_restart, GUARANTEES),
    "upstream_txn": (sc_upstream_txn, GUARANTEES),
    "two_instances": (sc_two_instances, ("exactly-once",)),
    "restart_long": (sc_restart_long, GUARANTEES),
    "future_report": (sc_future_report, ("exactly-once",)),
}


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--guarantee", default="all")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--docker-image", default=None)
    ap.add_argument("--docker", default="docker", help="the docker client")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    ctx = Ctx()
    ctx.binary, ctx.tmp = a.binary, a.tmp
    ctx.docker_image, ctx.docker = a.docker_image, a.docker
    ctx.kafka = Kafka(a.brokers)
    ctx.codec = Codec(a.src)
    names = a.names or list(SCENARIOS)
    passed = failed = 0
    seed = a.seed if a.seed is not None else int(time.time())
    print("seed %d" % seed, flush=True)
    for i in range(a.repeat):
        for name in names:
            fn, gs = SCENARIOS[name]
            for g in gs:
                if a.guarantee != "all" and g != a.guarantee:
                    continue
                rng = random.Random("%d-%s-%s-%d" % (seed, name, g, i))
                t0 = time.monotonic()
                try:
                    fig = fn(ctx, g, rng)
                    passed += 1
                    print("ok   %-16s %-13s %5.1f s  %s" % (name, g, time.monotonic() - t0, fig),
                          flush=True)
                except (Failure, KafkaException, subprocess.SubprocessError) as e:
                    failed += 1
                    print("FAIL %-16s %-13s %5.1f s  %s" % (name, g, time.monotonic() - t0, e),
                          flush=True)
                except Exception:
                    failed += 1
                    print("FAIL %-16s %-13s (harness error)" % (name, g), flush=True)
                    traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
