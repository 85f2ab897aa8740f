"""The hub request rules and the result shapes the Koji plugins share (no hub needed)."""

import koji.daemon
import pytest

from koji_image_plugin.errors import KojiImageError
from koji_image_plugin.koji import archivetypes, record, request
from koji_image_plugin.koji.info import format_info
from koji_image_plugin.spec.formats import ImageFormat

GOOD = {"distro": "Debian-12", "install_tree": "http://10.0.0.1/tree/$arch/"}


def fields(problems):
    return sorted(p.field for p in problems)


def test_a_good_request_passes_with_koji_arch_spellings():
    data, problems = request.build_request("Cloud", "12", "f19", "x86_64 i386", GOOD)
    assert problems == []
    assert data["arches"] == ["x86_64", "i686"]
    assert data["target"] == "f19"


def test_every_problem_is_reported_at_once_naming_its_field():
    opts = {"distro": "Fedora-19", "install_tree": "file:///srv/tree",
            "kickstart": "/etc/passwd", "repos": ["file:///repo", "http://ok/"],
            "formats": ["iso"], "colour": "blue", "name": "again"}
    _, problems = request.build_request("bad name", "1-2", "", ["ppc64le"], opts)
    assert fields(problems) == ["arches[0]", "colour", "formats[0]", "install_tree",
                                "kickstart", "name", "opts.name", "repos[0]", "target",
                                "version"]
    text = "; ".join(str(p) for p in problems)
    assert "file:// is a path on the builder" in text
    assert "'ppc64le' is not allowed; use one of: x86_64, i686, aarch64" in text


@pytest.mark.parametrize("arches,opts,field", [
    (7, GOOD, "arches"),
    ("x86_64", "not a mapping", "opts"),
    ("x86_64", dict(GOOD, ksurl="https://example.com/ks.git"), "ksurl"),
    ("x86_64", dict(GOOD, ksurl="git+https://example.com/ks.git#f19",
                    preseed="../../etc/shadow"), "preseed"),
    ("x86_64", dict(GOOD, preseed="cli-cloud-image/../../x"), "preseed"),
    ("x86_64", dict(GOOD, preseed="cli-cloud-image/../NAME"), "preseed"),
    ("x86_64", dict(GOOD, install_tree="http://[bad"), "install_tree"),
    ("x86_64", dict(GOOD, repos=["http://[bad"]), "repos[0]"),
    ("x86_64", dict(GOOD, scratch="yes"), "scratch"),
    ("x86_64 i386", dict(GOOD, firmware="uefi"), "firmware"),
    ("aarch64", dict(GOOD, firmware="hybrid"), "firmware"),
])
def test_bad_requests_name_the_field(arches, opts, field):
    _, problems = request.build_request("Cloud", "12", "f19", arches, opts)
    assert field in fields(problems), problems


def test_a_local_kickstart_is_checked_with_each_arch_s_firmware(tmp_path):
    (tmp_path / "f.ks").write_text("part / --grow\n%packages\nkernel\n%end\n")
    data = {"name": "Cloud", "version": "39", "target": "f39", "distro": "Fedora-39",
            "install_tree": "http://t/$arch/", "kickstart": "f.ks"}
    assert request.prepare({**data, "arches": ["i686"]}, tmp_path)[1] == []
    _, problems = request.prepare({**data, "arches": ["i686"], "firmware": "bios"},
                                  tmp_path)
    assert problems == []
    _, problems = request.prepare({**data, "arches": ["x86_64"], "firmware": "uefi"},
                                  tmp_path)
    assert [p.field for p in problems] == ["kickstart"]
    assert "firmware uefi boots from partitions this kickstart does not make" in \
        problems[0].message


def test_uploaded_and_scm_kickstarts_are_accepted():
    for opts in (dict(GOOD, preseed="cli-cloud-image/1732.5.abcd/debian.preseed"),
                 dict(GOOD, ksurl="git+https://example.com/ks.git#f19",
                      preseed="cloud/debian.preseed")):
        assert request.build_request("Cloud", "12", "f19", "x86_64", opts)[1] == []


def test_scm_schemes_match_kojis():
    kojis = sorted(s for schemes in koji.daemon.SCM.types.values() for s in schemes)
    assert sorted(request.SCM_SCHEMES) == kojis


def test_archive_types_follow_the_hubs_longest_extension_rule():
    assert archivetypes.archive_type("Cloud-12-1.x86_64.raw.xz") == "raw-xz"
    assert archivetypes.archive_type("Cloud-12-1.x86_64.raw.tar.xz") == "tar"
    assert archivetypes.archive_type("Cloud-12-1.x86_64.qcow2") == "qcow2"
    assert archivetypes.archive_type("Cloud-12-20261126.0.x86_64.CHECKSUM.sha256") == \
        "checksum"
    assert archivetypes.archive_type("Cloud-12-1.x86_64.manifest.json") == "json"
    assert archivetypes.archive_type("disk.raw.zst") is None
    assert archivetypes.archive_type("Cloud-GCE-12-1.x86_64.tar.gz") == "tar"
    assert archivetypes.archive_type("Cloud-12-1.x86_64.vagrant.libvirt.box") == "box"
    assert archivetypes.archive_type("Cloud-12-1.x86_64.vhdfixed.xz") == "vhdfixed"
    with pytest.raises(KojiImageError, match=r"^files: a.zst, b.img: Koji has no archive"):
        archivetypes.check_importable(["ok.qcow2", "b.img", "a.zst"])


def test_records_merge_per_arch_into_build_extra():
    extra = record.merge_record({"other": 1}, "x86_64", {"images": []})
    extra = record.merge_record(extra, "i686", {"images": [1]})
    assert extra == {"other": 1, "cloud_image": {"version": 1, "arches": {
        "x86_64": {"images": []}, "i686": {"images": [1]}}}}


def test_format_info_lists_images_and_verdicts():
    info = {"build": {"nvr": "Cloud-12-1", "state": "COMPLETE"}, "task_id": 5,
            "arches": {"x86_64": {"images": [{"file": "a.qcow2", "size": 3 << 20,
                                              "sha256": "ab" * 32}],
                                  "boot_tests": [
                                      {"variant": "generic", "passed": True, "seconds": 80.1},
                                      {"variant": "generic", "profile": "openstack",
                                       "firmware": "ovmf",
                                       "passed": False, "seconds": 90.0, "checks": [
                                           {"name": "ssh-login", "passed": True,
                                            "detail": "logged in"},
                                           {"name": "root-grew", "passed": False,
                                            "detail": "root filesystem 1.96 GiB"}]}]},
                       "i686": {"error": "FAILED"}}}
    lines = format_info(info)
    assert lines[0] == "Build: Cloud-12-1 (COMPLETE)"
    assert "i686: FAILED: FAILED" in lines
    assert f"  a.qcow2  3.0 MiB  sha256:{'ab' * 32}" in lines
    # a record of before the profiles and firmware is a NoCloud boot under SeaBIOS
    assert "  boot test generic as NoCloud seed under SeaBIOS: passed (80.1 s)" in lines
    at = lines.index("  boot test generic as OpenStack config drive under OVMF (UEFI): "
                     "FAILED (90.0 s)")
    assert lines[at + 1] == "    FAIL root-grew: root filesystem 1.96 GiB"


def test_every_file_a_build_imports_has_a_koji_archive_type():
    from koji_image_plugin.spec.image import from_dict
    base = {"name": "Cloud", "version": "1", "release": "1", "arches": ["x86_64"],
            "install_tree": "http://h/t/", "variants": ["generic", "ec2"],
            "formats": [f.value for f in ImageFormat]}
    for extra, auto in (({"distro": "Debian-12"}, "preseed.cfg"),
                        ({"distro": "Fedora-19", "kickstart": "f.ks"}, "ks")):
        exts = record.import_extensions(from_dict({**base, **extra}))
        archivetypes.check_importable(f"Cloud-1-1.x86_64.{e}" for e in exts)
        assert auto in exts


def test_the_formats_archive_types_are_kojis_and_the_stand_in_serves_the_same_table():
    from tests.kojistub import core

    plugin_types = {name for name, *_ in archivetypes.PLUGIN_TYPES}
    for fmt in ImageFormat:
        name = f"Cloud-1-1.x86_64.{fmt.extension}"
        assert archivetypes.archive_type(name) == fmt.koji_archive_type, fmt
        if fmt.koji_archive_type in plugin_types:  # a stock hub lacks it until it is added
            assert core.get_archive_type(name) is None, fmt
        else:
            assert core.get_archive_type(name)["name"] == fmt.koji_archive_type, fmt
            assert fmt.koji_archive_type in archivetypes.IMAGE_TYPES
    assert plugin_types == {ImageFormat.VHD.koji_archive_type}
    assert core.ARCHIVE_TYPES is archivetypes.ARCHIVE_TYPES
    # the whole name counts too, as on the hub (a file named just "qcow2" is one)
    assert archivetypes.archive_type("qcow2") == core.get_archive_type("qcow2")["name"]


def test_the_command_that_adds_a_missing_archive_type():
    assert archivetypes.add_command("Cloud-1-1.x86_64.vhdfixed.xz") == (
        "koji call addArchiveType vhdfixed 'Azure fixed VHD, xz compressed' vhdfixed.xz")
    # one of Koji's own that an older hub lacks, with its compression type
    assert archivetypes.add_command("a.tar.gz") == (
        "koji call addArchiveType tar 'Tar file' 'tar tar.gz tar.bz2 tar.xz tgz' tar")
    assert archivetypes.add_command("a.erofs") == \
        "koji call addArchiveType erofs 'erofs image' erofs"
    assert archivetypes.add_command("disk.raw.zst") is None
    # the Koji stock table has no type that would take .vhdfixed.xz
    assert all(not e.endswith("vhdfixed.xz") for _, _, exts, _ in archivetypes.ARCHIVE_TYPES
               for e in exts.split())
