"""The koji-image command: exit codes, one line per problem, nothing created on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO, host_state


def koji_image(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "koji_image_plugin.command", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_validate_good_spec_lists_the_files(tmp_path: Path) -> None:
    done = koji_image("validate", str(REPO / "examples/demo.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "valid: Debian-Cloud-Base-12-" in done.stdout
    assert ".x86_64.qcow2" in done.stdout and "Debian-Cloud-Base-EC2-12-" in done.stdout


def test_validate_lists_every_formats_file_by_fedoras_names(tmp_path: Path) -> None:
    done = koji_image("validate", str(REPO / "examples/all-formats.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for ext in ("qcow2", "raw.tar.xz", "raw.xz", "vmdk", "vhdfixed.xz", "tar.gz",
                "vagrant.libvirt.box", "vagrant.virtualbox.box"):
        assert f".x86_64.{ext}" in done.stdout, ext


def test_bad_spec_every_error_at_once_exit_2_nothing_created(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x y", "version": "1", "distro": "Debian-12",
                                   "arches": ["arm"], "install_tree": "nope",
                                   "formats": ["iso"]}))
    before = host_state()
    listing = sorted(p.name for p in tmp_path.iterdir())
    for args in (["validate", str(bad)], ["build", str(bad), "--output", "out"]):
        done = koji_image(*args, cwd=tmp_path)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 4, done.stderr
        assert all(ln.startswith(f"koji-image: {bad}: ") for ln in lines)
        assert any("arches[0]: 'arm' is not allowed; use one of: x86_64, i686, aarch64"
                   in ln
                   for ln in lines)
        assert any(ln.endswith("formats[0]: 'iso' is not allowed; use one of: qcow2, "
                               "raw.tar.xz, raw.xz, vmdk, vhd, gce, vagrant-libvirt, "
                               "vagrant-virtualbox") for ln in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
    assert host_state() == before


def test_unreadable_spec(tmp_path: Path) -> None:
    done = koji_image("validate", "missing.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "koji-image: missing.yaml: (file): cannot read it: " \
                                  "No such file or directory"


def test_boot_test_refuses_a_compressed_image(tmp_path: Path) -> None:
    (tmp_path / "x.raw.xz").write_bytes(b"\xfd7zXZ")
    done = koji_image("boot-test", "x.raw.xz", cwd=tmp_path)
    assert done.returncode == 2
    assert "is not a qcow2 or raw disk" in done.stderr


def test_help_texts() -> None:
    for args in (["--help"], ["build", "--help"], ["validate", "--help"],
                 ["boot-test", "--help"]):
        done = koji_image(*args, cwd=REPO)
        assert done.returncode == 0 and "usage: koji-image" in done.stdout


def fedora_spec(tmp_path: Path, kickstart: str) -> Path:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc/users.ks").write_text("rootpw --lock\n")
    (tmp_path / "f.ks").write_text(kickstart)
    spec = tmp_path / "f.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "Fedora-Cloud-Base", "version": "39", "distro": "Fedora-39",
        "arches": ["x86_64", "i686"], "install_tree": "http://tree.example/$arch/os/",
        "kickstart": "f.ks", "ksversion": "F39", "repos": ["http://extra.example/$arch/"]}))
    return spec


def test_validate_shows_the_kickstart_each_arch_installer_reads(tmp_path: Path) -> None:
    spec = fedora_spec(tmp_path, "url --url=http://old/\nrepo --name=a --baseurl=http://a/\n"
                                 "%include inc/users.ks\n%packages\nkernel\n%end\n")
    done = koji_image("validate", str(spec), "--show-kickstart", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    x86, i686 = out.split("# Fedora-Cloud-Base-39-")[1:]
    assert ".x86_64.ks: what the x86_64 installer reads" in x86
    for arch, text in (("x86_64", x86), ("i686", i686)):
        assert f'repo --name="koji-override-0" --baseurl=http://extra.example/{arch}/' in text
        assert f'url --url="http://tree.example/{arch}/os/"' in text
        assert "rootpw --lock" in text and "#version=F39" in text
        assert "http://a/" not in text and "%include" not in text
    # without the flag the kickstart is checked, not shown
    plain = koji_image("validate", str(spec), cwd=tmp_path)
    assert plain.returncode == 0 and "rootpw" not in plain.stdout


def test_a_kickstart_the_parser_refuses_is_one_line_exit_2(tmp_path: Path) -> None:
    spec = fedora_spec(tmp_path, "rootpw --lock\n%include inc/users.ks\nnot-a-command\n")
    listing = sorted(p.name for p in tmp_path.iterdir())
    for args in (["validate", str(spec)], ["build", str(spec), "--output", "out"]):
        done = koji_image(*args, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.strip() == (
            f"koji-image: {spec}: kickstart: {tmp_path / 'f.ks'}:3: the kickstart parser "
            "refused it: Unknown command: not-a-command")
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
