"""The offline customization of each variant (on a fake root filesystem)."""

from __future__ import annotations

from pathlib import Path

import pytest

from koji_image_plugin.build.customize import customize
from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.variants import Variant

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
@pytest.mark.parametrize("arch", [Arch.X86_64, Arch.AARCH64])
def test_customize_variant(variant: Variant, arch: Arch, tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    changed = customize(root, variant, arch)
    console = variant.console_args(arch)
    assert console.endswith(f"console={arch.serial_tty},115200n8")
    ds = (root / "etc/cloud/cloud.cfg.d/90-koji-image-datasources.cfg").read_text()
    assert f"datasource_list: [ {', '.join(variant.datasources)} ]" in ds
    assert "NoCloud" in ds  # the boot test seeds every variant with NoCloud
    linux = next(ln for ln in (root / "boot/grub/grub.cfg").read_text().splitlines()
                 if "vmlinuz" in ln)
    assert linux.endswith(console)
    assert linux.count("console=") == console.count("console=")
    assert "root=UUID=abc ro" in linux and "quiet" in linux
    assert f'GRUB_CMDLINE_LINUX="{console}"' in \
        (root / "etc/default/grub").read_text()
    assert (root / "etc/machine-id").read_text() == ""
    assert not (root / "etc/ssh/ssh_host_rsa_key").exists()
    assert (root / "etc/ssh/sshd_config").exists()
    assert "etc/ssh/ssh_host_rsa_key" in changed


def test_ec2_prefers_the_ec2_datasource() -> None:
    assert Variant.EC2.datasources[0] == "Ec2"
    assert "tty0" not in Variant.EC2.console_args(Arch.X86_64)
    assert Variant.GENERIC.console_args(Arch.X86_64) == "console=tty0 console=ttyS0,115200n8"
    # arm's virt machine has no screen: the generic image logs to its serial port alone
    assert Variant.GENERIC.console_args(Arch.AARCH64) == "console=ttyAMA0,115200n8"
    # EC2's Graviton machines have a 16550 (ttyS0); the boot test's virt machine a PL011
    assert Variant.EC2.console_args(Arch.AARCH64) == (
        "console=ttyS0,115200n8 console=ttyAMA0,115200n8")
    assert Variant.EC2.console_args(Arch.X86_64) == "console=ttyS0,115200n8"


@pytest.mark.parametrize("variant", list(Variant))
def test_every_variant_resolves_its_hostname_and_takes_keys_only(variant: Variant,
                                                                  tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    customize(root, variant, Arch.X86_64)
    cfg = (root / "etc/cloud/cloud.cfg.d/91-koji-image-instance.cfg").read_text()
    assert "manage_etc_hosts: true" in cfg and "ssh_pwauth: false" in cfg


def test_the_generic_image_runs_cloud_init_on_ec2_compatible_clouds(tmp_path: Path) -> None:
    # Eucalyptus: plain KVM DMI, no seed. ds-identify enables what it is unsure of, and
    # reads strict_id only from a file named *ec2*.cfg, unquoted.
    root = fake_root(tmp_path)
    changed = customize(root, Variant.GENERIC, Arch.X86_64)
    ec2 = root / "etc/cloud/cloud.cfg.d/92-koji-image-ec2.cfg"
    assert "ec2" in ec2.name and "    strict_id: false\n" in ec2.read_text()
    assert "policy: search,found=all,maybe=all,notfound=disabled" in \
        (root / "etc/cloud/ds-identify.cfg").read_text()
    assert {"etc/cloud/ds-identify.cfg", str(ec2.relative_to(root))} <= set(changed)


def test_the_ec2_image_stays_strict(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    customize(root, Variant.EC2, Arch.X86_64)
    assert not (root / "etc/cloud/ds-identify.cfg").exists()
    assert not (root / "etc/cloud/cloud.cfg.d/92-koji-image-ec2.cfg").exists()
