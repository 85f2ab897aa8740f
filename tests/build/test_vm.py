"""End to end, with real guests: Oz installs in libvirt, conversions, boot tests.

These build the offline Debian 12 install trees on first use (tests/fixtures/
offline_tree, cached outside the repo) and run every guest under the accelerator the
host config picks (TCG on machines without vmx/svm). Slow: marker ``vm``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, host_state, is_root, make_disk
from tests.proc import DEFAULT_SIGINT

pytestmark = [pytest.mark.vm,
              pytest.mark.skipif(not is_root(), reason="libvirt guests and mounts need root")]

TREES = "file:///var/cache/koji-image-plugin/trees/debian-12-$arch"


@pytest.fixture
def host_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "host.conf"
    conf.write_text("[timeouts]\ninactivity = 120\ninstall = 1800\n")
    return conf


def koji_image(*args: str, conf: Path, cwd: Path, timeout: int = 2400
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / ".venv/bin/koji-image"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "KOJI_IMAGE_CONFIG": str(conf)})


def spec_file(tmp_path: Path, **fields: Any) -> Path:
    data = {"name": "Test-Cloud-Base", "version": "12", "distro": "Debian-12",
            "arches": ["x86_64"], "install_tree": TREES, "disk_size": 2,
            "boot_test": {"enabled": True, "timeout": 600}, **fields}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


#: every check a profile boot makes, in the verdict's order
CHECKS = ["ssh-login", "cloud-init", "metadata", "hostname-resolves", "root-grew", "units",
          "new-identity", "password-auth", "leftovers", "time-sync", "serial-getty",
          "firmware"]


def check_build(out: Path, arch: str, expect: dict[str, list[str]],
                profiles: dict[str, list[str]], firmwares: tuple[str, ...] = ("seabios",),
                boot_loader: str = "grub-pc") -> dict[str, Any]:
    manifest = json.loads((out / "manifest.json").read_text())
    files = {i["file"]: i for i in manifest["images"]}
    for variant, formats in expect.items():
        tag = "-EC2" if variant == "ec2" else ""
        for fmt in formats:
            name = f"Test-Cloud-Base{tag}-12-7.{arch}.{fmt}"
            assert name in files, sorted(files)
            assert files[name]["size"] == (out / name).stat().st_size
            assert (files[name]["arch"], files[name]["variant"], files[name]["format"]) == \
                (arch, variant, fmt)
    assert len(files) == sum(len(f) for f in expect.values())
    done = subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=out, capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stdout.count(": OK") == len(files), done.stdout
    boots = {(b["variant"], b["profile"], b["firmware"]): b for b in manifest["boot_tests"]}
    assert sorted(boots) == sorted((v, p, f) for v, ps in profiles.items() for p in ps
                                   for f in firmwares)
    for b in boots.values():
        assert [c["name"] for c in b["checks"]] == CHECKS, b
        assert b["passed"], [c for c in b["checks"] if not c["passed"]]
        assert (out / "logs" / b["console_log"]).read_text().strip()
        assert "PASS root-grew" in (out / "logs" / b["checks_log"]).read_text()
        print(f"{arch} {b['variant']} as {b['profile']} under {b['firmware']}: "
              f"{b['seconds']} s")
    assert manifest["boot_test_passed"] is True
    info = manifest["arches"][arch]
    names = {p["name"] for p in info["packages"]}
    assert {"cloud-init", "openssh-server", boot_loader} <= names
    assert any(n.startswith("linux-image-") for n in names)
    assert set(info["verified"]) == set(files)
    for key in ("install", "convert", "boot_test", "convert_boot_verify"):
        assert info["timings"][key] > 0
    # Preparing (fstrim, dpkg status) takes well under a second and may round to 0.0 s;
    # verification runs during the conversions and boots (convert_boot_verify).
    for key in ("prepare", "customize", "convert_cpu"):
        assert info["timings"][key] >= 0
    assert manifest["tools"]["oz"].startswith("0.17")
    assert manifest["spec"]["release"] == "7"
    for log in (f"oz-{arch}.log", f"install-console-{arch}.log", f"oz-{arch}.tdl"):
        assert (out / "logs" / log).exists()
    assert not list(out.glob(".koji-image-staging-*"))
    return manifest


def test_x86_64_generic_and_ec2_every_format_booted(trees: None, host_conf: Path,
                                                    tmp_path: Path) -> None:
    before = host_state()
    # The generic image as OpenStack (config drive) and NoCloud (seed disk), the EC2 one
    # as EC2 (IMDSv2, NVMe); CloudStack and Eucalyptus, which differ from OpenStack by
    # their metadata servers only, boot in the i686 test (the CI budget: each boot here
    # is two, one per firmware).
    spec = spec_file(tmp_path, variants=["generic", "ec2"], release="7",
                     formats=["qcow2", "raw.tar.xz"],
                     variant_formats={"ec2": ["qcow2", "raw.xz"]},
                     boot_test={"enabled": True, "timeout": 600,
                                "profiles": {"generic": ["openstack", "nocloud"]}})
    done = koji_image("build", str(spec), "--output", "out", conf=host_conf, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    # x86_64's default firmware is hybrid: every profile boots under SeaBIOS and OVMF
    manifest = check_build(out, "x86_64", {"generic": ["qcow2", "raw.tar.xz"],
                                           "ec2": ["qcow2", "raw.xz"]},
                           {"generic": ["openstack", "nocloud"], "ec2": ["ec2"]},
                           ("seabios", "ovmf"))
    assert {i["firmware"] for i in manifest["images"]} == {"hybrid"}
    # One install per arch; the variants differ only by their offline customization.
    assert done.stderr.count("installing Debian-12 with Oz") == 1
    consoles = {b["variant"]: (out / "logs" / b["console_log"]).read_text()
                for b in manifest["boot_tests"] if b["profile"] in ("nocloud", "ec2")}
    # the boots of one image are new instances each: no two share a machine-id or keys
    generic = [b for b in manifest["boot_tests"] if b["variant"] == "generic"]
    assert all(next(c for c in b["checks"] if c["name"] == "new-identity")["passed"]
               for b in generic)
    timings = manifest["arches"]["x86_64"]["timings"]
    print(f"timings: {timings}")
    cmdline = {v: next(ln for ln in c.splitlines() if "Command line:" in ln)
               for v, c in consoles.items()}
    assert "console=tty0" in cmdline["generic"] and "console=tty0" not in cmdline["ec2"]
    assert "datasource_list: [ Ec2, NoCloud, None ]" in "\n".join(
        manifest["arches"]["x86_64"]["customized"]["ec2"]) or \
        "etc/cloud/cloud.cfg.d/90-koji-image-datasources.cfg" in \
        manifest["arches"]["x86_64"]["customized"]["ec2"]
    # Compressed sizes track used space (free space was zeroed), not the 2 GiB disk.
    sizes = {i["format"] + i["variant"]: i["size"] for i in manifest["images"]}
    assert all(size < 600e6 for size in sizes.values()), sizes
    assert host_state() == before


def test_i686_generic_and_ec2_booted(trees: None, host_conf: Path, tmp_path: Path) -> None:
    before = host_state()
    # the generic image as the two profiles the x86_64 test leaves out (BIOS: one boot each)
    spec = spec_file(tmp_path, arches=["i686"], variants=["generic", "ec2"], release="7",
                     formats=["qcow2"],
                     boot_test={"enabled": True, "timeout": 600,
                                "profiles": {"generic": ["cloudstack", "eucalyptus"]}})
    done = koji_image("build", str(spec), "--output", "out", conf=host_conf, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = check_build(tmp_path / "out", "i686", {"generic": ["qcow2"],
                                                      "ec2": ["qcow2"]},
                           {"generic": ["cloudstack", "eucalyptus"], "ec2": ["ec2"]})
    assert any(p["arch"] == "i386" for p in manifest["arches"]["i686"]["packages"])
    assert host_state() == before


def test_a_stalled_install_is_diagnosed_and_leaves_nothing(trees: None, tmp_path: Path
                                                           ) -> None:
    before = host_state()
    conf = tmp_path / "host.conf"
    conf.write_text("[timeouts]\ninactivity = 30\ninstall = 600\n")
    (tmp_path / "hang.preseed").write_text("d-i koji-image-installer/hang boolean true\n")
    spec = spec_file(tmp_path, preseed="hang.preseed")
    t0 = time.monotonic()
    done = koji_image("build", str(spec), "--output", "out", conf=conf, cwd=tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("koji-image: install of Debian-12 x86_64 stalled: no disk "
                           "activity for 30 s; probable cause: the installer was told to "
                           "hang by its preseed"), last
    logs = tmp_path / "out" / "logs"
    assert f"console {logs}/install-console-x86_64.tail.txt" in last
    assert f"oz_log {logs}/oz-x86_64.log" in last
    assert "screenshot" in last
    assert list(logs.glob("*.ppm")) or list(logs.glob("*.png"))
    assert "hanging on purpose" in (logs / "install-console-x86_64.tail.txt").read_text()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name != "logs"]
    # Oz's inactivity is converted to real seconds (Oz alone would wait 10 times longer).
    assert time.monotonic() - t0 < 200
    assert host_state() == before


def test_ctrl_c_during_install_leaves_nothing(trees: None, host_conf: Path,
                                              tmp_path: Path) -> None:
    before = host_state()
    spec = spec_file(tmp_path)
    # a Ctrl-C in a terminal: SIGINT to a foreground job, which has it at its default
    proc = subprocess.Popen([*DEFAULT_SIGINT, str(REPO / ".venv/bin/koji-image"), "build",
                             str(spec), "--output", "out"], cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "KOJI_IMAGE_CONFIG": str(host_conf)})
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "install: guest has written" in line:
            break
    proc.send_signal(signal.SIGINT)
    try:
        rest = proc.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        # the build went on: cancel it the other way, so no guest outlives this test
        proc.terminate()
        rest = proc.communicate(timeout=120)[1]
        pytest.fail("the build did not stop within 120 s of its SIGINT:\n"
                    + "".join(seen) + rest)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "cancelled; nothing was left behind" in rest
    assert not (tmp_path / "out").exists()
    assert host_state() == before


def test_unreachable_tree_is_a_clear_error(trees: None, host_conf: Path,
                                           tmp_path: Path) -> None:
    before = host_state()
    spec = spec_file(tmp_path, install_tree="file:///nonexistent/tree-$arch")
    done = koji_image("build", str(spec), "--output", "out", conf=host_conf, cwd=tmp_path,
                      timeout=300)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("koji-image: install_tree: cannot fetch the installer from "
                           "file:///nonexistent/tree-x86_64"), last
    assert host_state() == before


def noboot_qcow2(tmp_path: Path) -> Path:
    """``noboot.qcow2`` (an MBR disk with no boot loader) and an empty host config in
    ``tmp_path``; returns the config."""
    raw = make_disk(tmp_path / "noboot.raw", 32, {"etc/os-release": b"ID=none\n"})
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw),
                    str(tmp_path / "noboot.qcow2")], check=True)
    conf = tmp_path / "host.conf"
    conf.write_text("")
    return conf


def test_boot_test_fails_for_a_disk_that_does_not_boot(tmp_path: Path) -> None:
    before = host_state()
    conf = noboot_qcow2(tmp_path)
    # a BIOS-only disk (MBR, no EFI system partition) claimed hybrid: booted under both
    done = koji_image("boot-test", "noboot.qcow2", "--cloud", "nocloud", "--timeout", "30",
                      "--firmware", "hybrid", conf=conf, cwd=tmp_path, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("noboot.qcow2 as nocloud under seabios: FAIL in "), lines
    # SeaBIOS says nothing on the serial port: the diagnosis says so
    assert lines[1].startswith("  FAIL ssh-login: no ssh login as debian within 30 s: the "
                               "guest printed nothing on its serial console"), lines
    # OVMF says it found no EFI boot loader on the disk
    assert lines[2].startswith("noboot.qcow2 as nocloud under ovmf: FAIL in "), lines
    assert lines[3].startswith("  FAIL ssh-login: no ssh login as debian within 30 s: the "
                               "UEFI firmware found no EFI boot loader on the disk"), lines
    logs = tmp_path / "noboot.qcow2.boot-logs"
    assert {"boot-nocloud-seabios-console.log", "boot-nocloud-ovmf-console.log"} <= {
        p.name for p in logs.iterdir()}
    assert host_state() == before
