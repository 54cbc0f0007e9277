#!/usr/bin/env python3
"""Every relative link of the documentation points at something that exists.

    doc_links.py SRC [--pending PATH ...] [FILE ...]

Checks README.md and docs/*.md of the repository at SRC (or the FILEs
given, relative to SRC): every Markdown link `[text](target)`, image
`![alt](target)` and reference definition `[name]: target` outside code
(fenced blocks and `inline code`) whose target has no scheme (http:,
mailto:, ...) must name a file or folder of the repository, and its
`#anchor`, if any, must be a heading of that Markdown file (GitHub's rule:
lower case, punctuation dropped, spaces to hyphens, repeats -1, -2, ...)
or an `<a id=...>`/`<a name=...>` in it; an anchor into any other kind of
file must be a line anchor (#L12, #L12-L20). A target that leaves the
repository is a broken link too.

--pending PATH names a file that another branch is writing (today
docs/architecture.md): links to it are listed, not checked, while it is
missing, and once it exists the check fails until the --pending is
removed, so the exemption cannot outlive its reason.

Prints one line per broken link (file:line: target: why); exit 1 if any.
"""
import os
import re
import sys

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.I)
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(path):
    """(line number, text) of the lines outside fenced code blocks, with
    inline code spans blanked out."""
    fence = None
    for n, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip()[len(m.group(1)):].strip():
                fence = None
            continue
        yield n, re.sub(r"(`+)(?:(?!\1).)+?\1", lambda c: " " * len(c.group(0)), line)


def slug(text):
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)   # [text](url) -> text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def heading_lines(path):
    """The lines outside fenced blocks, code spans kept (headings and
    <a id> need them)."""
    raw = open(path, encoding="utf-8").read().split("\n")
    return [(n, raw[n - 1]) for n, _ in prose_lines(path)]


_anchors = {}


def anchors(path):
    if path not in _anchors:
        seen, out = {}, set()
        for _, line in heading_lines(path):
            for a in HTML_ANCHOR.findall(line):
                out.add(a)
            m = HEADING.match(line)
            if not m:
                continue
            s = slug(m.group(2))
            k = seen.get(s, 0)
            seen[s] = k + 1
            out.add(s if k == 0 else "%s-%d" % (s, k))
        _anchors[path] = out
    return _anchors[path]


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    src = os.path.realpath(args.pop(0))
    pending, files = set(), []
    while args:
        a = args.pop(0)
        if a == "--pending":
            pending.add(os.path.normpath(args.pop(0)))
        else:
            files.append(a)
    if not files:
        files = ["README.md"] + sorted(
            "docs/" + f for f in os.listdir(os.path.join(src, "docs")) if f.endswith(".md"))
    problems, checked, skipped = [], 0, []
    for p in sorted(pending):
        if os.path.exists(os.path.join(src, p)):
            problems.append("--pending %s: it exists now; drop the --pending so its "
                            "links are checked" % p)
    for rel in files:
        path = os.path.join(src, rel)
        if not os.path.isfile(path):
            problems.append("%s: no such file" % rel)
            continue
        raw = open(path, encoding="utf-8").read().split("\n")
        for n, line in prose_lines(path):
            targets = LINK.findall(line)
            m = REFDEF.match(raw[n - 1])
            if m:
                targets.append(m.group(1))
            for t in targets:
                if not t or SCHEME.match(t) or t.startswith("//"):
                    continue
                checked += 1
                where = "%s:%d: %s" % (rel, n, t)
                file_part, _, anchor = t.partition("#")
                if file_part:
                    target = os.path.realpath(os.path.join(os.path.dirname(path), file_part))
                else:
                    target = os.path.realpath(path)
                inside = os.path.relpath(target, src)
                if inside.startswith(".."):
                    problems.append("%s: outside the repository" % where)
                    continue
                if os.path.normpath(inside) in pending and not os.path.exists(target):
                    skipped.append(where)
                    continue
                if not os.path.exists(target):
                    problems.append("%s: %s does not exist" % (where, inside))
                    continue
                if not anchor:
                    continue
                if os.path.isdir(target):
                    problems.append("%s: an anchor on a folder" % where)
                elif target.endswith(".md"):
                    if anchor not in anchors(target):
                        problems.append("%s: no heading or <a id> '%s' in %s"
                                        % (where, anchor, inside))
                elif not re.fullmatch(r"L\d+(-L\d+)?", anchor):
                    problems.append("%s: '#%s' is not a line anchor (#L12) of %s"
                                    % (where, anchor, inside))
    for s in skipped:
        print("pending (not checked until the file exists): %s" % s)
    for p in problems:
        print("BROKEN: " + p, file=sys.stderr)
    print("%d files, %d relative links checked, %d pending, %d broken"
          % (len(files), checked, len(skipped), len(problems)))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
