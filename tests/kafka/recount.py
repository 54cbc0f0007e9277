"""An independent recount of what tokentally must emit for a set of events,
written from the contract (SPEC §3-§5), not from the engine's code: the
scenario harness (scenarios.py) compares the latest output records with it.

Events are dicts with the TokenEvent field names. Only what the contract
fixes is computed: every (week, dimension, key) row's counts, prev_tokens,
growth, share, rank and the MODEL rows' origin, and one StreakChange per
(rule, week) with events."""
import datetime

UTC = datetime.timezone.utc
DEFAULT_RULES = ("leader:origin", "leader:model", "leader:origin:CN,US")


def week_of(ms):
    d = datetime.datetime.fromtimestamp(ms / 1000, UTC)
    y, w, _ = d.isocalendar()
    return "%d-W%02d" % (y, w)


def week_start_ms(name):
    y, w = int(name[:4]), int(name[6:])
    d = datetime.datetime.fromisocalendar(y, w, 1).replace(tzinfo=UTC)
    return int(d.timestamp() * 1000)


def shift_week(name, n):
    d = datetime.datetime.fromtimestamp(week_start_ms(name) / 1000 + n * 7 * 86400, UTC)
    y, w, _ = d.isocalendar()
    return "%d-W%02d" % (y, w)


def origin_of(ev, origins):
    if ev.get("origin") is not None:
        return ev["origin"]
    return origins.get(ev["model"].split("/", 1)[0], "ZZ")


def _ranked(cells):
    """keys by tokens descending, ties by key in byte order"""
    return sorted(cells, key=lambda k: (-cells[k]["tokens"], k.encode()))


def rows(events, origins):
    """{"2026-W14/ORIGIN/CN": row} for every key with events in a week."""
    cells = {}  # (week, dim) -> key -> counters
    latest_origin = {}  # (week, model) -> (event_time, origin)
    for ev in events:
        wk = week_of(ev["event_time"])
        o = origin_of(ev, origins)
        p, c = ev["prompt_tokens"], ev["completion_tokens"]
        for dim, key in (("TOTAL", "*"), ("ORIGIN", o), ("MODEL", ev["model"])):
            k = cells.setdefault((wk, dim), {}).setdefault(
                key, {"tokens": 0, "prompt_tokens": 0, "completion_tokens": 0,
                      "requests": 0})
            k["tokens"] += p + c
            k["prompt_tokens"] += p
            k["completion_tokens"] += c
            k["requests"] += 1
        t = latest_origin.get((wk, ev["model"]))
        if t is None or ev["event_time"] >= t[0]:
            latest_origin[(wk, ev["model"])] = (ev["event_time"], o)
    out = {}
    for (wk, dim), keys in cells.items():
        total = cells[(wk, "TOTAL")]["*"]["tokens"]
        prev = cells.get((shift_week(wk, -1), dim), {})
        start = week_start_ms(wk)
        for rank, key in enumerate(_ranked(keys), 1):
            k = keys[key]
            pt = prev[key]["tokens"] if key in prev else None
            out["%s/%s/%s" % (wk, dim, key)] = {
                "week": wk, "week_start": start, "dimension": dim,
                "key": key,
                "origin": latest_origin[(wk, key)][1] if dim == "MODEL" else None,
                "tokens": k["tokens"], "prompt_tokens": k["prompt_tokens"],
                "completion_tokens": k["completion_tokens"],
                "requests": k["requests"], "prev_tokens": pt,
                "wow_growth_pct": (k["tokens"] - pt) / pt * 100 if pt else None,
                "share_pct": k["tokens"] / total * 100 if total else 0.0,
                "rank": rank}
    return out


def streaks(events, origins, rules=DEFAULT_RULES):
    """{(rule, week): StreakChange fields} for every week with events."""
    per_week = {}
    for ev in events:
        wk = week_of(ev["event_time"])
        w = per_week.setdefault(wk, {"origin": {}, "model": {}})
        t = ev["prompt_tokens"] + ev["completion_tokens"]
        o = origin_of(ev, origins)
        w["origin"][o] = w["origin"].get(o, 0) + t
        w["model"][ev["model"]] = w["model"].get(ev["model"], 0) + t
    out = {}
    for rule in rules:
        parts = rule.split(":")
        dim = parts[1]
        listed = parts[2].split(",") if len(parts) > 2 else None
        holder, length, last_week = None, 0, None
        for wk in sorted(per_week, key=week_start_ms):
            tok = per_week[wk][dim]
            cand = {k: tok.get(k, 0) for k in listed} if listed else dict(tok)
            gap = last_week is None or shift_week(last_week, 1) != wk
            incumbent = None if gap else holder

            def order(k, incumbent=incumbent, cand=cand):
                return (-cand[k], 0 if k == incumbent else 1, k.encode())
            ranked = sorted(cand, key=order)
            h = ranked[0]
            ru = ranked[1] if len(ranked) > 1 else None
            started = gap or h != holder
            length = 1 if started else length + 1
            rt = cand[ru] if ru is not None else None
            out[(rule, wk)] = {
                "rule": rule, "week": wk,
                "kind": "STARTED" if started else "EXTENDED",
                "holder": h, "length_weeks": length,
                "previous_holder": (None if gap else holder) if started else None,
                "holder_tokens": cand[h], "runner_up": ru,
                "runner_up_tokens": rt,
                "margin_pct": (cand[h] - rt) / rt * 100 if rt else None}
            holder, last_week = h, wk
    return out
