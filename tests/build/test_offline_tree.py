"""The offline install-tree fixture (tests/fixtures/offline_tree): what its image must hold
and must not, checked on build_tree.py's own tables and checkers without building a tree
(a build needs root and minutes; the VM tests boot the images)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "offline_tree"


@pytest.fixture(scope="module")
def build_tree() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("offline_build_tree",
                                                  FIXTURE / "build_tree.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_the_fixture_image_has_what_clouds_use(build_tree: ModuleType) -> None:
    for pkg in ("cloud-guest-utils", "fdisk", "curl", "wget", "systemd-timesyncd",
                "libnss-myhostname", "openssh-server", "cloud-init"):
        assert pkg in build_tree.BASE_PACKAGES
    assert "/usr/bin/growpart" in build_tree.REQUIRED_COMMANDS
    assert build_tree.ENABLED_UNITS == {"systemd-timesyncd.service": "sysinit.target.wants"}


def test_the_sshd_drop_in_sets_what_is_checked(build_tree: ModuleType) -> None:
    assert build_tree.SSHD_DROPIN.startswith("etc/ssh/sshd_config.d/")
    assert build_tree.SSHD_DROPIN.endswith(".conf")
    settings = dict(line.lower().split() for line in build_tree.SSHD_HARDENING.splitlines()
                    if line and not line.startswith("#"))
    assert settings == {"passwordauthentication": "no", "kbdinteractiveauthentication": "no",
                        "permitrootlogin": "prohibit-password"}
    for key, value in settings.items():
        assert value in build_tree.SSHD_EXPECTED[key]


LEFTOVERS = ["var/log/koji-image-installer.log", "var/log/anaconda/anaconda.log",
             "root/anaconda-ks.cfg", "root/original-ks.cfg",
             "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages",
             "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_source_Sources.xz",
             "var/cache/apt/archives/curl_7.88.1-10_amd64.deb", "var/cache/apt/pkgcache.bin",
             "var/cache/dnf/expired_repos.json", "root/.bash_history"]
KEPT = ["var/lib/apt/lists/lock", "var/lib/apt/lists/partial/", "var/cache/apt/archives/lock",
        "var/cache/apt/archives/partial/", "var/cache/dnf/", "var/log/dpkg.log",
        "etc/ssh/sshd_config.d/60-koji-fixture-keys-only.conf"]


def _tree(root: Path, paths: list[str]) -> None:
    for rel in paths:
        p = root / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("x")


def test_every_leftover_is_found_and_nothing_else(build_tree: ModuleType,
                                                  tmp_path: Path) -> None:
    _tree(tmp_path, KEPT)
    assert build_tree.find_leftovers(str(tmp_path)) == []
    _tree(tmp_path, LEFTOVERS)
    found = build_tree.find_leftovers(str(tmp_path))
    assert found == sorted("/" + rel.split("/anaconda.log")[0] for rel in LEFTOVERS)
    # one example for each glob
    assert len(LEFTOVERS) == len(build_tree.LEFTOVER_GLOBS)


def test_the_installer_leaves_no_log_in_the_image() -> None:
    for name in ("init", "kickstart.sh"):
        text = (FIXTURE / name).read_text()
        assert "koji-image-installer.log" not in text, name
