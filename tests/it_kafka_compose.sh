#!/usr/bin/env bash
# docker/compose.yml and docker/Dockerfile, checked without a Docker engine:
# - `docker-compose config` (Debian's docker-compose 1.29) validates the
#   compose file; its parsed services are read with python3-yaml;
# - the Dockerfile's build stage runs tests/build.sh, the script tests/run.sh
#   builds with (the recipe cannot drift); docker/runtime-packages.sh finds
#   the runtime packages of the tested binary; docker/healthcheck.sh tells
#   HTTP 200 from anything else;
# - on a real Kafka 3.9 broker: the topics the `topics` service creates (same
#   names, partitions and configs), the `generator` service's command and
#   environment (brokers: the test broker; a smaller scale), then the
#   `tokentally` service's exact command with exactly its environment, run
#   natively with $TT_BINARY. Changed: TOKENTALLY_BROKERS (the test broker),
#   TOKENTALLY_METRICS_ADDR (a free loopback port, since tests run in
#   parallel) and, added, TOKENTALLY_CLOSE_AT_EOF=1: the compose service
#   streams forever and never ends by itself. While it runs,
#   docker/healthcheck.sh must see its /healthz answer 200. Rollups must
#   arrive, with the 2026-W14 total among them; `tail --format table` with
#   the same environment prints the leaderboard.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
K=$B/kafka-compose
BROKER="bash $SRC/tests/kafka/broker.sh"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  $BROKER stop "$K" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== docker-compose config validates docker/compose.yml"
command -v docker-compose >/dev/null ||
  fail "docker-compose missing (bash tests/install-deps.sh installs it)"
(cd "$SRC" && docker-compose -f docker/compose.yml config) >"$tmp/config.yml"

# The parsed services as shell assignments: arrays of words, quoted.
/usr/bin/python3 - "$tmp/config.yml" >"$tmp/services.sh" <<'PY'
import shlex, sys, yaml
svc = yaml.safe_load(open(sys.argv[1]))["services"]
def arr(name, words):
    print(f"{name}=(" + " ".join(shlex.quote(str(w)) for w in words) + ")")
def env(name, e):
    e = e or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) for x in e)
    arr(name, [f"{k}={'' if v is None else v}" for k, v in sorted(e.items())])
def cmd(name, c):
    arr(name, shlex.split(c) if isinstance(c, str) else c)
for s in ("kafka", "topics", "tokentally", "generator"):
    assert s in svc, f"no service {s}"
t = svc["tokentally"]
assert t["build"]["dockerfile"].endswith("docker/Dockerfile"), t["build"]
assert t["depends_on"]["topics"]["condition"] == "service_completed_successfully"
assert svc["generator"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
assert svc["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
assert "apache/kafka:3.9" in svc["kafka"]["image"], svc["kafka"]["image"]
assert "broker,controller" in str(svc["kafka"]["environment"]["KAFKA_PROCESS_ROLES"])
cmd("svc_cmd", t["command"]); env("svc_env", t.get("environment"))
cmd("gen_cmd", svc["generator"]["command"]); env("gen_env", svc["generator"].get("environment"))
# The topics service's script: lines `t NAME --partitions N --config k=v ...`
script = "\n".join(svc["topics"]["command"])
n = 0
for line in script.splitlines():
    if not line.startswith("t "):
        continue
    w = shlex.split(line)
    name, rest = w[1], w[2:]
    parts = rest[rest.index("--partitions") + 1]
    confs = [rest[i + 1] for i, x in enumerate(rest) if x == "--config"]
    arr(f"topic_{n}", [name, parts] + confs)
    n += 1
print(f"ntopics={n}")
PY
source "$tmp/services.sh"
echo "tokentally service: ${svc_cmd[*]}"
printf '  %s\n' "${svc_env[@]}"
((ntopics == 4)) || fail "the topics service creates $ntopics topics, not 4"

echo "== the image is built by the script CI builds with"
# The build stage (first FROM up to the second) runs tests/build.sh.
awk '/^FROM /{n++} n==1' "$SRC/docker/Dockerfile" | grep -Eq '^RUN .*bash tests/build\.sh' ||
  fail "docker/Dockerfile's build stage does not RUN tests/build.sh"
grep -Eq '^FROM debian:trixie-slim' "$SRC/docker/Dockerfile" || fail "runtime base"
grep -Eq '^ENTRYPOINT \["tokentally"\]' "$SRC/docker/Dockerfile" || fail "ENTRYPOINT"
grep -Eq '^USER [1-9]' "$SRC/docker/Dockerfile" || fail "non-root USER"
grep -Eq '^HEALTHCHECK ' "$SRC/docker/Dockerfile" || fail "HEALTHCHECK"
grep -Eq '^(bash )?tests/build\.sh|bash tests/build\.sh' "$SRC/tests/run.sh" ||
  fail "tests/run.sh does not build with tests/build.sh"
[ -f "$SRC/docker/Dockerfile.dockerignore" ] || fail "no docker/Dockerfile.dockerignore"

echo "== the image's build stage installs every library CMakeLists.txt needs"
# What `install-deps.sh --build` checks for (a stand-in dpkg-query notes the
# names and says "installed", so nothing is installed here) must hold the
# .pc file of every pkg_check_modules() module.
mkdir -p "$tmp/fakebin"
printf '#!/bin/sh\nfor a; do :; done; echo "$a" >>"%s"; echo "install ok installed"\n' \
  "$tmp/build-pkgs" >"$tmp/fakebin/dpkg-query"
chmod +x "$tmp/fakebin/dpkg-query"
PATH="$tmp/fakebin:$PATH" bash "$SRC/tests/install-deps.sh" --build
for mod in $(sed -n 's/^ *pkg_check_modules([A-Z_]* REQUIRED IMPORTED_TARGET \([^ )]*\)).*/\1/p' \
               "$SRC/CMakeLists.txt"); do
  pc="$(pkg-config --variable=pcfiledir "$mod")/$mod.pc"
  pkg=$(dpkg-query -S "$pc" 2>/dev/null || dpkg-query -S "$(readlink -f "$pc")")
  pkg=${pkg%%:*}
  grep -qx "$pkg" "$tmp/build-pkgs" ||
    fail "pkg-config module $mod ($pkg) is not in tests/install-deps.sh's --build list"
  echo "  $mod: $pkg"
done

echo "== runtime packages of the binary (docker/runtime-packages.sh)"
bash "$SRC/docker/runtime-packages.sh" "$T" >"$tmp/pkgs"
tr '\n' ' ' <"$tmp/pkgs"; echo
for p in librdkafka1 libavro23 libjemalloc2 libdeflate0 libsnappy1v5 zlib1g; do
  grep -qx "$p" "$tmp/pkgs" || fail "runtime-packages.sh misses $p"
done

echo "== docker/healthcheck.sh: 200 is healthy, anything else is not"
hport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 - "$hport" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$hport") 2>/dev/null && break; sleep 0.1
done
TOKENTALLY_METRICS_ADDR=0.0.0.0:$hport bash "$SRC/docker/healthcheck.sh" ||
  fail "healthcheck: 200 on /healthz not healthy"
! TOKENTALLY_METRICS_ADDR=0.0.0.0:$hport HEALTH_PATH=/readyz \
  bash "$SRC/docker/healthcheck.sh" || fail "healthcheck: 503 taken as healthy"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
! TOKENTALLY_METRICS_ADDR=127.0.0.1:$hport bash "$SRC/docker/healthcheck.sh" \
  2>/dev/null || fail "healthcheck: no listener taken as healthy"

echo "== the compose services on a real broker"
$BROKER install "$K"
envs=$($BROKER start "$K" message.max.bytes=8388608)
eval "$envs"
echo "broker at $KAFKA_BROKERS"
for ((i = 0; i < ntopics; i++)); do
  declare -n spec="topic_$i"
  $BROKER create-topic "$K" "${spec[@]}"
  [ "${spec[0]}" = token-usage.rollups ] && rollups_topic=${spec[0]}
done
unset -n spec
# An environment as the container gets it: only the service's variables
# (PATH and HOME aside), with the replacements above.
subst() { # VAR=VALUE ... -> the same, brokers and metrics address replaced
  local kv
  for kv in "$@"; do
    case $kv in
      TOKENTALLY_BROKERS=*) echo "TOKENTALLY_BROKERS=$KAFKA_BROKERS" ;;
      TOKENTALLY_METRICS_ADDR=*) echo "TOKENTALLY_METRICS_ADDR=127.0.0.1:$mport" ;;
      TOKENTALLY_SCALE=*) echo "TOKENTALLY_SCALE=2e-5" ;;
      TOKENTALLY_RATE=*) echo "TOKENTALLY_RATE=$gen_rate" ;;
      *) echo "$kv" ;;
    esac
  done
}
gen_rate=40000
mport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mapfile -t genv < <(subst "${gen_env[@]}")
mapfile -t senv < <(subst "${svc_env[@]}")
grep -qx 'TOKENTALLY_BROKERS=kafka:9092' < <(printf '%s\n' "${svc_env[@]}") ||
  fail "the tokentally service does not read TOKENTALLY_BROKERS=kafka:9092"

grep -q '^TOKENTALLY_RATE=' < <(printf '%s\n' "${gen_env[@]}") ||
  fail "the generator service sets no TOKENTALLY_RATE"
echo "-- generator: ${gen_cmd[*]} (scale 2e-5, $gen_rate events/s)"
! "$T" gen --rate 10 --out "$tmp/x.jsonl" 2>/dev/null || fail "gen --rate without --brokers"
t0=$(date +%s.%N)
env -i PATH="$PATH" HOME="$tmp" "${genv[@]}" "$T" "${gen_cmd[@]}" 2>"$tmp/gen.err" ||
  { cat "$tmp/gen.err" >&2; fail "the generator's command"; }
t1=$(date +%s.%N)
grep -v '^%' "$tmp/gen.err"
# --rate: N events take at least about N / rate seconds.
ngen=$(sed -n 's/^gen: \([0-9]*\) records delivered.*/\1/p' "$tmp/gen.err")
/usr/bin/python3 -c "
n, r, s = $ngen, $gen_rate, $t1 - $t0
print(f'{n} events in {s:.2f} s: {n / s:.0f} events/s (--rate {r})')
assert n > 0 and s >= 0.9 * n / r, 'the generator was faster than its rate'
" || fail "gen --rate"

echo "-- tokentally: ${svc_cmd[*]} (+ TOKENTALLY_CLOSE_AT_EOF=1)"
env -i PATH="$PATH" HOME="$tmp" "${senv[@]}" TOKENTALLY_CLOSE_AT_EOF=1 \
  timeout 300 "$T" "${svc_cmd[@]}" 2>"$tmp/run.err" &
runpid=$!
pids+=($runpid)
# The image's HEALTHCHECK script against the running stage's /healthz.
healthy=no
while kill -0 $runpid 2>/dev/null; do
  if TOKENTALLY_METRICS_ADDR=127.0.0.1:$mport bash "$SRC/docker/healthcheck.sh" \
      >/dev/null 2>&1; then healthy=yes; break; fi
  sleep 0.05
done
wait $runpid || { cat "$tmp/run.err" >&2; fail "the tokentally service's command"; }
grep -v '^%' "$tmp/run.err" | tail -3
[ $healthy = yes ] || fail "docker/healthcheck.sh never saw /healthz answer 200"
echo "healthcheck.sh: /healthz of the running stage answered 200"

echo "== rollups arrived in ${rollups_topic:?no rollups topic}"
kcat -C -b "$KAFKA_BROKERS" -t "$rollups_topic" -e -q -f '%k\t%s\n' >"$tmp/rollups.tsv"
n=$(wc -l <"$tmp/rollups.tsv")
echo "$n rollup records"
((n > 0)) || fail "no rollups"
w14=$(awk -F'\t' '$1 == "2026-W14/TOTAL/*"' "$tmp/rollups.tsv" | tail -1)
[ -n "$w14" ] || fail "no 2026-W14/TOTAL/* rollup"
echo "$w14"
# JSON output (TOKENTALLY_OUTPUT_FORMAT=json): 27 T x 2e-5 tokens, FINAL.
case $w14 in
  *'"tokens":540000000,'*'"status":"FINAL"'*) ;;
  *) grep -q TOKENTALLY_OUTPUT_FORMAT=json < <(printf '%s\n' "${svc_env[@]}") &&
       fail "the 2026-W14 total is not 540000000 tokens, FINAL" ;;
esac

echo "== README: tail --format table inside the tokentally container"
# `docker compose exec tokentally tokentally tail ...` runs with the
# service's environment (TOKENTALLY_BROKERS among it).
env -i PATH="$PATH" HOME="$tmp" "${senv[@]}" timeout 120 "$T" tail --from-beginning \
  --exit-at-eof --format table --topic token-usage.rollups,token-usage.streaks \
  >"$tmp/table.txt" 2>"$tmp/tail.err" || { cat "$tmp/tail.err" >&2; fail "tail"; }
grep -A2 '^Origins of 2026-W14' "$tmp/table.txt"
grep -Eq '^ +1 CN +259,200,000 .*FINAL' "$tmp/table.txt" ||
  fail "tail's table has no 2026-W14 CN row (12.96 T x 2e-5, FINAL)"
echo "PASS"
