#!/usr/bin/env bash
# Runs every check of the project: installs what is missing (scripts/setup.sh, which also
# starts libvirt), then ruff, mypy and pytest. The VM tests (marker "vm") build the offline
# install trees on first use (cached under /var/cache/koji-image-plugin/trees) and boot
# real guests under TCG or KVM. Extra arguments go to pytest, e.g. -m "not vm" for the
# fast set only.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
