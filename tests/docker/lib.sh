# Sourced by the tests/docker/*.sh scripts:
#   SRC=...; . "$SRC/tests/docker/lib.sh"
# Sets DOCKER (the client), IMAGE (the tokentally image the tests build),
# KAFKA_IMAGE_LOCAL (the stand-in Kafka image for the compose test) and
# TT_DOCKER_STATE (a folder for the engine's pid and log); defines
# skip/fail/need_engine.
#
# The client: Debian's docker.io 20.10 has BuildKit built into
# /usr/bin/docker. A newer docker CLI earlier in PATH (28.x here, in
# /usr/local/bin) sends `docker build` to the buildx plugin, which is not
# installed, so /usr/bin/docker is preferred. TT_DOCKER overrides.
DOCKER=${TT_DOCKER:-}
if [ -z "$DOCKER" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=$(command -v docker || true); fi
fi
IMAGE=${TT_DOCKER_IMAGE:-tokentally:test}
KAFKA_IMAGE_LOCAL=${TT_DOCKER_KAFKA_IMAGE:-tokentally-test/kafka:3.9.2}
SUITE=${TT_DEBIAN_SUITE:-trixie}
TT_DOCKER_STATE=${TT_DOCKER_STATE:-/tmp/tokentally-dockerd}
mkdir -p "$TT_DOCKER_STATE"
export DOCKER_BUILDKIT=1

fail() { echo "FAIL: $*" >&2; exit 1; }
# ctest marks a test that exits 77 as skipped (SKIP_RETURN_CODE 77).
skip() { echo "SKIP: $*"; exit 77; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}'; }

engine_answers() { "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# need_engine: a Docker engine that answers, started here (as root, from
# Debian's docker.io) when none does; exits 77 with the reason when no
# engine can run on this machine. Several tests may call it at once: the
# start is under a lock.
need_engine() {
  [ -n "$DOCKER" ] || skip "no docker client (Debian package docker.io)"
  engine_answers && return 0
  mkdir -p "$TT_DOCKER_STATE"
  exec 8>"$TT_DOCKER_STATE/lock"
  flock 8
  if engine_answers; then exec 8>&-; return 0; fi
  command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] ||
    skip "no Docker engine answers and dockerd is not installed (Debian package docker.io)"
  [ "$(id -u)" = 0 ] || skip "no Docker engine answers and dockerd needs root to start (uid $(id -u))"
  local d
  d=$(command -v dockerd || echo /usr/sbin/dockerd)
  echo "starting $d (log $TT_DOCKER_STATE/dockerd.log)"
  # setsid: the daemon outlives this test; tests/docker/engine.sh stop (the
  # ctest fixture's cleanup) ends it. The pid file marks it as ours.
  setsid "$d" --pidfile "$TT_DOCKER_STATE/dockerd.pid" \
    </dev/null >>"$TT_DOCKER_STATE/dockerd.log" 2>&1 &
  local i
  for ((i = 0; i < 300; i++)); do
    engine_answers && break
    kill -0 $! 2>/dev/null || break
    sleep 0.1
  done
  if ! engine_answers; then
    tail -n 15 "$TT_DOCKER_STATE/dockerd.log" >&2
    skip "dockerd did not start on this machine (log above)"
  fi
  echo "$!" >"$TT_DOCKER_STATE/started-by-tests"
  exec 8>&-
}
