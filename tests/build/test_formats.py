"""Formats: argv, bad options, and real runs of qemu-img, tar and xz on a real disk."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from koji_image_plugin.build.formats import ConvertOptions
from koji_image_plugin.build.formats import writer as writer_of
from koji_image_plugin.checksums import HashingSink, checksum_text
from koji_image_plugin.errors import ToolError
from koji_image_plugin.runner import Runner
from koji_image_plugin.spec.formats import ImageFormat


def test_enum_knows_its_facts() -> None:
    assert ImageFormat.QCOW2.koji_archive_type == "qcow2"
    assert ImageFormat.RAW_XZ.koji_archive_type == "raw-xz"
    assert ImageFormat.RAW_TAR_XZ.koji_archive_type == "tar"
    assert ImageFormat.from_koji("raw-xz") is ImageFormat.RAW_XZ
    assert {f.extension for f in ImageFormat} == {
        "qcow2", "raw.xz", "raw.tar.xz", "vmdk", "vhdfixed.xz", "tar.gz", "vagrant.libvirt.box",
        "vagrant.virtualbox.box"}
    assert ImageFormat.from_koji("vpc") is ImageFormat.VHD
    assert ImageFormat.from_koji("tar-gz") is ImageFormat.GCE
    assert ImageFormat.from_koji("vagrant-libvirt") is ImageFormat.VAGRANT_LIBVIRT
    for fmt in ImageFormat:
        assert writer_of(fmt).fmt is fmt


def test_qcow2_argv() -> None:
    argv = writer_of(ImageFormat.QCOW2).commands(Path("/w/disk.raw"), Path("/o/x.qcow2"),
                                               ConvertOptions(qcow2_compat="0.10"))
    assert argv == [["qemu-img", "convert", "-c", "-W", "-f", "raw", "-O", "qcow2",
                     "-o", "compat=0.10", "/w/disk.raw", "/o/x.qcow2"]]


def test_raw_tar_xz_argv_is_a_sparse_tar_of_disk_raw_into_xz() -> None:
    tar, xz = writer_of(ImageFormat.RAW_TAR_XZ).commands(
        Path("/w/generic/disk.raw"), Path("/o/x.raw.tar.xz"), ConvertOptions(xz_preset=3))
    assert tar[:4] == ["tar", "--create", "--sparse", "--file=-"]
    assert "--directory=/w/generic" in tar and tar[-1] == "disk.raw"
    assert xz == ["xz", "-3", "--threads=0", "--stdout"]


def test_raw_xz_argv() -> None:
    assert writer_of(ImageFormat.RAW_XZ).commands(Path("/w/disk.raw"), Path("/o/x.raw.xz"),
                                                ConvertOptions()) == \
        [["xz", "-6", "--threads=0", "--stdout", "/w/disk.raw"]]


def sha256(path: Path) -> str:
    sink = HashingSink()
    sink(path.read_bytes())
    return sink.hexdigest()


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_real_conversion_hashes_while_writing_and_expands_to_the_same_disk(
        fmt: ImageFormat, small_disk: Path, runner: Runner, tmp_path: Path) -> None:
    dest = tmp_path / f"out.{fmt.extension}"
    writer = writer_of(fmt)
    digest = writer.write(small_disk, dest, ConvertOptions(xz_preset=1), runner, "conv")
    assert digest.size == dest.stat().st_size
    assert digest.sha256 == sha256(dest)
    assert dest.stat().st_size < small_disk.stat().st_size // 4  # compressed
    assert writer.same_content(dest, small_disk, sha256(small_disk), runner, "verify")
    # The log holds the command line and its exit status.
    log = (tmp_path / "logs" / "conv.log").read_text()
    assert "### exit status: 0" in log


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_a_different_disk_is_detected(fmt: ImageFormat, small_disk: Path, runner: Runner,
                                      tmp_path: Path) -> None:
    dest = tmp_path / f"out.{fmt.extension}"
    writer_of(fmt).write(small_disk, dest, ConvertOptions(xz_preset=0), runner, "conv")
    with open(small_disk, "r+b") as f:
        f.seek(40 << 20)
        f.write(b"changed after conversion")
    assert not writer_of(fmt).same_content(dest, small_disk, sha256(small_disk), runner, "v")


def test_qcow2_bad_compat_is_a_tool_error_and_leaves_no_file(small_disk: Path,
                                                             runner: Runner,
                                                             tmp_path: Path) -> None:
    dest = tmp_path / "x.qcow2"
    with pytest.raises(ToolError) as info:
        writer_of(ImageFormat.QCOW2).write(small_disk, dest, ConvertOptions(qcow2_compat="9"),
                                         runner, "conv")
    assert "qemu-img failed with exit status 1" in str(info.value)
    assert "compat" in info.value.tail
    assert not dest.exists()


def test_a_failing_tar_behind_a_succeeding_xz_fails_the_write(runner: Runner,
                                                             tmp_path: Path) -> None:
    dest = tmp_path / "x.raw.tar.xz"
    with pytest.raises(ToolError) as info:
        writer_of(ImageFormat.RAW_TAR_XZ).write(tmp_path / "missing" / "disk.raw", dest,
                                              ConvertOptions(xz_preset=0), runner, "conv")
    assert info.value.tool == "tar"
    assert "Cannot" in info.value.tail or "No such file" in info.value.tail
    assert not dest.exists()


def test_checksum_file_is_fedora_style_and_sha256sum_accepts_it(
        small_disk: Path, runner: Runner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    entries = []
    for fmt in (ImageFormat.QCOW2, ImageFormat.RAW_XZ):
        name = f"Test-1-1.x86_64.{fmt.extension}"
        entries.append((name, writer_of(fmt).write(small_disk, out / name,
                                                 ConvertOptions(xz_preset=0), runner, "c")))
    text = checksum_text(entries)
    (out / "CHECKSUM").write_text(text)
    lines = text.splitlines()
    assert lines[0] == f"# Test-1-1.x86_64.qcow2: {entries[0][1].size} bytes"
    assert lines[1] == f"SHA256 (Test-1-1.x86_64.qcow2) = {entries[0][1].sha256}"
    done = subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=out, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": OK") == 2
    (out / "Test-1-1.x86_64.raw.xz").write_bytes(b"corrupt")
    assert subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=out,
                          capture_output=True).returncode != 0


def test_convert_all_runs_every_job_and_reports_each(small_disk: Path, runner: Runner,
                                                     tmp_path: Path) -> None:
    from koji_image_plugin.build.convert import Job, convert_all

    jobs = [Job(small_disk, tmp_path / f"o.{f.extension}", f, f"c-{f.value}")
            for f in ImageFormat]
    seen: list[str] = []
    done, stats = convert_all(jobs, ConvertOptions(xz_preset=0), runner,
                              lambda d: seen.append(d.job.dest.name))
    assert [d.job for d in done] == jobs
    assert sorted(seen) == sorted(j.dest.name for j in jobs)
    assert all(d.digest.sha256 == sha256(d.job.dest) for d in done)
    assert stats.wall > 0 and stats.cpu > 0


def test_convert_all_stops_the_others_when_one_fails(small_disk: Path, runner: Runner,
                                                     tmp_path: Path) -> None:
    from koji_image_plugin.build.convert import Job, convert_all

    jobs = [Job(small_disk, tmp_path / "ok.raw.xz", ImageFormat.RAW_XZ, "a"),
            Job(tmp_path / "missing.raw", tmp_path / "bad.qcow2", ImageFormat.QCOW2, "b")]
    with pytest.raises(ToolError):
        convert_all(jobs, ConvertOptions(xz_preset=9), runner)
    assert not (tmp_path / "bad.qcow2").exists()
    assert not (tmp_path / "ok.raw.xz").exists()


def test_convert_all_refuses_options_a_format_cannot_take_before_any_job_starts(
        small_disk: Path, runner: Runner, tmp_path: Path) -> None:
    from koji_image_plugin.build.convert import Job, convert_all
    from koji_image_plugin.errors import KojiImageError

    jobs = [Job(small_disk, tmp_path / "o.qcow2", ImageFormat.QCOW2, "a"),
            Job(small_disk, tmp_path / "o.box", ImageFormat.VAGRANT_VIRTUALBOX, "b")]
    with pytest.raises(KojiImageError, match="not aarch64"):
        convert_all(jobs, ConvertOptions(arch="aarch64"), runner)
    assert not (tmp_path / "o.qcow2").exists()
    assert not list((tmp_path / "logs").glob("*"))  # no tool ran


def test_xz_jobs_share_the_cores_without_oversubscribing(small_disk: Path, runner: Runner,
                                                         tmp_path: Path) -> None:
    from koji_image_plugin.build.convert import Job, convert_all, cores

    jobs = [Job(small_disk, tmp_path / f"o{i}.raw.xz", ImageFormat.RAW_XZ, f"x{i}")
            for i in range(2)]
    convert_all(jobs, ConvertOptions(xz_preset=0), runner)
    from koji_image_plugin.build.convert import XZ_CORES_PER_JOB

    want = cores() // max(1, min(2, cores() // XZ_CORES_PER_JOB))
    for i in range(2):
        assert f"--threads={want}" in (tmp_path / "logs" / f"x{i}.log").read_text()


def test_productmd_knows_each_formats_type_and_format() -> None:
    import productmd.images

    for fmt in ImageFormat:
        kind, form = fmt.productmd
        assert kind in productmd.images.SUPPORTED_IMAGE_TYPES, fmt
        assert form in productmd.images.SUPPORTED_IMAGE_FORMATS, fmt
    assert ImageFormat.VHD.productmd == ("vhd-compressed", "vhdfixed.xz")
    assert ImageFormat.GCE.productmd == ("tar-gz", "tar.gz")
