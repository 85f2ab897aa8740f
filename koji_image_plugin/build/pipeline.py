"""The build of one arch, from install to verified outputs.

    prepared kickstart/preseed -> Oz install -> base raw disk -> zero free space, read packages
      -> per variant: copy + offline customization
      -> every (variant, format) conversion at once, SHA-256 while writing; as each is
         written: its proof that it expands to the same disk, and, for a variant's qcow2,
         its boot tests (one per profile: the clouds the variant is for), several guests
         at once

``Pipeline.build_arch`` is what both the kojid plugin's arch task (``koji/archbuild.py``)
and local mode (``local.py``) call: a work dir, an output dir, a log dir, a progress
callback and a cancel event; no terminal, no Koji. It returns a typed
:class:`ArchResult`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import NoSpaceError
from ..runner import Runner
from ..spec.arches import Arch
from ..spec.formats import ImageFormat
from ..spec.hostconfig import HostConfig
from ..spec.image import ImageSpec
from ..spec.kickstart import Repo, override_repos
from ..spec.variants import Variant
from ..units import GiB
from . import disk, installfile
from .boot.schedule import Boots
from .convert import Done, Job, convert_all, cores
from .customize import customize
from .formats import ConvertOptions
from .oz.engine import OzEngine
from .results import ArchResult, ImageFile, Progress, ProgressFn
from .verify import Verifier

Report = Callable[..., None]


def check_space(path: Path, need: int, what: str, flag: str) -> None:
    free = shutil.disk_usage(path).free
    if free < need:
        raise NoSpaceError(f"not enough space in {path} for {what}: need about "
                           f"{need / GiB:.1f} GiB, {free / GiB:.1f} GiB free; "
                           f"free some or choose another with {flag}")


class Pipeline:
    def __init__(self, spec: ImageSpec, host: HostConfig, *,
                 log: logging.Logger | None = None,
                 progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None,
                 boot_test: bool | None = None,
                 repos: Sequence[Repo] | None = None) -> None:
        self.spec = spec
        #: the repos the installer installs from (``$arch`` in them is replaced): a hub
        #: build's from Koji, by default the spec's own
        self.repos = tuple(override_repos(spec.repos) if repos is None else repos)
        self.host = host
        self.log = log or logging.getLogger("koji_image_plugin")
        self.progress = progress or (lambda p: None)
        self.cancel = cancel or threading.Event()
        self.boot = spec.boot_test.enabled if boot_test is None else boot_test
        self.opts = ConvertOptions(
            qcow2_compat=spec.qcow2_compat, xz_preset=spec.xz_preset,
            mtime=int(datetime.datetime.now(datetime.UTC).timestamp()))

    def work_space(self) -> int:
        """Bytes of work files one arch needs at most: the base disk and a copy per variant
        (sparse, so the used part, bounded by the disk size)."""
        return min(self.spec.disk_size, 4) * GiB * (1 + len(self.spec.variants))

    def runner(self, logdir: Path) -> Runner:
        return Runner(logdir, self.log, self.cancel)

    def build_arch(self, arch: Arch, workdir: Path, outdir: Path, logdir: Path) -> ArchResult:
        """Build every variant and format of one arch into ``outdir``; logs into ``logdir``."""
        res = ArchResult(arch=arch)
        runner = self.runner(logdir)

        def report(stage: str, message: str, done: int = 0, total: int = 0) -> None:
            self.progress(Progress(arch.value, stage, message, done, total))

        check_space(workdir, self.work_space(), f"the {arch.value} work files", "--workdir")
        with res.timed("install"):
            engine = OzEngine(self.host, self.log, self.cancel)
            auto = installfile.prepare(self.spec, arch, self.repos)
            base, res.install = engine.install(self.spec, arch, auto, workdir / "install",
                                               logdir, lambda m: report("install", m))
        with res.timed("prepare"):
            report("prepare", "zeroing free space and reading the package list")
            with disk.mount_root(base, runner, f"prepare-{arch}", workdir) as (root, mounts):
                res.packages = disk.read_packages(root, runner, f"prepare-{arch}",
                                                  self.spec.distro.family)
                for mnt in mounts:
                    disk.zero_free_space(mnt, runner, f"prepare-{arch}")
        with res.timed("customize"):
            raws = self._variants(arch, base, workdir, runner, res, report)
        self.convert_boot_verify(arch, raws, outdir, logdir, runner, res, report)
        for raw in raws.values():
            raw.unlink()
        return res

    def convert_boot_verify(self, arch: Arch, raws: dict[Variant, Path], outdir: Path,
                            logdir: Path, runner: Runner, res: ArchResult,
                            report: Report) -> None:
        """Conversions, boot tests and verification, overlapped: a variant's boots start
        once its qcow2 is written (at once from its raw disk when it has no qcow2), each
        output is verified once written."""
        boots = Boots(self.spec, self.host, arch, runner, logdir, report,
                      self.host.guests(cores())) if self.boot else None
        if not self.boot:
            report("boot-test", "skipped (--no-boot-test)")

        def written(out: ImageFile) -> None:
            verifier.submit(out)
            if boots and out.format is ImageFormat.QCOW2:
                boots.submit(out.variant, outdir / out.file, "qcow2", raws[out.variant].parent)

        with res.timed("convert_boot_verify"), contextlib.ExitStack() as stack:
            verifier = stack.enter_context(Verifier(raws, outdir, runner,
                                                    len(self.spec.outputs())))
            if boots:
                stack.callback(boots.close)
                for variant, raw in raws.items():
                    if ImageFormat.QCOW2 not in self.spec.formats_for(variant):
                        boots.submit(variant, raw, "raw", raw.parent)
            res.outputs = self._convert(arch, raws, outdir, runner, res, report, written)
            if boots:
                res.boot_tests = boots.results()
                res.timings["boot_test"] = round(boots.wall, 1)
            res.verified = verifier.results()
        report("verify", f"{len(res.verified)} outputs expand to the disk that was booted")

    def _variants(self, arch: Arch, base: Path, workdir: Path, runner: Runner,
                  res: ArchResult, report: Report) -> dict[Variant, Path]:
        """A customized sparse copy of the base disk per variant; the base goes."""
        raws: dict[Variant, Path] = {}
        for variant in self.spec.variants:
            report("customize", f"{variant.value}: offline customization")
            vdir = workdir / variant.value
            vdir.mkdir(exist_ok=True)
            raw = vdir / "disk.raw"
            runner.run(["cp", "--sparse=always", "--reflink=auto", str(base), str(raw)],
                       log_name=f"customize-{arch}")
            with disk.mount_root(raw, runner, f"customize-{arch}", workdir) as (root, _):
                res.customized[variant.value] = customize(root, variant, arch)
            raws[variant] = raw
        base.unlink()
        return raws

    def _convert(self, arch: Arch, raws: dict[Variant, Path], outdir: Path, runner: Runner,
                 res: ArchResult, report: Report,
                 written: Callable[[ImageFile], None]) -> list[ImageFile]:
        jobs = [(v, Job(raws[v], outdir / self.spec.file_name(arch, v, f), f,
                        f"convert-{arch}-{v}-{f}"))
                for v, f in self.spec.outputs()]
        check_space(outdir, sum(raw.stat().st_blocks * 512 for raw in raws.values()) // 2,
                    "the images", "--output")
        report("convert", f"{len(jobs)} conversions at once", 0, len(jobs))
        count = 0

        variant_of = {job.dest: variant for variant, job in jobs}

        def image(d: Done) -> ImageFile:
            return ImageFile(d.job.dest.name, arch, variant_of[d.job.dest], d.job.fmt,
                             d.digest.size, d.digest.sha256, self.spec.firmware_for(arch))

        def on_done(d: Done) -> None:
            nonlocal count
            count += 1
            report("convert", f"{d.job.dest.name}: {d.digest.size / 1e6:.0f} MB in "
                   f"{d.seconds:.0f} s", count, len(jobs))
            written(image(d))

        done, stats = convert_all([job for _, job in jobs],
                                  dataclasses.replace(self.opts, arch=arch.value), runner, on_done)
        res.timings["convert"] = round(stats.wall, 1)
        res.timings["convert_cpu"] = round(stats.cpu, 1)
        return [image(d) for d in done]
