"""The last stage of an arch: boot each variant, and prove meanwhile that every output
expands to the same disk as the one that booted (so the qcow2 that passed vouches for
the raw.xz and the raw.tar.xz of its variant)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..checksums import HashingSink
from ..errors import VerifyError
from ..runner import Runner
from ..spec.arches import Arch
from ..spec.formats import ImageFormat
from ..spec.hostconfig import HostConfig
from ..spec.image import ImageSpec
from ..spec.variants import Variant
from . import boottest
from .formats import writer
from .results import ArchResult, BootResult, ImageFile

Report = Callable[..., None]


def raw_sha256(raw: Path, runner: Runner) -> str:
    """The raw disk's SHA-256, stopping at a cancel between chunks."""
    sink = HashingSink()
    with open(raw, "rb") as f:
        while chunk := f.read(1 << 22):
            runner.check_cancelled()
            sink(chunk)
    return sink.hexdigest()


def boot_and_verify(spec: ImageSpec, host: HostConfig, boot: bool, arch: Arch,
                    raws: dict[Variant, Path], outdir: Path, logdir: Path, runner: Runner,
                    res: ArchResult, report: Report) -> None:
    """Boot tests into ``res.boot_tests`` (when ``boot``), verdicts into ``res.verified``."""

    def verify(out: ImageFile, raw_sum: Future[str]) -> tuple[str, str]:
        raw = raws[out.variant]
        same = writer(out.format).same_content(outdir / out.file, raw, raw_sum.result(),
                                               runner, f"verify-{arch}-{out.variant}")
        if not same:
            raise VerifyError(f"{out.file} does not expand to the same disk as the "
                              f"booted {out.variant} image")
        return out.file, f"expands to the same disk content as {out.variant} disk.raw"

    # One worker per job, so a verification waiting for its raw digest never starves
    # the digest it waits for.
    with ThreadPoolExecutor(max_workers=len(res.outputs) + len(raws)) as pool:
        sums = {v: pool.submit(raw_sha256, raw, runner) for v, raw in raws.items()}
        checks = [pool.submit(verify, o, sums[o.variant]) for o in res.outputs]
        try:
            if boot:
                with res.timed("boot_test"):
                    for variant in spec.variants:
                        res.boot_tests.append(_boot_one(
                            spec, host, arch, variant, raws[variant], res.outputs, outdir,
                            logdir, runner, report))
            else:
                report("boot-test", "skipped (--no-boot-test)")
            with res.timed("verify"):
                for fut in checks:
                    name, verdict = fut.result()
                    res.verified[name] = verdict
        except BaseException:
            runner.cancel()
            raise
    report("verify", f"{len(res.verified)} outputs expand to the disk that was booted")


def _boot_one(spec: ImageSpec, host: HostConfig, arch: Arch, variant: Variant, raw: Path,
              outputs: list[ImageFile], outdir: Path, logdir: Path, runner: Runner,
              report: Report) -> BootResult:
    """Boot the variant's qcow2 (its raw disk when it has none)."""
    qcow = [o for o in outputs if o.variant is variant and o.format is ImageFormat.QCOW2]
    image, fmt = (outdir / qcow[0].file, "qcow2") if qcow else (raw, "raw")
    report("boot-test", f"{variant.value}: booting {image.name} "
           f"({host.accel}, timeout {spec.boot_test.timeout} s)")
    console = logdir / f"boot-console-{arch}-{variant}.log"
    result = boottest.boot_test(image, fmt, arch, variant.value, host,
                                spec.boot_test.timeout, runner, raw.parent, console,
                                f"boot-{arch}-{variant}")
    report("boot-test", f"{variant.value}: {'PASS' if result.passed else 'FAIL'}: "
           f"{result.detail}")
    return result
