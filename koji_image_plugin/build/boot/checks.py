"""What a profile boot checks once it is logged in: one probe script run as root over
ssh collects the facts, and each check judges its own, so each is one line of the
verdict and can fail on its own.

The checks, in the order of the verdict:

- ``cloud-init``: finished, with the profile's datasource, without errors;
- ``metadata``: the instance id and hostname are the ones the metadata gave;
- ``hostname-resolves``: the hostname resolves (``getent hosts``; sudo needs it);
- ``root-grew``: the root filesystem grew past the image's disk (it was enlarged);
- ``units``: ``systemctl --failed`` lists nothing;
- ``new-identity``: machine-id and ssh host keys were made in this boot (systemd
  initialized the machine ID; keys newer than the boot), and differ from the other
  boots of the image;
- ``password-auth``: sshd refuses passwords (``sshd -T``);
- ``leftovers``: none of the spec's build leftovers exist;
- ``time-sync``: a time sync service is active;
- ``serial-getty``: a getty runs on the serial console;
- ``firmware``: the kernel was started by the firmware under test (``/sys/firmware/efi``
  exists under UEFI, not under BIOS).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ...spec.bootprofiles import BootProfile
from ...units import GiB

#: time sync services one of which must be active
TIME_SYNC_UNITS = ("systemd-timesyncd", "chrony", "chronyd", "ntpsec", "ntp", "openntpd")
SECTION = "=== "


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


@dataclass(frozen=True)
class Expected:
    """What the instance must show: what its metadata said, and the image's facts."""

    profile: BootProfile
    instance_id: str
    hostname: str
    #: the image's own disk size, before the boot enlarged it
    image_size: int
    leftovers: tuple[str, ...]
    serial_tty: str
    #: booted under UEFI firmware (else BIOS)
    uefi: bool = False


def probe_script(exp: Expected, wait: int) -> str:
    """The shell script the checks' facts come from (run as root in the guest).
    ``leftovers`` are globs the spec's schema allows only shell-safe characters in,
    so they are expanded unquoted. What it greps the journal for is written so that it
    does not match itself: sudo logs this script's text there too."""
    globs = " ".join(exp.leftovers)
    units = " ".join(TIME_SYNC_UNITS)
    return f"""export LC_ALL=C
s() {{ echo "{SECTION}$1"; }}
s wait; timeout {wait} cloud-init status --wait >/dev/null 2>&1; echo $?
s status; cloud-init status --long 2>&1
s result; cat /run/cloud-init/result.json 2>&1
s stages; cat /run/cloud-init/status.json 2>&1
s instance_id; cat /var/lib/cloud/data/instance-id 2>&1
s hostname; hostname
s resolves; getent hosts "$(hostname)"
s root; findmnt -bno SIZE /
s failed; systemctl --failed --no-legend --plain 2>&1
s first_boot; if test -e /run/systemd/first-boot || journalctl -b -o cat \
--no-pager 2>/dev/null | grep -q "Initializing machine[ ]ID"; then echo yes; else echo no; fi
s machine_id; cat /etc/machine-id
s btime; awk '/^btime/ {{print $2}}' /proc/stat
s host_keys; for f in /etc/ssh/ssh_host_*_key.pub; do test -e "$f" && \
echo "$(stat -c %Y "$f") $(ssh-keygen -lf "$f")"; done
s sshd; sshd -T 2>&1 | grep -i -E '^(passwordauthentication|kbdinteractiveauthentication) '
s leftovers; for g in {globs}; do for f in $g; do \
if test -e "$f" || test -L "$f"; then echo "$f"; fi; done; done
s time_sync; for u in {units}; do echo "$u $(systemctl is-active "$u.service" 2>&1)"; done
s getty; systemctl is-active {shlex.quote(f"serial-getty@{exp.serial_tty}.service")} 2>&1
s firmware; if test -d /sys/firmware/efi; then echo "uefi $(cat \
/sys/firmware/efi/fw_platform_size 2>/dev/null)"; else echo bios; fi
"""


def sections(output: str) -> dict[str, str]:
    """The probe's output by section."""
    out: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith(SECTION):
            current = line[len(SECTION):].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def _json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data.get("v1", {}) if isinstance(data, dict) else {}


def check_cloud_init(f: Mapping[str, str], exp: Expected) -> Check:
    status = re.search(r"^status: (\S+)", f.get("status", ""), re.M)
    state = status.group(1) if status else "unknown"
    result, stages = _json(f.get("result", "")), _json(f.get("stages", ""))
    source = str(result.get("datasource") or stages.get("datasource") or "none")
    errors = [str(e) for e in result.get("errors") or []]
    for name, stage in stages.items():
        if isinstance(stage, dict):
            errors += [f"{name}: {e}" for e in stage.get("errors") or [] if
                       f"{name}: {e}" not in errors and str(e) not in errors]
    want = rf"^DataSource{exp.profile.datasource}(Local)?\b"
    problems = []
    if state != "done":
        problems.append(f"status {state}")
    if not re.match(want, source):
        problems.append(f"datasource {source!r}, not DataSource{exp.profile.datasource}")
    if errors:
        problems.append(f"{len(errors)} errors: " + "; ".join(errors)[:300])
    if problems:
        return Check("cloud-init", False, ", ".join(problems))
    return Check("cloud-init", True, f"done with {source}, no errors")


def check_metadata(f: Mapping[str, str], exp: Expected) -> Check:
    iid, host = f.get("instance_id", ""), f.get("hostname", "").split(".")[0]
    wrong = []
    if iid != exp.instance_id:
        wrong.append(f"instance id {iid[:80]!r}, the metadata's is {exp.instance_id!r}")
    if host != exp.hostname:
        wrong.append(f"hostname {host[:80]!r}, the metadata's is {exp.hostname!r}")
    if wrong:
        return Check("metadata", False, "; ".join(wrong))
    return Check("metadata", True, f"instance id {iid}, hostname {host}")


def check_resolves(f: Mapping[str, str], exp: Expected) -> Check:
    found = f.get("resolves", "").splitlines()
    if not found:
        return Check("hostname-resolves", False, f"{f.get('hostname', '')!r} does not "
                     "resolve (no /etc/hosts entry: manage_etc_hosts, or nss-myhostname)")
    return Check("hostname-resolves", True, f"{found[0].split()[0]} "
                 f"({' '.join(found[0].split()[1:])[:120]})")


def check_root_grew(f: Mapping[str, str], exp: Expected) -> Check:
    text = f.get("root", "").strip()
    size = int(text) if text.isdigit() else 0
    what = (f"root filesystem {size / GiB:.2f} GiB; the image's disk is "
            f"{exp.image_size / GiB:.2f} GiB")
    if size <= exp.image_size:
        return Check("root-grew", False, f"{what}: it did not grow into the enlarged "
                     "disk (growpart missing?)")
    return Check("root-grew", True, what)


def check_units(f: Mapping[str, str], exp: Expected) -> Check:
    failed = [ln.split()[0] for ln in f.get("failed", "").splitlines() if ln.strip()]
    if failed:
        return Check("units", False, f"failed: {', '.join(failed)[:300]}")
    return Check("units", True, "no failed units")


def host_keys(f: Mapping[str, str]) -> list[tuple[int, str]]:
    """(mtime, fingerprint) of each ssh host key the probe listed."""
    out = []
    for ln in f.get("host_keys", "").splitlines():
        parts = ln.split()
        if len(parts) >= 3 and parts[0].isdigit():
            out.append((int(parts[0]), parts[2]))
    return out


def check_identity(f: Mapping[str, str], exp: Expected) -> Check:
    btime = int(f["btime"]) if f.get("btime", "").isdigit() else 0
    keys = host_keys(f)
    problems = []
    if f.get("first_boot") != "yes":
        problems.append("machine-id was not made in this boot (the image ships "
                        "/etc/machine-id; leave it empty)")
    old = [fp for mtime, fp in keys if mtime < btime]
    if old:
        problems.append(f"{len(old)} ssh host keys are older than this boot (shipped "
                        "in the image)")
    if not keys:
        problems.append("no ssh host keys")
    if problems:
        return Check("new-identity", False, "; ".join(problems))
    return Check("new-identity", True, f"machine-id and {len(keys)} ssh host keys made "
                 "in this boot")


def check_password_auth(f: Mapping[str, str], exp: Expected) -> Check:
    got = dict(ln.lower().split(None, 1) for ln in f.get("sshd", "").splitlines()
               if len(ln.split()) == 2)
    on = [k for k in ("passwordauthentication", "kbdinteractiveauthentication")
          if got.get(k, "yes") != "no"]
    if on:
        said = ", ".join(f"{k} {got.get(k, '(not said)')}" for k in on)
        return Check("password-auth", False, f"sshd -T: {said}")
    return Check("password-auth", True, "sshd refuses passwords")


def check_leftovers(f: Mapping[str, str], exp: Expected) -> Check:
    found = [ln for ln in f.get("leftovers", "").splitlines() if ln.strip()]
    if found:
        return Check("leftovers", False, f"{len(found)} build leftovers: "
                     f"{', '.join(found)[:300]}")
    return Check("leftovers", True, f"none of {len(exp.leftovers)} leftover patterns "
                 "found")


def check_time_sync(f: Mapping[str, str], exp: Expected) -> Check:
    active = [ln.split()[0] for ln in f.get("time_sync", "").splitlines()
              if ln.split()[1:] == ["active"]]
    if not active:
        return Check("time-sync", False, f"none of {', '.join(TIME_SYNC_UNITS)} is "
                     "active")
    return Check("time-sync", True, f"{active[0]} active")


def check_getty(f: Mapping[str, str], exp: Expected) -> Check:
    state = f.get("getty", "").strip() or "unknown"
    unit = f"serial-getty@{exp.serial_tty}"
    return Check("serial-getty", state == "active", f"{unit} {state}")


def check_firmware(f: Mapping[str, str], exp: Expected) -> Check:
    words = f.get("firmware", "").split() or ["unknown"]
    want = "uefi" if exp.uefi else "bios"
    said = "UEFI" + (f" ({words[1]}-bit)" if words[1:] else "") if words[0] == "uefi" \
        else words[0].upper()
    if words[0] != want:
        return Check("firmware", False, f"the kernel reports {said} firmware; the boot "
                     f"was under {want.upper()}")
    return Check("firmware", True, f"booted by {said} firmware")


CHECKS = (check_cloud_init, check_metadata, check_resolves, check_root_grew, check_units,
          check_identity, check_password_auth, check_leftovers, check_time_sync,
          check_getty, check_firmware)


def evaluate(output: str, exp: Expected) -> list[Check]:
    """Every check's verdict from the probe's output."""
    facts = sections(output)
    return [check(facts, exp) for check in CHECKS]


def identity(output: str) -> tuple[str, frozenset[str]]:
    """A boot's machine-id and host key fingerprints, to compare boots of one image."""
    facts = sections(output)
    return facts.get("machine_id", ""), frozenset(fp for _, fp in host_keys(facts))


def distinct(boots: Sequence[tuple[str, tuple[str, frozenset[str]]]]
             ) -> dict[str, str]:
    """Boots (by name) whose machine-id or host keys another boot of the image shares,
    with what they share."""
    clashes: dict[str, str] = {}
    for i, (name, (mid, keys)) in enumerate(boots):
        for other, (omid, okeys) in [*boots[:i], *boots[i + 1:]]:
            if mid and mid == omid:
                clashes[name] = f"the same machine-id as the {other} boot"
            elif keys & okeys:
                clashes[name] = f"the same ssh host keys as the {other} boot"
    return clashes
