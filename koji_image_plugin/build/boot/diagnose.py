"""Say why a boot-test guest never let us log in, from its serial console (as the
install stall diagnosis does for installs)."""

from __future__ import annotations

import re
from pathlib import Path

#: (pattern in the console, probable cause). First match wins; order matters.
CAUSES: list[tuple[str, str]] = [
    (r"Kernel panic - not syncing: (?P<what>.*)", "the kernel panicked: {what}"),
    (r'BdsDxe: failed to load Boot\w+ "UEFI (?!PXE|HTTP)[^"]*"',
     "the UEFI firmware found no EFI boot loader on the disk (no EFI system partition "
     "with EFI/BOOT/BOOT*.EFI: a BIOS-only image, or GRUB not installed for UEFI)"),
    (r"(No bootable device|Boot failed: not a bootable disk|Booting from Hard Disk\.\.\.\s*$)",
     "the firmware found nothing to boot on the disk (no boot loader)"),
    (r"(grub rescue>|error: no such partition|error: file .* not found)",
     "GRUB could not find its files or the kernel (broken boot loader install)"),
    (r"(Gave up waiting for root|ALERT! .* does not exist|VFS: Unable to mount root)",
     "the kernel did not find the root filesystem (fstab or the root= argument, or no "
     "driver for this profile's disk bus in the initramfs)"),
    (r"(emergency mode|Emergency mode|Give root password for maintenance)",
     "the system fell into emergency mode (a failing mount in fstab?)"),
    (r"no authorized SSH keys fingerprints found|Datasource DataSourceNone",
     "cloud-init found no datasource for this cloud, so the instance's ssh key was "
     "never installed (the image's datasource_list or ds-identify policy)"),
]


def no_login(console: str, code: int | None, seconds: float, timeout: int, user: str,
             ssh_log: Path) -> str:
    """One sentence: why no ssh login happened."""
    text = console.strip()
    if code is not None:
        prefix = f"the guest stopped (qemu status {code}) after {seconds:.0f} s " \
                 "without letting us log in"
    else:
        prefix = f"no ssh login as {user} within {timeout} s"
    if not text:
        return (f"{prefix}: the guest printed nothing on its serial console (the "
                "firmware or boot loader hung, or the kernel has no serial console)")
    for pattern, cause in CAUSES:
        match = re.search(pattern, text, re.M)
        if match:
            return f"{prefix}: " + cause.format(
                **{k: v.strip() for k, v in match.groupdict().items()})
    if "Cloud-init v." not in text and "cloud-init" not in text:
        return (f"{prefix}: cloud-init never ran (ds-identify found no datasource for "
                "this cloud and disabled it?)")
    last = [ln.strip() for ln in text.splitlines() if ln.strip()][-1]
    return f"{prefix}: {ssh_error(ssh_log)}; the console's last line: {last[:160]!r}"


def ssh_error(ssh_log: Path) -> str:
    """The last thing ssh said (its log holds every attempt)."""
    try:
        lines = ssh_log.read_text(errors="replace").splitlines()
    except OSError:
        return "ssh said nothing"
    said = [ln for ln in lines if ln.strip() and not ln.startswith("### ")]
    return f"ssh: {said[-1][:160]}" if said else "ssh said nothing"
