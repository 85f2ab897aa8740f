"""Hostile spec files, YAML and Koji INI: each is refused by ``validate`` and by
``build`` with one line naming the field (or the file), exit status 2, no traceback,
nothing created. Also the files a spec names: kept inside the spec's directory."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.catalogue import (
    GOOD_SPEC,
    directory,
    fifo,
    make_sandbox,
    refused,
    run,
    symlink_loop,
)

GOOD: dict[str, Any] = {"name": "Test-Cloud-Base", "version": "12", "distro": "Debian-12",
                        "arches": ["x86_64"],
                        "install_tree": "file:///srv/trees/debian-12-$arch",
                        "preseed": "preseed.cfg", "formats": ["qcow2"]}


def spec(**changes: Any) -> bytes:
    """The good spec with ``changes`` (None removes a field), as JSON: JSON is YAML, and
    it carries any character escaped."""
    data = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    return json.dumps(data).encode()


BIG = "A" * 100_000


def yaml_with(line: str) -> bytes:
    """The good spec as YAML text with ``line`` (KEY: VALUE) in place of its key's line:
    for the values only YAML's own notation can write."""
    key = line.split(":", 1)[0]
    kept = [ln for ln in GOOD_SPEC.splitlines() if not ln.startswith(f"{key}:")]
    return ("\n".join([*kept, line]) + "\n").encode()

#: (id, the file's bytes, what the refusal names)
SPEC_FILES: list[tuple[str, bytes, str]] = [
    # -- not text, not YAML, too big, too deep -----------------------------------------
    ("binary", bytes(range(256)) * 4, "is not UTF-8 text"),
    ("utf16", "name: x\n".encode("utf-16"), "is not UTF-8 text"),
    ("latin1", b"name: caf\xe9\n", "is not UTF-8 text"),
    ("nul-bytes", b"name: a\x00b\n", "not valid YAML"),
    ("empty", b"", "(top level)"),
    ("null", b"null\n", "(top level)"),
    ("a-list", b"- name: x\n", "(top level)"),
    ("a-string", b"just words\n", "(top level)"),
    ("a-number", b"42\n", "(top level)"),
    ("alias-bomb", b"a: &a [x,x,x,x,x,x,x,x,x]\n" + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)}]\n"
        .encode() for i in range(12)), "aliases"),
    ("deep-brackets", b"[" * 100_000 + b"]" * 100_000, "nest"),
    ("deep-mappings", b"{a: " * 5000 + b"1" + b"}" * 5000, "nest"),
    ("deep-blocks", b"".join(b"  " * i + b"a:\n" for i in range(200)), "nest"),
    ("two-megabytes", b"# " + b"x" * (2 << 20) + b"\n", "is over 1 MiB"),
    ("tab-indent", b"name: x\n\tversion: 1\n", "line 2"),
    ("open-quote", b'name: "x\n', "not valid YAML"),
    ("python-object", b"name: !!python/object/apply:os.system ['touch pwned']\n",
     "not valid YAML"),
    ("python-name", b"name: !!python/name:os.system\n", "not valid YAML"),
    ("binary-tag", GOOD_SPEC.replace("name: Test-Cloud-Base", "name: !!binary aGVsbG8=")
     .encode(), "name"),
    ("fifo-as-spec", b"", "not a regular file"),
    ("two-documents", b"name: a\n---\nname: b\n", "not valid YAML"),
    ("bad-escape", b'name: "\\q"\n', "not valid YAML"),
    ("ini-wrong-section", b"[image]\nname = x\n", "[image-build]"),
    # -- what YAML 1.1 would misread, and keys given twice ------------------------------
    ("sexagesimal", yaml_with("version: 1:30"), "quote it"),
    ("octal", yaml_with("release: 012"), "quote it"),
    ("hex", yaml_with("version: 0x13"), "quote it"),
    ("underscores", yaml_with("release: 1_000"), "quote it"),
    ("exponent", yaml_with("release: 1.0e+5"), "quote it"),
    ("nan", yaml_with("xz_preset: .nan"), "quote it"),
    ("infinity", yaml_with("disk_size: .inf"), "quote it"),
    ("huge-integer", yaml_with("disk_size: " + "1" * 5000), "more digits"),
    ("int-tag-words", yaml_with("disk_size: !!int abc"), "quote it"),
    ("float-tag-words", yaml_with("disk_size: !!float abc"), "quote it"),
    ("bool-tag-words", yaml_with("scratch: !!bool abc"), "not true or false"),
    ("bad-date", yaml_with("version: 2026-13-45"), "version"),
    ("a-date", yaml_with("version: 2026-12-01"), "version"),
    ("float-disk", yaml_with("disk_size: 2.0"), "disk_size"),
    ("key-twice", GOOD_SPEC.encode() + b"name: Other-Name\n", "given twice"),
    ("nested-key-twice", yaml_with("boot_test: {timeout: 60, timeout: 90}"), "given twice"),
    ("json-key-twice", b'{"name": "A", "name": "B"}', "given twice"),
    ("ini-only-comments", b"; koji\n[libvirt]\nmemory = 1\n", "[image-build]"),
    # -- names, versions and releases --------------------------------------------------
    ("name-newline", spec(name="Test\n"), "name"),
    ("name-bell", spec(name="Te\x07st"), "name"),
    ("name-escape", spec(name="\x1b[31mred"), "name"),
    ("name-100k", spec(name=BIG), "name"),
    ("name-slash", spec(name="../../etc/x"), "name"),
    ("name-empty", spec(name=""), "name"),
    ("name-number", spec(name=12), "name"),
    ("name-list", spec(name=["a"]), "name"),
    ("name-null", spec(name=None), "name"),
    ("name-dot", spec(name=".hidden"), "name"),
    ("name-space", spec(name="Test Cloud"), "name"),
    ("name-unicode", spec(name="Tëst"), "name"),
    ("name-nul", spec(name="a\x00b"), "name"),
    ("version-dash", spec(version="1-2"), "version"),
    ("version-newline", spec(version="12\n"), "version"),
    ("version-long", spec(version="1" * 100), "version"),
    ("version-float", spec(version=1.5), "version"),
    ("version-negative", spec(version=-12), "version"),
    ("release-slash", spec(release="1/2"), "release"),
    ("release-float", spec(release=1.10), "release"),
    ("release-newline", spec(release="1\n"), "release"),
    ("release-dash", spec(release="-1"), "release"),
    ("release-long", spec(release="9" * 65), "release"),
    ("distro-newline", spec(distro="Debian-12\n"), "distro"),
    ("distro-windows", spec(distro="Windows-10"), "distro"),
    ("distro-no-version", spec(distro="Debian-"), "distro"),
    ("distro-unsupported", spec(distro="Debian-3"), "distro"),
    ("distro-debian-rawhide", spec(distro="Debian-rawhide"), "distro"),
    # -- arches, variants, formats -----------------------------------------------------
    ("arch-newline", spec(arches=["x86_64\n"]), "arches"),
    ("arch-twice", spec(arches=["x86_64", "x86_64"]), "arches"),
    ("arch-none", spec(arches=[]), "arches"),
    ("arch-string", spec(arches="x86_64"), "arches"),
    ("arch-unknown", spec(arches=["sparc64"]), "arches"),
    ("arch-unicode", spec(arches=["x86_６４"]), "arches"),
    ("arch-null", spec(arches=[None]), "arches"),
    ("format-newline", spec(formats=["qcow2\n"]), "formats"),
    ("format-none", spec(formats=[]), "formats"),
    ("format-iso", spec(formats=["iso"]), "formats"),
    ("format-path", spec(formats=["../qcow2"]), "formats"),
    ("variant-unknown", spec(variants=["ec3"]), "variants"),
    ("variant-formats-unknown", spec(variant_formats={"ec3": ["qcow2"]}), "variant_formats"),
    ("variant-formats-empty", spec(variants=["generic", "ec2"], variant_formats={"ec2": []}),
     "variant_formats"),
    # -- URLs --------------------------------------------------------------------------
    ("tree-no-host", spec(install_tree="http://"), "install_tree"),
    ("tree-space", spec(install_tree="http://mirror.example.org/a b/"), "install_tree"),
    ("tree-newline", spec(install_tree="http://mirror.example.org/\n/x"), "install_tree"),
    ("tree-password", spec(install_tree="http://u:secret@mirror.example.org/t/"),
     "install_tree"),
    ("tree-javascript", spec(install_tree="javascript:alert(1)"), "install_tree"),
    ("tree-loopback", spec(install_tree="http://127.0.0.1/t/"), "install_tree"),
    ("tree-bad-port", spec(install_tree="http://mirror.example.org:99999/"), "install_tree"),
    ("tree-long", spec(install_tree="http://mirror.example.org/" + "a" * 5000),
     "install_tree"),
    ("tree-empty", spec(install_tree=""), "install_tree"),
    ("tree-list", spec(install_tree=["http://mirror.example.org/"]), "install_tree"),
    ("repo-no-host", spec(repos=["http://"]), "repos[0]"),
    ("repo-string", spec(repos="http://mirror.example.org/r/"), "repos"),
    ("repo-password", spec(repos=["https://u:pw@mirror.example.org/r/"]), "repos[0]"),
    ("repos-many", spec(repos=[f"http://mirror.example.org/{i}/" for i in range(100)]),
     "repos"),
    ("ksurl-local", spec(ksurl="git+https://u:secret@scm.example.org/ks.git#main"),
     "ksurl"),
    # -- numbers and switches ----------------------------------------------------------
    ("disk-zero", spec(disk_size=0), "disk_size"),
    ("disk-negative", spec(disk_size=-5), "disk_size"),
    ("disk-absurd", spec(disk_size=10 ** 12), "disk_size"),
    ("disk-string", spec(disk_size="10"), "disk_size"),
    ("disk-bool", spec(disk_size=True), "disk_size"),
    ("disk-float", spec(disk_size=2.5), "disk_size"),
    ("boot-timeout-negative", spec(boot_test={"timeout": -5}), "boot_test"),
    ("boot-timeout-absurd", spec(boot_test={"timeout": 10 ** 9}), "boot_test"),
    ("boot-enabled-string", spec(boot_test={"enabled": "yes"}), "boot_test"),
    ("boot-unknown-key", spec(boot_test={"timout": 60}), "boot_test"),
    ("boot-profile-unknown", spec(boot_test={"profiles": {"generic": ["azure"]}}),
     "boot_test.profiles.generic"),
    ("boot-profile-empty", spec(boot_test={"profiles": {"generic": []}}),
     "boot_test.profiles.generic"),
    ("boot-profile-twice", spec(boot_test={"profiles": {"generic": ["ec2", "ec2"]}}),
     "boot_test.profiles.generic"),
    ("boot-profile-variant", spec(boot_test={"profiles": {"ec2": ["ec2"]}}),
     "boot_test.profiles.ec2"),
    ("boot-profile-unknown-variant", spec(boot_test={"profiles": {"azure": ["ec2"]}}),
     "boot_test.profiles"),
    ("boot-profiles-list", spec(boot_test={"profiles": ["nocloud"]}), "boot_test.profiles"),
    ("boot-leftover-relative", spec(boot_test={"leftovers": ["var/log/x"]}),
     "boot_test.leftovers[0]"),
    ("boot-leftover-dotdot", spec(boot_test={"leftovers": ["/var/../etc/shadow"]}),
     "boot_test.leftovers[0]"),
    ("boot-leftover-shell", spec(boot_test={"leftovers": ["/tmp/$(reboot)"]}),
     "boot_test.leftovers[0]"),
    ("boot-leftover-space", spec(boot_test={"leftovers": ["/tmp/a b"]}),
     "boot_test.leftovers[0]"),
    ("boot-leftover-newline", spec(boot_test={"leftovers": ["/tmp/a\nreboot"]}),
     "boot_test.leftovers[0]"),
    ("boot-user-root-path", spec(boot_test={"user": "../root"}), "boot_test.user"),
    ("boot-user-option", spec(boot_test={"user": "-oProxyCommand=x"}), "boot_test.user"),
    ("qcow2-compat-float", spec(qcow2_compat=1.1), "qcow2_compat"),
    ("xz-preset-ten", spec(xz_preset=10), "xz_preset"),
    ("scratch-string", spec(scratch="true"), "scratch"),
    ("target-newline", spec(target="f19\n"), "target"),
    ("can-fail-unknown", spec(can_fail=["sparc"]), "can_fail"),
    ("unknown-field", spec(colour="blue"), "colour"),
    ("unknown-long-field", spec(**{"x" * 1000: 1}), "unknown field"),
    ("unknown-strange-field", spec(**{"a\nb": 1}), "unknown field"),
    ("description-escape", spec(description="\x1b]0;owned\x07"), "description"),
    ("description-long", spec(description="d" * 10_000), "description"),
    ("description-c1", spec(description="a\x85b\x9b31m"), "description"),
    ("description-bidi", spec(description="safe \u202etxt.exe"), "description"),
    ("target-long", spec(target="t" * 5000), "target"),
    ("distro-long", spec(distro="Debian-" + "1" * 100), "distro"),
    # -- uploads -----------------------------------------------------------------------
    ("region-newline", spec(upload={"ec2": {"regions": ["us-east-1\n"]}}), "upload"),
    ("region-path", spec(upload={"ec2": {"regions": ["../x"]}}), "upload"),
    ("cloud-path", spec(upload={"glance": {"clouds": ["../x"]}}), "upload"),
    ("upload-string", spec(upload="ec2"), "upload"),
    ("upload-public-string", spec(upload={"ec2": {}, "public": "yes"}), "upload"),
]

#: Koji image-build INI files (``koji image-build --config``), each with one fault
GOOD_INI = ("[image-build]\nname = Test-Cloud-Base\nversion = 12\ntarget = f19\n"
            "install_tree = file:///srv/trees/debian-12-$arch\narches = x86_64\n"
            "format = qcow2\ndistro = Debian-12\nkickstart = preseed.cfg\n")


def ini(**changes: str) -> bytes:
    lines = GOOD_INI.splitlines()
    for key, value in changes.items():
        lines = [ln for ln in lines if not ln.startswith(f"{key} =")]
        lines.append(f"{key} = {value}")
    return ("\n".join(lines) + "\n").encode()


INI_FILES: list[tuple[str, bytes, str]] = [
    ("ini-name-space", ini(name="Test Cloud"), "name"),
    ("ini-name-long", ini(name="N" * 5000), "name"),
    ("ini-arches-empty", ini(arches=",,"), "arches"),
    ("ini-arch-unknown", ini(arches="x86_64,sparc"), "arches"),
    ("ini-format-unknown", ini(format="qcow2,iso"), "format"),
    ("ini-disk-words", ini(disk_size="ten"), "disk_size"),
    ("ini-disk-negative", ini(disk_size="-3"), "disk_size"),
    ("ini-distro", ini(distro="Debian-12-extra"), "distro"),
    ("ini-tree-password", ini(install_tree="http://u:pw@mirror.example.org/t/"),
     "install_tree"),
    ("ini-tree-no-host", ini(install_tree="http://"), "install_tree"),
    ("ini-preseed-outside", ini(kickstart="../../../../etc/shadow"), "preseed"),
    ("ini-preseed-absolute", ini(kickstart="/etc/passwd"), "preseed"),
    ("ini-unknown-key", ini(colour="blue"), "colour"),
    ("ini-scratch-maybe", ini(scratch="maybe"), "scratch"),
    ("ini-interpolation", ini(name="%(home)s"), "name"),
    ("ini-two-sections", GOOD_INI.encode() * 2, "image-build"),
    ("ini-twice-a-key", (GOOD_INI + "name = Other\n").encode(), "name"),
    ("ini-no-value", (GOOD_INI + "orphan\n").encode(), "line"),
    ("ini-disk-fullwidth", ini(disk_size="１０"), "disk_size"),
    ("ini-disk-underscore", ini(disk_size="1_0"), "disk_size"),
    ("ini-binary", b"[image-build]\nname = \xff\xfe\n", "is not UTF-8 text"),
    ("ini-ksurl-password", ini(ksurl="git+https://u:secret@scm.example.org/r.git#main"),
     "ksurl"),
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    return make_sandbox(tmp_path / "sandbox")


@pytest.mark.parametrize("content,names", [(c, n) for _, c, n in SPEC_FILES + INI_FILES],
                         ids=[i for i, _, _ in SPEC_FILES + INI_FILES])
def test_a_hostile_spec_file_is_refused_in_one_line(sandbox: Path, content: bytes,
                                                    names: str) -> None:
    if names == "not a regular file":
        os.mkfifo(sandbox / "spec.yaml")
    else:
        (sandbox / "spec.yaml").write_bytes(content)
    line = refused(sandbox, ["validate", "spec.yaml"], names)
    assert line.startswith("koji-image: spec.yaml: "), line
    assert "secret" not in line and ":pw@" not in line
    assert refused(sandbox, ["build", "spec.yaml"], names) == line


def _symlink_out(d: Path) -> str:
    (d / "link.cfg").symlink_to("/etc/passwd")
    return "link.cfg"


def _symlink_up(d: Path) -> str:
    (d.parent / "secret.cfg").write_text("password\n")
    (d / "up.cfg").symlink_to("../secret.cfg")
    return "up.cfg"


def _dir_symlink_out(d: Path) -> str:
    (d / "etc").symlink_to("/etc")
    return "etc/passwd"


#: files a spec names, each reached in a way that leaves its directory or is no file
NAMED_FILES: list[tuple[str, Callable[[Path], str], str]] = [
    ("dotdot", lambda d: "../../../../etc/shadow", "outside the spec's directory"),
    ("absolute", lambda d: "/etc/passwd", "outside the spec's directory"),
    ("symlink-out", _symlink_out, "outside the spec's directory"),
    ("symlink-up", _symlink_up, "outside the spec's directory"),
    ("dir-symlink-out", _dir_symlink_out, "outside the spec's directory"),
    ("symlink-loop", symlink_loop("loop.cfg"), "preseed"),
    ("a-directory", directory("preseed.d"), "preseed"),
    ("a-fifo", fifo("fifo.cfg"), "preseed"),
    ("missing", lambda d: "nosuch.cfg", "preseed"),
    ("newline", lambda d: "preseed.cfg\n", "preseed"),
    ("dev-zero", lambda d: "/dev/zero", "outside the spec's directory"),
    ("proc-self", lambda d: "/proc/self/environ", "outside the spec's directory"),
]


@pytest.mark.parametrize("make,names", [(m, n) for _, m, n in NAMED_FILES],
                         ids=[i for i, _, _ in NAMED_FILES])
def test_a_file_the_spec_names_stays_inside_its_directory(
        sandbox: Path, make: Callable[[Path], str], names: str) -> None:
    (sandbox / "spec.yaml").write_bytes(spec(preseed=make(sandbox)))
    line = refused(sandbox, ["validate", "spec.yaml"], ("preseed",))
    assert names in line, line
    assert "password" not in line and "root:" not in line  # no content echoed
    assert refused(sandbox, ["build", "spec.yaml"], ("preseed",)) == line


def test_the_check_lets_a_file_outside_through_when_asked(sandbox: Path,
                                                          tmp_path: Path) -> None:
    """The refusal above is the option's doing: with --allow-outside-files the same
    spec is valid, and a file inside the directory is valid without it."""
    (tmp_path / "shared.cfg").write_text("d-i debian-installer/locale string en_US\n")
    (sandbox / "spec.yaml").write_bytes(spec(preseed="../shared.cfg"))
    refused(sandbox, ["validate", "spec.yaml"], "outside the spec's directory")
    code, _, err = run(sandbox, ["validate", "--allow-outside-files", "spec.yaml"])
    assert (code, err) == (0, ""), err
    (sandbox / "spec.yaml").write_bytes(spec())
    assert run(sandbox, ["validate", "spec.yaml"])[0] == 0


def test_ten_thousand_problems_show_twenty_and_a_count(sandbox: Path) -> None:
    (sandbox / "spec.yaml").write_bytes(spec(**{f"k{i}": i for i in range(10_000)}))
    first = refused(sandbox, ["validate", "spec.yaml"], "unknown field", lines=21)
    assert "k" in first
    err = run(sandbox, ["validate", "spec.yaml"])[2].strip().splitlines()
    assert len(err) == 21 and err[-1].endswith("more problems; fix these first)"), err[-1]


#: what a spec may look like and must still be read: an editor's byte order mark and
#: CRLF line ends, a quoted date-like release, unicode text, comments
GOOD_FILES = [
    ("bom", b"\xef\xbb\xbf" + GOOD_SPEC.encode()),
    ("crlf", GOOD_SPEC.replace("\n", "\r\n").encode()),
    ("bom-ini", b"\xef\xbb\xbf" + GOOD_INI.encode()),
    ("crlf-ini", GOOD_INI.replace("\n", "\r\n").encode()),
    ("unicode-description", GOOD_SPEC.encode() + "description: |\n  Für alle Wolken\n"
     "  zweite Zeile\n".encode()),
    ("date-release", yaml_with('release: "20261201.0"')),
    ("comments", b"# a comment\n" + GOOD_SPEC.encode() + b"# the end\n"),
]


@pytest.mark.parametrize("content", [c for _, c in GOOD_FILES], ids=[i for i, _ in GOOD_FILES])
def test_a_spec_as_people_write_them_is_still_valid(sandbox: Path, content: bytes) -> None:
    (sandbox / "spec.yaml").write_bytes(content)
    code, out, err = run(sandbox, ["validate", "spec.yaml"])
    assert (code, err) == (0, ""), err
    assert "valid: " in out


def test_merges_are_not_keys_given_twice() -> None:
    """The duplicate-key check reads the document as written: a mapping merged into
    another (built first) is not that mapping's key given twice."""
    from koji_image_plugin.spec.load import load_yaml

    text = "root:\n  deep:\n    mid: &mid\n      <<: {a: 1}\n      a: 2\ntop:\n  <<: *mid\n"
    loaded = load_yaml(text, "t.yaml")
    assert loaded["root"] == {"deep": {"mid": {"a": 2}}} and set(loaded["top"]) == {"a"}
    with pytest.raises(Exception, match="given twice"):
        load_yaml("top:\n  <<: {a: 1}\n  b: 1\n  b: 2\n", "t.yaml")


FEDORA: dict[str, Any] = {**GOOD, "distro": "Fedora-39", "preseed": None,
                          "kickstart": "f.ks"}

#: (id, the kickstart's bytes, files beside it (name -> bytes or a maker), what the refusal
#: names): each refused by validate and build with one line, exit 2, nothing created
KICKSTARTS: list[tuple[str, bytes, dict[str, Any], str]] = [
    ("unknown-command", b"rootpw --lock\nfrobnicate --now\n", {}, "f.ks:2"),
    ("bad-option", b"rootpw --lock --frob\n", {}, "f.ks:1"),
    ("unclosed-section", b"%packages\nvim\n", {}, "kickstart"),
    ("binary", bytes(range(256)) * 4, {}, "not UTF-8 text"),
    ("two-megabytes", b"# " + b"x" * (2 << 20) + b"\n", {}, "more than 1048576 bytes"),
    ("control-chars", b"rootpw --lock\n\x1b[31mbogus\n", {}, "f.ks:2"),
    ("include-outside", b"%include ../../../../etc/shadow\n", {}, "outside"),
    ("include-absolute", b"%include /etc/passwd\n", {}, "outside"),
    ("include-missing", b"%include nosuch.ks\n", {}, "missing"),
    ("include-a-directory", b"%include inc.d\n", {"inc.d": directory("inc.d")},
     "not a file"),
    ("include-a-fifo", b"%include pipe.ks\n", {"pipe.ks": fifo("pipe.ks")}, "not a file"),
    ("include-symlink-loop", b"%include loop.ks\n", {"loop.ks": symlink_loop("loop.ks")},
     "missing"),
    ("include-itself", b"rootpw --lock\n%include f.ks\n", {}, "nests too deep"),
    ("include-bad-inside", b"%include inc.ks\n", {"inc.ks": b"rootpw --lock\nbogus\n"},
     "inc.ks:2"),
    ("include-nul", b"%include a\x00b.ks\n", {}, "one file name"),
    ("include-two-names", b"%include a.ks b.ks\n", {}, "one file name"),
    ("include-open-quote", b"%include 'a.ks\n", {}, "No closing quotation"),
    ("include-adds-up", b"%include many.ks\n%include many.ks\n",
     {"big.ks": b"#" + b"x" * 2000 + b"\n", "many.ks": b"%include big.ks\n" * 400},
     "with its includes"),
]


@pytest.mark.parametrize("content, beside, name", [pytest.param(c, b, n, id=i)
                                                    for i, c, b, n in KICKSTARTS])
def test_a_hostile_kickstart_is_refused_in_one_line(sandbox: Path, content: bytes,
                                                    beside: dict[str, Any],
                                                    name: str) -> None:
    (sandbox / "f.ks").write_bytes(content)
    for fname, what in beside.items():
        if isinstance(what, bytes):
            (sandbox / fname).write_bytes(what)
        else:
            what(sandbox)
    (sandbox / "spec.yaml").write_bytes(spec(**FEDORA))
    line = refused(sandbox, ["validate", "spec.yaml"], (name,))
    assert "kickstart" in line, line
    assert refused(sandbox, ["build", "spec.yaml"], (name,)) == line
