"""The firmware an image boots with, and the disk layout that follows from it.

``bios``: an MBR disk, GRUB in the MBR (what every PC and EC2's legacy instances boot).
``uefi``: a GPT disk with an EFI system partition, GRUB at the removable-media path
(``EFI/BOOT/BOOT*.EFI``) so a fresh VARS store boots it. ``hybrid``: a GPT disk with a
BIOS boot partition *and* an ESP, GRUB for both, as Fedora's cloud images are laid out;
it boots under SeaBIOS and OVMF alike.

The layout is a property of the build: it is written into the install file the installer
reads (a kickstart's storage commands, a preseed's partman recipe), here and only here.
"""

from __future__ import annotations

import enum

#: the EFI system partition's size (Fedora's cloud images: 100 MiB too)
ESP_MIB = 100


class Firmware(enum.StrEnum):
    BIOS = "bios"
    UEFI = "uefi"
    HYBRID = "hybrid"

    @property
    def bios(self) -> bool:
        """Boots from a PC BIOS (SeaBIOS)."""
        return self is not Firmware.UEFI

    @property
    def uefi(self) -> bool:
        """Boots from UEFI firmware (OVMF, AAVMF)."""
        return self is not Firmware.BIOS

    @property
    def disklabel(self) -> str:
        """The partition table: ``gpt`` whenever UEFI boots it, else ``msdos``."""
        return "gpt" if self.uefi else "msdos"

    @property
    def ec2_boot_mode(self) -> str:
        """RegisterImage's ``BootMode`` for an image of this firmware."""
        return {Firmware.BIOS: "legacy-bios", Firmware.UEFI: "uefi",
                Firmware.HYBRID: "uefi-preferred"}[self]

    @property
    def glance_firmware_type(self) -> str:
        """Glance's ``hw_firmware_type`` (a hybrid image boots either; Nova's default
        firmware is BIOS, so ``bios`` keeps flavours without UEFI working)."""
        return "uefi" if self is Firmware.UEFI else "bios"


class BootFirmware(enum.StrEnum):
    """The firmware a boot test runs under."""

    SEABIOS = "seabios"
    OVMF = "ovmf"
    AAVMF = "aavmf"

    @property
    def uefi(self) -> bool:
        return self is not BootFirmware.SEABIOS

    @property
    def label(self) -> str:
        return {BootFirmware.SEABIOS: "SeaBIOS", BootFirmware.OVMF: "OVMF (UEFI)",
                BootFirmware.AAVMF: "AAVMF (UEFI)"}[self]


def under(names: list[str]) -> str:
    """``under SeaBIOS and OVMF (UEFI)`` for people, from boot records' firmware names
    (unknown names as given); "" for none."""
    known = {f.value: f.label for f in BootFirmware}
    said = [known.get(n, n) for n in names]
    if not said:
        return ""
    return "under " + (" and ".join([", ".join(said[:-1]), said[-1]]) if len(said) > 1
                       else said[0])


def layout_preseed(fw: Firmware) -> str:
    """d-i answers that lay the disk out for ``fw`` (appended after the file's own: the
    last answer to a question wins, as debconf reads a preseed)."""
    root = ("1000 10000 -1 ext4 $primary{ } $bootable{ } method{ format } format{ } "
            "use_filesystem{ } filesystem{ ext4 } mountpoint{ / } .")
    chunks = []
    if fw is Firmware.HYBRID:
        chunks.append("1 1 1 free $bios_boot{ } method{ biosgrub } .")
    if fw.uefi:
        chunks.append(f"{ESP_MIB} {ESP_MIB} {ESP_MIB} fat32 $primary{{ }} method{{ efi }} "
                      "format{ } .")
    chunks.append(root)
    lines = [
        f"d-i partman-partitioning/choose_label select {fw.disklabel}",
        f"d-i partman-partitioning/default_label string {fw.disklabel}",
        "d-i partman-auto/choose_recipe select koji-image",
        "d-i partman-auto/expert_recipe string koji-image :: " + " ".join(chunks),
    ]
    if fw.uefi:
        lines += ["d-i partman-efi/non_efi_system boolean true",
                  "d-i grub-installer/force-efi-extra-removable boolean true"]
    return f"# disk layout for firmware {fw.value} (koji-image-plugin)\n" + \
        "".join(line + "\n" for line in lines)


def layout_kickstart(fw: Firmware) -> list[str]:
    """Kickstart storage commands that lay the disk out for ``fw``."""
    lines = ["zerombr", f"clearpart --all --initlabel --disklabel={fw.disklabel}"]
    if fw is Firmware.HYBRID:
        lines.append("part biosboot --fstype=biosboot --size=1")
    if fw.uefi:
        lines.append(f"part /boot/efi --fstype=efi --size={ESP_MIB}")
    lines.append("part / --fstype=ext4 --grow")
    return lines


def _preseed_value(text: str, question: str) -> str | None:
    """The last answer a preseed gives ``question`` (``d-i QUESTION TYPE VALUE``)."""
    value = None
    for line in text.replace("\\\n", " ").splitlines():
        words = line.split(None, 3)
        if len(words) >= 3 and words[0] == "d-i" and words[1] == question:
            value = words[3] if len(words) == 4 else ""
    return value


def preseed_has_layout(text: str) -> bool:
    """Does the preseed give its own partman recipe?"""
    return any(_preseed_value(text, q) is not None for q in
               ("partman-auto/expert_recipe", "partman-auto/expert_recipe_file"))


def preseed_problem(text: str, fw: Firmware) -> str | None:
    """Why a preseed's own recipe cannot boot with ``fw``, or None (a recipe from a file
    on the install medium cannot be read here, and is taken as it is)."""
    recipe = _preseed_value(text, "partman-auto/expert_recipe")
    if recipe is None:
        return None
    squeezed = " ".join(recipe.split())
    label = _preseed_value(text, "partman-partitioning/choose_label")
    if fw is Firmware.HYBRID and label and label != "gpt":
        return (f"partman-partitioning/choose_label {label} cannot make a hybrid BIOS+UEFI "
                "disk, which is GPT; choose gpt, or set the spec's firmware")
    needed = []
    if fw.bios and (label == "gpt" or (not label and fw.uefi)) and \
            "method{ biosgrub }" not in squeezed:
        needed.append("a 'method{ biosgrub }' partition")
    if fw.uefi and "method{ efi }" not in squeezed:
        needed.append("a 'method{ efi }' partition")
    if not needed:
        return None
    return (f"its partman-auto/expert_recipe cannot boot firmware {fw.value}; add "
            f"{' and '.join(needed)}, or remove the recipe so the layout is made for you")
