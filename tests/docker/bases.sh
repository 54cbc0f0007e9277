#!/usr/bin/env bash
# debian:SUITE and debian:SUITE-slim for docker/Dockerfile, on an engine that
# cannot pull them (no registry, or an air-gapped site): made locally with
# Debian's mmdebstrap and `docker import`, as the official images are made
# (debuerreotype): variant minbase, the host's Debian mirror, the official
# images' apt settings (docker-clean: no .deb or pkgcache kept in a layer;
# no translations; autoremove keeps no Suggests) and policy-rc.d, and the
# slim images' dpkg path-excludes (no man pages, docs but the copyright
# files, locales, info).
#
#   bash tests/docker/bases.sh [SUITE]        (default: trixie)
#
# Does nothing for an image the engine has already or can pull. ONE root
# file system serves both tags: the build stage of docker/Dockerfile only
# compiles in it (its man pages and locales never reach the runtime image),
# and a second mmdebstrap run would cost another 60-90 s. TT_DEBIAN_MIRROR
# (default http://deb.debian.org/debian) and TT_DEBIAN_SECURITY
# (http://deb.debian.org/debian-security) name the mirrors.
set -euo pipefail
SRC=${TT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/docker/lib.sh"
SUITE=${1:-$SUITE}
MIRROR=${TT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${TT_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
need_engine

have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
missing=()
for tag in "debian:$SUITE" "debian:$SUITE-slim"; do
  have "$tag" && continue
  if timeout 120 "$DOCKER" pull -q "$tag" >/dev/null 2>&1; then
    echo "pulled $tag"
  else
    missing+=("$tag")
  fi
done
((${#missing[@]})) || { echo "base images: debian:$SUITE and debian:$SUITE-slim present"; exit 0; }

command -v mmdebstrap >/dev/null || {
  echo "installing mmdebstrap (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
}
exec 7>"$TT_DOCKER_STATE/bases.lock"
flock 7
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t0=$(now)
# The official images' apt and init settings (debuerreotype's
# debuerreotype-minimizing-config), written into the new root.
cfg='set -e
a="$1/etc/apt/apt.conf.d"
printf "%s\n" "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" \
  "APT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" \
  "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" >"$a/docker-clean"
echo "Acquire::Languages \"none\";" >"$a/docker-no-languages"
echo "Apt::AutoRemove::SuggestsImportant \"false\";" >"$a/docker-autoremove-suggests"
printf "#!/bin/sh\nexit 101\n" >"$1/usr/sbin/policy-rc.d"
chmod 755 "$1/usr/sbin/policy-rc.d"
rm -f "$1/etc/hostname" "$1/etc/resolv.conf"
rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/apt/* "$1"/tmp/*'
# eatmydata: dpkg without fsync (the root file system is a tarball a minute
# later anyway).
nice mmdebstrap --variant=minbase --mode=root --format=tar --quiet \
  --hook-dir=/usr/share/mmdebstrap/hooks/eatmydata \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/groff/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --dpkgopt='path-exclude=/usr/share/linda/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook="$cfg" \
  "$SUITE" "$tmp/root.tar" \
  "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
  "deb $SECURITY $SUITE-security main" >"$tmp/mmdebstrap.log" 2>&1 ||
  { tail -n 30 "$tmp/mmdebstrap.log" >&2; fail "mmdebstrap $SUITE"; }
t1=$(now)
id=$("$DOCKER" import --change 'CMD ["bash"]' \
  --message "tests/docker/bases.sh: mmdebstrap --variant=minbase $SUITE" \
  "$tmp/root.tar" "debian:$SUITE-slim")
"$DOCKER" tag "$id" "debian:$SUITE"
echo "made debian:$SUITE and debian:$SUITE-slim (one image, $("$DOCKER" image inspect -f '{{.Size}}' "$id" |
  awk '{printf "%.1f MB", $1 / 1e6}')) with mmdebstrap in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", b - a}') s," \
  "imported in $(since "$t1") s"
