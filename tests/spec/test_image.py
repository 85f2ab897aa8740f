"""The spec: schema, every problem at once, defaults, Koji INI compatibility."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from koji_image_plugin.errors import SpecError
from koji_image_plugin.spec import image, ini, load, schema
from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.formats import ImageFormat
from koji_image_plugin.spec.variants import Variant

REPO = Path(__file__).resolve().parents[2]
GOOD: dict[str, Any] = {
    "name": "Fedora-Cloud-Base", "version": "19", "distro": "Debian-12",
    "arches": ["x86_64", "i686"], "install_tree": "file:///trees/debian-12-$arch",
}


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema.SCHEMA)
    assert schema.SCHEMA["additionalProperties"] is False


def test_defaults_and_date_release() -> None:
    s = image.from_dict(GOOD, today=datetime.date(2026, 11, 26))
    assert s.release == "20261126.0"
    assert s.nvr == "Fedora-Cloud-Base-19-20261126.0"
    assert s.variants == (Variant.GENERIC,)
    assert s.formats == (ImageFormat.QCOW2, ImageFormat.RAW_TAR_XZ)
    assert s.boot_test.enabled and s.boot_test.timeout == 600
    assert s.disk_size == 10


def test_spec_is_frozen() -> None:
    s = image.from_dict(GOOD)
    with pytest.raises(AttributeError):
        s.name = "other"  # type: ignore[misc]


def test_naming_follows_fedora_and_marks_ec2() -> None:
    s = image.from_dict({**GOOD, "release": "20130601.0", "variants": ["generic", "ec2"]})
    assert s.file_name(Arch.X86_64, Variant.GENERIC, ImageFormat.QCOW2) == \
        "Fedora-Cloud-Base-19-20130601.0.x86_64.qcow2"
    assert s.file_name(Arch.I686, Variant.EC2, ImageFormat.RAW_XZ) == \
        "Fedora-Cloud-Base-EC2-19-20130601.0.i686.raw.xz"


def test_arch_substitution_in_the_tree() -> None:
    s = image.from_dict({**GOOD, "install_tree": "http://m/debian/$basearch/$arch"})
    assert s.tree_for(Arch.I686) == "http://m/debian/i386/i686"
    f = image.from_dict({**GOOD, "distro": "Fedora-19", "kickstart": "x.ks",
                        "install_tree": "http://m/19/Fedora/$basearch/os/"})
    assert f.tree_for(Arch.I686) == "http://m/19/Fedora/i386/os/"


def test_variant_formats_override_and_command_line_replace() -> None:
    s = image.from_dict({**GOOD, "variants": ["generic", "ec2"],
                        "variant_formats": {"ec2": ["qcow2", "raw.xz"]}})
    assert s.formats_for(Variant.EC2) == (ImageFormat.QCOW2, ImageFormat.RAW_XZ)
    assert s.formats_for(Variant.GENERIC) == (ImageFormat.QCOW2, ImageFormat.RAW_TAR_XZ)
    only = s.replace(formats=["qcow2"], arches=["x86_64"])
    assert only.formats_for(Variant.EC2) == (ImageFormat.QCOW2,)
    assert only.arches == (Arch.X86_64,)
    assert only.release == s.release


def problems(data: Any, base: Path | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        image.from_dict(data, base_dir=base)
    return [str(p) for p in info.value.problems]


def test_every_problem_is_reported_at_once_each_naming_its_field(tmp_path: Path) -> None:
    bad = {"name": "bad name", "version": "1-2", "distro": "Debian-99",
           "arches": ["sparc"], "install_tree": "/not/a/url", "formats": ["iso"],
           "variants": ["azure"], "disk_size": 0, "boot_test": {"timeout": 5},
           "preseed": "missing.cfg", "colour": "blue", "size": 3}
    found = problems(bad, tmp_path)
    fields = {p.split(":")[0] for p in found}
    assert fields == {"name", "version", "distro", "arches[0]", "install_tree",
                      "formats[0]", "variants[0]", "disk_size", "boot_test.timeout",
                      "preseed", "colour", "size"}
    text = "\n".join(found)
    assert "use one of: x86_64, i686, aarch64" in text
    assert ("use one of: qcow2, raw.tar.xz, raw.xz, vmdk, vhd, gce, vagrant-libvirt, "
            "vagrant-virtualbox") in text
    assert "Debian versions 7 to 13 are" in text
    assert "unknown field; allowed fields:" in text
    assert "does not exist" in text
    assert all("\n" not in p for p in found)


def test_missing_required_fields_are_named() -> None:
    found = problems({"name": "x"})
    for field in ("version", "distro", "arches", "install_tree"):
        assert f"{field}: is required; add it to the spec" in found


def test_cross_field_rules() -> None:
    assert "kickstart: is required for Fedora; give the kickstart file's path" in \
        problems({**GOOD, "distro": "Fedora-19"})
    assert any(p.startswith("kickstart: Debian installs take a preseed")
               for p in problems({**GOOD, "kickstart": "a.ks"}))
    assert any(p.startswith("variant_formats.ec2: names a variant that is not built")
               for p in problems({**GOOD, "variant_formats": {"ec2": ["qcow2"]}}))
    assert any(p.startswith("install_tree: the guest cannot reach localhost")
               for p in problems({**GOOD, "install_tree": "http://localhost/t"}))
    assert any(p.startswith("can_fail:") for p in problems({**GOOD, "arches": ["x86_64"],
                                                            "can_fail": ["i686"]}))


def test_a_format_an_arch_s_images_cannot_be_in_is_refused() -> None:
    from koji_image_plugin.build.formats import ovf
    a64 = {**GOOD, "arches": ["x86_64", "aarch64"]}
    assert problems({**a64, "formats": ["qcow2", "vagrant-virtualbox"]}) == [
        "formats[1]: vagrant-virtualbox carries x86_64 or i686 images only, not aarch64; "
        "remove it, or build aarch64 with a spec of its own"]
    assert problems({**a64, "variants": ["generic", "ec2"], "variant_formats": {
        "ec2": ["raw.xz", "vagrant-virtualbox"]}})[0].startswith("variant_formats.ec2[1]: ")
    image.from_dict({**GOOD, "formats": ["vagrant-virtualbox", "vagrant-libvirt"]})
    # formats no variant takes (each has its own) is not asked of aarch64
    overridden = {**a64, "formats": ["vagrant-virtualbox"], "variants": ["generic", "ec2"]}
    image.from_dict({**overridden, "variant_formats": {"generic": ["qcow2"], "ec2": ["raw.xz"]}})
    assert problems({**overridden, "variant_formats": {"ec2": ["raw.xz"]}}) == [
        "formats[0]: vagrant-virtualbox carries x86_64 or i686 images only, not aarch64; "
        "remove it, or build aarch64 with a spec of its own"]
    image.from_dict({**a64, "formats": ["vagrant-libvirt", "vhd", "gce", "vmdk"]})
    # the OVF writer names exactly the arches the spec lets through
    assert set(ovf.OS_TYPES) == set(ImageFormat.VAGRANT_VIRTUALBOX.arches or ())


def test_not_a_mapping() -> None:
    assert problems(["a", "list"]) == ["(top level): a spec must be a mapping of fields to "
                                       "values"]


def test_yaml_file_and_relative_preseed(tmp_path: Path) -> None:
    (tmp_path / "my.preseed").write_text("d-i passwd/root-login boolean false\n")
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({**GOOD, "preseed": "my.preseed"}))
    s = load.load(f)
    assert s.auto_file == tmp_path / "my.preseed"
    assert s.source == str(f)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("name: x\narches: [x86_64\n")
    with pytest.raises(SpecError) as info:
        load.load(f)
    assert str(info.value.problems[0]).startswith("line ")


def test_example_specs_are_valid() -> None:
    demo = load.load(REPO / "examples" / "demo.yaml")
    assert demo.variants == (Variant.GENERIC, Variant.EC2)
    ini = load.load(REPO / "examples" / "koji-image-build.ini")
    assert ini.arches == (Arch.X86_64, Arch.I686)
    assert ini.formats == (ImageFormat.QCOW2, ImageFormat.RAW_XZ)
    assert ini.target == "f19-candidate" and ini.can_fail == (Arch.I686,)
    assert ini.disk_size == 3 and ini.distro.family == "Fedora"
    assert ini.repos == ("http://dl.fedoraproject.org/pub/fedora/linux/releases/19/"
                         "Everything/$arch/os/",)


def test_koji_ini_takes_kojis_format_names(tmp_path: Path) -> None:
    f = tmp_path / "k.ini"
    f.write_text((REPO / "examples" / "koji-image-build.ini").read_text().replace(
        "format = qcow2,raw-xz", "format = vpc,tar-gz,vagrant-libvirt,vagrant-virtualbox"))
    (tmp_path / "fedora-cloud-base.ks").write_text("text\n")
    assert load.load(f).formats == (ImageFormat.VHD, ImageFormat.GCE,
                                    ImageFormat.VAGRANT_LIBVIRT,
                                    ImageFormat.VAGRANT_VIRTUALBOX)


def test_koji_ini_problems_are_all_reported(tmp_path: Path) -> None:
    f = tmp_path / "k.ini"
    f.write_text("[image-build]\nname = x\nversion = 1\narches = x86_64,ppc\n"
                 "format = iso\ndistro = Fedora-19\ninstall_tree = http://t/\n"
                 "kickstart = nope.ks\ndisk_size = big\nwibble = 1\n")
    with pytest.raises(SpecError) as info:
        load.load(f)
    text = str(info.value)
    assert "[image-build].disk_size: 'big' is not a whole number of GiB" in text
    assert "[image-build].wibble: unknown key" in text
    (tmp_path / "nope.ks").write_text("text\n")
    f.write_text(f.read_text().replace("disk_size = big\nwibble = 1\n", ""))
    with pytest.raises(SpecError) as again:
        load.load(f)
    found = [str(p) for p in again.value.problems]
    assert "arches[1]: 'ppc' is not allowed; use one of: x86_64, i686, aarch64" in found
    assert ("formats[0]: 'iso' is not allowed; use one of: qcow2, raw.tar.xz, raw.xz, vmdk, "
            "vhd, gce, vagrant-libvirt, vagrant-virtualbox") in found


def test_koji_ini_without_section(tmp_path: Path) -> None:
    f = tmp_path / "k.ini"
    f.write_text("[image-build]\n")
    f.write_text("[other]\nname = x\n[image-build]\n")
    with pytest.raises(SpecError):
        load.load(f)
    with pytest.raises(SpecError, match=r"\[image-build\]: section is missing"):
        ini.ini_to_dict("[x]\na=1\n", "k.ini")


def test_as_dict_round_trips() -> None:
    s = image.from_dict({**GOOD, "variants": ["generic", "ec2"],
                        "variant_formats": {"ec2": ["raw.xz"]}, "release": "5"})
    assert image.from_dict(s.as_dict()) == s


def test_a_release_read_as_a_float_is_told_to_quote_it() -> None:
    assert problems({**GOOD, "release": 1.10}) == [
        "release: 1.1 was read as a number; quote it, e.g. '1.1'"]


def test_default_release_moves_to_the_next_free_one() -> None:
    s = image.from_dict(GOOD, today=datetime.date(2026, 11, 26))
    taken = {"20261126.0", "20261126.1"}
    assert s.next_free_release(lambda c: c.release in taken).release == "20261126.2"
    given = image.from_dict({**GOOD, "release": "7"})
    assert given.next_free_release(lambda c: True).release == "7"
    assert "CHECKSUM" in s.output_names() and "manifest.json" in s.output_names()


def test_boot_profiles_default_to_the_variants_clouds_and_may_be_chosen() -> None:
    from koji_image_plugin.spec.bootprofiles import BootProfile
    s = image.from_dict({**GOOD, "variants": ["generic", "ec2"]})
    assert s.boot_test.profiles_for(Variant.GENERIC) == (
        BootProfile.OPENSTACK, BootProfile.CLOUDSTACK, BootProfile.EUCALYPTUS,
        BootProfile.NOCLOUD)
    assert s.boot_test.profiles_for(Variant.EC2) == (BootProfile.EC2,)
    assert "/var/lib/apt/lists/*_Packages*" in s.boot_test.leftovers
    chosen = image.from_dict({**GOOD, "variants": ["generic", "ec2"], "boot_test": {
        "profiles": {"generic": ["nocloud"]}, "leftovers": ["/etc/koji-build-stamp"],
        "user": "fedora"}})
    assert chosen.boot_test.profiles_for(Variant.GENERIC) == (BootProfile.NOCLOUD,)
    assert chosen.boot_test.profiles_for(Variant.EC2) == (BootProfile.EC2,)
    assert chosen.boot_test.leftovers == ("/etc/koji-build-stamp",)
    # the resolved spec says it in the spec's own words, and reads back the same
    again = image.from_dict(chosen.as_dict())
    assert again.boot_test == chosen.boot_test
    assert problems({**GOOD, "boot_test": {"profiles": {"ec2": ["ec2"]}}}) == [
        "boot_test.profiles.ec2: 'ec2' is not among the spec's variants; remove it or add "
        "the variant"]
