"""Image drops, the fast part: every refusal of ``koji-image drop`` and ``weekly`` names its
option or field, exits 2 and leaves nothing behind; the weekly lock; the feed checker.

The drops themselves are made from real builds in tests/release/test_drops.py (VM tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from koji_image_plugin.release import index, sources
from koji_image_plugin.release import weekly_state as weekly
from koji_image_plugin.spec.firmware import under
from tests import atomcheck

KOJI_IMAGE = str(Path(sys.executable).with_name("koji-image"))
REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KOJI_IMAGE, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args,message", [
    (["--release", "nineteen", "--milestone", "Beta", "B"],
     "--release: 'nineteen' is not a release; give a number (19) or rawhide"),
    (["--release", "19", "B"],
     "--milestone/--weekly: give exactly one: --milestone Alpha|Beta|Final or --weekly "
     "YYYYMMDD.N"),
    (["--release", "19", "--milestone", "Beta", "--weekly", "20261126.0", "B"],
     "--milestone/--weekly: give exactly one"),
    (["--release", "19", "--milestone", "RC1", "B"],
     "--milestone: 'RC1' is not a milestone; use one of: Alpha, Beta, Final"),
    (["--release", "rawhide", "--milestone", "Beta", "B"],
     "--milestone: rawhide has no milestones; use --weekly YYYYMMDD.N"),
    (["--release", "rawhide", "--weekly", "20261340.0", "B"],
     "--weekly: '20261340.0' is not a weekly id; use YYYYMMDD.N, e.g. 20261126.0"),
    (["--release", "19", "--milestone", "Beta"],
     "BUILD: give at least one build directory (or, with --koji, an NVR or --tag TAG)"),
    (["--release", "19", "--milestone", "Beta", "--tag", "f19"],
     "--tag: needs --koji PROFILE (tags are Koji's)"),
    (["--release", "19", "--milestone", "Beta", "B"],
     "BUILD: B has no manifest.json; give a directory that koji-image build wrote, or a "
     "Koji build NVR with --koji"),
    (["--release", "19", "--milestone", "Beta", "--koji", "nosuchprofile",
      "--koji-config", "koji.conf", "NVR-1-1"],
     "--koji: no configuration for profile name: nosuchprofile; give a profile of your "
     "koji config"),
])
def test_drop_refuses_bad_input_in_one_line_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
        message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "B").mkdir()
    (tmp_path / "koji.conf").write_text("[other]\nserver = http://127.0.0.1:9/kojihub\n")
    done = run("drop", "--mirror", str(tmp_path / "mirror"), *args)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"koji-image: {message}"), lines
    assert not (tmp_path / "mirror").exists()


def test_weekly_config_problems_are_all_named_before_anything_is_done(
        tmp_path: Path) -> None:
    (tmp_path / "tree.yaml").write_text(
        "name: T\nversion: rawhide\ndistro: Debian-12\narches: [x86_64]\n"
        "install_tree: file:///srv/tree\n")
    config = tmp_path / "weekly.yaml"
    config.write_text(
        f"mirror: {tmp_path / 'mirror'}\nstate_dir: {tmp_path / 'state'}\nkeep: 0\n"
        "colour: blue\nkoji: {profile: koji}\n"
        "branches:\n  - {release: rawhide, spec: missing.yaml, target: rawhide}\n"
        "  - {release: Rawhide, spec: tree.yaml}\n")
    done = run("weekly", str(config))
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"koji-image: {config}: branches.1: 'target' is a required property",
        f"koji-image: {config}: branches.1.release: 'Rawhide' does not match "
        "'^(rawhide|[1-9][0-9]*)$'",
        f"koji-image: {config}: colour: unknown field; allowed fields: allow_outside_files, "
        "base_url, branches, bug_url, gpg_homedir, gpg_key, keep, koji, mirror, "
        "poll_interval, product, state_dir, timeout",
        f"koji-image: {config}: keep: 0 is less than the minimum of 1",
    ]
    config.write_text(
        f"mirror: {tmp_path / 'mirror'}\nstate_dir: {tmp_path / 'state'}\n"
        "koji: {profile: koji}\n"
        "branches:\n  - {release: rawhide, spec: tree.yaml, target: rawhide}\n")
    done = run("weekly", str(config))
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines() == [
        f"koji-image: {tmp_path / 'tree.yaml'}: install_tree: file:// is a path on the "
        "builder; give an http, https or ftp URL the builder can fetch"]
    assert not (tmp_path / "mirror").exists() and not (tmp_path / "state").exists()


RUN = {"day": "20261126", "n": 0, "release": "20261126.0", "task_id": 7,
       "status": "submitted"}


def test_a_second_weekly_job_on_the_same_branch_is_refused_while_one_runs(
        tmp_path: Path) -> None:
    with weekly.locked_state(tmp_path, "rawhide") as state:
        state["runs"].append(RUN)
        with pytest.raises(weekly.WeeklyError, match="another weekly job is running it"):
            with weekly.locked_state(tmp_path, "rawhide"):
                pass
    with weekly.locked_state(tmp_path, "rawhide") as state:
        assert state["runs"] == [RUN]
    (tmp_path / "rawhide.json").write_text("{not json")
    with pytest.raises(weekly.WeeklyError, match=r"rawhide\.json is damaged.*; fix or remove"):
        with weekly.locked_state(tmp_path, "rawhide"):
            pass
    assert (tmp_path / "rawhide.json").read_text() == "{not json"


def test_the_feed_checker_accepts_the_empty_feed_and_catches_each_violation(
        tmp_path: Path) -> None:
    """The checker the VM tests trust must fail on broken feeds."""
    index.write_index(tmp_path, "https://mirror.example.org/pub/alt/cloud/")
    good = (tmp_path / "drops.atom").read_text()
    assert atomcheck.problems(good.encode()) == []
    entry = ("<entry><id>urn:uuid:1</id><title>t</title><updated>2026-11-26T10:00:00Z"
             "</updated><link href='https://x/'/></entry>")
    broken = {
        "no feed id": good.replace("<id>", "<!--").replace("</id>", "-->"),
        "bad date": good.replace("+00:00</updated>", "</updated>", 1),
        "two ids": good.replace("</feed>", entry + entry + "</feed>"),
        "not xml": good.replace("</feed>", ""),
        "relative id": good.replace("urn:uuid:", "", 1),
    }
    for what, text in broken.items():
        assert atomcheck.problems(text.encode()), what
    assert atomcheck.problems(good.replace("</feed>", entry + "</feed>").encode()) == []


def test_a_drop_from_an_unreachable_hub_fails_in_one_line_and_writes_nothing(
        tmp_path: Path) -> None:
    from tests.kojistub import free_port

    conf = tmp_path / "koji.conf"
    port = free_port()
    conf.write_text(f"[down]\nserver = http://127.0.0.1:{port}/kojihub\n"
                    f"topurl = http://127.0.0.1:{port}/kojifiles\nmax_retries = 0\n"
                    "anon_retry = false\n")
    done = run("drop", "--release", "19", "--milestone", "Beta", "--koji", "down",
               "--koji-config", str(conf), "Test-Cloud-Base-19-1",
               "--mirror", str(tmp_path / "mirror"))
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("koji-image: koji: cannot reach the hub: ")
    assert not (tmp_path / "mirror").exists()


def test_a_build_record_naming_a_path_outside_the_drop_is_refused(tmp_path: Path) -> None:
    """Image names become paths in the mirror; a damaged record must not escape the drop."""
    import json

    build = tmp_path / "build"
    build.mkdir()
    (build / "manifest.json").write_text(json.dumps({
        "nvr": "T-1-1", "images": [{"file": "../../../etc/T-1-1.x86_64.qcow2",
                                     "arch": "x86_64", "variant": "generic",
                                     "format": "qcow2", "size": 1, "sha256": "0" * 64}],
        "boot_tests": [{"arch": "x86_64", "variant": "generic", "passed": True}],
        "spec": {"distro": "Debian-12"}}))
    done = run("drop", "--release", "19", "--milestone", "Beta", str(build),
               "--mirror", str(tmp_path / "mirror"), "--local-builds")
    assert done.returncode == 2, done
    assert done.stderr.strip() == (
        f"koji-image: BUILD: {build}/manifest.json is damaged: images.0.file: "
        "'../../../etc/T-1-1.x86_64.qcow2' is not valid: must be a plain file name (no / "
        "and not ..); give the output directory of a koji-image build, as it wrote it")
    assert not (tmp_path / "mirror").exists()


@pytest.mark.skipif(not __import__("shutil").which("systemd-analyze"),
                    reason="systemd-analyze is not installed")
def test_the_shipped_systemd_units_verify_and_the_timer_is_weekly(tmp_path: Path) -> None:
    units = REPO / "contrib" / "systemd"
    for unit in units.iterdir():
        text = unit.read_text()
        # the RPM installs /usr/bin/koji-image; here it is the venv's
        (tmp_path / unit.name).write_text(text.replace("/usr/bin/koji-image", KOJI_IMAGE))
    done = subprocess.run(["systemd-analyze", "verify",
                           str(tmp_path / "koji-image-weekly.timer"),
                           str(tmp_path / "koji-image-weekly.service")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    timer = (units / "koji-image-weekly.timer").read_text()
    calendar = next(line.split("=", 1)[1] for line in timer.splitlines()
                    if line.startswith("OnCalendar="))
    done = subprocess.run(["systemd-analyze", "calendar", "--iterations=2", calendar],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    nexts = [line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
             if "Next elapse" in line or line.strip().startswith("Iter.")]
    assert len(nexts) == 2 and all(n.startswith("Mon ") for n in nexts), done.stdout
    cron = (REPO / "contrib" / "cron" / "koji-image-weekly").read_text()
    job = [line for line in cron.splitlines() if line and not line.startswith(("#", "CRON"))]
    assert len(job) == 1 and job[0].split()[:6] == ["0", "4", "*", "*", "1", "releng"]
    assert "koji-image weekly /etc/koji-image/weekly.yaml" in job[0]


def test_the_feed_keeps_its_base_url_when_a_later_run_gives_none(tmp_path: Path) -> None:
    from koji_image_plugin.release import index

    mirror = tmp_path / "mirror"
    index.write_index(mirror, "https://dl.example.org/pub/alt/cloud/")
    index.write_index(mirror)
    feed = (mirror / index.FEED).read_text()
    assert "https://dl.example.org/pub/alt/cloud/" in feed and "file://" not in feed


def test_a_drop_says_which_firmware_each_image_passed_its_boots_under() -> None:
    boots = [{"arch": "x86_64", "variant": "generic", "profile": "nocloud", "passed": True,
              "firmware": "ovmf"},
             {"arch": "x86_64", "variant": "generic", "profile": "openstack", "passed": True},
             {"arch": "x86_64", "variant": "ec2", "profile": "ec2", "passed": True,
              "firmware": "aavmf"},
             {"arch": "x86_64", "variant": "generic", "profile": "ec2", "passed": False,
              "firmware": "aavmf"}]
    # an older record without firmware booted under SeaBIOS; a failed boot does not count
    assert sources.booted_under(boots, "x86_64", "generic") == ("seabios", "ovmf")
    assert sources.booted_under(boots, "i686", "generic") == ()
    assert under(["seabios", "ovmf"]) == "under SeaBIOS and OVMF (UEFI)"
    assert under(["aavmf"]) == "under AAVMF (UEFI)" and under([]) == ""
    assert under(["seabios", "ovmf", "x"]) == "under SeaBIOS, OVMF (UEFI) and x"


def test_a_drops_readme_says_how_to_use_each_format_it_has_and_only_those() -> None:
    import datetime as dt

    from koji_image_plugin.release.drop import Drop, DropId, DropImage, Verdict
    from koji_image_plugin.release.readme import readme
    from koji_image_plugin.spec.arches import Arch
    from koji_image_plugin.spec.formats import ImageFormat
    from koji_image_plugin.spec.variants import Variant

    def drop(*formats: ImageFormat, arch: Arch = Arch.X86_64) -> str:
        images = tuple(DropImage(f"C-1-1.{arch}.{f.extension}", "C-1-1", arch,
                                 Variant.GENERIC, f, 1, "ab" * 32, "/x", Verdict.PASSED)
                       for f in formats)
        return readme(Drop(DropId("19", "Beta"), images), dt.datetime(2026, 12, 2))

    both = drop(ImageFormat.QCOW2, ImageFormat.VHD, ImageFormat.VAGRANT_LIBVIRT)
    assert "Azure (FILE.vhdfixed.xz" in both and "vagrant up --provider=libvirt" in both
    assert "Google Compute Engine" not in both and "VirtualBox" not in both
    assert both.index("Azure") < both.index("EC2:") < both.index("Report bugs")
    plain = drop(ImageFormat.QCOW2)
    assert "Azure" not in plain and "Vagrant" not in plain and "\nEC2:\n" in plain
    assert "qemu-system-aarch64" not in plain
    arm = drop(ImageFormat.QCOW2, arch=Arch.AARCH64)
    assert "qemu-system-aarch64 -M virt" in arm and "AAVMF_CODE.fd" in arm
    assert "aarch64/generic/C-1-1.aarch64.qcow2" in arm
