"""Small units: variants, diagnosis, Oz compatibility, host config, arches."""

from __future__ import annotations

from pathlib import Path

import lxml.etree
import pytest

from koji_image_plugin import diagnose, hostconfig, ozcompat, spec
from koji_image_plugin.arches import Arch
from koji_image_plugin.errors import HostError
from koji_image_plugin.oz_engine import oz_config, tdl_xml
from koji_image_plugin.variants import Variant, customize

GRUB_CFG = """menuentry 'Debian' {
\tlinux\t/boot/vmlinuz-6.1.0 root=UUID=abc ro console=tty0 console=ttyS0,115200 quiet
\tinitrd\t/boot/initrd.img-6.1.0
}
"""


def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/default/grub").write_text('GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX="quiet"\n')
    (root / "boot/grub").mkdir(parents=True)
    (root / "boot/grub/grub.cfg").write_text(GRUB_CFG)
    (root / "etc/machine-id").write_text("0123456789abcdef\n")
    (root / "etc/ssh").mkdir()
    (root / "etc/ssh/ssh_host_rsa_key").write_text("secret")
    (root / "etc/ssh/sshd_config").write_text("x")
    return root


@pytest.mark.parametrize("variant", list(Variant))
def test_customize_variant(variant: Variant, tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    changed = customize(root, variant)
    ds = (root / "etc/cloud/cloud.cfg.d/90-koji-image-datasources.cfg").read_text()
    assert f"datasource_list: [ {', '.join(variant.datasources)} ]" in ds
    assert "NoCloud" in ds  # the boot test seeds every variant with NoCloud
    linux = next(ln for ln in (root / "boot/grub/grub.cfg").read_text().splitlines()
                 if "vmlinuz" in ln)
    assert linux.endswith(variant.console_args)
    assert linux.count("console=") == variant.console_args.count("console=")
    assert "root=UUID=abc ro" in linux and "quiet" in linux
    assert f'GRUB_CMDLINE_LINUX="{variant.console_args}"' in \
        (root / "etc/default/grub").read_text()
    assert (root / "etc/machine-id").read_text() == ""
    assert not (root / "etc/ssh/ssh_host_rsa_key").exists()
    assert (root / "etc/ssh/sshd_config").exists()
    assert "etc/ssh/ssh_host_rsa_key" in changed


def test_ec2_prefers_the_ec2_datasource() -> None:
    assert Variant.EC2.datasources[0] == "Ec2"
    assert "tty0" not in Variant.EC2.console_args


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
    assert diagnose.clean_console(b"\x1b[0;32mOK\x1b[0m\r\nnext") == "OK\nnext"


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
    assert [r.url for r in tdl.repositories.values()] == ["http://m/extra/i686/"]


def test_console_log_is_added_to_the_install_xml(tmp_path: Path) -> None:
    xml = ("<domain type='qemu'><os><cmdline>priority=critical</cmdline></os><devices>"
           "<serial type='pty'><target port='0'/></serial>"
           "<serial type='tcp'><target port='1'/></serial></devices></domain>")
    out = lxml.etree.fromstring(ozcompat.add_console_log(xml, tmp_path / "c.log"))
    assert out.xpath("//serial[@type='pty']/log/@file") == [str(tmp_path / "c.log")]
    assert not out.xpath("//serial[@type='tcp']/log")
    assert out.xpath("//cmdline/text()")[0] == "priority=critical " + ozcompat.CONSOLE_ARGS


def test_host_config_file_and_kvm_detection(tmp_path: Path) -> None:
    cpu = tmp_path / "cpuinfo"
    cpu.write_text("flags\t\t: fpu hypervisor sse2\n")
    kvm = tmp_path / "kvm"
    kvm.touch()
    assert not hostconfig.kvm_usable(kvm, cpu)  # paravirtual: no vmx/svm
    cpu.write_text("flags\t\t: fpu vmx sse2\n")
    assert hostconfig.kvm_usable(kvm, cpu)
    assert not hostconfig.kvm_usable(tmp_path / "none", cpu)
    conf = tmp_path / "k.conf"
    conf.write_text("[libvirt]\ntype = qemu\nmemory = 3072\n[timeouts]\ninactivity = 900\n")
    h = hostconfig.load(conf)
    assert (h.resolved_domain_type, h.accel, h.install_memory_mb) == ("qemu", "tcg", 3072)
    assert h.timeouts() == (3600, 900)
    cfg = oz_config(h, tmp_path / "w", tmp_path / "d")
    # Oz counts inactivity in checks, one every 10 s.
    assert cfg["libvirt"]["type"] == "qemu" and cfg["timeouts"]["inactivity"] == "90"
    assert ozcompat.oz_inactivity(25) == 3 and ozcompat.oz_inactivity(5) == 1
    assert cfg["paths"]["screenshot_dir"] == str(tmp_path / "d")
    conf.write_text("[libvirt]\ntype = xen\n")
    with pytest.raises(HostError, match="use one of auto, kvm, qemu"):
        hostconfig.load(conf)
    assert hostconfig.load(tmp_path / "absent.conf") == hostconfig.HostConfig()


def test_arch_names() -> None:
    assert Arch.parse("i386") is Arch.I686 and Arch.parse("amd64") is Arch.X86_64
    assert (Arch.I686.oz_arch, Arch.I686.deb_arch, Arch.I686.qemu_system) == \
        ("i386", "i386", "qemu-system-i386")
