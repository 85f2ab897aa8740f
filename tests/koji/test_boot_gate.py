"""A failed boot check fails the arch task, after the records that say why are written
(kojid then uploads them with the logs). The build itself is stood in for by a Pipeline
whose build_arch returns what a real one returns when a check failed (the real boots
and their failures: tests/build/test_vm_checks.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koji_image_plugin.build.boot.checks import Check
from koji_image_plugin.build.pipeline import Pipeline
from koji_image_plugin.build.results import ArchResult, BootResult, ImageFile
from koji_image_plugin.errors import BootFailedError
from koji_image_plugin.koji import archbuild
from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.formats import ImageFormat
from koji_image_plugin.spec.hostconfig import HostConfig
from koji_image_plugin.spec.image import from_dict
from koji_image_plugin.spec.variants import Variant

SPEC = from_dict({"name": "Test-Cloud-Base", "version": "12", "release": "1",
                  "distro": "Debian-12", "arches": ["x86_64"],
                  "install_tree": "http://trees.example.org/debian-12-$arch/",
                  "formats": ["qcow2"]})


class Built(Pipeline):
    """A pipeline whose build ended with one boot failing its leftovers check."""

    def build_arch(self, arch: Arch, workdir: Path, outdir: Path, logdir: Path
                   ) -> ArchResult:
        name = SPEC.file_name(arch, Variant.GENERIC, ImageFormat.QCOW2)
        (outdir / name).write_bytes(b"qcow2")
        (logdir / "boot-x86_64-generic-nocloud-checks.log").write_text("FAIL leftovers\n")
        res = ArchResult(arch=arch)
        res.outputs = [ImageFile(name, arch, Variant.GENERIC, ImageFormat.QCOW2, 5,
                                 "ab" * 32)]
        checks = (Check("ssh-login", True, "logged in as debian after 70 s"),
                  Check("leftovers", False, "1 build leftovers: /var/log/installer"))
        res.boot_tests = [BootResult(
            name, "x86_64", "generic", False, 90.0, "tcg", "NoCloud seed: FAILED leftovers",
            "boot-x86_64-generic-nocloud-console.log", profile="nocloud", checks=checks,
            checks_log="boot-x86_64-generic-nocloud-checks.log")]
        return res


def test_a_failed_check_fails_the_arch_after_its_records_are_written(tmp_path: Path
                                                                     ) -> None:
    with pytest.raises(BootFailedError) as info:
        archbuild.build(Built(SPEC, HostConfig()), Arch.X86_64, tmp_path)
    msg = str(info.value)
    assert msg.startswith("x86_64: boot test failed for generic as nocloud under seabios: "
                          "FAIL leftovers: 1 build leftovers: /var/log/installer; see "
                          "boot-x86_64-generic-nocloud-checks.log and "
                          "boot-x86_64-generic-nocloud-console.log"), msg
    manifest = json.loads((tmp_path / "out" / "Test-Cloud-Base-12-1.x86_64.manifest.json")
                          .read_text())
    boot = manifest["boot_tests"][0]
    assert (boot["profile"], boot["passed"], manifest["boot_test_passed"]) == \
        ("nocloud", False, False)
    assert [c["name"] for c in boot["checks"] if not c["passed"]] == ["leftovers"]
    assert (tmp_path / "logs" / "boot-x86_64-generic-nocloud-checks.log").exists()
