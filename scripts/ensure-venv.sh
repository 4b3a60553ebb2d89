#!/usr/bin/env bash
# Create the project's virtualenv (default .venv) with python3 if it does not exist.
#
# Debian's python3 ships without the venv module's ensurepip; when that is what stops us,
# install python3-venv (as root, or through sudo) and try again.
set -euo pipefail

python="${1:-python3}"
venv="${2:-.venv}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
    echo "ensure-venv: $python not found; install Python 3.11 (apt-get install python3)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "ensure-venv: Cool Storage needs Python 3.11 or newer; $python is $("$python" -V 2>&1)" >&2
    exit 1
fi

rm -rf "$venv"
if ! "$python" -m venv "$venv" 2>/tmp/ensure-venv.$$; then
    if grep -q "ensurepip" /tmp/ensure-venv.$$ && command -v apt-get >/dev/null 2>&1; then
        version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        echo "ensure-venv: installing python${version}-venv (Debian splits venv out of python3)"
        sudo=()
        if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq "python${version}-venv"
        rm -rf "$venv"
        "$python" -m venv "$venv"
    else
        cat /tmp/ensure-venv.$$ >&2
        rm -f /tmp/ensure-venv.$$
        exit 1
    fi
fi
rm -f /tmp/ensure-venv.$$
"$venv/bin/python" -m pip install -q --upgrade pip
