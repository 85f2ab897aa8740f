"""Hostile command-line arguments: each is refused in one line naming the option (or
the argument), exit status 2, no traceback, nothing created; before any guest, upload
or publishing starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.catalogue import make_sandbox, refused

BIG = "x" * 100_000

#: (id, argv, what the refusal names); "FILE" is a regular file, "DIR" a directory
ARGUMENTS: list[tuple[str, list[str], str]] = [
    # -- the command itself ------------------------------------------------------------
    ("no-command", [], "COMMAND"),
    ("unknown-command", ["bulid", "good.yaml"], "bulid"),
    ("unknown-option", ["build", "--colour", "good.yaml"], "--colour"),
    ("huge-argument", ["build", "--" + BIG, "good.yaml"], "unrecognized"),
    ("huge-command", [BIG], "invalid choice"),
    ("escape-argument", ["validate", "good.yaml", "\x1b[31mRED\u202e"], "unrecognized"),
    ("escape-command", ["\x1b]0;owned\x07"], "invalid choice"),
    # -- build and validate ------------------------------------------------------------
    ("build-no-spec", ["build"], "SPEC"),
    ("build-spec-missing", ["build", "nosuch.yaml"], "nosuch.yaml"),
    ("build-spec-dir", ["build", "DIR"], "DIR"),
    ("build-spec-huge-name", ["build", BIG + ".yaml"], "File name too long"),
    ("build-output-file", ["build", "--output", "FILE", "good.yaml"], "--output"),
    ("build-workdir-file", ["build", "--workdir", "FILE", "good.yaml"], "--workdir"),
    ("build-arch-unknown", ["build", "--arch", "sparc", "good.yaml"], "--arch"),
    ("build-arch-newline", ["build", "--arch", "x86_64\n", "good.yaml"], "--arch"),
    ("build-format-unknown", ["build", "--format", "iso", "good.yaml"], "--format"),
    ("build-release-slash", ["build", "--release", "1/2", "good.yaml"], "release"),
    ("build-release-newline", ["build", "--release", "1\n", "good.yaml"], "release"),
    ("build-release-dash", ["build", "--release", "1-2", "good.yaml"], "release"),
    ("build-release-huge", ["build", "--release", "9" * 1000, "good.yaml"], "release"),
    ("build-accel", ["build", "--accel", "xen", "good.yaml"], "--accel"),
    ("validate-spec-missing", ["validate", "nosuch.yaml"], "nosuch.yaml"),
    # -- names that would move a terminal's cursor or split the line: shown escaped ----
    ("spec-name-newline", ["validate", "sp\nec.yaml"], "sp\\nec.yaml"),
    ("spec-name-return", ["validate", "sp\rec.yaml"], "sp\\rec.yaml"),
    ("spec-name-escape", ["validate", "sp\x1b[31mec.yaml"], "sp\\x1b[31mec.yaml"),
    ("spec-name-bidi", ["validate", "a\u202elmay.txt"], "a\\u202elmay.txt"),
    ("config-name-newline", ["validate", "--config", "x\ny.conf", "good.yaml"],
     "x\\ny.conf"),
    ("boot-image-escape", ["boot-test", "im\x1b[2Jage.qcow2"], "im\\x1b[2Jage.qcow2"),
    ("weekly-config-escape", ["weekly", "w\x1b]0;x\x07.yaml"], "w\\x1b]0;x\\x07.yaml"),
    ("drop-build-newline", ["drop", "--release", "12", "--weekly", "20261201.0",
                            "--mirror", "m", "no\nsuch"], "no\\nsuch"),
    # -- boot-test ---------------------------------------------------------------------
    ("boot-no-image", ["boot-test"], "IMAGE"),
    ("boot-image-missing", ["boot-test", "nosuch.qcow2"], "nosuch.qcow2"),
    ("boot-image-dir", ["boot-test", "DIR"], "DIR"),
    ("boot-image-compressed", ["boot-test", "image.raw.xz"], "image.raw.xz"),
    ("boot-image-tar", ["boot-test", "image.tar.gz"], "image.tar.gz"),
    ("boot-image-junk", ["boot-test", "FILE"], "FILE"),
    ("boot-timeout-negative", ["boot-test", "--timeout", "-5", "FILE"], "--timeout"),
    ("boot-timeout-zero", ["boot-test", "--timeout", "0", "FILE"], "--timeout"),
    ("boot-timeout-absurd", ["boot-test", "--timeout", "99999", "FILE"], "--timeout"),
    ("boot-timeout-words", ["boot-test", "--timeout", "abc", "FILE"], "--timeout"),
    ("boot-timeout-float", ["boot-test", "--timeout", "60.5", "FILE"], "--timeout"),
    ("boot-logs-file", ["boot-test", "--logs", "FILE", "FILE"], "--logs"),
    ("boot-cloud-unknown", ["boot-test", "--cloud", "azure", "FILE"], "--cloud"),
    ("boot-user-option", ["boot-test", "--user", "-oProxyCommand=x", "FILE"], "--user"),
    ("boot-user-path", ["boot-test", "--user", "../root", "FILE"], "--user"),
    ("boot-arch", ["boot-test", "--arch", "arm", "FILE"], "--arch"),
    # -- upload ------------------------------------------------------------------------
    ("upload-no-to", ["upload", "DIR"], "--to"),
    ("upload-to-s3", ["upload", "--to", "s3", "DIR"], "--to"),
    ("upload-dir-missing", ["upload", "--to", "ec2", "nosuch"], "nosuch"),
    ("upload-dir-file", ["upload", "--to", "ec2", "FILE"], "FILE"),
    ("upload-no-manifest", ["upload", "--to", "ec2", "DIR"], "manifest.json"),
    ("upload-region-path", ["upload", "--to", "ec2", "--region", "../x", "DIR"],
     "--region"),
    ("upload-region-newline", ["upload", "--to", "ec2", "--region", "us-east-1\n", "DIR"],
     "--region"),
    ("upload-cloud-path", ["upload", "--to", "glance", "--cloud", "../x", "DIR"],
     "--cloud"),
    # -- drop --------------------------------------------------------------------------
    ("drop-no-kind", ["drop", "--release", "12", "--mirror", "m", "DIR"], "--milestone"),
    ("drop-both-kinds", ["drop", "--release", "12", "--milestone", "Final", "--weekly",
                         "20261201.0", "--mirror", "m", "DIR"], "--weekly"),
    ("drop-milestone-gamma", ["drop", "--release", "12", "--milestone", "Gamma",
                              "--mirror", "m", "DIR"], "--milestone"),
    ("drop-weekly-date", ["drop", "--release", "12", "--weekly", "2026-12-01",
                          "--mirror", "m", "DIR"], "--weekly"),
    ("drop-weekly-newline", ["drop", "--release", "12", "--weekly", "20261201.0\n",
                             "--mirror", "m", "DIR"], "--weekly"),
    ("drop-release-path", ["drop", "--release", "../12", "--weekly", "20261201.0",
                           "--mirror", "m", "DIR"], "--release"),
    ("drop-release-newline", ["drop", "--release", "12\n", "--weekly", "20261201.0",
                              "--mirror", "m", "DIR"], "--release"),
    ("drop-mirror-file", ["drop", "--release", "12", "--weekly", "20261201.0",
                          "--mirror", "FILE", "DIR"], "--mirror"),
    ("drop-base-url-javascript", ["drop", "--release", "12", "--weekly", "20261201.0",
                                  "--mirror", "m", "--base-url", "javascript:alert(1)",
                                  "DIR"], "--base-url"),
    ("drop-base-url-ftp", ["drop", "--release", "12", "--weekly", "20261201.0", "--mirror",
                           "m", "--base-url", "ftp://mirror.example.org/", "DIR"],
     "--base-url"),
    ("drop-base-url-newline", ["drop", "--release", "12", "--weekly", "20261201.0",
                               "--mirror", "m", "--base-url",
                               "https://mirror.example.org/\n<script>", "DIR"], "--base-url"),
    ("drop-base-url-quote", ["drop", "--release", "12", "--weekly", "20261201.0", "--mirror",
                             "m", "--base-url", 'https://x.example.org/"><svg>', "DIR"],
     "--base-url"),
    ("drop-product-path", ["drop", "--release", "12", "--weekly", "20261201.0", "--mirror",
                           "m", "--product", "../../x", "DIR"], "--product"),
    ("drop-product-newline", ["drop", "--release", "12", "--weekly", "20261201.0",
                              "--mirror", "m", "--product", "Cloud\n", "DIR"], "--product"),
    ("drop-bug-url", ["drop", "--release", "12", "--weekly", "20261201.0", "--mirror", "m",
                      "--bug-url", "javascript:alert(1)", "DIR"], "--bug-url"),
    ("drop-build-missing", ["drop", "--release", "12", "--weekly", "20261201.0",
                            "--mirror", "m", "nosuch"], "nosuch"),
    ("drop-build-no-manifest", ["drop", "--release", "12", "--weekly", "20261201.0",
                                "--mirror", "m", "DIR"], "manifest.json"),
    ("drop-tag-without-koji", ["drop", "--release", "12", "--weekly", "20261201.0",
                               "--mirror", "m", "--tag", "f19"], "--tag"),
    # -- weekly and config -------------------------------------------------------------
    ("weekly-no-config", ["weekly"], "CONFIG"),
    ("weekly-config-missing", ["weekly", "nosuch.yaml"], "nosuch.yaml"),
    ("weekly-date-bad", ["weekly", "--date", "2026-13-01", "good.yaml"], "--date"),
    ("weekly-date-words", ["weekly", "--date", "yesterday", "good.yaml"], "--date"),
    ("config-extra", ["config", "FILE"], "FILE"),
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    root = make_sandbox(tmp_path / "sandbox")
    (root / "FILE").write_text("just a file\n")
    (root / "DIR").mkdir()
    (root / "image.raw.xz").write_bytes(b"\xfd7zXZ\x00" + bytes(100))
    (root / "image.tar.gz").write_bytes(b"\x1f\x8b" + bytes(100))
    return root


@pytest.mark.parametrize("argv,names", [(a, n) for _, a, n in ARGUMENTS],
                         ids=[i for i, _, _ in ARGUMENTS])
def test_a_hostile_argument_is_refused_in_one_line(sandbox: Path, argv: list[str],
                                                   names: str) -> None:
    line = refused(sandbox, argv, names)
    assert line.startswith("koji-image"), line
