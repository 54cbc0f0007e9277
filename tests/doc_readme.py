#!/usr/bin/env python3
"""Runs the marked shell blocks of the documentation in order and checks
their output.

    doc_readme.py WORKDIR FILE [FILE...]

A fenced block right after the line `<!-- doc-test -->` is run; all such
blocks of all the FILEs run in one bash (`set -eo pipefail`) in WORKDIR,
file after file in the order given and in each file from top to bottom,
so variables and `cd` carry from one to the next as in a terminal (a
later file's blocks may use what an earlier file's set up). A
fenced block right after `<!-- doc-test: expect -->` lists lines that the
output (stdout and stderr) of the block run before it must contain: each
line, with runs of blanks made one and the ends stripped, must equal a
whole output line treated the same way; lines that are `...` are skipped.
Exit 1 on a block's non-zero exit, a missing line, a marker without a
block after it, a missing FILE, or no run block in any FILE. Messages name
the file and line of the block."""
import os
import re
import subprocess
import sys

RUN, EXPECT = "<!-- doc-test -->", "<!-- doc-test: expect -->"


def blocks(path):
    lines = open(path).read().split("\n")
    out, i = [], 0
    while i < len(lines):
        mark = lines[i].strip()
        if mark.startswith("<!-- doc-test"):
            if mark not in (RUN, EXPECT):
                sys.exit("%s:%d: unknown marker %r" % (path, i + 1, mark))
            if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
                sys.exit("%s:%d: %s not followed by a fenced block" % (path, i + 1, mark))
            j = i + 2
            while j < len(lines) and lines[j] != "```":
                j += 1
            if j == len(lines):
                sys.exit("%s:%d: unclosed block" % (path, i + 2))
            out.append(("run" if mark == RUN else "expect", "%s line %d" % (path, i + 3),
                        "\n".join(lines[i + 2:j])))
            i = j
        i += 1
    return out


def squeeze(s):
    return re.sub(r"\s+", " ", s).strip()


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: doc_readme.py WORKDIR FILE [FILE...]")
    work, files = os.path.abspath(sys.argv[1]), sys.argv[2:]
    bl = []
    for path in files:
        if not os.path.isfile(path):
            sys.exit("%s: no such file" % path)
        got = blocks(path)
        print("%s: %d run blocks, %d expect blocks" % (
            path, sum(1 for b in got if b[0] == "run"), sum(1 for b in got if b[0] == "expect")))
        if got and got[0][0] == "expect":
            sys.exit("%s: an expect block before any run block of that file" % got[0][1])
        bl += got
    runs = [b for b in bl if b[0] == "run"]
    if not runs:
        sys.exit("no %s block in %s" % (RUN, " ".join(files)))
    driver = ["set -eo pipefail", "cd %s" % work]
    for n, (kind, line, text) in enumerate(bl):
        if kind == "run":
            with open("%s/.block%d.sh" % (work, n), "w") as f:
                f.write(text + "\n")
            driver.append("echo %d > .current" % n)
            driver.append("{ source .block%d.sh; } >.block%d.out 2>&1" % (n, n))
    driver.append("echo done > .current")
    with open("%s/.driver.sh" % work, "w") as f:
        f.write("\n".join(driver) + "\n")
    try:
        rc = subprocess.run(["bash", "%s/.driver.sh" % work], timeout=600).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout (600 s)"
    current = open("%s/.current" % work).read().strip()
    failures, last_run = [], None
    for n, (kind, line, text) in enumerate(bl):
        if kind == "run":
            last_run = (n, line)
            if not os.path.exists("%s/.block%d.out" % (work, n)):
                print("== %s: not run" % line)
                continue
            out = open("%s/.block%d.out" % (work, n)).read()
            print("== %s:\n%s\n-- output (last 30 lines):" % (line, text))
            print("\n".join(out.rstrip("\n").split("\n")[-30:]))
            if current == str(n):
                failures.append("%s: the block exited with %s" % (line, rc))
        else:
            path = "%s/.block%d.out" % (work, last_run[0])
            if not os.path.exists(path) or current == str(last_run[0]):
                continue
            got = {squeeze(l) for l in open(path).read().split("\n")}
            for want in text.split("\n"):
                w = squeeze(want)
                if w and w != "..." and w not in got:
                    failures.append("%s: the output of the block at %s "
                                    "lacks: %s" % (line, last_run[1], w))
    if current != "done" and not failures:
        failures.append("the blocks stopped at %s (exit %s)" % (current, rc))
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    nexp = sum(1 for b in bl if b[0] == "expect")
    print("%d blocks run, %d expect blocks checked, %d failures" % (len(runs), nexp, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
