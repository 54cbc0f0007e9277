#!/usr/bin/env bash
# Prints, one a line, the Debian packages that hold the shared libraries a
# binary loads (ldd), so the runtime image installs exactly those:
#   bash docker/runtime-packages.sh build/tokentally
# Run in the Dockerfile's build stage; tests/it_kafka_compose.sh runs it on
# the tested binary.
set -euo pipefail
bin=${1:?usage: runtime-packages.sh BINARY}
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
  while read -r lib; do
    real=$(readlink -f "$lib")
    # Debian's merged /usr: dpkg knows a file under /lib or /usr/lib.
    for p in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
      if pkg=$(dpkg-query -S "$p" 2>/dev/null); then
        echo "${pkg%%:*}"
        continue 2
      fi
    done
    echo "runtime-packages.sh: no Debian package holds $lib" >&2
    exit 1
  done | sort -u
