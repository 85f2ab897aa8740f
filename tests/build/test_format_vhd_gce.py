"""Azure's fixed VHD and GCE's tarball: argv, bad inputs, and real runs of qemu-img, xz,
tar and gzip, inspected with other tools (qemu-img compare, python's tarfile)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from koji_image_plugin.build.formats import ConvertOptions, gce, vhd
from koji_image_plugin.build.formats import writer as writer_of
from koji_image_plugin.errors import ToolError
from koji_image_plugin.runner import Runner
from koji_image_plugin.spec.formats import ImageFormat

MIB = 1 << 20


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def unxz(path: Path) -> bytes:
    return subprocess.run(["xz", "-dc", str(path)], check=True, capture_output=True).stdout


def test_vhd_argv_creates_the_padded_fixed_vhd_then_copies_the_raw_into_it(
        tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate(10_000_000)
    create, convert, xz = writer_of(ImageFormat.VHD).commands(
        raw, Path("/o/x.vhdfixed.xz"), ConvertOptions(xz_preset=2, xz_threads=3))
    assert create == ["qemu-img", "create", "-q", "-f", "vpc",
                      "-o", "subformat=fixed,force_size=on", "/o/x.vhdfixed.xz.vhd",
                      str(10 * MIB)]
    assert convert == ["qemu-img", "convert", "-n", "-f", "raw", "-O", "vpc", str(raw),
                       "/o/x.vhdfixed.xz.vhd"]
    assert xz == ["xz", "-2", "--threads=3", "--stdout", "/o/x.vhdfixed.xz.vhd"]


@pytest.mark.parametrize(("size", "padded"), [(1, MIB), (MIB, MIB), (MIB + 1, 2 * MIB),
                                              (64 * MIB - 512, 64 * MIB)])
def test_padded_size_rounds_up_to_a_whole_mib(size: int, padded: int) -> None:
    assert vhd.padded_size(size) == padded


def test_vhd_of_a_disk_not_a_whole_mib_is_padded_and_azure_shaped(
        small_disk: Path, runner: Runner, tmp_path: Path) -> None:
    raw_size = 64 * MIB + 12345
    os.truncate(small_disk, raw_size)
    dest = tmp_path / "Cloud-1-1.x86_64.vhdfixed.xz"
    w = writer_of(ImageFormat.VHD)
    before = {p.name for p in tmp_path.iterdir()}
    digest = w.write(small_disk, dest, ConvertOptions(xz_preset=0), runner, "conv")
    assert digest.sha256 == sha256(dest)
    assert {p.name for p in tmp_path.iterdir()} - before == {dest.name}  # no work file left
    data = unxz(dest)
    footer = vhd.parse_footer(data[-512:])
    assert footer.cookie == b"conectix" and footer.disk_type == 2 and footer.checksum_ok
    assert footer.current_size == 65 * MIB and footer.current_size % MIB == 0
    assert len(data) == 65 * MIB + 512
    assert data[:raw_size] == small_disk.read_bytes()
    assert not data[raw_size:65 * MIB].strip(b"\0")
    # qemu-img reads it as a VHD with the same content (padding read as zeros)
    plain = tmp_path / "plain.vhd"
    plain.write_bytes(data)
    out = subprocess.run(["qemu-img", "compare", "-f", "vpc", "-F", "raw", str(plain),
                          str(small_disk)], capture_output=True, text=True)
    assert out.returncode == 0 and "Images are identical" in out.stdout
    assert w.same_content(dest, small_disk, sha256(small_disk), runner, "verify")


def _rewrite(dest: Path, data: bytes) -> None:
    dest.write_bytes(subprocess.run(["xz", "-0", "-c"], input=data, check=True,
                                    capture_output=True).stdout)


@pytest.mark.parametrize("damage", ["footer size", "footer checksum", "padding", "no footer"])
def test_vhd_check_refuses_a_bad_footer_or_padding(damage: str, small_disk: Path,
                                                   runner: Runner, tmp_path: Path) -> None:
    raw_size = 64 * MIB - 4096
    os.truncate(small_disk, raw_size)
    dest = tmp_path / "x.vhdfixed.xz"
    w = writer_of(ImageFormat.VHD)
    w.write(small_disk, dest, ConvertOptions(xz_preset=0), runner, "conv")
    data = bytearray(unxz(dest))
    if damage == "footer size":  # a size that is not the padded one, checksum fixed up
        foot = len(data) - 512
        data[foot + 48:foot + 56] = (raw_size).to_bytes(8, "big")
        data[foot + 64:foot + 68] = (~sum(data[foot:foot + 64] + data[foot + 68:])
                                     & 0xFFFFFFFF).to_bytes(4, "big")
    elif damage == "footer checksum":
        data[-512 + 70] ^= 1
    elif damage == "padding":
        data[raw_size + 10] = 1
    else:
        del data[-512:]
    _rewrite(dest, bytes(data))
    assert not w.same_content(dest, small_disk, sha256(small_disk), runner, "verify")


def test_parse_footer_wants_512_bytes() -> None:
    with pytest.raises(ValueError, match="512 bytes, not 511"):
        vhd.parse_footer(b"\0" * 511)


def test_a_failing_qemu_img_fails_the_vhd_and_leaves_nothing(runner: Runner,
                                                             tmp_path: Path) -> None:
    raw = tmp_path / "a-directory"
    raw.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ToolError) as info:
        writer_of(ImageFormat.VHD).write(raw, out / "x.vhdfixed.xz", ConvertOptions(),
                                         runner, "conv")
    assert info.value.tool == "qemu-img"
    assert list(out.iterdir()) == []


def test_gce_argv_is_gnu_old_sparse_tar_of_disk_raw_into_gzip() -> None:
    tar, gz = writer_of(ImageFormat.GCE).commands(
        Path("/w/gce/v.raw"), Path("/o/x.tar.gz"), ConvertOptions(mtime=1700000000))
    assert tar[:5] == ["tar", "--create", "--format=oldgnu", "--sparse", "--file=-"]
    assert "--directory=/w/gce" in tar and "--transform=s|^v.raw$|disk.raw|" in tar
    assert "--mtime=@1700000000" in tar and tar[-1] == "v.raw"
    assert gz == ["gzip", "-6", "--no-name", "--stdout"]


def test_gce_tarball_holds_exactly_disk_raw_sparse_in_oldgnu_format(
        small_disk: Path, runner: Runner, tmp_path: Path) -> None:
    dest = tmp_path / "Cloud-GCE-1-1.x86_64.tar.gz"
    opts = ConvertOptions(mtime=1700000000)
    w = writer_of(ImageFormat.GCE)
    digest = w.write(small_disk, dest, opts, runner, "conv")
    assert digest.sha256 == sha256(dest)
    raw_header = subprocess.run(["gzip", "-dc", str(dest)], check=True,
                                capture_output=True).stdout[:512]
    assert raw_header[257:265] == b"ustar  \0"  # the old GNU magic, not POSIX ustar
    with tarfile.open(dest, "r:gz") as tar:
        (member,) = tar.getmembers()
        assert member.name == gce.DISK_MEMBER == "disk.raw"
        assert member.issparse() and member.size == small_disk.stat().st_size
        assert (member.mtime, member.uid, member.gid, member.mode) == (1700000000, 0, 0, 0o644)
        f = tar.extractfile(member)
        assert f is not None
        assert hashlib.file_digest(f, "sha256").hexdigest() == sha256(small_disk)
    assert w.same_content(dest, small_disk, sha256(small_disk), runner, "verify")
    again = tmp_path / "again.tar.gz"
    assert w.write(small_disk, again, opts, runner, "conv2") == digest  # deterministic


def test_gce_tarball_without_disk_raw_fails_verification(small_disk: Path, runner: Runner,
                                                         tmp_path: Path) -> None:
    other = tmp_path / "other.tar.gz"
    subprocess.run(["tar", "-czf", str(other), "-C", str(tmp_path), "disk.raw"], check=True,
                   env={**os.environ, "GZIP": "-1"})
    assert writer_of(ImageFormat.GCE).same_content(other, small_disk, sha256(small_disk),
                                                   runner, "v")
    renamed = tmp_path / "renamed.tar.gz"
    subprocess.run(["tar", "-czf", str(renamed), "-C", str(tmp_path),
                    "--transform=s|disk.raw|root.img|", "disk.raw"], check=True)
    with pytest.raises(ToolError) as info:
        writer_of(ImageFormat.GCE).same_content(renamed, small_disk, sha256(small_disk),
                                                runner, "v")
    assert "Not found in archive" in info.value.tail
