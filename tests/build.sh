#!/usr/bin/env bash
# The one build recipe. tests/run.sh (CI) and docker/Dockerfile's build stage
# both run this script, so the image is built with the same packages and the
# same cmake commands as the tested binary.
#
#   bash tests/build.sh [--deps all|build|none] [--target T] [-DKEY=VALUE ...]
#
#   --deps all    (default) every package of tests/install-deps.sh: build,
#                 tests, benchmarks
#   --deps build  only what compiling needs (tests/install-deps.sh --build);
#                 the Docker build stage uses this
#   --deps none   install nothing
#   --target T    build only T (e.g. tokentally, the binary); default: all
#   -D...         extra cmake arguments, after the defaults (a later -D wins)
#
# BUILD_DIR (default: build) is the build folder. The build type is Release
# unless a -DCMAKE_BUILD_TYPE=... argument says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=all
target=()
cmake_args=()
while (($#)); do
  case $1 in
    --deps) deps=${2:?--deps all|build|none}; shift 2 ;;
    --target) target=(--target "${2:?--target NAME}"); shift 2 ;;
    -D*) cmake_args+=("$1"); shift ;;
    *) echo "tests/build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case $deps in
  all) bash tests/install-deps.sh ;;
  build) bash tests/install-deps.sh --build ;;
  none) ;;
  *) echo "tests/build.sh: --deps all|build|none" >&2; exit 2 ;;
esac
dir=${BUILD_DIR:-build}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" "${target[@]}"
