#!/usr/bin/env bash
# Install the Debian packages that provide the given commands, when they are missing.
#   scripts/ensure-packages.sh redis-server prometheus chromium
# An argument of the form pkg:NAME names a Debian package itself (for packages that provide no
# command, e.g. fonts): it is installed when dpkg does not list it as installed.
#   scripts/ensure-packages.sh chromium pkg:fonts-noto-cjk
# Used by the tests (real Redis, Prometheus and Chromium on loopback) and by humans.
# Needs root (or sudo) and the Debian archive; prints what it does on stderr.
set -euo pipefail
declare -A PKG=( [redis-server]=redis-server [prometheus]=prometheus [chromium]=chromium [promtool]=prometheus )
missing=()
for cmd in "$@"; do
  if [[ "$cmd" == pkg:* ]]; then
    name="${cmd#pkg:}"
    dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed" || missing+=("$name")
    continue
  fi
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKG[$cmd]:-$cmd}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "ensure-packages: need root to install: ${missing[*]}" >&2; exit 3; }
  SUDO="sudo -n"
fi
echo "ensure-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
