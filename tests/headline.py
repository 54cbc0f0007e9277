#!/usr/bin/env python3
"""Prints the headline leaderboard from a replay output directory.

Reads DIR/rollups.jsonl and DIR/streaks.jsonl with the standard library
only (an independent reader of tokentally's output), keeps the latest
record of every key, and prints the last weeks by origin, the top models
and the streaks. With --check it also asserts the april-2026 headline at
the given --scale and exits non-zero on any mismatch."""
import argparse
import json
import os
import sys


def latest(path, key):
    out = {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            out[key(rec)] = rec
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--weeks", type=int, default=6)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--scale", type=float, default=1e-4)
    a = ap.parse_args()
    rows = latest(os.path.join(a.dir, "rollups.jsonl"),
                  lambda r: (r["week"], r["dimension"], r["key"]))
    streaks = latest(os.path.join(a.dir, "streaks.jsonl"),
                     lambda r: (r["rule"], r["week"]))
    weeks = sorted({k[0] for k in rows})[-a.weeks:]

    def pct(v):
        return "      -" if v is None else "%+7.2f%%" % v

    print("Weekly tokens by origin (latest record of every row)")
    print("%-9s %-6s %16s %9s %8s" % ("week", "origin", "tokens", "wow", "share"))
    for w in weeks:
        byo = sorted((r for k, r in rows.items()
                      if k[0] == w and k[1] == "ORIGIN"), key=lambda r: r["rank"])
        tot = rows.get((w, "TOTAL", "*"))
        for r in byo[:4]:
            print("%-9s %-6s %16d %9s %7.2f%%" % (w, r["key"], r["tokens"],
                                                 pct(r["wow_growth_pct"]),
                                                 r["share_pct"]))
        if tot:
            print("%-9s %-6s %16d %9s %7.2f%%" % (w, "all", tot["tokens"],
                                                 pct(tot["wow_growth_pct"]),
                                                 100.0))
    if weeks:
        w = weeks[-1]
        print("\nTop models of %s" % w)
        top = sorted((r for k, r in rows.items()
                      if k[0] == w and k[1] == "MODEL"), key=lambda r: r["rank"])
        for r in top[:8]:
            print("  %2d. %-34s %-3s %14d %7.2f%%" % (
                r["rank"], r["key"], r["origin"], r["tokens"], r["share_pct"]))
        print("\nStreaks in %s" % w)
        for (rule, week), s in sorted(streaks.items()):
            if week == w:
                print("  %-22s %-26s %s, %d week(s)%s" % (
                    rule, s["holder"], s["kind"], s["length_weeks"],
                    "" if s["margin_pct"] is None
                    else ", ahead of %s by %.2f%%" % (s["runner_up"],
                                                     s["margin_pct"])))
    if not a.check:
        return 0
    errors = []

    def expect(what, got, want):
        if got != want:
            errors.append("%s: got %r, want %r" % (what, got, want))

    sc = a.scale
    cn = rows[("2026-W14", "ORIGIN", "CN")]
    us = rows[("2026-W14", "ORIGIN", "US")]
    tot = rows[("2026-W14", "TOTAL", "*")]
    expect("W14 CN tokens", cn["tokens"], round(12.96e12 * sc))
    expect("W14 CN growth", round(cn["wow_growth_pct"], 2), 31.48)
    expect("W14 US tokens", us["tokens"], round(3.03e12 * sc))
    expect("W14 US growth", round(us["wow_growth_pct"], 2), 0.76)
    expect("W14 total", tot["tokens"], round(27e12 * sc))
    expect("W14 CN share", round(cn["share_pct"], 2), 48.00)
    s14 = streaks[("leader:origin:CN,US", "2026-W14")]
    expect("W14 holder", s14["holder"], "CN")
    expect("W14 length", s14["length_weeks"], 5)
    s10 = streaks[("leader:origin:CN,US", "2026-W10")]
    expect("W10 kind", s10["kind"], "STARTED")
    expect("W10 previous", s10["previous_holder"], "US")
    for r in rows.values():
        if r["status"] == "PROVISIONAL":
            errors.append("unexpected PROVISIONAL row %r" % (r,))
            break
    for e in errors:
        print("HEADLINE MISMATCH: " + e, file=sys.stderr)
    if not errors:
        print("\nheadline check: ok (CN 2026-W14 %d tokens, +%.2f%%, share %.2f%%)"
              % (cn["tokens"], cn["wow_growth_pct"], cn["share_pct"]))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
