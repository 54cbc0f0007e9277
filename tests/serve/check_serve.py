#!/usr/bin/env python3
"""Checks a running `tokentally serve` against an independent recount of
the events it was fed (tests/kafka/recount.py, written from the contract):
the JSON API exact JSON, ETag/304, 404/400 answers, a 1 MB query
string, slow clients; then the page in headless Chromium (the DOM after
its scripts ran, the chart's series, a screenshot); then a late event of
2026-W14 through `run` and the page showing the REVISED numbers without a
reload; and `report` files opened offline.

usage: check_serve.py URL EVENTS.jsonl SRC SHOT.png LATE_CMD REPORT_IN.html
                      REPORT_BROKERS.html OPEN_CMD
LATE_CMD is a shell command that produces the late event (its JSON on
stdin is added to the recount) and runs the stage over it to its end;
OPEN_CMD produces events of a new week (JSON Lines on stdin) and starts the
stage in the background, which keeps that week open and emits it as
PROVISIONAL."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kafka"))
sys.path.insert(0, HERE)
import cdp  # noqa: E402
import recount  # noqa: E402

url, events_path, src, shot, late_cmd, report_in, report_brokers, open_cmd = sys.argv[1:9]
url = url.rstrip("/")
host, port = url.split("//")[1].split(":")
port = int(port)
origins_map = json.load(open(os.path.join(src, "schemas", "origins.json")))
events = [json.loads(line) for line in open(events_path) if line.strip()]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def get(path, headers=None):
    req = urllib.request.Request(url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def diff(got, want):
    """Where two bodies first differ, for the failure message."""
    i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
             min(len(got), len(want)))
    return "first difference at byte %d: got %r, want %r" % (
        i, got[max(0, i - 120):i + 80], want[max(0, i - 120):i + 80])


def close(g, w):
    """Same JSON, key order included; doubles within 1e-9 relative (the
    engine computes share as tokens * 100 / total, the recount as the spec
    writes it, tokens / total * 100: they may differ in the last bit)."""
    if isinstance(w, float) or isinstance(g, float):
        return (isinstance(g, (int, float)) and isinstance(w, (int, float))
                and abs(g - w) <= 1e-9 * max(1.0, abs(w)))
    if isinstance(w, list):
        return (isinstance(g, list) and len(g) == len(w) and
                all(close(a, b) for a, b in zip(g, w)))
    return g == w


def same_json(body, want):
    """body is exactly one compact JSON object and a newline, equal to
    want (see close)."""
    pairs = lambda p: [["{", k, v] for k, v in p]  # noqa: E731
    try:
        g = json.loads(body, object_pairs_hook=pairs)
        compact = dumps(json.loads(body)) + "\n"
    except ValueError:
        return False
    w = json.loads(want, object_pairs_hook=pairs)
    # Compact, key order kept, doubles in their shortest form (Python's
    # repr is that form too): the body is its own re-encoding.
    return compact == body and close(g, w)


def dumps(x):
    return json.dumps(x, separators=(",", ":"), ensure_ascii=False)


ROW_FIELDS = ("rank", "key", "origin", "tokens", "prompt_tokens",
              "completion_tokens", "requests", "prev_tokens",
              "wow_growth_pct", "share_pct")


def api_row(r, status, revision):
    out = {f: r[f] for f in ROW_FIELDS}
    for f in ("wow_growth_pct", "share_pct"):
        if out[f] is not None:
            out[f] = float(out[f])
    out["status"], out["revision"] = status, revision
    return out


def week_body(rows, wk, dim, top, status, revision):
    t = rows["%s/TOTAL/*" % wk]
    keyed = sorted((r for r in rows.values()
                    if r["week"] == wk and r["dimension"] == dim.upper()),
                   key=lambda r: r["rank"])
    g = t["wow_growth_pct"]
    head = {"api": "v1", "week": wk, "week_start": t["week_start"],
            "status": status, "revision": revision, "tokens": t["tokens"],
            "requests": t["requests"], "prev_tokens": t["prev_tokens"],
            "wow_growth_pct": None if g is None else float(g),
            "dimension": dim, "top": top, "count": len(keyed),
            "rows": [api_row(r, status, revision) for r in keyed[:top]]}
    return dumps(head) + "\n"


def streaks_body(st):
    cur = {}
    for (rule, wk), s in st.items():
        if rule not in cur or wk > cur[rule]["week"]:
            cur[rule] = s
    out = []
    for rule in sorted(cur):
        s = dict(cur[rule])
        if s["margin_pct"] is not None:
            s["margin_pct"] = float(s["margin_pct"])
        out.append(s)
    return dumps({"api": "v1", "week": None, "streaks": out}) + "\n"


rows = recount.rows(events, origins_map)
streaks = recount.streaks(events, origins_map)
weeks = sorted({r["week"] for r in rows.values()})
origins = sorted({r["key"] for r in rows.values() if r["dimension"] == "ORIGIN"})
print("recount: %d events, %d rows, weeks %s..%s, %d origins"
      % (len(events), len(rows), weeks[0], weeks[-1], len(origins)))

print("== JSON API")
st, h, body = get("/readyz")
check(st == 200 and body == "ready\n", "/readyz 200 ready (got %d %r)" % (st, body))
st, h, body = get("/healthz")
check(st == 200 and body == "ok\n", "/healthz 200 ok")
st, h, body = get("/api/v1/weeks")
w = json.loads(body)
check(st == 200 and [x["week"] for x in w["weeks"]] == weeks,
      "/api/v1/weeks lists the %d weeks %s..%s" % (len(weeks), weeks[0], weeks[-1]))
check(all(x["status"] == "FINAL" and x["revision"] == 0 and
          x["tokens"] == rows["%s/TOTAL/*" % x["week"]]["tokens"] for x in w["weeks"]),
      "every week FINAL, revision 0, its recounted total")
want = week_body(rows, "2026-W14", "origin", 3, "FINAL", 0)
st, h, body = get("/api/v1/weeks/2026-W14?dimension=origin&top=3")
check(st == 200 and same_json(body, want), "/api/v1/weeks/2026-W14?dimension=origin&top=3 "
      "exact JSON" + ("" if same_json(body, want) else " (%s)" % diff(body, want)))
check(h.get("Content-Type") == "application/json", "Content-Type application/json")
want = week_body(rows, "2026-W14", "model", 10, "FINAL", 0)
st, h, body = get("/api/v1/weeks/2026-W14?dimension=model")
check(st == 200 and same_json(body, want), "/api/v1/weeks/2026-W14?dimension=model: top 10 exact JSON"
      + ("" if same_json(body, want) else " (%s)" % diff(body, want)))
want = streaks_body(streaks)
st, h, body = get("/api/v1/streaks")
check(st == 200 and same_json(body, want), "/api/v1/streaks exact JSON"
      + ("" if same_json(body, want) else " (%s)" % diff(body, want)))
st, h, body = get("/api/v1/series?dimension=origin&key=CN&from=2026-W10")
pts = json.loads(body)["points"] if st == 200 else []
check([(p["week"], p["row"]["tokens"]) for p in pts] ==
      [(wk, rows["%s/ORIGIN/CN" % wk]["tokens"]) for wk in weeks if wk >= "2026-W10"],
      "/api/v1/series CN from 2026-W10: %d points, recounted tokens" % len(pts))

st, h, body = get("/api/v1/weeks/2026-W20")
check((st, body) == (404, '{"error":{"status":404,"code":"unknown_week",'
                          '"message":"no records of week 2026-W20"}}\n'),
      "unknown week: 404 and its JSON error")
st, h, body = get("/api/v1/weeks/2026-W14?dimension=planet")
check((st, body) == (400, '{"error":{"status":400,"code":"bad_parameter",'
                          '"message":"dimension: expected origin or model, got '
                          "'planet'\"}}\n"), "bad dimension: 400 and its JSON error")
st, h, body = get("/api/v1/weeks/2026-W14?top=-1")
check(st == 400 and json.loads(body)["error"]["code"] == "bad_parameter", "top=-1: 400")
st, h, body = get("/api/v1/series?dimension=origin&key=XX")
check(st == 404 and json.loads(body)["error"]["code"] == "unknown_key", "unknown key: 404")
st, h, body = get("/nope")
check(st == 404 and json.loads(body)["error"]["code"] == "not_found", "/nope: 404 JSON")

st, h, body = get("/api/v1/page")
etag = h.get("ETag")
check(st == 200 and etag, "/api/v1/page has an ETag (%s)" % etag)
st2, h2, body2 = get("/api/v1/page", {"If-None-Match": etag})
check(st2 == 304 and body2 == "", "If-None-Match with it: 304, no body (got %d)" % st2)
st3, h3, body3 = get("/api/v1/weeks", {"If-None-Match": '"other"'})
check(st3 == 200, "another ETag: 200")

print("== a 1 MB query string")
s = socket.create_connection((host, port), timeout=30)
got = []
reader = threading.Thread(target=lambda: got.append(s.recv(4096)))
reader.start()
try:
    s.sendall(b"GET /api/v1/weeks?q=" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
except OSError:
    pass  # the server answered and closed after its 8 KiB
reader.join(30)
s.close()
first = got[0].split(b"\r\n")[0] if got else b""
check(first == b"HTTP/1.1 431 Request Header Fields Too Large",
      "1 MB query string: 431 and the connection closed (got %r)" % first)
st, h, body = get("/api/v1/weeks")
check(st == 200, "served after it: 200")

print("== slow clients")
slow = []
for i in range(30):
    c = socket.create_connection((host, port), timeout=30)
    c.sendall(b"GET /api/v1/weeks HTTP/1.1\r\nHost: slo")  # never finished
    slow.append(c)
time.sleep(1)


def still_open(c):
    c.setblocking(False)
    try:
        return c.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        c.setblocking(True)


held = sum(still_open(c) for c in slow)
check(held == 16, "30 slow clients of one address: 16 held open (the per-client "
      "cap), the others closed (held %d)" % held)
t0 = time.time()
ok = 0
for i in range(20):
    st, h, body = get("/api/v1/weeks")
    ok += st == 200
check(ok == 20, "20 requests answered while they wait (%d, %.1f s)" % (ok, time.time() - t0))
deadline = time.time() + 20
while time.time() < deadline and any(still_open(c) for c in slow):
    time.sleep(0.5)
check(not any(still_open(c) for c in slow),
      "every slow client closed by the server within 20 s (header timeout 5 s)")
for c in slow:
    c.close()


def human(t):
    return "%.3f G" % (t / 1e9) if t >= 1e9 else "%.1f M" % (t / 1e6)


def headline(rows, wk):
    cn = rows["%s/ORIGIN/CN" % wk]
    return "%s: CN %s tokens, %+.2f%% on the week before, %.2f%% of the week" % (
        wk, human(cn["tokens"]), cn["wow_growth_pct"], cn["share_pct"])


def sentence(st, rule, wk):
    s = st[(rule, wk)]
    return "%s has led for %d consecutive weeks, %.2f%% ahead of %s" % (
        s["holder"], s["length_weeks"], s["margin_pct"], s["runner_up"])


def series_ok(b, nweeks):
    """[origin, data-points, polyline points] of every chart series."""
    return b.eval("""Array.from(document.querySelectorAll('#chart g.series')).map(
        function (g) { return [g.getAttribute('data-key'),
          +g.getAttribute('data-points'),
          g.querySelector('polyline').getAttribute('points').trim().split(/\\s+/).length]; })""")


print("== the page in headless Chromium")
hl = headline(rows, "2026-W14")
sent = sentence(streaks, "leader:origin:CN,US", "2026-W14")
# The reference scenario's figures (the issue, the README), as a guard on
# the recount itself.
check("CN 1.296 G tokens, +31.48% on the week before, 48.00% of the week" in hl,
      "the recount gives the reference figures: %s" % hl)
check(sent == "CN has led for 5 consecutive weeks, 327.72% ahead of US",
      "the recount gives the reference streak: %s" % sent)
b = cdp.Browser()
try:
    b.goto(url + "/")
    text = b.wait_for("document.body.innerText.indexOf('has led') >= 0 && "
                      "document.body.innerText")
    check(bool(text), "the page rendered its data")
    text = text or ""
    for want in (hl, sent, "2026-W14", "1.296 G", "+31.48%", "48.00%",
                 "deepseek/deepseek-chat-v3"):
        check(want in text, "the DOM shows %r" % want)
    ser = series_ok(b, len(weeks))
    check(sorted(s[0] for s in ser) == origins and
          all(s[1] == len(weeks) and s[2] == len(weeks) for s in ser),
          "the chart: one series per origin (%d), %d weeks each: %s"
          % (len(origins), len(weeks), ser))
    check("PROVISIONAL" not in text, "no PROVISIONAL row (every week closed)")
    # Another week picked: its headline; the share view: its series.
    hl13 = headline(rows, "2026-W13")
    b.eval("var s = document.getElementById('week'); s.value = '2026-W13'; "
           "s.dispatchEvent(new Event('change')); 0")
    text13 = b.wait_for("document.body.innerText.indexOf(%s) >= 0" % json.dumps(hl13), 10)
    check(bool(text13), "2026-W13 picked: the DOM shows %r" % hl13)
    b.eval("document.getElementById('v-share').click(); 0")
    ser = series_ok(b, len(weeks))
    axis = b.eval("Array.from(document.querySelectorAll('#chart > text')).map("
                  "function (t) { return t.textContent; }).join(' ')")
    check(len(ser) == len(origins) and all(x[2] == len(weeks) for x in ser)
          and "50%" in axis, "share view: %d series of %d weeks, axis %r"
          % (len(ser), len(weeks), axis))
    b.eval("document.getElementById('v-tokens').click(); "
           "var s = document.getElementById('week'); s.value = '2026-W14'; "
           "s.dispatchEvent(new Event('change')); 0")
    b.call("Runtime.evaluate", expression="window.__tt_no_reload = 42")
    b.screenshot(shot)
    check(os.path.getsize(shot) > 10000, "screenshot %s (%d bytes)" % (shot, os.path.getsize(shot)))
    # Narrow viewport (a phone): the numbers are still there, no page
    # wider than the screen.
    b.call("Emulation.setDeviceMetricsOverride", width=390, height=844,
           deviceScaleFactor=2, mobile=True)
    wide = b.eval("document.documentElement.scrollWidth")
    check(wide <= 390, "at 390 px wide the page is %s px wide" % wide)
    b.call("Emulation.setDeviceMetricsOverride", width=1000, height=1400,
           deviceScaleFactor=1, mobile=False)

    print("== a late 2026-W14 event through run")
    late = {"request_id": "late-w14", "event_time": 1774828800000 + 2 * 86400000,
            "model": "deepseek/deepseek-chat-v3", "origin": None,
            "prompt_tokens": 1000000, "completion_tokens": 0, "provider": None}
    p = subprocess.run(late_cmd, shell=True, input=json.dumps(late), text=True)
    check(p.returncode == 0, "late event produced and counted by run (exit %d)" % p.returncode)
    rows2 = recount.rows(events + [late], origins_map)
    streaks2 = recount.streaks(events + [late], origins_map)
    hl2 = headline(rows2, "2026-W14")
    text = b.wait_for("document.body.innerText.indexOf(%s) >= 0 && "
                      "document.body.innerText" % json.dumps(hl2), timeout=90)
    check(bool(text), "the page shows %r without a reload" % hl2)
    text = text or ""
    check(b.eval("window.__tt_no_reload") == 42, "the same document (not reloaded)")
    check("REVISED rev 1" in text, "the rows are marked REVISED rev 1")
    check(sentence(streaks2, "leader:origin:CN,US", "2026-W14") in text,
          "the revised streak: %s" % sentence(streaks2, "leader:origin:CN,US", "2026-W14"))
    b.screenshot(shot.replace(".png", "-revised.png"))

    print("== an open week: 2026-W15 PROVISIONAL while run keeps going")
    w15 = 1774828800000 + 7 * 86400000
    fresh = [{"request_id": "open-w15-%d" % i, "event_time": w15 + 86400000 + i,
              "model": m, "origin": None, "prompt_tokens": t,
              "completion_tokens": 1000, "provider": None}
             for i, (m, t) in enumerate((("deepseek/deepseek-chat-v3", 5000000),
                                         ("openai/gpt-5", 2000000)))]
    p = subprocess.run(open_cmd, shell=True, input="\n".join(map(json.dumps, fresh)),
                       text=True)
    check(p.returncode == 0, "open-week events produced, run started (exit %d)" % p.returncode)
    rows3 = recount.rows(events + [late] + fresh, origins_map)
    hl3 = headline(rows3, "2026-W15")
    text = b.wait_for("document.body.innerText.indexOf(%s) >= 0 && "
                      "document.body.innerText" % json.dumps(hl3), timeout=120)
    check(bool(text), "the page moved to the new week: %r" % hl3)
    text = text or ""
    prov = b.eval("Array.from(document.querySelectorAll('#origins tbody tr')).map("
                  "function (r) { return r.className + ' ' + r.lastChild.textContent; })")
    check(prov == ["PROVISIONAL PROVISIONAL"] * 2,
          "its 2 origin rows are marked PROVISIONAL: %s" % prov)
    check("no streak yet (the week is open)" in text, "no streak for the open week")
    check(b.eval("window.__tt_no_reload") == 42, "still the same document")
    b.screenshot(shot.replace(".png", "-provisional.png"))
finally:
    b.close()
want = week_body(rows2, "2026-W14", "origin", 3, "REVISED", 1)
st, h, body = get("/api/v1/weeks/2026-W14?dimension=origin&top=3")
check(st == 200 and same_json(body, want), "API after it: REVISED rows exact JSON"
      + ("" if same_json(body, want) else " (%s)" % diff(body, want)))
st, h, body = get("/api/v1/page", {"If-None-Match": etag})
check(st == 200, "the old ETag no longer matches: 200")

print("== report files, offline")
for path in (report_in, report_brokers):
    b = cdp.Browser()
    try:
        b.goto("file://" + os.path.abspath(path))
        text = b.wait_for("document.body.innerText.indexOf('has led') >= 0 && "
                          "document.body.innerText") or ""
        check(hl in text and sent in text, "%s shows %r and the streak" % (os.path.basename(path), hl))
        ser = series_ok(b, len(weeks))
        check(len(ser) == len(origins) and all(s[1] == len(weeks) for s in ser),
              "%s: %d series of %d weeks" % (os.path.basename(path), len(ser), len(weeks)))
        n = b.eval("performance.getEntriesByType('resource').length")
        check(n == 0, "%s loads nothing more (%s requests)" % (os.path.basename(path), n))
    finally:
        b.close()

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
