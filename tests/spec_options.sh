#!/usr/bin/env bash
# docs/spec.md's option table against the binary, option by option and
# command by command, so that the contract cannot drift from the code:
#  - every option a command's --help lists (the help is printed from the
#    option table of pipeline/cli/options.c, the same table the parser uses)
#    and every option cli/main.c compares argv against (top-level ones such as
#    --help) must have a row in docs/spec.md naming that command;
#  - every (command, option) docs/spec.md names must be accepted: listed by
#    that command's --help, or not refused as unknown when given;
#  - every entry of tt_opt_defs[] in pipeline/cli/options.c must show up in
#    some command's --help (else the help is no longer a complete source);
#  - a one-word default the help prints, "(default X)", must appear as `X`
#    in the row's default column (and some must be found: a help format
#    this check no longer reads fails instead of passing silently).
# Each problem is printed as one line saying exactly what to add or remove;
# exit 1 if there is any.
set -euo pipefail
T=${TT_BINARY:-build/tokentally}
SRC=${TT_SOURCE_DIR:-.}
exec /usr/bin/python3 - "$T" "$SRC" <<'PY'
import os, re, subprocess, sys

binary, src = sys.argv[1], sys.argv[2]
spec_path = os.path.join(src, "docs", "spec.md")
problems = []


def run(args):
    p = subprocess.run([binary] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


OPT = r"-(?:-[a-z][a-z0-9-]*|[A-Za-z])"

# --- what the binary accepts -------------------------------------------
rc, top, err = run(["--help"])
if rc != 0:
    sys.exit(f"FAIL: '{binary} --help' exited {rc}: {err.strip()}")
commands = []
section = None
for line in top.splitlines():
    if re.match(r"^[A-Za-z].*:\s*$", line):
        section = line.strip().rstrip(":").lower()
        continue
    m = re.match(r"^\s+([a-z][a-z0-9-]*)\s", line + " ")
    if section == "commands" and m:
        commands.append(m.group(1))
if not commands:
    sys.exit(f"FAIL: no 'commands:' list in '{binary} --help'")

accepted = {}   # (command, option) -> default printed by the help, or None
# Top-level options: those the top-level help lists, and those main.c
# compares argv against ("tokentally" stands for the top level).
for line in top.splitlines():
    m = re.match(rf"^\s+({OPT})\b", line)
    if m:
        accepted[("tokentally", m.group(1))] = None
with open(os.path.join(src, "pipeline", "cli", "main.c")) as f:
    for opt in re.findall(rf'"({OPT})"', f.read()):
        accepted[("tokentally", opt)] = None

for cmd in commands:
    if cmd == "version":
        continue  # no options: it only prints the versions
    rc, out, err = run([cmd, "--help"])
    if rc != 0:
        problems.append(f"'{binary} {cmd} --help' exited {rc}: {err.strip()}")
        continue
    n = 0
    for line in out.splitlines():
        m = re.match(rf"^\s+({OPT})\b", line)
        if not m:
            continue
        d = re.search(r"\(default (\S+)\)\s*(?:\{[A-Z_]+\})?\s*$", line)
        accepted[(cmd, m.group(1))] = d.group(1) if d else None
        n += 1
    if n == 0:
        problems.append(f"'{binary} {cmd} --help' lists no option: "
                        "has its format changed? (this check reads lines "
                        "that start with spaces and an option)")

# Every entry of the option table reaches some command's help.
with open(os.path.join(src, "pipeline", "cli", "options.c")) as f:
    text = f.read()
m = re.search(r"tt_opt_defs\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
if not m:
    problems.append("pipeline/cli/options.c: tt_opt_defs[] not found")
else:
    names = re.findall(r'^\s*\{"([A-Za-z][A-Za-z0-9-]*)",', m.group(1), re.M)
    if not names:
        problems.append("pipeline/cli/options.c: no entry in tt_opt_defs[]")
    listed = {o for (_, o) in accepted}
    for n in names:
        opt = "-" + n if len(n) == 1 else "--" + n
        if opt not in listed:
            problems.append(f"pipeline/cli/options.c defines {opt} but no "
                            "command's --help lists it")

# --- what docs/spec.md documents ---------------------------------------
with open(spec_path) as f:
    spec = f.read()
m = re.search(r"<!-- spec-options:begin -->\n(.*?)<!-- spec-options:end -->",
              spec, re.S)
if not m:
    sys.exit("FAIL: docs/spec.md has no <!-- spec-options:begin --> ... "
             "<!-- spec-options:end --> table")
documented = {}  # (command, option) -> the row's default cell
rows = 0
for line in m.group(1).splitlines():
    # Split on | not preceded by a backslash (\| is a | inside a cell).
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    if len(cells) < 3 or cells[0] in ("option", "") or set(cells[0]) <= set("-:"):
        continue
    opts = re.findall(rf"`({OPT})(?=[ `=])", cells[0])
    cmds = [c.strip() for c in cells[1].split(",") if c.strip()]
    if not opts or not cmds:
        problems.append(f"docs/spec.md: cannot read option row: {line}")
        continue
    rows += 1
    for o in opts:
        for c in cmds:
            documented[(c, o)] = cells[2]
if rows == 0:
    problems.append("docs/spec.md: the option table has no rows")


def probe(cmd, opt):
    """Is OPT accepted by CMD, asked of the parser itself?"""
    # Given alone, an option the parser knows either works (a flag, -h) or
    # asks for its value; only an unknown one is refused as unknown.
    args = [opt] if cmd == "tokentally" else [cmd, "--help", opt]
    rc, out, err = run(args)
    return rc == 0 or ("unknown" not in err.lower() and rc != 0 and err)


# --- compare -----------------------------------------------------------
ndef = sum(1 for k, d in accepted.items() if d and k in documented)
if ndef == 0:
    problems.append("no '(default X)' read from any --help: has the help's "
                    "format changed? (update the pattern in this check)")
for (cmd, opt), default in sorted(accepted.items()):
    if (cmd, opt) not in documented:
        where = ("the top level ('tokentally')" if cmd == "tokentally"
                 else f"'{cmd}'")
        problems.append(f"missing from docs/spec.md: {opt} of {where} "
                        f"(add {cmd} to its row's commands, or a row)")
    elif default and f"`{default}`" not in documented[(cmd, opt)]:
        problems.append(f"docs/spec.md: {cmd} {opt}: the binary's default "
                        f"is {default}, the row says "
                        f"'{documented[(cmd, opt)]}'")
for (cmd, opt) in sorted(documented):
    if (cmd, opt) in accepted:
        continue
    if cmd != "tokentally" and cmd not in commands:
        problems.append(f"docs/spec.md documents {opt} for '{cmd}', "
                        "which is not a command")
    elif not probe(cmd, opt):
        problems.append(f"docs/spec.md documents {opt} for '{cmd}', but "
                        f"'tokentally {cmd} {opt}' is not accepted")

print(f"{len(commands)} commands ({', '.join(commands)}); "
      f"{len(accepted)} (command, option) pairs from the binary, "
      f"{len(documented)} in docs/spec.md ({rows} rows); "
      f"{ndef} defaults compared")
if problems:
    for p in problems:
        print("FAIL:", p)
    sys.exit(1)
print("OK: docs/spec.md documents exactly the options the binary accepts")
PY
