"""Hostile records the tools read back: a build dir's manifest.json and uploads.json,
given to ``drop`` and ``upload``. Each damaged record is refused in one line naming the
file, exit status 2, before anything is made (no mirror, no cloud call, nothing in the
build dir). Records are forged here by hand, as a user could."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.catalogue import make_sandbox, refused, run

IMAGE = "T-12-1.x86_64.qcow2"
CONTENT = b"QFI\xfb not really an image\n"


def good_manifest() -> dict[str, Any]:
    return {"nvr": "T-12-1", "spec": {"distro": "Debian-12"},
            "images": [{"file": IMAGE, "arch": "x86_64", "variant": "generic",
                        "format": "qcow2", "size": len(CONTENT),
                        "sha256": hashlib.sha256(CONTENT).hexdigest()}],
            "boot_tests": [{"arch": "x86_64", "variant": "generic", "passed": True}]}


def image(**changes: Any) -> Callable[[dict[str, Any]], Any]:
    def change(m: dict[str, Any]) -> None:
        m["images"][0].update(changes)
    return change


def field(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(m: dict[str, Any]) -> None:
        m[key] = value
    return change


def raw(data: bytes) -> Callable[[dict[str, Any]], Any]:
    return lambda m: data


def _outside(d: Path) -> None:
    (d.parent / "elsewhere.qcow2").write_bytes(CONTENT)
    (d / IMAGE).unlink()
    (d / IMAGE).symlink_to("../elsewhere.qcow2")


def _directory(d: Path) -> None:
    (d / IMAGE).unlink()
    (d / IMAGE).mkdir()


def _missing(d: Path) -> None:
    (d / IMAGE).unlink()


def twice(**changes: Any) -> Callable[[dict[str, Any]], Any]:
    """The image listed once more, with ``changes``."""
    def change(m: dict[str, Any]) -> None:
        m["images"].append({**m["images"][0], **changes})
    return change


#: (id, a change to the manifest (returns bytes to write instead, or None), or a change
#: to the build dir, and what the refusal names besides manifest.json)
MANIFESTS: list[tuple[str, Callable[[Any], Any], str]] = [
    ("not-json", raw(b"{nvr: T"), "not valid JSON"),
    ("binary", raw(bytes(range(256))), "not valid JSON"),
    ("empty", raw(b""), "not valid JSON"),
    ("a-list", raw(b"[]"), "manifest.json"),
    ("a-string", raw(b'"manifest"'), "manifest.json"),
    ("deep", raw(b"[" * 100_000 + b"]" * 100_000), "manifest.json"),
    ("huge", raw(b'{"pad": "' + b"x" * (65 << 20) + b'"}'), "over 64 MiB"),
    ("no-nvr", field("nvr", None), "nvr"),
    ("nvr-newline", field("nvr", "T-12-1\n"), "nvr"),
    ("nvr-control", field("nvr", "T-12-\x1b[31m1"), "nvr"),
    ("nvr-number", field("nvr", 12), "nvr"),
    ("no-images", field("images", None), "images"),
    ("images-object", field("images", {"file": IMAGE}), "images"),
    ("no-spec", field("spec", None), "spec"),
    ("distro-bad", field("spec", {"distro": "Windows-10"}), "distro"),
    ("distro-newline", field("spec", {"distro": "Debian-12\n"}), "distro"),
    ("boot-passed-string", field("boot_tests", [{"variant": "generic", "passed": "yes"}]),
     "passed"),
    ("boot-not-list", field("boot_tests", {"passed": True}), "boot_tests"),
    ("no-sha256", image(sha256=None), "sha256"),
    ("sha256-short", image(sha256="abc"), "sha256"),
    ("sha256-upper", image(sha256="A" * 64), "sha256"),
    ("size-string", image(size="big"), "size"),
    ("size-negative", image(size=-1), "size"),
    ("size-float", image(size=1.5), "size"),
    ("arch-unicode", image(arch="x86_６４"), "arch"),
    ("arch-newline", image(arch="x86_64\n"), "arch"),
    ("format-unknown", image(format="iso"), "format"),
    ("format-control", image(format="qcow2\x00"), "format"),
    ("variant-unknown", image(variant="ec3"), "variant"),
    ("file-dotdot", image(file="../../etc/passwd"), "file"),
    ("file-absolute", image(file="/etc/passwd"), "file"),
    ("file-newline", image(file=IMAGE + "\n"), "file"),
    ("file-subdir", image(file="logs/x.qcow2"), "file"),
    ("file-missing", _missing, "missing"),
    ("file-not-its-name", image(file="T-12-1.x86_64.raw.xz"), "is not the"),
    ("format-not-its-file", image(format="raw.xz"), "is not the"),
    ("arch-not-its-file", image(arch="i686"), "is not the"),
    ("nvr-not-its-files", field("nvr", "Other-19-7"), "is not the"),
    ("nvr-no-release", field("nvr", "T-12"), "NAME-VERSION-RELEASE"),
    ("image-twice", twice(), "twice"),
    ("file-twice-as-two-formats", twice(format="raw.xz"), "is not the"),
    ("file-twice-as-two-arches", twice(arch="i686"), "is not the"),
    ("size-float", image(size=25.0), "size"),
    ("key-twice", raw(b'{"nvr": "T-12-1", "nvr": "Other-1-1", "images": []}'), "twice"),
    ("huge-number", raw(b'{"nvr": "T-12-1", "size": ' + b"9" * 5000 + b"}"), "not valid JSON"),
    ("file-symlink-out", _outside, "outside"),
    ("file-a-directory", _directory, "not a file"),
]


def _forge(build: Path, change: Callable[[Any], Any]) -> None:
    manifest = good_manifest()
    if change in (_outside, _directory, _missing):
        change(build)
        data = None
    else:
        data = change(manifest)
    if data is None:
        data = json.dumps({k: v for k, v in manifest.items() if v is not None}).encode()
        data = data.replace(b'"sha256": null, ', b"")
    (build / "manifest.json").write_bytes(data)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    root = make_sandbox(tmp_path / "sandbox")
    build = root / "build"
    build.mkdir()
    (build / IMAGE).write_bytes(CONTENT)
    (build / "manifest.json").write_text(json.dumps(good_manifest()))
    return root


WEEKLY = ["drop", "--release", "12", "--weekly", "20261201.0", "--mirror", "mirror"]


def test_the_good_forged_build_drops_so_each_refusal_is_its_damage(sandbox: Path) -> None:
    """The control: the hand-made build dir is one a weekly drop takes (its verdict
    source says it is a local build's), and one an upload reads up to its cloud call."""
    code, _, err = run(sandbox, [*WEEKLY, "build"])
    assert code == 0, err
    readme = (sandbox / "mirror" / "weekly" / "12" / "20261201.0" / "Cloud" / "README")
    assert "local build T-12-1 (its manifest.json; not in Koji)" in readme.read_text()


def test_a_milestone_from_a_forged_build_needs_the_explicit_option(sandbox: Path) -> None:
    """The trust model: a local build's verdicts are its manifest's word. A milestone
    drop takes them only when asked, and then says so on the page and in the README."""
    final = ["drop", "--release", "12", "--milestone", "Final", "--mirror", "mirror"]
    line = refused(sandbox, [*final, "build"], "--local-builds")
    assert "not Koji's" in line or "local build" in line, line
    code, _, err = run(sandbox, [*final, "--local-builds", "build"])
    assert code == 0, err
    page = (sandbox / "mirror" / "index.html").read_text()
    assert "from local build T-12-1 (its manifest.json; not in Koji)" in page


@pytest.mark.parametrize("change,names", [(c, n) for _, c, n in MANIFESTS],
                         ids=[i for i, _, _ in MANIFESTS])
def test_a_damaged_manifest_is_refused_before_anything_is_made(
        sandbox: Path, change: Callable[[Any], Any], names: str) -> None:
    build = sandbox / "build"
    _forge(build, change)
    line = refused(sandbox, [*WEEKLY, "build"], ("manifest.json",))
    assert names in line, line
    line = refused(sandbox, ["upload", "--to", "ec2", "--region", "us-east-1", "build"],
                   ("manifest.json",))
    assert names in line, line


#: (id, uploads.json's bytes, what the refusal names)
UPLOADS: list[tuple[str, bytes, str]] = [
    ("not-json", b"{ec2: [", "not valid JSON"),
    ("a-list", b"[]", "uploads.json"),
    ("ec2-object", b'{"version": 1, "ec2": {"region": "us-east-1"}}', "ec2"),
    ("record-no-image", b'{"version": 1, "ec2": [{"arch": "x86_64", "region": "us-east-1"}]}',
     "image_id"),
    ("record-arch", b'{"version": 1, "ec2": [{"arch": "sparc", "region": "us-east-1", '
     b'"image_id": "ami-1"}]}', "arch"),
    ("record-newline", b'{"version": 1, "ec2": [{"arch": "x86_64", "region": "us-east-1\\n", '
     b'"image_id": "ami-1"}]}', "region"),
    ("version-string", b'{"version": "one"}', "version"),
    ("binary", bytes(range(256)), "not valid JSON"),
]


@pytest.mark.parametrize("content,names", [(c, n) for _, c, n in UPLOADS],
                         ids=[i for i, _, _ in UPLOADS])
def test_a_damaged_uploads_record_is_refused_before_any_cloud_call(
        sandbox: Path, content: bytes, names: str) -> None:
    """No cloud is reachable here: had the upload started, it would fail (exit 1) on its
    first call instead of this refusal (exit 2)."""
    (sandbox / "build" / "uploads.json").write_bytes(content)
    line = refused(sandbox, ["upload", "--to", "ec2", "--region", "us-east-1", "build"],
                   ("uploads.json",))
    assert names in line, line


def test_a_tilde_version_is_a_file_name_the_build_writes_and_a_drop_takes(
        sandbox: Path) -> None:
    """``version: 40~beta`` is valid in a spec (RPM's pre-release mark): the manifest
    the build writes must read back."""
    build = sandbox / "build"
    name = "T-40~beta-1.x86_64.qcow2"
    (build / IMAGE).rename(build / name)
    manifest = good_manifest()
    manifest["nvr"] = "T-40~beta-1"
    manifest["images"][0]["file"] = name
    (build / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run(sandbox, [*WEEKLY, "build"])
    assert code == 0, err
    assert (sandbox / "mirror" / "weekly" / "12" / "20261201.0" / "Cloud" / "x86_64" /
            "generic" / name).is_file()
