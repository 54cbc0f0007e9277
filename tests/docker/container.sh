#!/usr/bin/env bash
# The tokentally image (built by tests/docker/image.sh, the docker_image
# fixture) as a container:
#   - `--help` prints exactly what the tested host binary prints; --version
#     names the image's librdkafka;
#   - the user is not root (10001), also for a running `run`;
#   - the image is at most 100 MB (printed);
#   - `demo` on a read-only root file system (--read-only, all capabilities
#     dropped, no-new-privileges) prints the host binary's leaderboard;
#   - on the test broker (tests/kafka/broker.sh, loopback) with --network
#     host and --read-only: the april-2026 scenario produced by the image's
#     `gen`, consumed by the image's `run --close-at-eof` (exactly-once, the
#     default): every rollup and streak equal to the host's `replay` of the
#     same events (tests/kafka/check_outputs.py: confluent-kafka and
#     python3-avro, not our code);
#   - `run` (no --close-at-eof) becomes healthy by the image's own
#     HEALTHCHECK (printed: the time it took), and `docker stop` (SIGTERM)
#     ends it with exit 0 within 10 s, every message read and committed;
#   - tests/kafka/scenarios.py with every stage in a container
#     (--docker-image; kill -9 = docker kill -s KILL, SIGTERM through the
#     client): TT_DOCKER_SCENARIOS (default: fresh_eof kill_restart
#     restart_long two_instances), both guarantees where they apply.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
PY=/usr/bin/python3
. "$SRC/tests/docker/lib.sh"
need_engine
"$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1 ||
  fail "no image $IMAGE: tests/docker/image.sh (ctest fixture docker_image) builds it"
K=${TT_KAFKA_DIR:-$B/kafka-docker}
BROKER="bash $SRC/tests/kafka/broker.sh"
tmp=$(mktemp -d)
names=()
cleanup() {
  local n
  for n in "${names[@]}"; do "$DOCKER" rm -f "$n" >/dev/null 2>&1 || true; done
  $BROKER stop "$K" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
t_all=$(now)
# Each test's containers carry the pid: ctest may run two of these at once.
cname() { names+=("tt-$1-$$"); echo "tt-$1-$$"; }
drun() { "$DOCKER" run --rm "$@"; }
mask() { sed -E 's/ in [0-9]+\.[0-9]+ s/ in X s/g'; }

echo "== --help and --version"
drun "$IMAGE" --help >"$tmp/help.img"
"$T" --help >"$tmp/help.host"
diff "$tmp/help.host" "$tmp/help.img" || fail "--help of the image differs from the host binary's"
drun "$IMAGE" --version | tee "$tmp/version"
grep -q '^librdkafka 2\.' "$tmp/version" || fail "--version names no librdkafka"

echo "== not root"
user=$("$DOCKER" image inspect -f '{{.Config.User}}' "$IMAGE")
[ "$user" = 10001:10001 ] || fail "image user is '$user', not 10001:10001"
[ "$(drun --entrypoint id "$IMAGE" -u)" = 10001 ] || fail "the container runs as $(drun --entrypoint id "$IMAGE")"
echo "user $user"

echo "== size"
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
echo "image size: $size bytes ($(awk -v s="$size" 'BEGIN{printf "%.1f MB", s / 1e6}'), budget 100 MB)"
((size <= 100000000)) || fail "the image is over 100 MB"

echo "== demo on a read-only root file system"
drun --read-only --cap-drop ALL --security-opt no-new-privileges "$IMAGE" demo \
  >"$tmp/demo.img" 2>"$tmp/demo.img.err" || { cat "$tmp/demo.img.err" >&2; fail "demo in the container"; }
"$T" demo >"$tmp/demo.host" 2>/dev/null
diff <(mask <"$tmp/demo.host") <(mask <"$tmp/demo.img") ||
  fail "the container's demo differs from the host binary's (timings masked)"
grep -E '^2026-W14 ' "$tmp/demo.img"

echo "== the test broker"
$BROKER install "$K"
envs=$($BROKER start "$K" message.max.bytes=8388608)
eval "$envs"
echo "broker at $KAFKA_BROKERS"
for p in c t; do
  $BROKER create-topic "$K" "$p.events" 6 2>/dev/null
  $BROKER create-topic "$K" "$p.rollups" 3 cleanup.policy=compact 2>/dev/null
  $BROKER create-topic "$K" "$p.streaks" 1 cleanup.policy=compact 2>/dev/null
  $BROKER create-topic "$K" "$p.dlq" 1 max.message.bytes=8388608 2>/dev/null
done
# The container's `run`: its topics, group and a free port on the host's
# loopback for /metrics, /healthz and /readyz (--network host).
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
runargs() { # PREFIX
  echo run --brokers "$KAFKA_BROKERS" --group "it-docker-$1" --input-topic "$1.events" \
    --rollups-topic "$1.rollups" --streaks-topic "$1.streaks" --dlq-topic "$1.dlq" \
    --workers 2 -X message.max.bytes=8388608
}

# Started first, so that its wait for the HEALTHCHECK (the first probe
# comes 15 s after the start) overlaps the scenario below; events first, so
# that it has them all when it is stopped.
"$T" gen --scenario april-2026 --brokers "$KAFKA_BROKERS" --input-topic t.events 2>/dev/null
mport=$(free_port)
run=$(cname run)
# shellcheck disable=SC2046
"$DOCKER" run -d --name "$run" --network host --read-only \
  -e TOKENTALLY_METRICS_ADDR="127.0.0.1:$mport" "$IMAGE" $(runargs t) >/dev/null

echo "== replay of the same events on the host (the reference)"
"$T" gen --scenario april-2026 --out "$tmp/s.jsonl" 2>/dev/null
"$T" replay --out "$tmp/ref" "$tmp/s.jsonl" 2>/dev/null

echo "== the image's gen, then the image's run --close-at-eof (exactly-once)"
drun --network host --read-only "$IMAGE" gen --scenario april-2026 \
  --brokers "$KAFKA_BROKERS" --input-topic c.events 2>&1 | grep -v '^%' | tail -1
t=$(now)
# shellcheck disable=SC2046
drun --name "$(cname close)" --network host --read-only \
  -e TOKENTALLY_METRICS_ADDR="127.0.0.1:$(free_port)" "$IMAGE" $(runargs c) --close-at-eof \
  --guarantee exactly-once 2>"$tmp/close.err" ||
  { tail -n 20 "$tmp/close.err" >&2; fail "run --close-at-eof in the container"; }
echo "run --close-at-eof in the container: $(since "$t") s"
grep -o '"msg":"run: [^"]*"' "$tmp/close.err" | tail -1
$PY "$SRC/tests/kafka/check_outputs.py" "$KAFKA_BROKERS" "$SRC" "$tmp/ref" \
  --format avro --rollups c.rollups --streaks c.streaks

echo "== run (started above) healthy by the image's HEALTHCHECK, then docker stop (SIGTERM)"
status=
for ((i = 0; i < 900; i++)); do
  status=$("$DOCKER" inspect -f '{{.State.Health.Status}} {{.State.Status}}' "$run")
  case $status in healthy*|unhealthy*|*exited*|*dead*) break ;; esac
  sleep 0.1
done
[ "${status%% *}" = healthy ] || { "$DOCKER" logs "$run" 2>&1 | tail -20 >&2; fail "container $status"; }
# From the container's start to the end of its first passing probe.
healthy_s=$("$DOCKER" inspect "$run" | $PY -c '
import datetime, json, re, sys
st = json.load(sys.stdin)[0]["State"]
def t(s):  # RFC 3339 with nanoseconds
    s = re.sub(r"(\.\d{6})\d*", r"\1", s).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s)
ok = [p for p in st["Health"]["Log"] if p["ExitCode"] == 0]
print("%.1f" % (t(ok[0]["End"]) - t(st["StartedAt"])).total_seconds())')
echo "healthy $healthy_s s after the start (HEALTHCHECK --interval=15s: the first probe comes at 15 s)"
"$DOCKER" inspect -f '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}' "$run" | head -2
[ "$("$DOCKER" top "$run" -eo pid,uid | awk 'NR > 1 {print $2}' | sort -u)" = 10001 ] ||
  fail "a process of the running container is not uid 10001"
HEALTH_PATH=/readyz TOKENTALLY_METRICS_ADDR=127.0.0.1:$mport bash "$SRC/docker/healthcheck.sh" ||
  fail "/readyz of the running container"
# Everything consumed before the stop (the summary says how many).
want=$(wc -l <"$tmp/s.jsonl")
for ((i = 0; i < 600; i++)); do
  got=$(exec 3<>"/dev/tcp/127.0.0.1/$mport" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
        awk '$1 == "tokentally_events_total" {print $2}' <&3)
  [ "${got:-0}" = "$want" ] && break
  sleep 0.1
done
echo "tokentally_events_total $got (gen wrote $want)"
t=$(now)
"$DOCKER" stop -t 10 "$run" >/dev/null
stop_s=$(since "$t")
rc=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$run")
"$DOCKER" logs "$run" >"$tmp/run.log" 2>&1
grep -o '"msg":"run: [^"]*"' "$tmp/run.log" | tail -1
echo "docker stop: exit $rc after $stop_s s"
[ "$rc" = 0 ] || { tail -20 "$tmp/run.log" >&2; fail "exit $rc after SIGTERM"; }
awk -v s="$stop_s" 'BEGIN{exit !(s < 10)}' || fail "SIGTERM took $stop_s s (docker stop -t 10 kills at 10 s)"
grep -q "run: stopped: $want messages" "$tmp/run.log" || fail "not every message read before SIGTERM"
grep -Eq 'run: stopped: .* [1-9][0-9]* commits' "$tmp/run.log" || fail "no commit on SIGTERM"

echo "== tests/kafka/scenarios.py, every stage in a container"
mkdir -p "$tmp/scn"
# shellcheck disable=SC2086
$PY "$SRC/tests/kafka/scenarios.py" --brokers "$KAFKA_BROKERS" --binary "$T" --src "$SRC" \
  --tmp "$tmp/scn" --docker-image "$IMAGE" --docker "$DOCKER" \
  ${TT_DOCKER_SCENARIOS:-fresh_eof kill_restart restart_long two_instances} ||
  fail "scenarios in containers"
echo "container tests: $(since "$t_all") s"
echo PASS
