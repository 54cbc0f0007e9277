# Sourced by the it_kafka_* scripts that drive a Python harness on a broker
# of their own (ctest runs them in parallel):
#   SRC=...; . "$SRC/tests/kafka/up.sh" DIRNAME KEEP [broker k=v ...]
# sets B, T, K (B/DIRNAME unless TT_KAFKA_DIR), BROKER and tmp (a scratch
# folder, removed at exit unless KEEP is 1), starts the broker (stopped at
# exit) and exports KAFKA_BROKERS.
B=${TT_BUILD_DIR:-$SRC/build}
T=${TT_BINARY:-$B/tokentally}
K=${TT_KAFKA_DIR:-$B/$1}
BROKER="bash $SRC/tests/kafka/broker.sh"
UP_KEEP=$2
shift 2
tmp=$(mktemp -d)
up_cleanup() {
  $BROKER stop "$K" >/dev/null 2>&1 || true
  if [ "$UP_KEEP" = 1 ]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap up_cleanup EXIT
$BROKER install "$K"
envs=$($BROKER start "$K" "$@")   # fails under set -e (eval "$(...)" would not)
eval "$envs"
