"""Kickstart preparation with the real pykickstart, as kojid's prepareKickstart does it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from pykickstart.parser import KickstartParser
from pykickstart.version import DEVEL, makeVersion

from koji_image_plugin.build import installfile
from koji_image_plugin.errors import SpecError
from koji_image_plugin.spec import image, kickstart
from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.firmware import layout_preseed
from koji_image_plugin.spec.kickstart import KickstartError, Repo

KS = """\
url --url=http://mirror.example/old/
repo --name=fedora --baseurl=http://mirror.example/fedora/
repo --name=updates --mirrorlist=http://mirror.example/updates
rootpw --lock
bootloader --location=mbr --append="console=ttyS0"
part biosboot --fstype=biosboot --size=1
part /boot/efi --fstype=efi --size=100
part / --size=3000 --grow
%packages
kernel
cloud-init
%end
%post
echo hello > /etc/motd
%end
poweroff
"""
KOJI = Repo("koji-f39-build-7", "http://hub.example/kojifiles/repos/f39-build/7/$arch")


def parsed(text: str) -> KickstartParser:
    parser = KickstartParser(makeVersion(DEVEL))
    parser.readKickstartFromString(text)
    return parser


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_kickstarts_repos_are_replaced_by_the_koji_repo_and_url_set(tmp_path: Path) -> None:
    ks = write(tmp_path, "f.ks", KS)
    out = kickstart.prepare(ks, Arch.X86_64, [KOJI], "http://tree.example/39/x86_64/os/")
    handler = parsed(out).handler
    assert [(r.name, r.baseurl) for r in handler.repo.repoList] == [
        ("koji-f39-build-7", "http://hub.example/kojifiles/repos/f39-build/7/x86_64")]
    assert handler.url.url == "http://tree.example/39/x86_64/os/"
    # everything else is kept as the kickstart said it
    assert sorted(handler.packages.packageList) == ["cloud-init", "kernel"]
    assert handler.bootloader.appendLine == "console=ttyS0"
    assert [s.script.strip() for s in handler.scripts] == ["echo hello > /etc/motd"]
    assert handler.reboot.action is not None
    assert "mirror.example" not in out


def test_the_requests_repos_replace_the_koji_repo_with_arch_substituted(tmp_path: Path) -> None:
    ks = write(tmp_path, "f.ks", KS)
    repos = kickstart.override_repos(["http://extra.example/$arch/", "http://b.example/x/"])
    out = kickstart.prepare(ks, Arch.I686, repos, "http://tree/")
    assert [(r.name, r.baseurl) for r in parsed(out).handler.repo.repoList] == [
        ("koji-override-0", "http://extra.example/i686/"),
        ("koji-override-1", "http://b.example/x/")]


def test_includes_are_flattened_from_the_kickstarts_directory(tmp_path: Path) -> None:
    # as pykickstart reads them: one shell-like word, relative to the including file
    write(tmp_path, "snippets/base.ks", "rootpw --lock\n%include ../more.ks  # the repos\n")
    write(tmp_path, "more.ks", "repo --name=inc --baseurl=http://inc/\n%include 'sub dir/x.ks'\n")
    write(tmp_path, "sub dir/x.ks", "timezone Etc/UTC --utc\n")
    ks = write(tmp_path, "f.ks", '%include "snippets/base.ks"\n%packages\nvim\n%end\n')
    out = kickstart.prepare(ks, Arch.X86_64, [KOJI], "http://tree/")
    handler = parsed(out).handler
    assert handler.rootpw.lock and handler.timezone.timezone == "Etc/UTC"
    assert kickstart.flatten(ks).included
    assert not kickstart.flatten(tmp_path / "sub dir/x.ks").included
    # an included repo is a kickstart repo like any other: replaced
    assert [r.name for r in handler.repo.repoList] == ["koji-f39-build-7"]
    assert "%include" not in out


@pytest.mark.parametrize("include, why", [
    ("../outside.ks", "outside"),
    ("/etc/passwd", "outside"),
    ("link.ks", "outside"),
    ("missing.ks", "missing"),
    ("sub", "not a file"),
])
def test_an_include_that_leaves_the_directory_or_is_no_file_is_refused(
        tmp_path: Path, include: str, why: str) -> None:
    top = tmp_path / "checkout"
    write(tmp_path, "outside.ks", "rootpw --lock\n")
    (top / "sub").mkdir(parents=True)
    os.symlink(tmp_path / "outside.ks", top / "link.ks")
    ks = write(top, "f.ks", f"rootpw --lock\n%include {include}\n")
    with pytest.raises(KickstartError) as err:
        kickstart.prepare(ks, Arch.X86_64, [KOJI], "http://tree/")
    assert str(err.value).startswith(f"{ks}:2: %include '{include}': {why}; ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("line, error", [
    ("%include a.ks b.ks", "%include takes one file name, not 'a.ks b.ks'"),
    ("%include", "%include takes one file name, not ''"),
    ("%include 'open", "%include line: No closing quotation; give one file name"),
    ("%include a\x00b.ks", "%include takes one file name"),
])
def test_an_include_line_that_is_not_one_file_name_is_refused(tmp_path: Path, line: str,
                                                              error: str) -> None:
    ks = write(tmp_path, "f.ks", f"rootpw --lock\n{line}\n")
    with pytest.raises(KickstartError) as err:
        kickstart.prepare(ks, Arch.X86_64, [], "http://tree/")
    assert str(err.value).startswith(f"{ks}:2: {error}"), str(err.value)


def test_includes_may_not_add_up_to_more_than_the_limit(tmp_path: Path) -> None:
    write(tmp_path, "big.ks", "# " + "x" * 1000 + "\n")
    write(tmp_path, "many.ks", "%include big.ks\n" * 1000)
    ks = write(tmp_path, "f.ks", "%include many.ks\n%include many.ks\n")
    with pytest.raises(KickstartError, match=r"with its includes the kickstart is more than "
                       r"1048576 bytes"):
        kickstart.flatten(ks)


def test_an_include_loop_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.ks", "%include b.ks\n")
    write(tmp_path, "b.ks", "%include a.ks\n")
    with pytest.raises(KickstartError, match=r"b.ks:1: %include 'a.ks' nests too deep"):
        kickstart.prepare(tmp_path / "a.ks", Arch.X86_64, [], "http://tree/")


def test_a_parse_error_names_the_file_and_line_it_is_on(tmp_path: Path) -> None:
    write(tmp_path, "inc.ks", "rootpw --lock\nbogus-command --x\n")
    ks = write(tmp_path, "f.ks", "url --url=http://x/\n%include inc.ks\n")
    with pytest.raises(KickstartError) as err:
        kickstart.prepare(ks, Arch.X86_64, [], "http://tree/")
    assert str(err.value) == (f"{tmp_path / 'inc.ks'}:2: the kickstart parser refused it: "
                              "Unknown command: bogus-command")


def test_ksversion_decides_what_is_valid(tmp_path: Path) -> None:
    ks = write(tmp_path, "f.ks", "timesource --ntp-server=ntp.example\nrootpw --lock\n")
    out = kickstart.prepare(ks, Arch.X86_64, [], "http://tree/", "F39")
    assert "#version=F39" in out
    with pytest.raises(KickstartError, match=r"f.ks:1: .*Unknown command: timesource"):
        kickstart.prepare(ks, Arch.X86_64, [], "http://tree/", "F28")
    old = write(tmp_path, "old.ks", "upgrade\n")
    kickstart.prepare(old, Arch.X86_64, [], "http://tree/", "F28")
    with pytest.raises(KickstartError, match="Unknown command: upgrade"):
        kickstart.prepare(old, Arch.X86_64, [], "http://tree/", "F39")


FEDORA = {"name": "Fedora-Cloud-Base", "version": "39", "distro": "Fedora-39",
          "arches": ["x86_64"], "install_tree": "http://tree.example/$arch/os/",
          "kickstart": "f.ks"}


def spec_problems(tmp_path: Path, **over: object) -> list[str]:
    return [str(p) for p in image.check({**FEDORA, **over}, tmp_path)]


def test_a_spec_is_checked_with_its_kickstart_and_ksversion(tmp_path: Path) -> None:
    write(tmp_path, "f.ks", KS)
    assert spec_problems(tmp_path) == []
    assert spec_problems(tmp_path, ksversion="F39") == []
    assert spec_problems(tmp_path, ksversion="F99x") == [
        "ksversion: 'F99x' is not a kickstart version pykickstart knows; use one like F39, "
        "RHEL9 or DEVEL"]
    assert spec_problems(tmp_path, ksversion="F 39")[0].startswith("ksversion: ")
    write(tmp_path, "f.ks", "upgrade\n")
    assert spec_problems(tmp_path, ksversion="F28") == []
    assert spec_problems(tmp_path, ksversion="F39") == [
        f"kickstart: {tmp_path / 'f.ks'}:1: the kickstart parser refused it: "
        "Unknown command: upgrade"]


def test_ksversion_is_refused_for_a_preseed_install() -> None:
    data = {**FEDORA, "distro": "Debian-12", "ksversion": "F39"}
    data.pop("kickstart")
    assert [str(p) for p in image.check(data, None)] == [
        "ksversion: Debian installs take a preseed, which has no kickstart version; "
        "remove ksversion"]


def test_the_prepared_file_per_arch_for_kickstart_and_preseed(tmp_path: Path) -> None:
    write(tmp_path, "f.ks", KS)
    s = image.from_dict({**FEDORA, "arches": ["x86_64", "i686"],
                         "repos": ["http://extra/$arch/"]}, base_dir=tmp_path)
    prepared = installfile.prepare(s, Arch.I686, kickstart.override_repos(s.repos))
    assert prepared is not None and prepared.name == f"{s.nvr}.i686.ks"
    path = prepared.write(tmp_path)
    handler = parsed(path.read_text()).handler
    assert handler.url.url == "http://tree.example/i686/os/"
    assert [r.baseurl for r in handler.repo.repoList] == ["http://extra/i686/"]

    write(tmp_path, "d.preseed", "d-i passwd/root-login boolean false")
    data = {k: v for k, v in FEDORA.items() if k != "kickstart"}
    deb = image.from_dict({**data, "distro": "Debian-12", "preseed": "d.preseed",
                           "repos": ["http://extra/$arch/"]}, base_dir=tmp_path)
    text = installfile.prepared_text(deb, Arch.X86_64, kickstart.override_repos(deb.repos))
    layout = layout_preseed(deb.firmware_for(Arch.X86_64))
    assert text == ("d-i passwd/root-login boolean false\n" + layout +
                    "# repos of the build (koji-image-plugin)\n"
                    "d-i apt-setup/local0/repository string http://extra/x86_64/ ./\n"
                    "d-i apt-setup/local0/comment string koji-override-0\n")
    no_repos = installfile.prepared_text(deb, Arch.X86_64, ())
    assert no_repos == "d-i passwd/root-login boolean false\n" + layout


def test_a_local_spec_may_not_pin_a_koji_repo(tmp_path: Path) -> None:
    write(tmp_path, "f.ks", KS)
    assert spec_problems(tmp_path, repo_id=5) == [
        "repo_id: pins a Koji repo for a hub build; a local build installs from its "
        "spec's repos; remove repo_id"]
    assert [str(p) for p in image.check({**FEDORA, "repo_id": 5}, None)] == []  # a hub request


def test_a_preseed_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "d.preseed").write_bytes(b"d-i x string \xff\xfe\n")
    data = {k: v for k, v in FEDORA.items() if k != "kickstart"}
    deb = {**data, "distro": "Debian-12", "preseed": "d.preseed"}
    with pytest.raises(SpecError, match=r"preseed: .*d.preseed: not UTF-8 text \(byte 13\)"):
        image.from_dict(deb, base_dir=tmp_path)
    spec = image.from_dict(deb)  # a hub request: the builder reads the file
    with pytest.raises(KickstartError, match=r"d.preseed: not UTF-8 text \(byte 13\)"):
        installfile.prepared_text(replace(spec, auto_file=tmp_path / "d.preseed"),
                                  Arch.X86_64, ())
