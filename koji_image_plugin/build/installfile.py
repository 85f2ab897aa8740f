"""The unattended install file one arch's installer reads, prepared from the spec's.

- Fedora: the kickstart prepared as kojid prepares it (``spec/kickstart.py``): its
  ``repo`` lines replaced by the build's repos, ``url`` set to the install tree.
- Debian: the preseed, with one ``apt-setup/localN/repository`` answer per repo (a flat
  apt repository, ``deb URL ./``), after the file's own answers, so the installer's apt
  sources include them; and, unless it has its own partman recipe, the disk layout of
  the build's firmware (``spec/firmware.py``).

The repos are handed in as plain data: a hub build's come from Koji (the build tag's
repo, or the request's ``repos``), a local build's from the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write
from ..spec import kickstart
from ..spec.arches import Arch
from ..spec.distro import Family
from ..spec.firmware import layout_preseed, preseed_has_layout
from ..spec.image import ImageSpec
from ..spec.kickstart import KickstartError, Repo


def file_name(spec: ImageSpec, arch: Arch) -> str:
    """``NVR.ARCH.ks`` (or ``.preseed.cfg``): the prepared file differs per arch."""
    return f"{spec.nvr}.{arch.value}.{spec.distro.family.auto_suffix}"


def prepared_text(spec: ImageSpec, arch: Arch, repos: Sequence[Repo]) -> str | None:
    """What the installer of ``arch`` reads, or None when Oz's own default is used."""
    source = spec.install_file
    if source is None:
        return None
    fw = spec.firmware_for(arch)
    if spec.distro.family is Family.FEDORA:
        return kickstart.prepare(source, arch, repos, spec.tree_for(arch), spec.ksversion,
                                 fw)
    text = kickstart.read_text(source)
    text += "" if text.endswith("\n") else "\n"
    if not preseed_has_layout(text):
        text += layout_preseed(fw)
    if not repos:
        return text
    lines = [f"d-i apt-setup/local{i}/repository string {r.for_arch(arch).baseurl} ./\n"
             f"d-i apt-setup/local{i}/comment string {r.name}\n"
             for i, r in enumerate(repos)]
    return text + "# repos of the build (koji-image-plugin)\n" + "".join(lines)


@dataclass(frozen=True)
class InstallFile:
    """The prepared file of one arch: its name in the build's logs, and its text."""

    name: str
    text: str

    def write(self, directory: Path) -> Path:
        path = directory / self.name
        atomic_write(path, self.text)
        return path


def prepare(spec: ImageSpec, arch: Arch, repos: Sequence[Repo]) -> InstallFile | None:
    """The prepared file of ``arch`` (None: Oz's own default); a kickstart that cannot be
    prepared raises :class:`KickstartError` before anything is written."""
    text = prepared_text(spec, arch, repos)
    return None if text is None else InstallFile(file_name(spec, arch), text)


__all__ = ["InstallFile", "KickstartError", "Repo", "file_name", "prepare", "prepared_text"]
