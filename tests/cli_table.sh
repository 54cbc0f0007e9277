#!/usr/bin/env bash
# The command line's contract, one row per case in tests/cli_table.tsv:
# arguments -> exit status and a message (regex) on stdout or stderr. Covers
# help and version, every option's value check (each command naming what it
# accepts), unknown options and arguments, and a cluster that does not
# answer (a loopback port with nothing listening: connection refused), and
# a metrics port already taken.
set -euo pipefail
T=${TT_BINARY:-build/tokentally}
SRC=${TT_SOURCE_DIR:-.}
# A shared environment must not change the answers (TOKENTALLY_BROKERS...).
for v in $(env | sed -n 's/^\(TOKENTALLY_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export TT_T=$T TT_TABLE=${1:-$SRC/tests/cli_table.tsv}
export TT_RDKAFKA=$(pkg-config --modversion rdkafka)
export TT_AVRO=$(pkg-config --modversion avro-c)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" # replay/gen rows may name files; nothing is written outside
exec python3 - <<'PY'
import os, re, shlex, socket, subprocess, sys

# A port with nothing listening: bound, then closed (SO_REUSEADDR off, so
# nothing of ours takes it again during the run).
s = socket.socket()
s.bind(("127.0.0.1", 0))
closed = "127.0.0.1:%d" % s.getsockname()[1]
s.close()
# And one that is taken (listening) for the whole run.
busy_sock = socket.socket()
busy_sock.bind(("127.0.0.1", 0))
busy_sock.listen(1)
busy = "127.0.0.1:%d" % busy_sock.getsockname()[1]
subst = {"@CLOSED@": closed, "@BUSY@": busy, "@RDKAFKA@": re.escape(os.environ["TT_RDKAFKA"]),
         "@AVRO@": re.escape(os.environ["TT_AVRO"])}

def fill(text, literal):
    for k, v in subst.items():
        if k in ("@CLOSED@", "@BUSY@"):
            v = v if literal else re.escape(v)
        text = text.replace(k, v)
    return text

rows = failed = 0
for lineno, line in enumerate(open(os.environ["TT_TABLE"]), 1):
    line = line.rstrip("\n")
    if not line.strip() or line.startswith("#"):
        continue
    cols = line.split("\t")
    if len(cols) != 4:
        sys.exit("%s:%d: expected 4 tab-separated columns, got %d"
                 % (os.environ["TT_TABLE"], lineno, len(cols)))
    args, want_rc, stream, regex = cols
    argv = [os.environ["TT_T"]] + shlex.split(fill(args, True))
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = "timeout", "", ""
    rows += 1
    text = out if stream == "stdout" else err
    why = []
    if str(rc) != want_rc:
        why.append("exit %s, want %s" % (rc, want_rc))
    if not re.search(fill(regex, False), text, re.M):
        why.append("%s does not match %r" % (stream, regex))
    if stream == "stderr1" and err.count("\n") != 1:
        why.append("stderr has %d lines, want 1" % err.count("\n"))
    if re.search(r"^%\d\|", err, re.M):
        why.append("raw librdkafka line on stderr")
    if why:
        failed += 1
        print("FAIL line %d: tokentally %s: %s\n  stdout: %r\n  stderr: %r"
              % (lineno, args, "; ".join(why), out[-600:], err[-600:]))
print("cli_table: %d rows, %d failed" % (rows, failed))
sys.exit(1 if failed else 0)
PY
