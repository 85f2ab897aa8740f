"""Arches and what each tool calls them."""

from __future__ import annotations

from koji_image_plugin.spec.arches import Arch


def test_arch_names() -> None:
    assert Arch.parse("i386") is Arch.I686 and Arch.parse("amd64") is Arch.X86_64
    assert (Arch.I686.oz_arch, Arch.I686.deb_arch, Arch.I686.qemu_system) == \
        ("i386", "i386", "qemu-system-i386")
