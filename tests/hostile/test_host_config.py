"""Hostile host configs (``--config``, ``$KOJI_IMAGE_CONFIG``): each is refused by
``koji-image config`` and by ``build`` before anything is made, in one line naming the
section and key (or the file and line), exit status 2, nothing created."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.catalogue import directory, fifo, make_sandbox, refused, run, symlink_loop

#: (id, the file's text, what the refusal names)
CONFIGS: list[tuple[str, str, str]] = [
    # -- not an INI file of ours -------------------------------------------------------
    ("no-header", "memory = 1\n", "line 1"),
    ("no-value", "[libvirt]\nmemory\n", "line 2"),
    ("two-sections", "[libvirt]\nmemory = 2048\n[libvirt]\ncpus = 1\n", "[libvirt]"),
    ("twice-a-key", "[libvirt]\nmemory = 1024\nmemory = 2048\n", "'memory'"),
    ("unknown-section", "[libvrt]\nmemory = 2048\n", "[libvrt]"),
    ("unknown-key", "[libvirt]\nmemroy = 2048\n", "[libvirt] memroy"),
    ("yaml-instead", "libvirt:\n  memory: 2048\n", "line 1"),
    ("glance-without-cloud", "[glance]\nclouds = x\n", "[glance]"),
    # -- numbers -----------------------------------------------------------------------
    ("memory-negative", "[libvirt]\nmemory = -1\n", "[libvirt] memory"),
    ("memory-zero", "[libvirt]\nmemory = 0\n", "[libvirt] memory"),
    ("memory-absurd", "[libvirt]\nmemory = 99999999999\n", "[libvirt] memory"),
    ("memory-words", "[libvirt]\nmemory = two gigs\n", "[libvirt] memory"),
    ("memory-float", "[libvirt]\nmemory = 2048.5\n", "[libvirt] memory"),
    ("memory-hex", "[libvirt]\nmemory = 0x800\n", "[libvirt] memory"),
    ("cpus-zero", "[libvirt]\ncpus = 0\n", "[libvirt] cpus"),
    ("cpus-absurd", "[libvirt]\ncpus = 100000\n", "[libvirt] cpus"),
    ("boot-memory-small", "[boot]\nmemory = 16\n", "[boot] memory"),
    ("boot-cpus-negative", "[boot]\ncpus = -2\n", "[boot] cpus"),
    ("install-timeout-zero", "[timeouts]\ninstall = 0\n", "[timeouts] install"),
    ("install-timeout-negative", "[timeouts]\ninstall = -5\n", "[timeouts] install"),
    ("install-timeout-absurd", "[timeouts]\ninstall = 999999999\n", "[timeouts] install"),
    ("inactivity-words", "[timeouts]\ninactivity = soon\n", "[timeouts] inactivity"),
    # -- choices, text and paths -------------------------------------------------------
    ("type-xen", "[libvirt]\ntype = xen\n", "[libvirt] type"),
    ("type-upper", "[libvirt]\ntype = KVM\n", "[libvirt] type"),
    ("uri-two-lines", "[libvirt]\nuri = qemu:///system\n  qemu:///session\n",
     "[libvirt] uri"),
    ("uri-bell", "[libvirt]\nuri = qemu:///sys\x07tem\n", "[libvirt] uri"),
    ("workdir-relative", "[paths]\nworkdir = var/tmp\n", "[paths] workdir"),
    ("workdir-dotdot", "[paths]\nworkdir = ../tmp\n", "[paths] workdir"),
    ("workdir-nul", "[paths]\nworkdir = /var/\x00tmp\n", "[paths] workdir"),
    ("workdir-escape", "[paths]\nworkdir = /var/t\x1b]0;pwn\x07mp\n", "[paths] workdir"),
    ("workdir-two-lines", "[paths]\nworkdir = /var/tmp\n  /etc\n", "[paths] workdir"),
    ("uri-c1", "[libvirt]\nuri = qemu:///sys\x9b31mtem\n", "[libvirt] uri"),
    ("uri-bidi", "[libvirt]\nuri = qemu:///\u202emetsys\n", "[libvirt] uri"),
    ("uri-huge", "[libvirt]\nuri = qemu:///" + "s" * 500_000 + "\n", "[libvirt] uri"),
    ("memory-underscore", "[libvirt]\nmemory = 2_048\n", "[libvirt] memory"),
    ("cpus-fullwidth", "[libvirt]\ncpus = １\n", "[libvirt] cpus"),
    ("glance-name-path", "[glance:../x]\nauth_cloud = x\n", "[glance:../x]"),
    ("glance-name-space", "[glance:a b]\nauth_cloud = x\n", "[glance:a b]"),
    ("glance-name-colon", "[glance:a:b]\nauth_cloud = x\n", "[glance:a:b]"),
    # -- [ec2] and [glance:CLOUD] (a bad cloud section stops `config`) -----------------
    ("ec2-region-path", "[ec2]\nregions = us-east-1 ../x\n", "[ec2] regions"),
    ("ec2-no-regions", "[ec2]\nregions =\n", "[ec2] regions"),
    ("ec2-workers-zero", "[ec2]\nregions = us-east-1\nworkers = 0\n", "[ec2] workers"),
    ("ec2-workers-absurd", "[ec2]\nregions = us-east-1\nworkers = 4096\n", "[ec2] workers"),
    ("ec2-stall-small", "[ec2]\nregions = us-east-1\nstall_timeout = 1\n",
     "[ec2] stall_timeout"),
    ("ec2-retries-zero", "[ec2]\nregions = us-east-1\nretries = 0\n", "[ec2] retries"),
    ("ec2-endpoint-javascript", "[ec2]\nregions = us-east-1\nendpoint_url = javascript:x\n",
     "[ec2] endpoint_url"),
    ("ec2-endpoint-no-host", "[ec2]\nregions = us-east-1\nendpoint_url = http://\n",
     "[ec2] endpoint_url"),
    ("ec2-endpoint-password",
     "[ec2]\nregions = us-east-1\nendpoint_url = https://u:secret@ec2.example.org/\n",
     "[ec2] endpoint_url"),
    ("ec2-method", "[ec2]\nregions = us-east-1\nmethod = ftp\n", "[ec2] method"),
    ("ec2-import-no-bucket", "[ec2]\nregions = us-east-1\nmethod = s3-import\n", "bucket"),
    ("ec2-bucket-space", "[ec2]\nregions = us-east-1\nbucket = a b\n", "[ec2] bucket"),
    ("ec2-profile-bell", "[ec2]\nregions = us-east-1\nprofile = a\x07b\n", "[ec2] profile"),
    ("ec2-root-device", "[ec2]\nregions = us-east-1\nroot_device = /etc/passwd\n",
     "[ec2] root_device"),
    ("ec2-volume-type", "[ec2]\nregions = us-east-1\nvolume_type = floppy\n",
     "[ec2] volume_type"),
    ("ec2-ena-maybe", "[ec2]\nregions = us-east-1\nena = maybe\n", "[ec2] ena"),
    ("ec2-regions-escape", "[ec2]\nregions = us-east-1\n  eu-\x1b[2Jwest-1\n", "[ec2] regions"),
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    return make_sandbox(tmp_path / "sandbox")


@pytest.mark.parametrize("text,names", [(t, n) for _, t, n in CONFIGS],
                         ids=[i for i, _, _ in CONFIGS])
def test_a_hostile_host_config_is_refused_in_one_line(sandbox: Path, text: str,
                                                      names: str) -> None:
    (sandbox / "host.conf").write_text(text)
    line = refused(sandbox, ["config", "--config", "host.conf"], names)
    assert line.startswith("koji-image: host.conf: "), line
    assert "secret" not in line
    if not text.startswith(("[ec2]", "[glance")):  # builds go on past a bad cloud section
        # the same file named by $KOJI_IMAGE_CONFIG (the sandbox's), shown by its path
        line = refused(sandbox, ["build", "good.yaml"], names)
        assert line.startswith(f"koji-image: {sandbox / 'host.conf'}: "), line


def _missing(d: Path) -> str:
    return "nosuch.conf"


def _binary(d: Path) -> str:
    (d / "bin.conf").write_bytes(bytes(range(256)))
    return "bin.conf"


def _huge(d: Path) -> str:
    (d / "huge.conf").write_text("[libvirt]\n" + "# padding\n" * 200_000)
    return "huge.conf"


#: host config files that are no readable small text file
FILES = [("missing", _missing, "nosuch.conf"), ("a-directory", directory("conf.d"), "conf.d"),
         ("binary", _binary, "not UTF-8"), ("over-1-MiB", _huge, "over 1 MiB"),
         ("a-fifo", fifo("fifo.conf"), "not a regular file"),
         ("symlink-loop", symlink_loop("loop.conf"), "loop.conf")]


@pytest.mark.parametrize("make,names", [(m, n) for _, m, n in FILES],
                         ids=[i for i, _, _ in FILES])
def test_a_host_config_that_is_no_small_text_file_is_refused(
        sandbox: Path, make: Callable[[Path], str], names: str) -> None:
    name = make(sandbox)
    line = refused(sandbox, ["config", "--config", name], names)
    assert line.startswith("koji-image: ") and name in line, line
    assert refused(sandbox, ["validate", "--config", name, "good.yaml"], names) == line


#: host configs as people write them, which must still be read
GOOD_CONFIGS = [
    ("bom", "\ufeff[libvirt]\nmemory = 2048\n"),
    ("crlf", "[libvirt]\r\nmemory = 2048\r\n[boot]\r\ncpus = 1\r\n"),
    ("regions-over-lines", "[ec2]\nregions = us-east-1\n  us-west-2\n"),
    ("regions-with-a-tab", "[ec2]\nregions = us-east-1\tus-west-2\n"),
    ("bucket-legacy", "[ec2]\nregions = us-east-1\nmethod = s3-import\nbucket = Old_Images\n"),
    ("imds-empty-as-shown", '[ec2]\nregions = us-east-1\nimds_support = ""\n'),
    ("glance-cloud", "[glance:fedora-infra.cloud_1]\n"),
]


@pytest.mark.parametrize("text", [t for _, t in GOOD_CONFIGS], ids=[i for i, _ in GOOD_CONFIGS])
def test_a_host_config_as_people_write_them_is_still_read(sandbox: Path, text: str) -> None:
    (sandbox / "host.conf").write_text(text)
    code, _, err = run(sandbox, ["config", "--config", "host.conf"])
    assert (code, err) == (0, ""), err
