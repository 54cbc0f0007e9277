# Shared set-up of the benchmarks (sourced by bench/run.sh and
# bench/cardinality.sh, which set here, repo, BUILD and DATA first):
# /usr/bin/time, node with @duckdb/node-api, the tokentally binary ($TT:
# BENCH_TOKENTALLY, or a release build in $BUILD), $DATA, and a scratch
# $WORK removed at exit.
log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/bin/time ]; then
        log "installing Debian package 'time' for /usr/bin/time"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q time ||
                { as_root apt-get update -q &&
                  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q time; }
fi
command -v node >/dev/null || die "node (20+) is needed for the DuckDB comparison"
command -v npm >/dev/null || die "npm is needed to install @duckdb/node-api"
want_duck=$(node -p "require('$here/package.json').dependencies['@duckdb/node-api']")
have_duck=$(node -p "try{require('$here/node_modules/@duckdb/node-api/package.json').version}catch(e){''}")
if [ "$have_duck" != "$want_duck" ]; then
        log "installing @duckdb/node-api $want_duck into bench/node_modules"
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

if [ -n "${BENCH_TOKENTALLY:-}" ]; then
        TT=$BENCH_TOKENTALLY
else
        gen_flag=()
        command -v ninja >/dev/null && [ ! -f "$BUILD/CMakeCache.txt" ] && gen_flag=(-G Ninja)
        log "building release binary in $BUILD"
        cmake -S "$repo" -B "$BUILD" "${gen_flag[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$BUILD" --target tokentally -j "$(nproc)" >/dev/null
        TT=$BUILD/tokentally
fi
[ -x "$TT" ] || die "no binary at $TT"

mkdir -p "$DATA"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tt-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
