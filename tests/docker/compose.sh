#!/usr/bin/env bash
# docker/compose.yml, up for real, with each Compose that can be had here:
# v1 (Debian bookworm's docker-compose 1.29, tests/install-deps.sh) and v2
# (Debian trixie's docker-compose 2.26, unpacked by tests/docker/image.sh).
# The file is used as users use it, with two test-only changes: KAFKA_IMAGE
# (the file's own knob) names the stand-in Kafka image that image.sh built
# (docker/compose.yml keeps naming apache/kafka for users), and an override
# file gives the tokentally and generator services the image that
# tests/docker/container.sh tested ($IMAGE; `up --no-build`). GEN_RATE=0:
# the generator writes its 598,727 events as fast as the broker takes them
# (the file's default, 2,000/s, would take 5 minutes).
# For each Compose: `config` accepts the file; `up -d`; kafka healthy, topics
# exited 0, tokentally healthy (the image's HEALTHCHECK), generator exited 0,
# watch running; tokentally_events_accepted_total on the published /metrics
# port equals the generator's "N records delivered"; `exec tokentally
# tokentally tail` prints the leaderboard (2026-W14's CN row: 12.96 T x 1e-4
# = 1,296,000,000 tokens); watch printed 2026-W14's total; `down -v` leaves
# no container, network or volume of the project. Prints the time from `up`
# to the last service ready and the whole cycle's.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
. "$SRC/tests/docker/lib.sh"
need_engine
for i in "$IMAGE" "$KAFKA_IMAGE_LOCAL"; do
  "$DOCKER" image inspect "$i" >/dev/null 2>&1 ||
    fail "no image $i: tests/docker/image.sh (ctest fixture docker_image) builds it"
done
tmp=$(mktemp -d)
P=ttcompose$$
current=()
cleanup() {
  ((${#current[@]})) && "${current[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
cat >"$tmp/override.yml" <<YML
services:
  tokentally:
    image: $IMAGE
  generator:
    image: $IMAGE
YML
export KAFKA_IMAGE=$KAFKA_IMAGE_LOCAL GEN_RATE=0

for port in 29092 9464; do
  ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
    fail "port $port (published by docker/compose.yml) is taken on this machine"
done

cid() { "$DOCKER" ps -aq --filter "label=com.docker.compose.project=$P" \
          --filter "label=com.docker.compose.service=$1"; }
state() { # SERVICE -> "status health exitcode"
  local c
  c=$(cid "$1")
  [ -n "$c" ] || { echo "none"; return; }
  "$DOCKER" inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}}' "$c"
}
metric() { # NAME -> value on the published /metrics port
  (exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
   awk -v n="$1" '$1 == n {print $2}' <&3) 2>/dev/null || true
}

cycle() { # NAME COMPOSE-COMMAND...
  local name=$1; shift
  local c=("$@" -p "$P" -f "$SRC/docker/compose.yml" -f "$tmp/override.yml")
  current=("${c[@]}")
  echo "== $name: $("$@" version 2>/dev/null | head -1)"
  "${c[@]}" config >"$tmp/config.yml" || fail "$name: config refuses the file"
  grep -q "image: $KAFKA_IMAGE_LOCAL" "$tmp/config.yml" || fail "$name: KAFKA_IMAGE not applied"
  local t0 i s ready=""
  t0=$(now)
  "${c[@]}" up -d --no-build >"$tmp/up.log" 2>&1 || { cat "$tmp/up.log" >&2; fail "$name: up"; }
  for ((i = 0; i < 1800; i++)); do
    local k t g w x
    k=$(state kafka); t=$(state topics); x=$(state tokentally); g=$(state generator); w=$(state watch)
    case "$t $g $x" in *"exited - "[1-9]*) break ;; esac
    if [[ $k == "running healthy"* && $t == "exited - 0" && $x == "running healthy"* &&
          $g == "exited - 0" && $w == "running -"* ]]; then ready=$(since "$t0"); break; fi
    sleep 0.2
  done
  echo "kafka: $(state kafka) | topics: $(state topics) | tokentally: $(state tokentally) |" \
       "generator: $(state generator) | watch: $(state watch)"
  if [ -z "$ready" ]; then
    "${c[@]}" logs --no-color --tail 20 >&2 || true
    fail "$name: not every service healthy or completed"
  fi
  echo "every service healthy or completed $ready s after up"
  local n got
  n=$("$DOCKER" logs "$(cid generator)" 2>&1 | sed -n 's/^gen: \([0-9]*\) records delivered.*/\1/p')
  [ -n "$n" ] && ((n > 0)) || fail "$name: the generator's summary line is missing"
  for ((i = 0; i < 600; i++)); do
    got=$(metric tokentally_events_accepted_total)
    [ "${got:-}" = "$n" ] && break
    sleep 0.2
  done
  echo "generator: $n events; tokentally_events_accepted_total: $got"
  [ "$got" = "$n" ] || fail "$name: $n events generated, $got counted"
  for ((i = 0; i < 60; i++)); do
    "${c[@]}" exec -T tokentally tokentally tail --from-beginning --exit-at-eof \
      --format table --topic token-usage.rollups,token-usage.streaks >"$tmp/table.txt" 2>"$tmp/tail.err" || true
    grep -Eq '^ +1 CN +1,296,000,000 ' "$tmp/table.txt" && break
    sleep 1 # the open week's PROVISIONAL rows come every TOKENTALLY_EMIT_INTERVAL (10 s)
  done
  grep -A3 '^Origins of 2026-W14' "$tmp/table.txt" || { cat "$tmp/tail.err" >&2; true; }
  grep -Eq '^ +1 CN +1,296,000,000 ' "$tmp/table.txt" ||
    fail "$name: tail in the tokentally container shows no 2026-W14 CN row of 1,296,000,000 tokens"
  "$DOCKER" logs "$(cid watch)" >"$tmp/watch.log" 2>/dev/null
  grep -q '^2026-W14/TOTAL/\*' "$tmp/watch.log" || fail "$name: the watch service printed no 2026-W14 total"
  echo "watch: $(grep -c '^20[0-9][0-9]-W' "$tmp/watch.log") rollups printed"
  "${c[@]}" down -v >"$tmp/down.log" 2>&1 || { cat "$tmp/down.log" >&2; fail "$name: down -v"; }
  current=()
  local left
  left=$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$P")
  left+=$("$DOCKER" network ls -q --filter "label=com.docker.compose.project=$P")
  left+=$("$DOCKER" volume ls -q --filter "label=com.docker.compose.project=$P")
  [ -z "$left" ] || fail "$name: down -v left $left"
  echo "$name: up to down -v in $(since "$t0") s, nothing left"
}

command -v docker-compose >/dev/null ||
  fail "docker-compose (v1) missing: bash tests/install-deps.sh installs it"
cycle "Compose v1" docker-compose
v2=$B/docker/compose-v2/usr/libexec/docker/cli-plugins/docker-compose
if [ -x "$v2" ]; then
  cycle "Compose v2" "$v2"
else
  echo "Compose v2: not tested (image.sh could not fetch Debian trixie's docker-compose)"
fi
echo PASS
