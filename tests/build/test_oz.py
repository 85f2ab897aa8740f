"""Oz: the template and config it is given, what it is taught, and the diagnosis of a
stalled install."""

from __future__ import annotations

import subprocess
from pathlib import Path

import lxml.etree
import pytest

from koji_image_plugin.build import console
from koji_image_plugin.build.oz import compat as ozcompat
from koji_image_plugin.build.oz import diagnose
from koji_image_plugin.build.oz.template import oz_config, tdl_xml
from koji_image_plugin.spec import image as spec
from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.hostconfig import HostConfig


@pytest.mark.parametrize("console,expect", [
    ("...\nkoji-image-installer: INSTALL FAILED: disk too small\n",
     "the installer reported: disk too small"),
    ("Kernel panic - not syncing: VFS: Unable to mount root fs\n",
     "the installer's kernel panicked: VFS: Unable to mount root fs"),
    ("Bad archive mirror\n", "could not reach its package repository"),
    ("[?] Please choose the disk\n", "waiting for an answer"),
    ("koji-image-installer: hanging on purpose (preseed koji-image-installer/hang)\n",
     "told to hang"),
])
def test_diagnosis_from_console(console: str, expect: str) -> None:
    assert expect in diagnose.diagnose(console, seconds=300, accel="tcg")


def test_diagnosis_of_a_silent_guest_and_an_unknown_one() -> None:
    silent = diagnose.diagnose("", seconds=300, accel="kvm")
    assert "printed nothing" in silent and "[libvirt] type = qemu" in silent
    other = diagnose.diagnose("step 1\nstill copying files\n", seconds=120, accel="tcg")
    assert "'still copying files'" in other and "raise [timeouts] inactivity above 120 s" \
        in other


def test_console_cleaning() -> None:
    assert console.clean_console(b"\x1b[0;32mOK\x1b[0m\r\nnext") == "OK\nnext"


def test_oz_knows_new_debian_and_fedora_after_register() -> None:
    ozcompat.register()
    ozcompat.register()  # idempotent
    assert ozcompat.supported("Debian", "12") and ozcompat.supported("Debian", "13")
    assert ozcompat.supported("Fedora", "41") and ozcompat.supported("Fedora", "rawhide")
    assert not ozcompat.supported("Debian", "99")


def test_oz_parses_our_tdl() -> None:
    import oz.TDL

    s = spec.from_dict({"name": "Fedora-Cloud-Base", "version": "19", "distro": "Fedora-19",
                        "kickstart": "k.ks", "arches": ["i686"], "disk_size": 3,
                        "install_tree": "http://m/19/$basearch/os/",
                        "repos": ["http://m/extra/$arch/"]})
    tdl = oz.TDL.TDL(tdl_xml(s, Arch.I686, "koji-image-x-i686-1234"))
    assert (tdl.distro, tdl.update, tdl.arch) == ("Fedora", "19", "i386")
    assert tdl.url == "http://m/19/i386/os/"
    assert tdl.disksize == "3"
    # the repos go into the prepared kickstart (build/installfile.py), not the template
    assert tdl.repositories == {}


def test_console_log_is_added_to_the_install_xml(tmp_path: Path) -> None:
    xml = ("<domain type='qemu'><os><cmdline>priority=critical</cmdline></os><devices>"
           "<serial type='pty'><target port='0'/></serial>"
           "<serial type='tcp'><target port='1'/></serial></devices></domain>")
    out = lxml.etree.fromstring(ozcompat.adapt_xml(xml, tmp_path / "c.log", Arch.X86_64))
    assert out.xpath("//serial[@type='pty']/log/@file") == [str(tmp_path / "c.log")]
    assert not out.xpath("//serial[@type='tcp']/log")
    assert out.xpath("//cmdline/text()")[0] == ("priority=critical console=tty0 "
                                                "console=ttyS0,115200n8")
    assert not out.xpath("//cpu")


def test_an_aarch64_install_guest_gets_debians_arch_a_64_bit_cpu_and_its_console(
        tmp_path: Path) -> None:
    """Oz 0.17's own aarch64 guest, as the real Oz writes it, then adapted; libvirt (the
    real daemon) must accept the result."""
    import oz.GuestFactory
    import oz.TDL

    ozcompat.register()
    s = spec.from_dict({"name": "Debian-Cloud", "version": "12", "distro": "Debian-12",
                        "arches": ["aarch64"], "install_tree": "http://m/debian/"})
    name = "koji-image-test-aarch64-xml"
    cfg = oz_config(HostConfig(domain_type="qemu"), tmp_path, tmp_path)
    guest = oz.GuestFactory.guest_factory(oz.TDL.TDL(tdl_xml(s, Arch.AARCH64, name)), cfg,
                                          None, output_disk=str(tmp_path / "d.qcow2"))
    ozcompat.instrument(guest, tmp_path / "c.log", Arch.AARCH64, tmp_path / "VARS.fd")
    assert guest.debarch == "arm64"  # Oz would fetch debian-installer/aarch64/linux
    (tmp_path / "d.qcow2").write_bytes(b"")
    xml = guest._generate_xml("hd", None, kernel=str(tmp_path / "k"),
                              initrd=str(tmp_path / "i"), cmdline="priority=critical")
    doc = lxml.etree.fromstring(xml)
    assert doc.xpath("/domain/cpu/@mode") == ["maximum"]
    assert not doc.xpath("//input[@bus='ps2']")  # virt has no PS/2; libvirt refuses it
    assert doc.xpath("/domain/os/type/@machine") == ["virt"]
    assert doc.xpath("/domain/os/loader/text()") == ["/usr/share/AAVMF/AAVMF_CODE.fd"]
    # the variable store is the build's, not left in libvirt's nvram/ directory
    assert doc.xpath("/domain/os/nvram/text()") == [str(tmp_path / "VARS.fd")]
    assert doc.xpath("/domain/os/nvram/@template") == ["/usr/share/AAVMF/AAVMF_VARS.fd"]
    assert doc.xpath("//cmdline/text()")[0].endswith(" console=ttyAMA0,115200n8")
    assert "tty0" not in doc.xpath("//cmdline/text()")[0]
    done = subprocess.run(["virsh", "-c", "qemu:///system", "define", "/dev/stdin"],
                          input=xml, capture_output=True, text=True)
    try:
        assert done.returncode == 0, done.stderr
    finally:
        subprocess.run(["virsh", "-c", "qemu:///system", "undefine", "--nvram", name],
                       capture_output=True)


def test_a_cancel_ends_ozs_wait_at_once_and_only_inside_the_install() -> None:
    import threading
    import time

    import oz.ozutil

    original = oz.ozutil.timed_loop
    cancel = threading.Event()
    calls: list[float] = []
    with ozcompat.cancellable(cancel):
        assert oz.ozutil.timed_loop is not original
        threading.Timer(0.3, cancel.set).start()
        t0 = time.monotonic()
        assert oz.ozutil.timed_loop(600, lambda arg: calls.append(arg) or False, "wait", 7) \
            is False
        took = time.monotonic() - t0
    assert took < 2 and calls == [7]  # the callback at once, then every 10 s as Oz does
    assert oz.ozutil.timed_loop is original
    with ozcompat.cancellable(threading.Event()):
        assert oz.ozutil.timed_loop(600, lambda arg: True, "done at once") is True


def test_overlapping_installs_each_keep_their_own_cancel_and_oz_is_restored() -> None:
    import threading
    import time

    import oz.ozutil

    original = oz.ozutil.timed_loop
    mine, theirs = threading.Event(), threading.Event()
    results: dict[str, tuple[bool, float]] = {}
    inside = threading.Barrier(2)

    def install(name: str, cancel: threading.Event, max_time: float) -> None:
        with ozcompat.cancellable(cancel):
            inside.wait()
            t = time.monotonic()
            ended = oz.ozutil.timed_loop(max_time, lambda arg: False, name)
            results[name] = (ended, time.monotonic() - t)
            inside.wait()

    other = threading.Thread(target=install, args=("theirs", theirs, 1.5))
    other.start()
    threading.Timer(0.3, mine.set).start()
    t0 = time.monotonic()
    install("mine", mine, 600)
    other.join()
    assert not results["mine"][0] and results["mine"][1] < 1  # cancelled
    assert not results["theirs"][0] and results["theirs"][1] >= 1.4  # its own timeout
    assert time.monotonic() - t0 < 5
    assert oz.ozutil.timed_loop is original
