"""Build architectures and what each one is called by Koji, Oz, Debian, libvirt and qemu."""

from __future__ import annotations

import enum


class Arch(enum.StrEnum):
    X86_64 = "x86_64"
    I686 = "i686"

    @property
    def oz_arch(self) -> str:
        """Oz's TDL arch (Oz calls 32-bit x86 ``i386``)."""
        return {"x86_64": "x86_64", "i686": "i386"}[self.value]

    @property
    def deb_arch(self) -> str:
        return {"x86_64": "amd64", "i686": "i386"}[self.value]

    @property
    def rpm_basearch(self) -> str:
        return {"x86_64": "x86_64", "i686": "i386"}[self.value]

    @property
    def qemu_system(self) -> str:
        return {"x86_64": "qemu-system-x86_64", "i686": "qemu-system-i386"}[self.value]

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
        """Accept Koji's and distros' spellings (``i386``, ``i586``, ``amd64``)."""
        aliases = {"i386": "i686", "i586": "i686", "amd64": "x86_64"}
        return cls(aliases.get(text.strip(), text.strip()))
