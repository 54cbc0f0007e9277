#!/usr/bin/env bash
# The image's HEALTHCHECK: GET /healthz on the metrics port of `tokentally
# run` (--metrics-addr / TOKENTALLY_METRICS_ADDR, default 0.0.0.0:9464) and
# healthy only on HTTP 200. Plain bash (/dev/tcp), so the runtime image needs
# no curl or wget. HEALTH_PATH=/readyz checks readiness instead.
set -uo pipefail
addr=${TOKENTALLY_METRICS_ADDR:-0.0.0.0:9464}
port=${addr##*:}
host=${addr%:*}
case $host in "" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;; esac
host=${host#[}; host=${host%]}
path=${HEALTH_PATH:-/healthz}
exec 3<>"/dev/tcp/$host/$port" || { echo "no listener on $host:$port"; exit 1; }
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
IFS= read -r -t 2 status <&3 || { echo "no answer from $host:$port$path"; exit 1; }
echo "$status"
case $status in "HTTP/1."[01]" 200"*) exit 0 ;; *) exit 1 ;; esac
