#!/usr/bin/env bash
# Starts what the Oz engine needs when no init system does it (containers, CI):
# virtlogd, libvirtd and libvirt's default NAT network. Idempotent.
set -euo pipefail
if ! pgrep -x virtlogd >/dev/null; then
    virtlogd -d
fi
if ! pgrep -x libvirtd >/dev/null; then
    libvirtd -d
fi
for _ in $(seq 1 50); do
    virsh -c qemu:///system version >/dev/null 2>&1 && break
    sleep 0.2
done
if ! virsh -c qemu:///system net-info default >/dev/null 2>&1; then
    virsh -c qemu:///system net-define /usr/share/libvirt/networks/default.xml >/dev/null
fi
# Read the state first: with pipefail, `virsh ... | grep -q` fails when grep quits early.
state=$(virsh -c qemu:///system net-info default)
if ! grep -Eq '^Active:[[:space:]]+yes' <<<"$state"; then
    virsh -c qemu:///system net-start default >/dev/null
fi
echo "services: libvirtd, virtlogd and the default network are running"
