"""Build architectures: what each one is called by Koji, Oz, Debian, qemu and EC2, and
the firmware its images may boot with."""

from __future__ import annotations

import enum
from typing import NamedTuple

from .firmware import BootFirmware, Firmware


class _Names(NamedTuple):
    oz: str
    deb: str
    rpm_basearch: str
    qemu_system: str
    ec2: str
    serial_tty: str
    #: the firmware an image of this arch may have, the first being the default
    firmwares: tuple[Firmware, ...]
    #: the UEFI firmware its boot tests run under
    uefi_firmware: BootFirmware | None


class Arch(enum.StrEnum):
    X86_64 = "x86_64"
    I686 = "i686"
    AARCH64 = "aarch64"

    @property
    def _names(self) -> _Names:
        return _NAMES[self]

    @property
    def oz_arch(self) -> str:
        """Oz's TDL arch (Oz calls 32-bit x86 ``i386``)."""
        return self._names.oz

    @property
    def deb_arch(self) -> str:
        return self._names.deb

    @property
    def rpm_basearch(self) -> str:
        return self._names.rpm_basearch

    @property
    def qemu_system(self) -> str:
        return self._names.qemu_system

    @property
    def ec2_arch(self) -> str:
        """RegisterImage's ``Architecture``."""
        return self._names.ec2

    @property
    def serial_tty(self) -> str:
        """The serial console's tty (the one clouds log and a getty runs on)."""
        return self._names.serial_tty

    @property
    def firmwares(self) -> tuple[Firmware, ...]:
        return self._names.firmwares

    @property
    def default_firmware(self) -> Firmware:
        return self._names.firmwares[0]

    @property
    def uefi_firmware(self) -> BootFirmware | None:
        """OVMF on x86_64, AAVMF on aarch64; None where no UEFI image is built."""
        return self._names.uefi_firmware

    def boot_firmwares(self, fw: Firmware) -> tuple[BootFirmware, ...]:
        """Every firmware an image of ``fw`` is boot-tested under (hybrid: both)."""
        out = []
        if fw.bios and self is not Arch.AARCH64:
            out.append(BootFirmware.SEABIOS)
        if fw.uefi and self.uefi_firmware is not None:
            out.append(self.uefi_firmware)
        return tuple(out)

    def console_args(self, screen: bool) -> str:
        """The kernel's console arguments: the serial port last (it becomes
        /dev/console), ``tty0`` first where there is a ``screen`` (arm's ``virt``
        machine has no graphics)."""
        serial = f"console={self.serial_tty},115200n8"
        return f"console=tty0 {serial}" if screen and self is not Arch.AARCH64 else serial

    def qemu_machine(self, accel: str) -> list[str]:
        """The machine (and CPU) arguments of a guest of this arch: the PC default on
        x86, ``virt`` on aarch64 (with the host's CPU under KVM, any CPU under TCG)."""
        if self is Arch.AARCH64:
            return ["-machine", "virt", "-cpu", "host" if accel == "kvm" else "max"]
        return []

    @classmethod
    def parse_each(cls, items: list[object]) -> list[object]:
        """Each item as this project's arch name where it is one in any spelling; the
        others unchanged, for the schema to report with the allowed values."""
        out: list[object] = []
        for item in items:
            try:
                out.append(cls.parse(item).value if isinstance(item, str) else item)
            except ValueError:
                out.append(item)
        return out

    @classmethod
    def parse(cls, text: str) -> Arch:
        """Accept Koji's and distros' spellings (``i386``, ``i586``, ``amd64``, ``arm64``)."""
        aliases = {"i386": "i686", "i586": "i686", "amd64": "x86_64", "arm64": "aarch64"}
        return cls(aliases.get(text, text))


_NAMES = {
    Arch.X86_64: _Names(oz="x86_64", deb="amd64", rpm_basearch="x86_64",
                        qemu_system="qemu-system-x86_64", ec2="x86_64",
                        serial_tty="ttyS0",
                        firmwares=(Firmware.HYBRID, Firmware.BIOS, Firmware.UEFI),
                        uefi_firmware=BootFirmware.OVMF),
    Arch.I686: _Names(oz="i386", deb="i386", rpm_basearch="i386",
                      qemu_system="qemu-system-i386", ec2="i386",
                      serial_tty="ttyS0", firmwares=(Firmware.BIOS,), uefi_firmware=None),
    Arch.AARCH64: _Names(oz="aarch64", deb="arm64", rpm_basearch="aarch64",
                         qemu_system="qemu-system-aarch64", ec2="arm64",
                         serial_tty="ttyAMA0", firmwares=(Firmware.UEFI,),
                         uefi_firmware=BootFirmware.AAVMF),
}
