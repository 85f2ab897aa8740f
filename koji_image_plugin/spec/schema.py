"""The image spec's JSON Schema and its defaults: the one declaration of what a spec (a
YAML file, a Koji INI file, the hub's request options) may say."""

from __future__ import annotations

from typing import Any

from .arches import Arch
from .bootprofiles import BootProfile
from .distro import Family
from .firmware import Firmware
from .formats import ImageFormat
from .upload import UPLOAD_SCHEMA
from .variants import Variant

#: Patterns end in \Z: "$" also matches before a final newline, which must not pass.
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._+-]*\Z"
VR_RE = r"^[A-Za-z0-9][A-Za-z0-9._+~]*\Z"
DISTRO_RE = rf"^({'|'.join(f.value for f in Family)})-([0-9]+|rawhide)\Z"
#: a build's NAME-VERSION-RELEASE as a record gives it
NVR_RE = r"^[A-Za-z0-9][A-Za-z0-9._+~-]*\Z"
#: text for people: any character but the control ones (new line and tab allowed)
TEXT_RE = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*\Z"
MAX_URL, MAX_PATH = 2048, 4096
#: a version or release given as a number: a plain count of at most 15 digits
MAX_NUMBER = 10 ** 15
#: a file name that is safe as a path component: no "/", not "." or ".."
FILE_NAME_RE = r"^[A-Za-z0-9_+-][A-Za-z0-9._+~-]*\Z"
#: a leftover path or glob: absolute, no "..", only characters a shell glob needs (the
#: boot test expands it inside the guest)
LEFTOVER_RE = r"^(/(?!\.\.(/|\Z))[A-Za-z0-9_.*?@+:,=~\[\]-]+)+/?\Z"
#: a login name (useradd's rule)
USER_RE = r"^[a-z_][a-z0-9_-]{0,31}\Z"

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "koji-image-plugin image spec",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "version", "distro", "arches", "install_tree"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_RE, "maxLength": 128,
                 "description": "image name, e.g. Fedora-Cloud-Base"},
        "version": {"type": ["string", "integer"], "pattern": VR_RE, "maxLength": 64,
                    "minimum": 0, "maximum": MAX_NUMBER,
                    "description": "image version, e.g. 19 (no dashes)"},
        "release": {"type": ["string", "integer"], "pattern": VR_RE, "maxLength": 64,
                    "minimum": 0, "maximum": MAX_NUMBER,
                    "description": "release; default: today's date, e.g. 20261126.0"},
        "description": {"type": "string", "maxLength": 4096, "pattern": TEXT_RE,
                        "description": "text for people, without control characters "
                                       "(new lines and tabs are fine)"},
        "distro": {"type": "string", "pattern": DISTRO_RE, "maxLength": 64,
                   "description": "Fedora-NN, Fedora-rawhide or Debian-NN"},
        "arches": {"type": "array", "minItems": 1, "uniqueItems": True,
                   "items": {"enum": [a.value for a in Arch]}},
        "firmware": {"enum": [f.value for f in Firmware],
                     "description": "what the image boots with: bios (MBR), uefi (GPT + "
                                    "EFI system partition) or hybrid (GPT with a BIOS boot "
                                    "partition and an ESP); default: "
                                    + ", ".join(f"{a.value} {a.default_firmware.value}"
                                                for a in Arch)},
        "install_tree": {"type": "string", "minLength": 1, "maxLength": MAX_URL,
                         "description": "install tree URL; $arch becomes x86_64/i686, "
                                        "$basearch the distro's name (amd64, i386, ...)"},
        "kickstart": {"type": "string", "minLength": 1, "maxLength": MAX_PATH,
                      "description": "kickstart file (Fedora), relative to the spec"},
        "preseed": {"type": "string", "minLength": 1, "maxLength": MAX_PATH,
                    "description": "preseed file (Debian), relative to the spec"},
        "ksversion": {"type": "string", "pattern": "^[A-Za-z0-9]+$", "maxLength": 16,
                      "description": "kickstart syntax version, e.g. F39 (Fedora; "
                                     "default: pykickstart's newest)"},
        "repos": {"type": "array", "maxItems": 64,
                  "items": {"type": "string", "minLength": 1, "maxLength": MAX_URL}},
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
                "timeout": {"type": "integer", "minimum": 30, "maximum": 7200,
                            "description": "seconds each boot may take to a login and "
                                           "its checks"},
                "profiles": {
                    "type": "object",
                    "propertyNames": {"enum": [v.value for v in Variant]},
                    "additionalProperties": {
                        "type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"enum": [p.value for p in BootProfile]}},
                    "description": "the clouds each variant is booted as (default: "
                                   + "; ".join(f"{v.value}: "
                                               + ", ".join(p.value for p in v.profiles)
                                               for v in Variant) + ")"},
                "leftovers": {
                    "type": "array", "maxItems": 100, "uniqueItems": True,
                    "items": {"type": "string", "pattern": LEFTOVER_RE, "maxLength": 255},
                    "description": "absolute paths or globs that must not exist in a "
                                   "booted image (build leftovers)"},
                "user": {"type": "string", "pattern": USER_RE,
                         "description": "the image's cloud user to log in as (default: "
                                        "the one cloud-init reports on the console, else "
                                        "the distro's)"},
            },
        },
        "qcow2_compat": {"enum": ["0.10", "1.1"]},
        "xz_preset": {"type": "integer", "minimum": 0, "maximum": 9},
        "target": {"type": "string", "pattern": NAME_RE, "maxLength": 255,
                   "description": "Koji build target (hub builds)"},
        "can_fail": {"type": "array", "items": {"enum": [a.value for a in Arch]},
                     "description": "arches whose failure does not fail the build "
                                    "(hub builds)"},
        "scratch": {"type": "boolean", "description": "scratch build: results kept "
                    "in the task, no build imported (hub builds)"},
        "skip_tag": {"type": "boolean", "description": "do not tag the build into the "
                     "target's destination tag (hub builds)"},
        "ksurl": {"type": "string", "minLength": 1, "maxLength": MAX_URL,
                  "description": "SCM URL to check the kickstart/preseed out of, e.g. "
                                 "git+https://host/repo.git#ref; kickstart is then a "
                                 "path inside it (hub builds)"},
        "repo_id": {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER,
                    "description": "the build tag's Koji repo to install from (READY or "
                                   "EXPIRED); default: its current one (hub builds)"},
        "upload": UPLOAD_SCHEMA,
    },
}

DEFAULTS: dict[str, Any] = {
    "disk_size": 10,
    "variants": ["generic"],
    "formats": ["qcow2", "raw.tar.xz"],
    "boot_test": {"enabled": True, "timeout": 600, "leftovers": [
        # installers' logs and kickstarts
        "/var/log/*installer*", "/var/log/anaconda", "/root/anaconda-ks.cfg",
        "/root/original-ks.cfg",
        # package managers' indexes and caches
        "/var/lib/apt/lists/*_Packages*", "/var/lib/apt/lists/*_Sources*",
        "/var/cache/apt/archives/*.deb", "/var/cache/apt/*.bin", "/var/cache/dnf/*",
        # a builder's shell
        "/root/.bash_history"]},
    "qcow2_compat": "1.1",
    "xz_preset": 6,
    "repos": [],
    "description": "",
}

