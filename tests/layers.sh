#!/usr/bin/env bash
# The layer graph of docs/architecture.md, checked on the built libraries:
# every tt_ symbol a layer's library needs is defined in its own library or
# in one of the layers below it, and ttcore/ttutil need nothing from
# librdkafka, Avro C, curl or zlib. nm only: no run of the code.
set -euo pipefail
B=${TT_BUILD_DIR:-build}
exec /usr/bin/python3 - "$B" <<'PY'
import subprocess, sys
b = sys.argv[1]
below = {"ttutil": [], "ttcore": ["ttutil"],
         "ttcodec": ["ttutil", "ttcore"],
         "ttreplay": ["ttutil", "ttcore", "ttcodec"],
         "ttops": ["ttutil", "ttcore"],
         "ttkafka": ["ttutil", "ttcore", "ttcodec", "ttops"],
         "ttserve": ["ttutil", "ttcore", "ttcodec", "ttops", "ttkafka"],
         "ttcli": ["ttutil", "ttcore", "ttcodec", "ttreplay", "ttops",
                   "ttkafka", "ttserve"]}
defs, need = {}, {}
for lib in below:
    out = subprocess.run(["nm", f"{b}/lib{lib}.a"], check=True,
                         capture_output=True, text=True).stdout
    need[lib] = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "TDBRC":
            defs[f[2]] = lib
        elif len(f) == 2 and f[0] == "U":
            need[lib].add(f[1])
bad = []
for lib, syms in need.items():
    for s in sorted(syms):
        owner = defs.get(s)
        if owner and owner != lib and owner not in below[lib]:
            bad.append(f"{lib} calls {s} of {owner}, not a layer below it")
        if lib in ("ttutil", "ttcore") and s.startswith(
                ("rd_kafka", "avro_", "curl_", "inflate", "deflate",
                 "libdeflate")):
            bad.append(f"{lib} needs {s}: the core links no I/O library")
for line in bad:
    print("FAIL:", line)
print(f"{len(need)} layers, {sum(map(len, need.values()))} undefined "
      f"symbols checked, {len(bad)} problems")
sys.exit(1 if bad else 0)
PY
