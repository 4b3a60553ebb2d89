#!/usr/bin/env bash
# Install the Debian packages the test suite uses, only those that are missing.
#
# The tests start their own servers (MariaDB, slapd, moto) on free loopback ports and drive
# real clients, so they need these programs installed but no daemon running. apt-get update
# runs at most once, and only when something is missing. Daemons are kept from starting
# during the install (policy-rc.d), since the tests start their own.
set -euo pipefail

packages=(mariadb-server slapd ldap-utils age zstd litmus rclone restic s3cmd cadaver curl)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "test packages: all installed"
    exit 0
fi

echo "test packages: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "install-test-deps: need root (or sudo) to run: apt-get install ${missing[*]}" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        "${sudo[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
