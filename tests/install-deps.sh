#!/usr/bin/env bash
# Installs the Debian packages that the build, the tests and the benchmarks
# need, only when something is missing (so a second run costs nothing).
# --build: only what compiling needs (the Docker image's build stage): a
# library the build needs goes in the first list, or the image fails to build.
# --fuzz: that and clang with libFuzzer (tests/fuzz/run.sh).
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config
      librdkafka-dev libavro-dev libjemalloc-dev check libsubunit-dev
      libdeflate-dev libsnappy-dev zlib1g-dev
      libcurl4-openssl-dev)
# clang 14 and its compiler-rt (libFuzzer, ASan, UBSan): tests/fuzz.
fuzz=(clang-14 libclang-rt-14-dev)
if [ "${1:-}" = --fuzz ]; then
  pkgs+=("${fuzz[@]}")
elif [ "${1:-}" != --build ]; then
  pkgs+=("${fuzz[@]}")
  # prometheus: promtool checks the /metrics page (tests/it_mock_metrics.c).
  pkgs+=(prometheus)
  # docker-compose (1.29) and python3-yaml: tests/it_kafka_compose.sh
  # validates and reads docker/compose.yml with them.
  pkgs+=(python3 python3-avro python3-confluent-kafka kcat clang-format
         docker-compose python3-yaml)
  # docker.io (the engine, 20.10 with BuildKit) and mmdebstrap (the Debian
  # base images when no registry answers): tests/docker/.
  pkgs+=(docker.io mmdebstrap)
  # gdb: a Kafka test that finds its stage hung prints the threads' stacks.
  pkgs+=(gdb)
  # python3-venv: tests/it_kafka_tail.sh runs docs/consuming.md's consumer example
  # in a venv under the build folder with fastavro from PyPI (not in Debian).
  pkgs+=(python3-venv)
  # chromium, python3-websocket: tests/it_kafka_serve.sh loads `serve`'s
  # page in headless Chromium, driven over the DevTools protocol.
  pkgs+=(chromium python3-websocket)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
