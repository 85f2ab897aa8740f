"""The image spec: one JSON Schema, one frozen typed object, and the two ways to read it.

A spec comes from a YAML file (this project's format) or from an existing
``koji image-build --config`` INI file, so users of Koji's built-in command can switch
without rewriting their configs. Every problem is collected and reported at once, each
naming its field and what is allowed there; nothing is created while reading a spec.
"""

from __future__ import annotations

import configparser
import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import ParseResult, urlparse

import jsonschema
import yaml

from .arches import Arch
from .errors import Problem, SpecError
from .formats import ImageFormat, from_koji_name
from .variants import Variant

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"
VR_RE = r"^[A-Za-z0-9][A-Za-z0-9._+~]*$"
DISTRO_RE = r"^(Fedora|Debian)-([0-9]+|rawhide)$"
URL_SCHEMES = ("http", "https", "ftp", "file")

REGION_RE = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"
CLOUD_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

#: Where a build's images go after it is imported: the spec's ``upload`` and the hub's
#: ``cloudImageUpload`` options. Credentials never appear here; the builder has them.
UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "ec2": {
            "type": "object",
            "additionalProperties": False,
            "description": "upload the ec2 variant's raw.xz as an AMI",
            "properties": {
                "regions": {"type": "array", "minItems": 1, "uniqueItems": True,
                            "items": {"type": "string", "pattern": REGION_RE},
                            "description": "default: every region of the builder's "
                                           "[ec2] regions; the first is the home region"},
            },
        },
        "glance": {
            "type": "object",
            "additionalProperties": False,
            "required": ["clouds"],
            "description": "upload the generic variant's qcow2 to OpenStack Glance",
            "properties": {
                "clouds": {"type": "array", "minItems": 1, "uniqueItems": True,
                           "items": {"type": "string", "pattern": CLOUD_RE},
                           "description": "clouds.yaml names known to the builder"},
            },
        },
        "public": {"type": "boolean",
                   "description": "release build: public launch permission on EC2"},
    },
}

#: Distro versions this project knows how to install (see ozcompat for Oz's side).
SUPPORTED = {"Debian": range(7, 14), "Fedora": range(7, 45)}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "koji-image-plugin image spec",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "version", "distro", "arches", "install_tree"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_RE, "maxLength": 128,
                 "description": "image name, e.g. Fedora-Cloud-Base"},
        "version": {"type": ["string", "integer"], "pattern": VR_RE,
                    "description": "image version, e.g. 19 (no dashes)"},
        "release": {"type": ["string", "integer"], "pattern": VR_RE,
                    "description": "release; default: today's date, e.g. 20261126.0"},
        "description": {"type": "string"},
        "distro": {"type": "string", "pattern": DISTRO_RE,
                   "description": "Fedora-NN, Fedora-rawhide or Debian-NN"},
        "arches": {"type": "array", "minItems": 1, "uniqueItems": True,
                   "items": {"enum": [a.value for a in Arch]}},
        "install_tree": {"type": "string", "minLength": 1,
                         "description": "install tree URL; $arch becomes x86_64/i686, "
                                        "$basearch the distro's name (amd64, i386, ...)"},
        "kickstart": {"type": "string", "minLength": 1,
                      "description": "kickstart file (Fedora), relative to the spec"},
        "preseed": {"type": "string", "minLength": 1,
                    "description": "preseed file (Debian), relative to the spec"},
        "repos": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "disk_size": {"type": "integer", "minimum": 1, "maximum": 2048,
                      "description": "disk size in GiB"},
        "variants": {"type": "array", "minItems": 1, "uniqueItems": True,
                     "items": {"enum": [v.value for v in Variant]}},
        "formats": {"type": "array", "minItems": 1, "uniqueItems": True,
                    "items": {"enum": [f.value for f in ImageFormat]}},
        "variant_formats": {
            "type": "object",
            "propertyNames": {"enum": [v.value for v in Variant]},
            "additionalProperties": {"type": "array", "minItems": 1, "uniqueItems": True,
                                     "items": {"enum": [f.value for f in ImageFormat]}},
        },
        "boot_test": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "timeout": {"type": "integer", "minimum": 30, "maximum": 7200},
            },
        },
        "qcow2_compat": {"enum": ["0.10", "1.1"]},
        "xz_preset": {"type": "integer", "minimum": 0, "maximum": 9},
        "target": {"type": "string", "pattern": NAME_RE,
                   "description": "Koji build target (hub builds)"},
        "can_fail": {"type": "array", "items": {"enum": [a.value for a in Arch]},
                     "description": "arches whose failure does not fail the build "
                                    "(hub builds)"},
        "scratch": {"type": "boolean", "description": "scratch build: results kept "
                    "in the task, no build imported (hub builds)"},
        "skip_tag": {"type": "boolean", "description": "do not tag the build into the "
                     "target's destination tag (hub builds)"},
        "ksurl": {"type": "string", "minLength": 1,
                  "description": "SCM URL to check the kickstart/preseed out of, e.g. "
                                 "git+https://host/repo.git#ref; kickstart is then a "
                                 "path inside it (hub builds)"},
        "upload": UPLOAD_SCHEMA,
    },
}

DEFAULTS: dict[str, Any] = {
    "disk_size": 10,
    "variants": ["generic"],
    "formats": ["qcow2", "raw.tar.xz"],
    "boot_test": {"enabled": True, "timeout": 600},
    "qcow2_compat": "1.1",
    "xz_preset": 6,
    "repos": [],
    "description": "",
}


@dataclass(frozen=True)
class Distro:
    family: str
    version: str

    @classmethod
    def parse(cls, text: str) -> Distro:
        family, _, version = text.partition("-")
        return cls(family, version)

    def __str__(self) -> str:
        return f"{self.family}-{self.version}"


@dataclass(frozen=True)
class BootTest:
    enabled: bool = True
    timeout: int = 600


@dataclass(frozen=True)
class UploadRequest:
    """Where to upload a build's images (the ``upload`` of a spec or a hub request)."""

    ec2: bool = False
    #: () means the builder's configured regions
    ec2_regions: tuple[str, ...] = ()
    glance: tuple[str, ...] = ()
    public: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UploadRequest:
        ec2 = data.get("ec2")
        return cls(ec2=ec2 is not None, ec2_regions=tuple((ec2 or {}).get("regions", ())),
                   glance=tuple((data.get("glance") or {}).get("clouds", ())),
                   public=bool(data.get("public")))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.ec2:
            out["ec2"] = {"regions": list(self.ec2_regions)} if self.ec2_regions else {}
        if self.glance:
            out["glance"] = {"clouds": list(self.glance)}
        if self.public:
            out["public"] = True
        return out


def check_upload(data: Any, where: str = "upload") -> list[Problem]:
    """Every problem with an upload request, each named under ``where``."""
    validator = jsonschema.Draft202012Validator(UPLOAD_SCHEMA)
    problems = [p for e in validator.iter_errors(data) for p in _explain(e)]
    problems = [Problem(f"{where}.{p.field}" if p.field != "(top level)" else where,
                        p.message) for p in problems]
    if isinstance(data, Mapping) and not problems and not ({"ec2", "glance"} & set(data)):
        problems.append(Problem(where, "names no cloud; add ec2 and/or glance"))
    return problems


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
    upload: UploadRequest | None = None
    source: str = "<spec>"
    #: False when the release is the date-based default (local mode then picks the next
    #: free ``DATE.N``, as Koji's getNextRelease does on a hub)
    release_given: bool = True

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    def formats_for(self, variant: Variant) -> tuple[ImageFormat, ...]:
        return dict(self.variant_formats).get(variant, self.formats)

    def tree_for(self, arch: Arch) -> str:
        base = arch.deb_arch if self.distro.family == "Debian" else arch.rpm_basearch
        return self.install_tree.replace("$basearch", base).replace("$arch", arch.value)

    def file_name(self, arch: Arch, variant: Variant, fmt: ImageFormat) -> str:
        """Fedora's naming: NAME-VERSION-RELEASE.ARCH.EXT, the variant tag in the name."""
        name = f"{self.name}-{variant.name_tag}" if variant.name_tag else self.name
        return f"{name}-{self.version}-{self.release}.{arch.value}.{fmt.extension}"

    def as_dict(self) -> dict[str, Any]:
        """The resolved spec, in the YAML spec's own vocabulary (it validates again)."""
        out: dict[str, Any] = {
            "name": self.name, "version": self.version, "release": self.release,
            "distro": str(self.distro), "arches": [a.value for a in self.arches],
            "install_tree": self.install_tree, "repos": list(self.repos),
            "disk_size": self.disk_size, "variants": [v.value for v in self.variants],
            "formats": [f.value for f in self.formats],
            "boot_test": {"enabled": self.boot_test.enabled,
                          "timeout": self.boot_test.timeout},
            "qcow2_compat": self.qcow2_compat, "xz_preset": self.xz_preset,
            "description": self.description,
        }
        if self.variant_formats:
            out["variant_formats"] = {v.value: [f.value for f in fs]
                                      for v, fs in self.variant_formats}
        if self.auto_file is not None:
            key = "preseed" if self.distro.family == "Debian" else "kickstart"
            out[key] = str(self.auto_file)
        if self.target:
            out["target"] = self.target
        if self.can_fail:
            out["can_fail"] = [a.value for a in self.can_fail]
        if self.scratch:
            out["scratch"] = True
        if self.skip_tag:
            out["skip_tag"] = True
        if self.ksurl:
            out["ksurl"] = self.ksurl
        if self.upload:
            out["upload"] = self.upload.as_dict()
        return out

    def output_names(self) -> list[str]:
        """Every file a build of this spec publishes."""
        return [*(self.file_name(a, v, f) for a in self.arches for v in self.variants
                  for f in self.formats_for(v)), "CHECKSUM", "manifest.json"]

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

def parse_url(text: str) -> ParseResult | None:
    """The parsed URL, or None where urllib cannot read it (e.g. ``http://[bad``)."""
    try:
        url = urlparse(text)
        url.hostname  # noqa: B018 - raises for some malformed host parts
    except ValueError:
        return None
    return url


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _explain(err: jsonschema.ValidationError) -> list[Problem]:
    """The problems behind one schema error (an unknown-fields error names several)."""
    if err.validator == "additionalProperties":
        schema = err.schema if isinstance(err.schema, dict) else {}
        allowed = ", ".join(sorted(schema.get("properties", {})))
        prefix = f"{_where(err.absolute_path)}." if err.absolute_path else ""
        instance: Any = err.instance
        extras = sorted(set(instance) - set(schema.get("properties", {})))
        return [Problem(prefix + str(x), f"unknown field; allowed fields: {allowed}")
                for x in extras]
    return [_explain_one(err)]


def _explain_one(err: jsonschema.ValidationError) -> Problem:
    where = _where(err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    v = err.validator
    value: Any = err.validator_value
    if v == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        name = missing[0] if missing else err.message
        return Problem(f"{where}.{name}" if err.absolute_path else name,
                       "is required; add it to the spec")
    if v == "enum":
        return Problem(where, f"{err.instance!r} is not allowed; use one of: "
                       + ", ".join(str(x) for x in value))
    if v == "propertyNames":
        return Problem(where, f"{err.instance!r} has an unknown key; keys must be one of: "
                       + ", ".join(str(x) for x in value.get("enum", [])))
    if v == "pattern":
        hint = schema.get("description", f"must match {err.validator_value}")
        return Problem(where, f"{err.instance!r} is not valid: {hint}")
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        if isinstance(err.instance, float) and "string" in str(want):
            return Problem(where, f"{err.instance!r} was read as a number; quote it, "
                           f"e.g. '{err.instance}'")
        return Problem(where, f"must be of type {want}, not {type(err.instance).__name__}")
    if v in ("minimum", "maximum"):
        return Problem(where, f"{err.instance} is out of range: "
                       f"{'at least' if v == 'minimum' else 'at most'} {err.validator_value}")
    if v == "minItems":
        return Problem(where, "must list at least one item")
    if v == "uniqueItems":
        return Problem(where, "lists an item twice; list each once")
    if v == "minLength":
        return Problem(where, "must not be empty")
    return Problem(where, err.message)


def check(data: Any, base_dir: Path | None) -> list[Problem]:
    """Every problem with a raw spec mapping: schema first, then what a schema can't say."""
    if not isinstance(data, Mapping):
        return [Problem("(top level)", "a spec must be a mapping of fields to values")]
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = [p for e in validator.iter_errors(dict(data)) for p in _explain(e)]
    bad = {p.field.split(".")[0].split("[")[0] for p in problems}

    distro = data.get("distro")
    if "distro" not in bad and isinstance(distro, str):
        d = Distro.parse(distro)
        if d.version != "rawhide" and int(d.version) not in SUPPORTED[d.family]:
            r = SUPPORTED[d.family]
            problems.append(Problem("distro", f"{distro} is not supported; {d.family} "
                                    f"versions {r.start} to {r.stop - 1} are"))
        if d.family == "Debian" and d.version == "rawhide":
            problems.append(Problem("distro", "rawhide is a Fedora release; use Debian-NN"))
        if d.family == "Fedora" and "preseed" in data:
            problems.append(Problem("preseed", "Fedora installs take a kickstart; "
                                    "use kickstart instead"))
        if d.family == "Debian" and "kickstart" in data:
            problems.append(Problem("kickstart", "Debian installs take a preseed; "
                                    "use preseed instead"))
        if d.family == "Fedora" and "kickstart" not in data:
            problems.append(Problem("kickstart", "is required for Fedora; give the "
                                    "kickstart file's path"))

    tree = data.get("install_tree")
    if "install_tree" not in bad and isinstance(tree, str):
        url = parse_url(tree)
        if url is None or url.scheme not in URL_SCHEMES:
            problems.append(Problem("install_tree", f"{tree!r} is not a URL; use one of "
                                    f"{', '.join(s + '://' for s in URL_SCHEMES)}"))
        elif url.hostname in ("localhost", "127.0.0.1"):
            problems.append(Problem("install_tree", "the guest cannot reach localhost; use "
                                    "the host's address on the libvirt network or file://"))
    for i, repo in enumerate(data.get("repos") or []):
        if isinstance(repo, str) and getattr(parse_url(repo), "scheme", "") not in URL_SCHEMES:
            problems.append(Problem(f"repos[{i}]", f"{repo!r} is not a URL"))

    if base_dir is not None and "ksurl" in data:
        problems.append(Problem("ksurl", "an SCM kickstart is checked out by the hub "
                                "build; for a local build check it out yourself and set "
                                "kickstart to the file's path"))
    for key in ("kickstart", "preseed"):
        value = data.get(key)
        if (key not in bad and isinstance(value, str) and base_dir is not None
                and "ksurl" not in data):
            path = (base_dir / value)
            if not path.is_file():
                problems.append(Problem(key, f"file {str(path)!r} does not exist"))

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
    if isinstance(can_fail, list) and isinstance(arches, list):
        for a in can_fail:
            if a not in arches:
                problems.append(Problem("can_fail", f"{a!r} is not among arches"))
    return problems


def from_dict(data: Any, *, source: str = "<spec>", base_dir: Path | None = None,
              today: datetime.date | None = None) -> ImageSpec:
    """Validate a raw mapping and build the frozen spec, or raise SpecError with all
    problems."""
    problems = check(data, base_dir)
    if problems:
        raise SpecError(source, problems)
    d = {**DEFAULTS, **data}
    boot = {**DEFAULTS["boot_test"], **(data.get("boot_test") or {})}
    auto = d.get("kickstart") or d.get("preseed")
    auto_path = None
    if auto:
        auto_path = Path(auto) if base_dir is None else (base_dir / auto).resolve()
    return ImageSpec(
        name=d["name"], version=str(d["version"]),
        release=str(d.get("release") or default_release(today)),
        distro=Distro.parse(d["distro"]),
        arches=tuple(Arch(a) for a in d["arches"]),
        install_tree=d["install_tree"], auto_file=auto_path,
        repos=tuple(d["repos"]), disk_size=int(d["disk_size"]),
        variants=tuple(Variant(v) for v in d["variants"]),
        formats=tuple(ImageFormat(f) for f in d["formats"]),
        variant_formats=tuple((Variant(v), tuple(ImageFormat(f) for f in fs))
                              for v, fs in (d.get("variant_formats") or {}).items()),
        boot_test=BootTest(enabled=bool(boot["enabled"]), timeout=int(boot["timeout"])),
        qcow2_compat=d["qcow2_compat"], xz_preset=int(d["xz_preset"]),
        description=d["description"], target=d.get("target"),
        can_fail=tuple(Arch(a) for a in d.get("can_fail", [])),
        scratch=bool(d.get("scratch")), skip_tag=bool(d.get("skip_tag")),
        ksurl=d.get("ksurl"), source=source,
        upload=UploadRequest.from_dict(d["upload"]) if d.get("upload") else None,
        release_given=bool(d.get("release")),
    )


# -- reading files ------------------------------------------------------------------

#: Koji image-build INI keys this project maps, and those it accepts but does not use in
#: a local build (they matter to a hub build and are kept for it).
KOJI_INI_KEYS = {"name", "version", "release", "target", "install_tree", "arches",
                 "format", "kickstart", "ksurl", "ksversion", "distro", "disk_size",
                 "repo", "can_fail", "variants", "scratch", "skip_tag"}
BOOLEANS = {"true": True, "yes": True, "on": True, "1": True,
            "false": False, "no": False, "off": False, "0": False}
KOJI_INI_IGNORED = {"specfile", "noverifyssl", "background",
                    "wait", "nowait", "noprogress", "ova_option", "factory_parameter"}


def _split(value: str) -> list[str]:
    return [x.strip() for x in re.split(r"[,\s]+", value) if x.strip()]


def ini_to_dict(text: str, source: str) -> dict[str, Any]:
    """Translate a ``koji image-build --config`` file into this project's spec mapping."""
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise SpecError(source, [Problem("(file)", str(exc).splitlines()[0])]) from exc
    if not parser.has_section("image-build"):
        raise SpecError(source, [Problem("[image-build]", "section is missing; Koji's "
                                         "image-build config has one [image-build] section")])
    sec = dict(parser.items("image-build"))
    problems = []
    out: dict[str, Any] = {}
    for key, value in sec.items():
        if key in KOJI_INI_IGNORED:
            continue
        if key not in KOJI_INI_KEYS:
            problems.append(Problem(f"[image-build].{key}", "unknown key; Koji's "
                                    "image-build keys are: "
                                    + ", ".join(sorted(KOJI_INI_KEYS | KOJI_INI_IGNORED))))
            continue
        if key in ("name", "version", "release", "target", "install_tree", "distro",
                   "kickstart"):
            out[key] = value.strip()
        elif key == "arches":
            out["arches"] = Arch.parse_each(list(_split(value)))
        elif key == "can_fail":
            out["can_fail"] = [Arch.parse(a).value if a in ("i386", "i586") else a
                               for a in _split(value)]
        elif key == "format":
            out["formats"] = [from_koji_name(f) for f in _split(value)]
        elif key == "repo":
            out["repos"] = _split(value)
        elif key == "variants":
            out["variants"] = _split(value)
        elif key == "disk_size":
            try:
                out["disk_size"] = int(value)
            except ValueError:
                problems.append(Problem("[image-build].disk_size",
                                        f"{value!r} is not a whole number of GiB"))
        elif key == "ksurl":
            out["ksurl"] = value.strip()
        elif key in ("scratch", "skip_tag"):
            flag = value.strip().lower()
            if flag not in BOOLEANS:
                problems.append(Problem(f"[image-build].{key}", f"{value!r} is not a "
                                        "yes/no value; use true or false"))
            else:
                out[key] = BOOLEANS[flag]
        elif key == "ksversion":
            continue
    if problems:
        raise SpecError(source, problems)
    auto_file_key(out)
    return out


def auto_file_key(data: dict[str, Any]) -> str:
    """The key the install's answer file goes by: ``preseed`` for Debian, ``kickstart``
    otherwise. A Debian ``kickstart`` (Koji's only name for it) is moved there."""
    debian = str(data.get("distro", "")).startswith("Debian")
    if debian and "kickstart" in data:
        data["preseed"] = data.pop("kickstart")
    return "preseed" if debian else "kickstart"


def read(path: Path) -> Any:
    """The raw mapping of a YAML spec or a Koji image-build INI file (by its
    ``[image-build]``), not yet validated."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(source, [Problem("(file)", f"cannot read it: {exc.strerror}")]) from exc
    if re.search(r"^\s*\[image-build\]\s*$", text, re.M):
        return ini_to_dict(text, source)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise SpecError(source, [Problem(where, f"not valid YAML: "
                                 f"{getattr(exc, 'problem', exc)}")]) from exc


def load(path: Path, today: datetime.date | None = None) -> ImageSpec:
    """Read and check a spec file; relative file names in it are relative to it."""
    return from_dict(read(path), source=str(path), base_dir=path.parent.resolve(),
                     today=today)
