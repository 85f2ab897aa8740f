"""What the before/after host checks count: a test's own qemu processes, not another
user's on the same host."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import host_state, is_root


def started(directory: Path) -> subprocess.Popen[bytes]:
    """A process named like qemu (a copy of sleep), run from ``directory``."""
    exe = directory / "qemu-system-test"
    shutil.copy("/bin/sleep", exe)
    return subprocess.Popen([str(exe), "60"])


def test_only_what_a_test_could_have_made_is_counted(tmp_path: Path) -> None:
    before = host_state()
    with tempfile.TemporaryDirectory(prefix="someone-else-", dir="/var/tmp") as other:
        theirs = started(Path(other))
        try:
            assert host_state() == before  # not ours: not counted
            ours = started(tmp_path)
            try:
                after = host_state()
                assert after != before
                assert [ln for ln in after["qemu"] - before["qemu"]] == [
                    f"{ours.pid} {tmp_path / 'qemu-system-test'} 60"]
            finally:
                ours.kill()
                ours.wait()
        finally:
            theirs.kill()
            theirs.wait()
    assert host_state() == before


@pytest.mark.root
@pytest.mark.skipif(not is_root(), reason="libvirt's nvram directory is writable by root only")
def test_a_uefi_variable_store_left_in_libvirts_nvram_dir_is_counted() -> None:
    nvram = Path("/var/lib/libvirt/qemu/nvram")
    assert nvram.is_dir(), f"{nvram} is missing: scripts/setup.sh installs libvirt's qemu driver"
    before = host_state()
    with tempfile.NamedTemporaryFile(prefix="someone-else-", dir=nvram):
        assert host_state() == before
    with tempfile.NamedTemporaryFile(prefix="koji-image-test-", suffix="_VARS.fd",
                                     dir=nvram) as ours:
        assert host_state()["nvram"] - before["nvram"] == {Path(ours.name).name}
    assert host_state() == before
