#!/usr/bin/env python3
"""High-cardinality input for tests/e2e_cardinality.sh and
bench/cardinality.sh (issue 11).

    gen_cardinality.py [--weeks 12] [--models 100000] [--big 1000000]
                       [--after 0] OUT.jsonl

Writes JSON Lines: WEEKS consecutive ISO weeks from 2026-W02 with the same
MODELS model slugs each (one request per model and week), then, when --big is
given, one more week with BIG distinct models, then, when --after is given,
one more week with AFTER models (on Kafka its watermark closes the big week
before the end of input, tests/it_kafka_cardinality.sh). Token counts come from a hash
of (week, model) with many ties, so ranks test the key tie-break; authors
cycle through known ones (CN, US, FR), unknown ones (ZZ) and an explicit
origin. Event times rise through each week, so nothing is late. The recount of
what tokentally should make of it is done elsewhere, from the file alone."""
import sys

WEEK_MS = 7 * 86400 * 1000
START = 1767571200000  # 2026-01-05, Monday of 2026-W02
# Known authors (CN, US, FR) and unknown ones (ZZ).
AUTHORS = ["deepseek", "qwen", "openai", "anthropic", "mistralai", "acme-labs",
           "nobody", "x-ai"]


def tokens_of(week, i):
    # Few distinct values so that many rows tie on tokens.
    h = (week * 2654435761 + i * 40503) & 0xFFFFFFFF
    return 100 + (h % 997), (h >> 12) % 50


def gen(args):
    weeks, models, big, after, out = 12, 100000, 0, 0, None
    it = iter(args)
    for a in it:
        if a == "--weeks":
            weeks = int(next(it))
        elif a == "--models":
            models = int(next(it))
        elif a == "--big":
            big = int(next(it))
        elif a == "--after":
            after = int(next(it))
        else:
            out = a
    plan = [(w, models) for w in range(weeks)]
    if big:
        plan.append((weeks, big))
    if after:
        plan.append((len(plan), after))
    with open(out, "w", buffering=1 << 20) as f:
        for w, n in plan:
            start = START + w * WEEK_MS
            step = (WEEK_MS - 1000) // n
            lines = []
            for i in range(n):
                author = AUTHORS[i % len(AUTHORS)]
                p, c = tokens_of(w, i)
                origin = ',"origin":"JP"' if i % 97 == 0 else ""
                lines.append('{"request_id":"r%d-%d","event_time":%d,'
                             '"model":"%s/m-%07d"%s,"prompt_tokens":%d,'
                             '"completion_tokens":%d}\n'
                             % (w, i, start + i * step, author, i, origin, p, c))
                if len(lines) == 65536:
                    f.write("".join(lines))
                    lines = []
            f.write("".join(lines))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[-1].startswith("-"):
        sys.exit(__doc__)
    gen(sys.argv[1:])
