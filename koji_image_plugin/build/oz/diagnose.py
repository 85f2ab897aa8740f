"""Say what probably went wrong when a guest install stalls or times out.

Oz's own message ("No disk activity in 300 seconds") is the most common complaint about
it: it says nothing about why. The guest's serial console almost always does.
"""

from __future__ import annotations

import re

#: (pattern in the console, probable cause). First match wins; order matters.
CAUSES: list[tuple[str, str]] = [
    (r"INSTALL FAILED: (?P<what>.*)", "the installer reported: {what}"),
    (r"hanging on purpose", "the installer was told to hang by its preseed "
                            "(koji-image-installer/hang)"),
    (r"Kernel panic - not syncing: (?P<what>.*)", "the installer's kernel panicked: {what}"),
    (r"(Bad archive mirror|Unable to locate package|Temporary failure resolving|"
     r"Network is unreachable|Could not resolve|Failed to fetch)",
     "the guest could not reach its package repository: check install_tree and repos, "
     "and that the libvirt network gives the guest a route to them"),
    (r"(Network autoconfiguration failed|DHCP.*(fail|timed out))",
     "the guest got no network address from the libvirt network (is it started?)"),
    (r"(No root file system|No disk drive was detected|No installable kernel)",
     "the installer found no usable disk or kernel: check the disk size and the "
     "kickstart/preseed partitioning"),
    (r"(\[\?\]|Please choose|Choose an option|Continue\?)",
     "the installer is waiting for an answer the kickstart/preseed did not give"),
    (r"(anaconda|Anaconda).*(error|Error|exception|Traceback)",
     "anaconda failed; see the console log for its traceback"),
]


def diagnose(console: str, *, seconds: int, accel: str) -> str:
    """One sentence naming the probable cause, from the tail of the serial console."""
    text = console.strip()
    if not text:
        hint = ("the guest printed nothing on its serial console: the kernel never "
                "started or hung before its console came up (kernel and initrd for another "
                "arch, or a CPU model this host cannot run")
        if accel == "kvm":
            hint += "; where /dev/kvm is paravirtual set [libvirt] type = qemu"
        return hint + ")"
    for pattern, cause in CAUSES:
        match = re.search(pattern, text)
        if match:
            return cause.format(**{k: v.strip() for k, v in match.groupdict().items()})
    last = [ln.strip() for ln in text.splitlines() if ln.strip()][-1]
    cause = f"unknown; the last thing the guest printed was {last[:200]!r}"
    if accel == "tcg":
        cause += (f" (under TCG installs are slow: if it was still working, raise "
                  f"[timeouts] inactivity above {seconds} s)")
    return cause
