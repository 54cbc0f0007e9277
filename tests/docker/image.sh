#!/usr/bin/env bash
# The ctest fixture of the docker tests (docker_image, label docker): a
# Docker engine (tests/docker/lib.sh starts dockerd when none answers), the
# Debian base images (tests/docker/bases.sh: pulled, or made with mmdebstrap
# when they cannot be pulled), then
#   - the tokentally image, built as users build it:
#       docker build -f docker/Dockerfile -t $IMAGE .   (from the repo root;
#     BuildKit, so docker/Dockerfile.dockerignore is honoured)
#   - the stand-in Kafka image of tests/docker/kafka (trixie JRE, the jars
#     tests/kafka/broker.sh installs, KafkaDockerWrapper), for the compose
#     test only
#   - Compose v2: Debian trixie's docker-compose package (2.26), fetched with
#     apt-get download in a debian:trixie-slim container and unpacked under
#     the build folder; its only dependency is libc6 >= 2.34.
# Prints how long each step took; the figures also go to
# $B/docker/timings.txt. Exit 77 (skipped) only when no engine can run.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${TT_BUILD_DIR:-$SRC/build}
. "$SRC/tests/docker/lib.sh"
need_engine
mkdir -p "$B/docker"
log=$B/docker/timings.txt
: >"$log"
note() { echo "$*" | tee -a "$log"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The jars for the Kafka image from Maven Central meanwhile (build_kafka's
# own install below waits for this one on broker.sh's lock, then finds them).
bash "$SRC/tests/kafka/broker.sh" install "$B/kafka-docker" >/dev/null 2>&1 &
t=$(now)
bash "$SRC/tests/docker/bases.sh" "$SUITE"
note "base images: $(since "$t") s"

# Three jobs at once (their downloads and waits overlap; the two cores
# are shared anyway): the tokentally image; the jars (Maven Central) and
# then the Kafka image; Compose v2.
build_tokentally() {
  local t
  t=$(now)
  (cd "$SRC" && nice "$DOCKER" build --progress=plain -f docker/Dockerfile -t "$IMAGE" .) \
    >"$B/docker/build.log" 2>&1 || { tail -n 40 "$B/docker/build.log" >&2; fail "docker build (log $B/docker/build.log)"; }
  local cached size
  cached=$(grep -c ' CACHED$' "$B/docker/build.log" || true)
  size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
  note "tokentally image $IMAGE: docker build $(since "$t") s ($cached steps cached)," \
    "$size bytes ($(awk -v s="$size" 'BEGIN{printf "%.1f MB", s / 1e6}'))"
}
build_kafka() {
  local t K=$B/kafka-docker ctx=$tmp/kafka-ctx
  t=$(now)
  bash "$SRC/tests/kafka/broker.sh" install "$K" >"$tmp/jars.log" 2>&1 ||
    { cat "$tmp/jars.log" >&2; fail "broker.sh install $K"; }
  cp -r "$SRC/tests/docker/kafka" "$ctx"
  cp -r "$K/lib" "$ctx/lib"
  rm -f "$ctx/lib/.installed"
  nice "$DOCKER" build --progress=plain -t "$KAFKA_IMAGE_LOCAL" "$ctx" >"$B/docker/kafka-build.log" 2>&1 ||
    { tail -n 40 "$B/docker/kafka-build.log" >&2; fail "the Kafka image (log $B/docker/kafka-build.log)"; }
  note "Kafka image $KAFKA_IMAGE_LOCAL: jars and docker build $(since "$t") s," \
    "$(awk -v s="$("$DOCKER" image inspect -f '{{.Size}}' "$KAFKA_IMAGE_LOCAL")" 'BEGIN{printf "%.1f MB", s / 1e6}')"
}
fetch_v2() {
  local t v2=$B/docker/compose-v2/usr/libexec/docker/cli-plugins/docker-compose
  [ -x "$v2" ] && return 0
  t=$(now)
  rm -rf "$B/docker/compose-v2" "$tmp/deb"
  mkdir -p "$tmp/deb"
  if "$DOCKER" run --rm -v "$tmp/deb:/out" "debian:$SUITE-slim" bash -c \
       'cd /out && apt-get update -qq && apt-get download -q docker-compose' >"$tmp/v2.log" 2>&1; then
    dpkg-deb -x "$tmp"/deb/docker-compose_*.deb "$B/docker/compose-v2"
    note "Compose v2: $("$v2" version) (Debian $SUITE's docker-compose), $(since "$t") s"
  else
    cat "$tmp/v2.log" >&2
    note "Compose v2: not available from Debian $SUITE's docker-compose package (log above)"
  fi
}
t=$(now)
build_tokentally & j1=$!
build_kafka & j2=$!
fetch_v2 & j3=$!
rc=0
for j in $j1 $j2 $j3; do wait $j || rc=1; done
((rc == 0)) || fail "an image could not be built (above)"
note "images: $(since "$t") s"
echo "images ready"
