"""The RPMs of an image, read from a real rpm database that the real rpm wrote."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from koji_image_plugin.build import disk, rpmdb
from koji_image_plugin.errors import KojiImageError
from koji_image_plugin.runner import Runner
from koji_image_plugin.spec.distro import Family
from tests.rpmfixtures import build_fixture_rpms


@pytest.fixture(scope="module")
def fixture_rpms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    built = build_fixture_rpms(tmp_path_factory.mktemp("rpmbuild"))
    return [p for p in built if not p.name.endswith(".src.rpm")]


def install(root: Path, dbpath: str, rpms: list[Path]) -> None:
    subprocess.run(["rpm", f"--root={root}", f"--dbpath={dbpath}", "--install", "--nodeps",
                    *map(str, rpms)], check=True, capture_output=True, text=True)


def header(path: Path, query: str) -> str:
    return subprocess.run(["rpm", "-qp", "--qf", query, str(path)], check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize("dbpath", ["/usr/lib/sysimage/rpm", "/var/lib/rpm"])
def test_the_rpms_of_an_image_with_the_fields_koji_links_them_by(
        tmp_path: Path, runner: Runner, fixture_rpms: list[Path], dbpath: str) -> None:
    root = tmp_path / "root"
    install(root, dbpath, fixture_rpms)
    # a signing key rpm imported into the image: not a package (kojid skips it too)
    key = tmp_path / "gnupg"
    key.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(key), "--batch", "--pinentry-mode", "loopback",
           "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "fixture@example.org", "rsa2048", "sign",
                    "never"], check=True, capture_output=True)
    pub = subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True).stdout
    (tmp_path / "key.asc").write_bytes(pub)
    subprocess.run(["rpm", f"--root={root}", f"--dbpath={dbpath}", "--import",
                    str(tmp_path / "key.asc")], check=True, capture_output=True)
    listed = subprocess.run(["rpm", f"--root={root}", f"--dbpath={dbpath}", "-qa"],
                            check=True, capture_output=True, text=True).stdout
    assert "gpg-pubkey" in listed
    assert rpmdb.dbpath(root) == dbpath
    got = disk.read_packages(root, runner, "rpmdb", Family.FEDORA)
    assert [p["name"] for p in got] == ["koji-fixture-hello", "koji-fixture-motd"]
    hello, motd = got
    path = fixture_rpms[0]
    assert hello == {"name": "koji-fixture-hello", "version": "1.0", "release": "1",
                     "epoch": None, "arch": "noarch",
                     "payloadhash": header(path, "%{SIGMD5}"),
                     "size": int(header(path, "%{SIZE}")),
                     "buildtime": int(header(path, "%{BUILDTIME}")), "repo": None}
    assert motd["epoch"] == 1 and len(motd["payloadhash"]) == 32


def test_no_rpm_database_is_an_error_naming_where_it_looked(tmp_path: Path,
                                                            runner: Runner) -> None:
    (tmp_path / "var/lib/rpm").mkdir(parents=True)  # there, but empty: not a database
    with pytest.raises(KojiImageError, match=r"has no rpm database in "
                       r"/usr/lib/sysimage/rpm or /var/lib/rpm"):
        rpmdb.installed(tmp_path, runner, "rpmdb")
    with pytest.raises(KojiImageError, match="has no rpm database"):
        disk.read_packages(tmp_path, runner, "rpmdb", Family.FEDORA)
    # a Debian image is read from its dpkg status, whatever rpm left in it
    with pytest.raises(KojiImageError, match=r"has no dpkg status \(/var/lib/dpkg/status is "
                       r"missing\)"):
        disk.read_packages(tmp_path, runner, "rpmdb", Family.DEBIAN)


def test_an_rpm_database_behind_a_symlink_out_of_the_image_is_not_read(
        tmp_path: Path, runner: Runner, fixture_rpms: list[Path]) -> None:
    host = tmp_path / "host"
    install(host, "/usr/lib/sysimage/rpm", fixture_rpms)
    image = tmp_path / "image"
    image.mkdir()
    (image / "usr").symlink_to(host / "usr")  # the image's /usr points at the "host's"
    assert rpmdb.dbpath(image) is None
    with pytest.raises(KojiImageError, match="has no rpm database"):
        rpmdb.installed(image, runner, "rpmdb")
    (image / "var/lib/dnf").mkdir(parents=True)
    (image / rpmdb.HISTORY).symlink_to("/etc/hostname")
    assert rpmdb.repos_of(image) == {}


def test_a_damaged_dnf_history_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dnf").mkdir(parents=True)
    (tmp_path / rpmdb.HISTORY).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(KojiImageError, match="cannot read dnf's history database"):
        rpmdb.repos_of(tmp_path)
    assert rpmdb.repos_of(tmp_path / "elsewhere") == {}


def test_an_rpm_that_is_not_in_the_image_is_not_listed(tmp_path: Path, runner: Runner,
                                                       fixture_rpms: list[Path]) -> None:
    root = tmp_path / "root"
    install(root, "/usr/lib/sysimage/rpm", fixture_rpms[:1])
    assert [p["name"] for p in rpmdb.installed(root, runner, "rpmdb")] == [
        "koji-fixture-hello"]
    with pytest.raises(subprocess.CalledProcessError):  # rpm itself refuses a bad one
        install(root, "/usr/lib/sysimage/rpm", [tmp_path / "missing.rpm"])
