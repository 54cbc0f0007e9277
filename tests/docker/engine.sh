#!/usr/bin/env bash
# tests/docker/engine.sh stop: the ctest fixture's cleanup (docker_engine_stop).
# Stops the dockerd that tests/docker/lib.sh started (its pid file says so),
# SIGTERM then up to 30 s; an engine that was already running is left alone.
# Images and the build cache stay in /var/lib/docker for the next run.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/docker/lib.sh"
[ "${1:-}" = stop ] || { echo "usage: engine.sh stop" >&2; exit 2; }
f=$TT_DOCKER_STATE/started-by-tests
[ -f "$f" ] || { echo "no engine started by the tests: nothing to stop"; exit 0; }
pid=$(cat "$f")
if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q dockerd; then
  kill -TERM "$pid"
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { echo "dockerd $pid still up after 30 s: SIGKILL"; kill -KILL "$pid"; }
  echo "stopped dockerd $pid (started by the tests)"
fi
rm -f "$f"
