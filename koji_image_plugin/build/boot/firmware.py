"""The firmware a boot test's guest starts with: qemu's SeaBIOS (its default), or a UEFI
firmware as clouds run it: the read-only code and a writable copy of the variable store,
one copy per boot, so no boot sees what another wrote (boot entries, BootOrder).

Files: Debian's ``ovmf`` (x86_64) and ``qemu-efi-aarch64`` (aarch64), without Secure
Boot (the images' GRUB is not signed here).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

from ...errors import BootTestError
from ...spec.firmware import BootFirmware


class Files(NamedTuple):
    code: Path
    vars: Path
    package: str


FILES = {
    BootFirmware.OVMF: Files(Path("/usr/share/OVMF/OVMF_CODE_4M.fd"),
                             Path("/usr/share/OVMF/OVMF_VARS_4M.fd"), "ovmf"),
    BootFirmware.AAVMF: Files(Path("/usr/share/AAVMF/AAVMF_CODE.fd"),
                              Path("/usr/share/AAVMF/AAVMF_VARS.fd"), "qemu-efi-aarch64"),
}


def variables(fw: BootFirmware, tmp: Path) -> Path | None:
    """A fresh copy of ``fw``'s variable store in ``tmp`` (None: SeaBIOS has none)."""
    files = FILES.get(fw)
    if files is None:
        return None
    for path in (files.code, files.vars):
        if not path.is_file():
            raise BootTestError(f"{fw.value}: {path} is missing; install Debian's "
                                f"{files.package} package (scripts/setup.sh does)")
    copy = tmp / f"{fw.value}-vars.fd"
    shutil.copyfile(files.vars, copy)
    return copy


def argv(fw: BootFirmware, vars_copy: Path | None) -> list[str]:
    """qemu's arguments for ``fw``: two pflash drives, the code read-only."""
    files = FILES.get(fw)
    if files is None:
        return []
    assert vars_copy is not None, "a UEFI boot needs its copy of the variable store"
    return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={files.code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
