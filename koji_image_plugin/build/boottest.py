"""Boot test: does the image boot and run cloud-init?

The image is booted through a qcow2 overlay (the shipped file is never written) with
qemu (accelerator from the host config) and a cloud-init NoCloud seed made for this run.
The seed's user-data makes the guest compute and print a product of two random numbers on
its serial console, so a pass proves that cloud-init ran our user-data in this boot;
pass = the product seen before the timeout. Host tools: qemu-img, qemu-system-*,
cloud-localds.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import BootTestError
from ..runner import Runner
from ..spec.arches import Arch
from ..spec.hostconfig import HostConfig
from .console import clean_console
from .results import BootResult

MARK = "koji-image-boot-test:"


def user_data(a: int, b: int) -> str:
    return (
        "#cloud-config\n"
        "runcmd:\n"
        f"  - [ sh, -c, 'echo \"{MARK} $(({a} * {b}))\" > /dev/ttyS0' ]\n"
        "power_state:\n"
        "  mode: poweroff\n"
        "  delay: now\n"
        "  condition: true\n"
    )


def qemu_argv(arch: Arch, host: HostConfig, overlay: Path, seed: Path,
              console: Path) -> list[str]:
    return [
        arch.qemu_system,
        "-accel", host.accel,
        "-m", str(host.boot_memory_mb),
        "-smp", str(host.boot_cpus),
        "-display", "none",
        "-nodefaults",
        "-no-reboot",
        "-serial", f"file:{console}",
        "-drive", f"file={overlay},if=virtio,format=qcow2",
        "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
        "-nic", "user,model=virtio-net-pci",
    ]


def boot_test(image: Path, image_format: str, arch: Arch, variant: str, host: HostConfig,
              timeout: int, runner: Runner, workdir: Path, console_log: Path,
              log_name: str) -> BootResult:
    """Boot ``image`` and wait for the seed's answer on the serial console."""
    tmp = Path(tempfile.mkdtemp(prefix="boot-", dir=workdir))
    try:
        overlay = tmp / "overlay.qcow2"
        runner.run([
            "qemu-img", "create",
            "-f", "qcow2",
            "-F", image_format,
            "-b", str(image.resolve()),
            str(overlay),
        ], log_name=log_name)
        a, b = 1000 + secrets.randbelow(9000), 1000 + secrets.randbelow(9000)
        (tmp / "user-data").write_text(user_data(a, b))
        (tmp / "meta-data").write_text(f"instance-id: boot-test-{secrets.token_hex(6)}\n"
                                       f"local-hostname: boot-test\n")
        seed = tmp / "seed.iso"
        runner.run(["cloud-localds", str(seed), str(tmp / "user-data"),
                    str(tmp / "meta-data")], log_name=log_name)
        console = tmp / "console.log"
        console.touch()
        expected = f"{MARK} {a * b}"
        start = time.monotonic()
        proc = runner.spawn(qemu_argv(arch, host, overlay, seed, console), log_name=log_name)
        passed = False
        seen_at = 0.0
        try:
            while time.monotonic() - start < timeout:
                runner.check_cancelled()
                if expected in console.read_bytes().decode("utf-8", "replace"):
                    passed, seen_at = True, time.monotonic() - start
                    break
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
            if passed:
                # Let cloud-init power the guest off; it proves shutdown works too.
                deadline = time.monotonic() + 120
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.5)
        finally:
            code = runner.reap(proc, grace=0)
        text = clean_console(console.read_bytes())
        console_log.write_text(text)
        if passed:
            halted = "powered off" if code == 0 else "did not power off in 120 s"
            detail = f"cloud-init ran the seed's user-data after {seen_at:.0f} s; {halted}"
        elif code is not None and code != 0 and time.monotonic() - start < timeout:
            raise BootTestError(f"{arch.qemu_system} exited with status {code} before the "
                                f"guest booted; see {runner.log_path(log_name)}")
        elif proc.returncode is not None and time.monotonic() - start < timeout:
            detail = "the guest powered off without running the seed's user-data"
        else:
            last = [ln for ln in text.splitlines() if ln.strip()]
            detail = (f"no answer from cloud-init within {timeout} s; last console line: "
                      f"{last[-1][:160]!r}" if last else
                      f"the guest printed nothing on its serial console in {timeout} s")
        return BootResult(image=image.name, arch=arch.value, variant=variant, passed=passed,
                          seconds=round(seen_at if passed else time.monotonic() - start, 1),
                          accel=host.accel, detail=detail, console_log=console_log.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
