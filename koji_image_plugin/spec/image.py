"""The image spec: a raw mapping checked against the schema and the rules a schema cannot
say, then one frozen, typed :class:`ImageSpec` that the rest of the code trusts.

Every problem is collected and reported at once, each naming its field and what is
allowed there; nothing is created while reading a spec (``load.py`` reads the files).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import Problem, SpecError, quote
from ..files import within
from . import kickstart
from .arches import Arch
from .bootprofiles import BootProfile
from .distro import AUTO_KEYS, Distro, Family
from .firmware import Firmware, preseed_problem
from .formats import ImageFormat
from .problems import collect
from .schema import DEFAULTS, SCHEMA
from .upload import UploadRequest, check_upload
from .urls import LOCAL, Edge, url_problem
from .variants import Variant


def image_file_name(nvr: str, arch: Arch, variant: Variant, fmt: ImageFormat) -> str:
    """Fedora's naming: NAME-VERSION-RELEASE.ARCH.EXT, the variant tag in the name."""
    name, version, release = nvr.rsplit("-", 2)
    name = f"{name}-{variant.name_tag}" if variant.name_tag else name
    return f"{name}-{version}-{release}.{arch.value}.{fmt.extension}"


@dataclass(frozen=True)
class BootTest:
    enabled: bool = True
    #: seconds each profile boot may take to a login and its checks
    timeout: int = 600
    #: the profiles a variant is booted as, where the spec chose them
    profiles: tuple[tuple[Variant, tuple[BootProfile, ...]], ...] = ()
    leftovers: tuple[str, ...] = tuple(DEFAULTS["boot_test"]["leftovers"])
    user: str | None = None

    def profiles_for(self, variant: Variant) -> tuple[BootProfile, ...]:
        return dict(self.profiles).get(variant, variant.profiles)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": self.enabled, "timeout": self.timeout,
                               "leftovers": list(self.leftovers)}
        if self.profiles:
            out["profiles"] = {v.value: [p.value for p in ps] for v, ps in self.profiles}
        if self.user:
            out["user"] = self.user
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BootTest:
        """From a checked spec's ``boot_test`` (the defaults filled in)."""
        return cls(enabled=bool(data["enabled"]), timeout=int(data["timeout"]),
                   profiles=tuple((Variant(v), tuple(BootProfile(p) for p in ps))
                                  for v, ps in (data.get("profiles") or {}).items()),
                   leftovers=tuple(data["leftovers"]), user=data.get("user"))


@dataclass(frozen=True)
class ImageSpec:
    name: str
    version: str
    release: str
    distro: Distro
    arches: tuple[Arch, ...]
    install_tree: str
    auto_file: Path | None
    repos: tuple[str, ...]
    disk_size: int
    variants: tuple[Variant, ...]
    formats: tuple[ImageFormat, ...]
    variant_formats: tuple[tuple[Variant, tuple[ImageFormat, ...]], ...] = ()
    boot_test: BootTest = field(default_factory=BootTest)
    qcow2_compat: str = "1.1"
    xz_preset: int = 6
    description: str = ""
    target: str | None = None
    can_fail: tuple[Arch, ...] = ()
    scratch: bool = False
    skip_tag: bool = False
    ksurl: str | None = None
    ksversion: str | None = None
    #: the spec's firmware; None: each arch's default (``firmware_for``)
    firmware: Firmware | None = None
    upload: UploadRequest | None = None
    source: str = "<spec>"
    #: False when the release is the date-based default (local mode then picks the next
    #: free ``DATE.N``, as Koji's getNextRelease does on a hub)
    release_given: bool = True

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    @property
    def install_file(self) -> Path | None:
        """The kickstart or preseed the installer reads: the spec's, or the family's own."""
        return self.auto_file or self.distro.family.default_auto_file

    def firmware_for(self, arch: Arch) -> Firmware:
        """What ``arch``'s image boots with: the spec's firmware, or the arch's default."""
        return self.firmware or arch.default_firmware

    def formats_for(self, variant: Variant) -> tuple[ImageFormat, ...]:
        return dict(self.variant_formats).get(variant, self.formats)

    def outputs(self) -> list[tuple[Variant, ImageFormat]]:
        """Every (variant, format) a build of each arch writes, in build order."""
        return [(v, f) for v in self.variants for f in self.formats_for(v)]

    def tree_for(self, arch: Arch) -> str:
        base = self.distro.family.basearch(arch)
        return self.install_tree.replace("$basearch", base).replace("$arch", arch.value)

    def file_name(self, arch: Arch, variant: Variant, fmt: ImageFormat) -> str:
        return image_file_name(self.nvr, arch, variant, fmt)

    def as_dict(self) -> dict[str, Any]:
        """The resolved spec, in the YAML spec's own vocabulary (it validates again)."""
        out: dict[str, Any] = {
            "name": self.name, "version": self.version, "release": self.release,
            "distro": str(self.distro), "arches": [a.value for a in self.arches],
            "install_tree": self.install_tree, "repos": list(self.repos),
            "disk_size": self.disk_size, "variants": [v.value for v in self.variants],
            "formats": [f.value for f in self.formats],
            "boot_test": self.boot_test.as_dict(),
            "qcow2_compat": self.qcow2_compat, "xz_preset": self.xz_preset,
            "description": self.description,
        }
        if self.variant_formats:
            out["variant_formats"] = {v.value: [f.value for f in fs]
                                      for v, fs in self.variant_formats}
        if self.auto_file is not None:
            out[self.distro.family.auto_key] = str(self.auto_file)
        optional = {"target": self.target, "can_fail": [a.value for a in self.can_fail],
                    "scratch": self.scratch, "skip_tag": self.skip_tag, "ksurl": self.ksurl,
                    "ksversion": self.ksversion,
                    "firmware": self.firmware.value if self.firmware else None,
                    "upload": self.upload.as_dict() if self.upload else None}
        out.update({k: v for k, v in optional.items() if v})
        return out

    def output_names(self) -> list[str]:
        """Every file a build of this spec publishes."""
        return [*(self.file_name(a, v, f) for a in self.arches for v, f in self.outputs()),
                "CHECKSUM", "manifest.json"]

    def next_free_release(self, taken: Callable[[ImageSpec], bool]) -> ImageSpec:
        """With a default release, the first ``DATE.N`` that is not ``taken``."""
        if self.release_given:
            return self
        date = self.release.split(".")[0]
        for n in range(1000):
            candidate = replace(self.replace(release=f"{date}.{n}"), release_given=False)
            if not taken(candidate):
                return candidate
        return self

    def replace(self, **changes: Any) -> ImageSpec:
        """A copy with some fields changed and checked again (command-line overrides)."""
        data = self.as_dict()
        data.update(changes)
        if "formats" in changes:
            data.pop("variant_formats", None)
        new = from_dict(data, source=self.source, base_dir=None)
        return replace(new, release_given=self.release_given or "release" in changes)


def default_release(today: datetime.date | None = None) -> str:
    return f"{(today or datetime.date.today()):%Y%m%d}.0"


# -- validation ---------------------------------------------------------------------

def check(data: Any, base_dir: Path | None, edge: Edge = LOCAL,
          allow_outside: bool = False) -> list[Problem]:
    """Every problem with a raw spec mapping: schema first, then what a schema can't say.
    ``base_dir``: where the spec's files are (a local build); None for a hub request.
    ``edge``: where it is built, which decides what its URLs may be. ``allow_outside``:
    the files the spec names may be outside ``base_dir`` (the user said so)."""
    if not isinstance(data, Mapping):
        return [Problem("(top level)", "a spec must be a mapping of fields to values")]
    problems = collect(SCHEMA, dict(data))
    bad = {p.field.split(".")[0].split("[")[0] for p in problems}
    if "distro" not in bad and isinstance(data.get("distro"), str):
        problems += _distro_problems(data, Distro.parse(data["distro"]))
    if "install_tree" not in bad and isinstance(data.get("install_tree"), str):
        why = url_problem(data["install_tree"], edge)
        problems += [Problem("install_tree", why)] if why else []
    if "ksversion" not in bad and isinstance(data.get("ksversion"), str):
        why = kickstart.version_problem(data["ksversion"])
        problems += [Problem("ksversion", why)] if why else []
    if "repos" not in bad and isinstance(data.get("repos"), list):
        for i, repo in enumerate(data["repos"]):
            why = url_problem(repo, edge) if isinstance(repo, str) else None
            problems += [Problem(f"repos[{i}]", why)] if why else []
    if base_dir is not None:
        problems += _file_problems(data, base_dir, bad, allow_outside)
    problems += _cross_field_problems(data, bad)
    if not {"firmware", "arches"} & bad:
        problems += _firmware_problems(data)
    if not {"formats", "variant_formats", "arches"} & bad:
        problems += _arch_format_problems(data)
    return problems


def _builds(data: Mapping[str, Any]) -> list[tuple[Arch, Firmware]]:
    """Each valid arch of a raw spec with the firmware its image would have."""
    arches = data.get("arches")
    given = data.get("firmware")
    out = []
    for a in arches if isinstance(arches, list) else []:
        if isinstance(a, str) and a in {x.value for x in Arch}:
            arch = Arch(a)
            fw = Firmware(given) if given in {f.value for f in Firmware} else None
            out.append((arch, fw or arch.default_firmware))
    return out


def _firmware_problems(data: Mapping[str, Any]) -> list[Problem]:
    return [Problem("firmware", f"{fw.value} is not possible on {arch.value}, which boots "
                    f"{' or '.join(f.value for f in arch.firmwares)}; build {arch.value} "
                    "with a spec of its own, or remove firmware to use each arch's default")
            for arch, fw in _builds(data) if fw not in arch.firmwares]


def _distro_problems(data: Mapping[str, Any], distro: Distro) -> list[Problem]:
    problems = []
    family = distro.family
    if distro.version == "rawhide" and family is not Family.FEDORA:
        problems.append(Problem("distro", "rawhide is a Fedora release; use Debian-NN"))
    elif not distro.supported:
        r = family.versions
        problems.append(Problem("distro", f"{distro} is not supported; {family} "
                                f"versions {r.start} to {r.stop - 1} are"))
    for other in Family:
        if other is not family and other.auto_key in data:
            problems.append(Problem(other.auto_key, f"{family} installs take a "
                                    f"{family.auto_key}; use {family.auto_key} instead"))
    if "ksversion" in data and family is not Family.FEDORA:
        problems.append(Problem("ksversion", f"{family} installs take a preseed, which has "
                                "no kickstart version; remove ksversion"))
    if "repo_id" in data and not family.koji_repo:
        problems.append(Problem("repo_id", f"{family} installs do not use the build tag's "
                                "Koji repo; remove repo_id"))
    if family.default_auto_file is None and family.auto_key not in data:
        problems.append(Problem(family.auto_key, f"is required for {family}; give the "
                                f"{family.auto_key} file's path"))
    return problems


def _file_problems(data: Mapping[str, Any], base_dir: Path, bad: set[str],
                   allow_outside: bool) -> list[Problem]:
    """A local build reads its kickstart/preseed from next to the spec."""
    if "ksurl" in data:
        return [Problem("ksurl", "an SCM kickstart is checked out by the hub build; for a "
                        "local build check it out yourself and set kickstart to the "
                        "file's path")]
    problems = []
    if "repo_id" in data:
        problems.append(Problem("repo_id", "pins a Koji repo for a hub build; a local build "
                                "installs from its spec's repos; remove repo_id"))
    for key in AUTO_KEYS:
        value = data.get(key)
        if key not in bad and isinstance(value, str):
            why = file_problem(base_dir, value, allow_outside)
            problems += [Problem(key, why)] if why else []
            if not why and not {"arches", "firmware", "ksversion"} & bad:
                problems += install_file_problems(base_dir / value, key, data)
    return problems


def install_file_problems(path: Path, key: str, data: Mapping[str, Any]) -> list[Problem]:
    """The spec's kickstart or preseed (``key``), at ``path``, read as each arch's build
    will prepare it (its firmware's layout among that)."""
    builds = [(a, f) for a, f in _builds(data) if f in a.firmwares]
    ksversion = data.get("ksversion")
    if key == Family.FEDORA.auto_key:
        return kickstart.problems(path, key, ksversion if isinstance(ksversion, str)
                                  else None, builds)
    try:
        text = kickstart.read_text(path)
    except kickstart.KickstartError as exc:
        return [Problem(key, str(exc))]
    whys = dict.fromkeys(preseed_problem(text, fw) for _, fw in builds)
    return [Problem(key, f"{path}: {why}") for why in whys if why]


#: how a user lets a spec name files outside its directory, on the command line
CONSENT = "give --allow-outside-files"


def _arch_format_problems(data: Mapping[str, Any]) -> list[Problem]:
    """A format asked for an arch its images cannot be for (a VirtualBox box of aarch64);
    ``formats`` only while a variant built takes it (variant_formats does not override)."""
    vf, built = data.get("variant_formats") or {}, data.get("variants", DEFAULTS["variants"])
    asked = [(f"variant_formats.{v}", fs) for v, fs in vf.items()]
    if not isinstance(built, list) or not set(map(str, built)) <= set(vf):
        asked.insert(0, ("formats", data.get("formats", DEFAULTS["formats"])))
    return [Problem(f"{field}[{i}]", f"{f} carries {' or '.join(fmt.arches)} images only, not "
                    f"{arch.value}; remove it, or build {arch.value} with a spec of its own")
            for field, fs in asked for i, f in enumerate(fs if isinstance(fs, list) else [])
            if (fmt := ImageFormat(f)).arches for arch, _ in _builds(data)
            if arch.value not in fmt.arches]


def file_problem(base_dir: Path, name: str, allow_outside: bool = False,
                 consent: str = CONSENT) -> str | None:
    """Why a file a spec names cannot be used: missing, or outside the spec's directory
    (``..``, an absolute path, a symlink) unless ``allow_outside``; ``consent`` says
    how to allow it where the spec is used."""
    path, why = within(base_dir, name)
    if why == "outside" and not allow_outside:
        return (f"{quote(name)} is outside the spec's directory {base_dir}; put the file "
                f"there, or {consent}")
    if why == "outside":  # allowed: it need only be a regular file
        try:
            why = None if path.resolve(strict=True).is_file() else "not a file"
        except (OSError, RuntimeError):
            why = "missing"
    if why == "missing":
        return f"file {quote(str(path))} does not exist"
    if why == "not a file":
        return f"{quote(str(path))} is not a regular file"
    return None


def _cross_field_problems(data: Mapping[str, Any], bad: set[str]) -> list[Problem]:
    problems = []
    vf = data.get("variant_formats")
    variants = data.get("variants", DEFAULTS["variants"])
    if isinstance(vf, Mapping) and isinstance(variants, list):
        for key in vf:
            if key not in variants and key in {v.value for v in Variant}:
                problems.append(Problem(f"variant_formats.{key}", "names a variant that "
                                        f"is not built; variants are: {', '.join(variants)}"))
    if "upload" in data and "upload" not in bad:
        problems += check_upload(data["upload"])
    can_fail = data.get("can_fail")
    arches = data.get("arches")
    if isinstance(can_fail, list) and isinstance(arches, list) and not {"can_fail",
                                                                        "arches"} & bad:
        problems += [Problem("can_fail", f"{quote(a)} is not among arches")
                     for a in can_fail if a not in arches]
    profiles = (data.get("boot_test") or {}).get("profiles") if isinstance(
        data.get("boot_test"), dict) else None
    variants = data.get("variants", DEFAULTS["variants"])
    if isinstance(profiles, dict) and isinstance(variants, list) and not {
            "boot_test", "variants"} & bad:
        problems += [Problem(f"boot_test.profiles.{v}", f"{quote(v)} is not among the "
                             "spec's variants; remove it or add the variant")
                     for v in profiles if v not in variants]
    return problems


def from_dict(data: Any, *, source: str = "<spec>", base_dir: Path | None = None,
              today: datetime.date | None = None, allow_outside: bool = False) -> ImageSpec:
    """Validate a raw mapping and build the frozen spec, or raise SpecError with all
    problems."""
    problems = check(data, base_dir, allow_outside=allow_outside)
    if problems:
        raise SpecError(source, problems)
    d = {**DEFAULTS, **data}
    boot = {**DEFAULTS["boot_test"], **(data.get("boot_test") or {})}
    distro = Distro.parse(d["distro"])
    auto = d.get(distro.family.auto_key)
    auto_path = None
    if auto:
        auto_path = Path(auto) if base_dir is None else (base_dir / auto).resolve()
    return ImageSpec(
        name=d["name"], version=str(d["version"]),
        release=str(d.get("release") or default_release(today)),
        distro=distro,
        arches=tuple(Arch(a) for a in d["arches"]),
        install_tree=d["install_tree"], auto_file=auto_path,
        repos=tuple(d["repos"]), disk_size=int(d["disk_size"]),
        variants=tuple(Variant(v) for v in d["variants"]),
        formats=tuple(ImageFormat(f) for f in d["formats"]),
        variant_formats=tuple((Variant(v), tuple(ImageFormat(f) for f in fs))
                              for v, fs in (d.get("variant_formats") or {}).items()),
        boot_test=BootTest.from_dict(boot),
        qcow2_compat=d["qcow2_compat"], xz_preset=int(d["xz_preset"]),
        description=d["description"], target=d.get("target"),
        can_fail=tuple(Arch(a) for a in d.get("can_fail", [])),
        scratch=bool(d.get("scratch")), skip_tag=bool(d.get("skip_tag")),
        ksurl=d.get("ksurl"), ksversion=d.get("ksversion"), source=source,
        firmware=Firmware(d["firmware"]) if d.get("firmware") else None,
        upload=UploadRequest.from_dict(d["upload"]) if d.get("upload") else None,
        release_given=bool(d.get("release")),
    )
