"""Every boot-test check fails when its fault is in the image, and only then.

One real build (no boot test), then two copies of its generic qcow2, each altered with a
set of faults that each break exactly one check, booted with ``koji-image boot-test``:
the FAIL lines must be exactly the faults' checks, and every other check must pass (a
check failing in one boot passes in the other). Slow: marker ``vm``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from koji_image_plugin.build import disk
from koji_image_plugin.runner import Runner
from tests.build.test_vm import CHECKS, koji_image, spec_file
from tests.conftest import host_state, is_root

pytestmark = [pytest.mark.vm,
              pytest.mark.skipif(not is_root(), reason="libvirt guests and mounts need root")]

BROKEN_UNIT = """[Unit]
Description=koji-image test: a unit that fails
[Service]
Type=oneshot
ExecStart=/bin/false
[Install]
WantedBy=multi-user.target
"""

#: check -> what breaks it (files to write, relative to the image's root; None: remove;
#: a str starting with "->": a symlink to it)
FAULTS: dict[str, dict[str, str | None]] = {
    "cloud-init": {"etc/cloud/cloud.cfg.d/99-koji-test-error.cfg":
                   "bootcmd:\n  - [ \"false\" ]\n"},
    "hostname-resolves": {"etc/cloud/cloud.cfg.d/99-koji-test-hosts.cfg":
                          "manage_etc_hosts: false\n", "nsswitch": None},
    "root-grew": {"usr/bin/growpart": None},
    "units": {"etc/systemd/system/koji-test-broken.service": BROKEN_UNIT,
              "etc/systemd/system/multi-user.target.wants/koji-test-broken.service":
              "->/etc/systemd/system/koji-test-broken.service"},
    "password-auth": {"etc/ssh/sshd_config.d/00-koji-test.conf":
                      "PasswordAuthentication yes\n"},
    "time-sync": {"etc/systemd/system/systemd-timesyncd.service": "->/dev/null"},
    "metadata": {"etc/cloud/cloud.cfg.d/99-koji-test-hostname.cfg":
                 "preserve_hostname: true\n"},
    "new-identity": {"etc/machine-id": "0123456789abcdef0123456789abcdef\n"},
    "leftovers": {"var/log/installer/syslog": "d-i was here\n"},
    "serial-getty": {"etc/systemd/system/serial-getty@ttyS0.service": "->/dev/null"},
}
#: two images, each with faults whose checks do not depend on each other
IMAGES = {"a": ["cloud-init", "hostname-resolves", "root-grew", "units", "password-auth",
                "time-sync"],
          "b": ["metadata", "new-identity", "leftovers", "serial-getty"]}


#: checks no image can fail on its own: they judge the boot (``firmware``: the kernel was
#: started by the firmware under test; its FAIL is proven in tests/build/test_boot.py,
#: and an image that cannot boot under a firmware fails its login, test_vm.py)
OF_THE_BOOT = ["firmware"]


def test_faults_cover_every_check_but_the_login() -> None:
    assert sorted(FAULTS) == sorted(c for c in CHECKS[1:] if c not in OF_THE_BOOT)
    assert sorted(c for cs in IMAGES.values() for c in cs) == sorted(FAULTS)


def alter(root: Path, faults: list[str]) -> None:
    for check in faults:
        for rel, content in FAULTS[check].items():
            if rel == "nsswitch":  # no nss-myhostname either
                ns = root / "etc/nsswitch.conf"
                ns.write_text(ns.read_text().replace(" myhostname", ""))
                continue
            path = root / rel
            if content is None:
                assert path.exists(), f"{rel}: the fault needs it in the image"
                path.unlink()
            elif content.startswith("->"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.unlink(missing_ok=True)
                path.symlink_to(content[2:])
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)


def altered(qcow2: Path, dest: Path, faults: list[str], work: Path) -> Path:
    raw = dest.with_suffix(".raw")
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(qcow2), str(raw)], check=True)
    runner = Runner(work / "logs")
    with disk.mount_root(raw, runner, "alter", work) as (root, _):
        alter(root, faults)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(dest)], check=True)
    raw.unlink()
    return dest


def test_each_check_fails_on_its_fault_and_only_then(trees: None, tmp_path: Path) -> None:
    before = host_state()
    conf = tmp_path / "host.conf"
    conf.write_text("[timeouts]\ninactivity = 120\ninstall = 1800\n")
    spec = spec_file(tmp_path, variants=["generic"], release="7", formats=["qcow2"])
    done = koji_image("build", str(spec), "--output", "out", "--no-boot-test", conf=conf,
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    image = tmp_path / "out" / "Test-Cloud-Base-12-7.x86_64.qcow2"
    procs = {}
    for name, faults in IMAGES.items():
        copy = altered(image, tmp_path / f"Test-Cloud-Base-{name}.qcow2", faults, tmp_path)
        procs[name] = subprocess.Popen(
            [str(Path(__file__).resolve().parents[2] / ".venv/bin/koji-image"),
             # the faults are the image's, whatever starts it: one boot each (SeaBIOS)
             "boot-test", copy.name, "--cloud", "nocloud", "--firmware", "bios",
             "--timeout", "600"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={"KOJI_IMAGE_CONFIG": str(conf), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=1200)
        print(out)
        assert proc.returncode == 1, err[-2000:]
        lines = [ln.strip() for ln in out.splitlines() if ln.startswith("  ")]
        verdict = {ln.split()[1].rstrip(":"): ln.split()[0] for ln in lines}
        assert list(verdict) == CHECKS, out
        failed = sorted(c for c, v in verdict.items() if v == "FAIL")
        assert failed == sorted(IMAGES[name]), out
    assert host_state() == before
