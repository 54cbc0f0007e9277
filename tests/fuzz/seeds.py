#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz harness into tests/fuzz/corpus/<name>/
(small valid and near-valid inputs of every format, built by hand from the
formats' definitions so that the seeds do not depend on the code under
test). Run once after a format changes; the kept corpus is then grown and
minimised by tests/fuzz/run.sh --long.

    python3 tests/fuzz/seeds.py [BINARY]   (BINARY: build/tokentally, for OCF
                                            files written by gen)
    python3 tests/fuzz/seeds.py --only-state   (the changelog seeds alone)"""
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
W14 = 1774828800000  # Monday 2026-03-30 00:00 UTC
WEEK_MS = 604800000
def week_of(t):
    return (t - 4 * 86400000) // WEEK_MS


def put(name, fname, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


EVENTS = [
    dict(request_id="r1", event_time=W14 + 3600000, model="deepseek/deepseek-chat-v3",
         origin=None, prompt_tokens=1200, completion_tokens=300, provider="p"),
    dict(request_id="r2", event_time=W14 - 3600000, model="openai/gpt-5",
         origin="US", prompt_tokens=10, completion_tokens=5, provider=None),
    dict(request_id="r3", event_time=W14 + 8 * 86400000, model="mistralai/x",
         origin=None, prompt_tokens=0, completion_tokens=9999999, provider=None),
]


# ---- Avro binary ----------------------------------------------------------
def zz(v):
    v = (v << 1) ^ (v >> 63)
    out = b""
    v &= (1 << 64) - 1
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def astr(s):
    b = s.encode() if isinstance(s, str) else s
    return zz(len(b)) + b


def aopt(s):
    return zz(0) if s is None else zz(1) + astr(s)


def avro_event(e):
    return (astr(e["request_id"]) + zz(e["event_time"]) + astr(e["model"]) +
            aopt(e["origin"]) + zz(e["prompt_tokens"]) + zz(e["completion_tokens"]) +
            aopt(e["provider"]))


# ---- internal records (include/tokentally/partials.h, engine_state.c) ------
u8 = lambda v: struct.pack("<B", v)
u32 = lambda v: struct.pack("<I", v & 0xFFFFFFFF)
i64 = lambda v: struct.pack("<q", v)
f64 = lambda v: struct.pack("<d", v)
def byts(b):
    b = b.encode() if isinstance(b, str) else b
    return u32(len(b)) + b
def origin(code):
    return (ord(code[0]) << 8) | ord(code[1])
def cell(tokens, prompt, requests, last_time, org):
    return (i64(tokens) + i64(prompt) + i64(tokens - prompt) + i64(requests) +
            i64(last_time) + u32(origin(org)))
def framed(*records):
    return b"".join(u32(len(r)) + r for r in records)


def partials():
    w = week_of(W14)
    cells = (b"C" + u8(1) + u32(2) +
             u32(0) + i64(W14 + 3600000) + u8(0) +
             u32(1) + i64(-(1 << 63)) + u8(1) +
             u32(3) +
             b"m" + u32(w) + byts("deepseek/deepseek-chat-v3") + cell(1500, 1200, 1, W14 + 3600000, "CN") +
             b"o" + u32(w) + u32(origin("CN")) + cell(1500, 1200, 1, W14 + 3600000, "CN") +
             b"o" + u32(w - 1) + u32(origin("US")) + cell(15, 10, 1, W14 - 3600000, "US"))
    closing = (b"C" + u8(1) + u32(1) + u32(0) + i64(W14 + 9 * 86400000) + u8(2) + u32(0))
    val = json.dumps(EVENTS[1]).encode()
    event = b"E" + u8(1) + u32(0) + i64(42) + u8(1) + byts(b"k") + u8(1) + byts(val)
    put("partials", "cells_then_close", framed(cells, closing))
    put("partials", "event", framed(event, closing))
    put("partials", "cells", framed(cells))


def state():
    w = week_of(W14)
    row = lambda dim, key, c: (u8(dim) + key + c + u8(1) + u32(0) + c + u8(1) +
                               i64(100) + f64(50.0) + u32(1))
    cn = cell(1500, 1200, 1, W14 + 3600000, "CN")
    view = (u8(0) + u32(3) +
            row(0, u32(0), cn) + row(1, u32(origin("CN")), cn) +
            row(2, byts("deepseek/deepseek-chat-v3"), cn) +
            u32(3) +  # the default rules: leader:origin, leader:model, leader:origin:CN,US
            u8(1) + u8(0) + u8(1) + byts("CN") + i64(1500) + u32(1) +
            u8(0) + u8(0) + i64(0) + u8(0) + f64(0) +
            u8(1) + u8(0) + u8(1) + byts("deepseek/deepseek-chat-v3") + i64(1500) + u32(1) +
            u8(0) + u8(0) + i64(0) + u8(0) + f64(0) +
            u8(1) + u8(1) + u8(1) + byts("CN") + i64(1500) + u32(2) +
            u8(1) + byts("US") + u8(1) + byts("US") + i64(15) + u8(1) + f64(9900.0))
    closed = (b"W" + u8(1) + u32(w - 1) + u32(0) + u32(0) + u8(1) + view)
    open_week = (b"W" + u8(1) + u32(w) + u32(1) + byts("openai/gpt-5") +
                 cell(15, 10, 1, W14 + 60000, "US") + u32(1) + u32(origin("US")) +
                 cell(15, 10, 1, W14 + 60000, "US") + u8(0))
    meta = (b"M" + u8(1) + i64(W14 + 60000) + u32(w - 1) + u32(2) +
            u32(0) + i64(W14 + 60000) + u8(0) + u32(3) + i64(-(1 << 63)) + u8(1))
    put("state", "closed_open_meta", framed(closed, open_week, meta))
    put("state", "meta", framed(meta))


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "tokentally")
    lines = [json.dumps(e) for e in EVENTS]
    for i, l in enumerate(lines):
        put("json_event", "event%d" % i, l)
    put("json_event", "rfc3339", '{"request_id":"a\\u00e9","event_time":"2026-04-01T12:00:00.123+02:00",'
        '"model":"qwen/qwen3","origin":null,"prompt_tokens":1,"completion_tokens":2,"x":[{"y":[1,2.5e3,true]}]}')
    put("json_event", "bad_utf8_model", b'{"request_id":"a","event_time":1775000000000,"model":"a/\xff",'
        b'"prompt_tokens":1,"completion_tokens":2}')
    put("engine", "week_close", "\n".join(lines + ["t", "p"] + lines[:1] + ["r", "t"]) + "\n")
    for i, e in enumerate(EVENTS):
        put("avro_event", "framed%d" % i, b"\0\0\0\0\1" + avro_event(e))
    put("avro_event", "raw", avro_event(EVENTS[0]))
    with open(os.path.join(ROOT, "schemas", "token_event.avsc"), "rb") as f:
        avsc = f.read()
    put("writer_schema", "bundled", avsc + b"\0" + avro_event(EVENTS[0]) + avro_event(EVENTS[1]))
    evolved = json.loads(avsc)
    evolved["fields"].insert(2, {"name": "tenant", "type": ["null", "int", "string"], "default": None})
    evolved["fields"][4]["type"] = "int"  # prompt_tokens written as int (promoted)
    body = (astr("r9") + zz(W14) + zz(2) + astr("t1") + astr("x-ai/grok") + aopt("US") +
            zz(7) + zz(8) + aopt(None))
    put("writer_schema", "evolved", json.dumps(evolved).encode() + b"\0" + body)
    put("registry_answer", "schema", json.dumps({"schema": avsc.decode()}))
    put("registry_answer", "id", '{"id":12}')
    put("registry_answer", "error", '{"error_code":40403,"message":"Schema not found"}')
    put("offset_meta", "wm", "tokentally:v2:wm=1775433600000")
    put("offset_meta", "week", "tokentally:v1:oldest=2026-W14")
    partials()
    state()
    with tempfile.TemporaryDirectory() as tmp:
        for codec in ("null", "deflate", "snappy"):
            out = os.path.join(tmp, "x.avro")
            subprocess.run([binary, "gen", "--scale", "1e-9", "--codec", codec,
                            "--out", out], check=True, capture_output=True)
            with open(out, "rb") as f:
                data = f.read()
            put("ocf", codec, data)
        put("ocf", "gzip", gzip.compress(data))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--only-state"]:  # one harness's seeds
        state()
    else:
        main()
