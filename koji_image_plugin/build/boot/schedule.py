"""The boot tests of one arch: every variant booted as each of its profiles under each
firmware its image claims (a hybrid image under SeaBIOS and OVMF), a boot started as
soon as its image is written, several guests at once where the host has the cores
(``[boot] guests``).

The boots of one image are compared when all are done: two instances of it that share a
machine-id or ssh host keys fail their ``new-identity`` check.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ...runner import Runner
from ...spec.arches import Arch
from ...spec.hostconfig import HostConfig
from ...spec.image import ImageSpec
from ...spec.variants import Variant
from ..results import BootResult
from . import checks, run

Report = Callable[..., None]


class Boots:
    """Boots submitted while the build goes on; ``results`` waits for them."""

    def __init__(self, spec: ImageSpec, host: HostConfig, arch: Arch, runner: Runner,
                 logdir: Path, report: Report, guests: int) -> None:
        self.spec, self.host, self.arch, self.runner = spec, host, arch, runner
        self.logdir, self.report = logdir, report
        self.pool = ThreadPoolExecutor(max_workers=guests, thread_name_prefix="boot")
        self.futures: list[tuple[Variant, Future[BootResult]]] = []
        self.lock = threading.Lock()
        self.first: float | None = None
        self.last: float | None = None

    def submit(self, variant: Variant, image: Path, image_format: str,
               workdir: Path) -> None:
        """Boot ``image`` (the variant's qcow2, or its raw disk) as each profile, under
        each firmware."""
        bt = self.spec.boot_test
        fws = self.arch.boot_firmwares(self.spec.firmware_for(self.arch))
        for fw in fws:
            for profile in bt.profiles_for(variant):
                req = run.Request(image=image, image_format=image_format, arch=self.arch,
                                  variant=variant.value, profile=profile,
                                  timeout=bt.timeout, leftovers=bt.leftovers, user=bt.user,
                                  default_user=self.spec.distro.family.cloud_user,
                                  firmware=fw)
                fut = self.pool.submit(self._one, req, workdir)
                self.futures.append((variant, fut))

    def _one(self, req: run.Request, workdir: Path) -> BootResult:
        with self.lock:
            self.first = self.first or time.monotonic()
        name = f"boot-{self.arch}-{req.variant}-{req.profile}-{req.firmware}"
        self.report("boot-test", f"{req.variant}: booting {req.image.name} as "
                    f"{req.profile.label} under {req.firmware.label} ({self.host.accel}, "
                    f"timeout {req.timeout} s)")
        result = run.boot(req, self.host, self.runner, workdir, self.logdir, name)
        self.report("boot-test", f"{req.variant} as {req.profile} ({req.firmware}): "
                    f"{'PASS' if result.passed else 'FAIL'} in {result.seconds:.0f} s: "
                    f"{result.detail}")
        for check in result.checks:
            self.report("boot-test", f"  {check.line()}")
        with self.lock:
            self.last = time.monotonic()
        return result

    def results(self) -> list[BootResult]:
        """Every boot's result (in submission order), once all are done; raises the
        first boot's error (after stopping the others)."""
        try:
            done = [(v, f.result()) for v, f in self.futures]
        except BaseException:
            self.runner.cancel()
            raise
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        out: list[BootResult] = []
        for variant in dict.fromkeys(v for v, _ in done):
            out += compare([r for v, r in done if v is variant])
        return out

    def close(self) -> None:
        """Stop what has not started (after a failure elsewhere, the runner's cancel
        has stopped the guests) and wait for the rest."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    @property
    def wall(self) -> float:
        """Seconds from the first boot's start to the last one's end."""
        return (self.last - self.first) if self.first and self.last else 0.0


def name(b: BootResult) -> str:
    """A boot of an image, as its verdicts name it (``ec2 under ovmf``)."""
    return f"{b.profile} under {b.firmware}"


def compare(boots: list[BootResult]) -> list[BootResult]:
    """Fail ``new-identity`` of the boots of one image that share an identity."""
    clashes = checks.distinct([(name(b), b.identity) for b in boots if b.checks[1:]])
    out = []
    for b in boots:
        clash = clashes.get(name(b))
        if clash is None:
            out.append(b)
            continue
        new = tuple(checks.Check(c.name, False, f"{clash} (not made for this instance)")
                    if c.name == "new-identity" else c for c in b.checks)
        out.append(dataclasses.replace(
            b, checks=new, passed=False, detail=f"{b.detail}; new-identity FAILED: {clash}"))
    return out
