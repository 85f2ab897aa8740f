#!/usr/bin/env bash
# The README's first command: installs everything, builds the offline Debian 12 install
# tree (a demo fixture, cached), then runs the main job: koji-image build of
# examples/demo.yaml (x86_64 generic + ec2: a real Oz install in a libvirt guest,
# qcow2 / raw.tar.xz / raw.xz, boot tests, CHECKSUM, manifest.json) into ./images.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
./scripts/setup.sh
echo "== offline install tree (test/demo fixture)"
.venv/bin/python tests/fixtures/offline_tree/build_tree.py --arch x86_64

echo "== koji-image build examples/demo.yaml"
.venv/bin/koji-image build examples/demo.yaml "$@"
echo "== done: the images, CHECKSUM and manifest.json are in the directory printed above"
