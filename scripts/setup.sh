#!/usr/bin/env bash
# Installs everything koji-image-plugin needs on a Debian 12 host, from the project's own
# files: the Debian packages in deps/apt.txt, then a venv (.venv) made from the system
# Python (Oz, libvirt and guestfs live there) with the project and its test tools.
# Safe to run again: it installs only what is missing. Must run as root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: must run as root (it installs Debian packages and runs libvirt)" >&2
    exit 1
fi

mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^\s*$/d' deps/apt.txt)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv from /usr/bin/python3 (with system site packages for Oz)"
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.koji-image-setup
want=$(cat setup.py requirements-test.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[clouds]' -r requirements-test.txt
    echo "$want" > "$stamp"
fi
"$top/scripts/start-services.sh"
echo "setup: done (.venv/bin/koji-image is ready)"
