"""Hostile weekly job configs (``koji-image weekly CONFIG``): each is refused in one line
naming the field, exit status 2, before the hub is asked anything and before the mirror
or the state dir is made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.catalogue import make_sandbox, refused, run

GOOD: dict[str, Any] = {
    "mirror": "mirror", "state_dir": "state",
    "koji": {"profile": "koji", "config": "koji.conf"},
    "branches": [{"release": "12", "spec": "good.yaml", "target": "f19"}]}


def config(**changes: Any) -> bytes:
    data = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    return json.dumps(data).encode()


def branch(**changes: Any) -> bytes:
    return config(branches=[{**GOOD["branches"][0], **changes}])


#: (id, the config's bytes, what the refusal names)
CONFIGS: list[tuple[str, bytes, str]] = [
    ("binary", bytes(range(256)), "is not UTF-8 text"),
    ("alias-bomb", b"a: &a [x,x,x,x,x,x,x,x,x,x]\n" + b"".join(
        f"b{i}: &b{i} [{', '.join(['*a' if i == 0 else f'*b{i - 1}'] * 10)}]\n".encode()
        for i in range(12)), "aliases"),
    ("deep", b"[" * 10_000 + b"]" * 10_000, "nest"),
    ("a-list", b"- mirror: m\n", "is not of type 'object'"),
    ("no-branches", config(branches=None), "branches"),
    ("branches-empty", config(branches=[]), "branches"),
    ("no-koji", config(koji=None), "koji"),
    ("koji-profile-newline", config(koji={"profile": "koji\n", "config": "koji.conf"}),
     "koji.profile"),
    ("koji-unknown", config(koji={"profile": "koji", "config": "koji.conf",
                                  "password": "secret"}), "password"),
    ("mirror-newline", config(mirror="mirror\n"), "mirror"),
    ("mirror-empty", config(mirror=""), "mirror"),
    ("state-dir-control", config(state_dir="st\x1bate"), "state_dir"),
    ("base-url-javascript", config(base_url="javascript:alert(1)"), "base_url"),
    ("base-url-quote", config(base_url='https://x.example.org/"><svg>'), "base_url"),
    ("bug-url-javascript", config(bug_url="javascript:alert(1)"), "bug_url"),
    ("product-path", config(product="../../x"), "product"),
    ("keep-zero", config(keep=0), "keep"),
    ("keep-absurd", config(keep=10 ** 9), "keep"),
    ("timeout-small", config(timeout=1), "timeout"),
    ("poll-negative", config(poll_interval=-1), "poll_interval"),
    ("poll-absurd", config(poll_interval=10 ** 9), "poll_interval"),
    ("gpg-key-newline", config(gpg_key="KEY\n--batch"), "gpg_key"),
    ("release-path", branch(release="../12"), "release"),
    ("release-newline", branch(release="12\n"), "release"),
    ("target-newline", branch(target="f19\n"), "target"),
    ("spec-missing", branch(spec="nosuch.yaml"), "nosuch.yaml"),
    ("spec-newline", branch(spec="good.yaml\n"), "spec"),
    ("arches-empty", branch(arches=[]), "arches"),
    ("arches-many", branch(arches=["x86_64"] * 100), "arches"),
    ("branch-unknown", branch(colour="blue"), "colour"),
    ("branches-many", config(branches=[{**GOOD["branches"][0], "release": str(i)}
                                       for i in range(1, 200)]), "branches"),
    ("mirror-a-file", config(mirror="koji.conf"), "mirror"),
    ("mirror-dev-null", config(mirror="/dev/null"), "mirror"),
    ("state-dir-a-file", config(state_dir="koji.conf"), "state_dir"),
    ("keep-float", config(keep=4.0), "keep"),
    ("keep-huge", config()[:-1] + b', "keep": ' + b"9" * 5000 + b"}", "more digits"),
    ("base-url-huge", config(base_url="https://mirror.example.org/" + "a" * 100_000),
     "base_url"),
    ("bug-url-huge", config(bug_url="https://bugs.example.org/" + "a" * 100_000), "bug_url"),
    ("release-bad-date", branch().replace(b'"release": "12"', b'"release": 2026-13-45'),
     "release"),
    ("spec-a-directory", branch(spec="work"), "is not a regular file"),
    ("koji-config-binary", config(koji={"profile": "koji", "config": "bad.conf"}),
     "koji.config"),
    ("koji-config-key-twice", config(koji={"profile": "koji", "config": "twice.conf"}),
     "koji.config"),
    ("koji-profile-missing", config(koji={"profile": "nosuch", "config": "koji.conf"}),
     "koji.profile"),
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    root = make_sandbox(tmp_path / "sandbox")
    # a hub that is not there: a config that passes its checks fails at login (exit 1)
    (root / "koji.conf").write_text("[koji]\nserver = http://127.0.0.1:9/kojihub\n")
    (root / "bad.conf").write_bytes(b"\xff\xfe garbage\n[\n")
    (root / "twice.conf").write_text("[koji]\nserver = http://127.0.0.1:9/kojihub\n"
                                     "server = x\n")
    (root / "good.yaml").write_text((root / "good.yaml").read_text().replace(
        "file:///srv/trees/", "http://mirror.example.org/"))
    return root


def test_the_good_config_passes_its_checks_so_each_refusal_is_its_fault(
        sandbox: Path) -> None:
    (sandbox / "weekly.yaml").write_bytes(config())
    code, _, err = run(sandbox, ["weekly", "weekly.yaml"])
    assert code == 1 and "koji: cannot log in to http://127.0.0.1:9/kojihub" in err, err
    assert not (sandbox / "mirror").exists() and not (sandbox / "state").exists()


@pytest.mark.parametrize("content,names", [(c, n) for _, c, n in CONFIGS],
                         ids=[i for i, _, _ in CONFIGS])
def test_a_hostile_weekly_config_is_refused_in_one_line(sandbox: Path, content: bytes,
                                                        names: str) -> None:
    (sandbox / "weekly.yaml").write_bytes(content)
    line = refused(sandbox, ["weekly", "weekly.yaml"], names)
    assert "secret" not in line


def test_a_branch_release_may_be_a_number(sandbox: Path) -> None:
    """``release: 12`` unquoted is the branch "12" (as a spec's version may be one)."""
    (sandbox / "weekly.yaml").write_bytes(branch().replace(b'"release": "12"',
                                                           b'"release": 12'))
    code, _, err = run(sandbox, ["weekly", "weekly.yaml"])
    assert code == 1 and "koji: cannot log in" in err, err


def test_a_spec_naming_a_file_outside_needs_the_configs_consent(sandbox: Path) -> None:
    (sandbox / "specs").mkdir()
    (sandbox / "specs" / "s.yaml").write_text(
        (sandbox / "good.yaml").read_text().replace("preseed.cfg", "../preseed.cfg"))
    (sandbox / "weekly.yaml").write_bytes(branch(spec="specs/s.yaml"))
    line = refused(sandbox, ["weekly", "weekly.yaml"], "outside the spec's directory")
    assert "preseed" in line and "set allow_outside_files: true" in line, line
    (sandbox / "weekly.yaml").write_bytes(config(
        allow_outside_files=True,
        branches=[{**GOOD["branches"][0], "spec": "specs/s.yaml"}], bug_url=""))
    code, _, err = run(sandbox, ["weekly", "weekly.yaml"])
    assert code == 1 and "koji: cannot log in" in err, err
