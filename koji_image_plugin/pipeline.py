"""The build pipeline: one spec, one arch at a time, from install to verified outputs.

    Oz install -> base raw disk -> zero free space, read packages
      -> per variant: copy + offline customization
      -> every (variant, format) conversion at once, SHA-256 while writing
      -> boot test of each variant's qcow2 + proof that each other format expands to the
         same disk -> CHECKSUM + manifest.json

``build_arch`` is what the kojid plugin's per-arch task calls (a work dir, an output dir,
a log sink, a progress callback; no terminal); ``build`` is local mode: every arch, then
the outputs published into one directory at once, or nothing but the logs on failure.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, boottest, disk
from .arches import Arch
from .checksums import Digest, HashingSink, checksum_text
from .convert import Done, Job, convert_all
from .errors import CancelledError, KojiImageError, NoSpaceError, VerifyError
from .formats import ConvertOptions, ImageFormat
from .hostconfig import HostConfig
from .oz_engine import OzEngine
from .runner import Runner
from .spec import ImageSpec
from .variants import Variant, customize

GiB = 1 << 30


@dataclass(frozen=True)
class Progress:
    arch: str | None
    stage: str
    message: str
    done: int = 0
    total: int = 0


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class Output:
    file: str
    arch: str
    variant: str
    format: str
    size: int
    sha256: str
    koji_archive_type: str


@dataclass
class ArchResult:
    arch: str
    outputs: list[Output] = field(default_factory=list)
    packages: list[dict[str, str]] = field(default_factory=list)
    boot_tests: list[dict[str, Any]] = field(default_factory=list)
    verified: dict[str, str] = field(default_factory=dict)
    customized: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    install: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(b["passed"] for b in self.boot_tests)


@dataclass
class BuildResult:
    spec: ImageSpec
    output: Path
    arches: list[ArchResult]
    manifest: Path
    checksum: Path

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.arches)


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
                 boot_test: bool | None = None) -> None:
        self.spec = spec
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

    # -- one arch (the kojid child task calls this) ----------------------------------
    def build_arch(self, arch: Arch, workdir: Path, outdir: Path, logdir: Path) -> ArchResult:
        """Build every variant and format of one arch into ``outdir``; logs into ``logdir``."""
        res = ArchResult(arch=arch.value)
        runner = Runner(logdir, self.log, self.cancel)
        a = arch.value

        def report(stage: str, message: str, done: int = 0, total: int = 0) -> None:
            self.progress(Progress(a, stage, message, done, total))

        check_space(workdir, self.work_space(), f"the {a} work files", "--workdir")
        with self._timed(res, "install"):
            engine = OzEngine(self.host, self.log, self.cancel)
            inst = engine.install(self.spec, arch, workdir / "install", logdir,
                                  lambda m: report("install", m))
            res.install = {"guest": inst.guest_name, "seconds": round(inst.seconds, 1),
                           "domain_type": self.host.resolved_domain_type}
        base = inst.disk
        with self._timed(res, "prepare"):
            report("prepare", "zeroing free space and reading the package list")
            with disk.mount_root(base, runner, f"prepare-{a}", workdir) as (root, mounts):
                res.packages = disk.read_packages(root, runner, f"prepare-{a}")
                for mnt in mounts:
                    disk.zero_free_space(mnt, runner, f"prepare-{a}")
        raws: dict[Variant, Path] = {}
        with self._timed(res, "customize"):
            for variant in self.spec.variants:
                report("customize", f"{variant.value}: offline customization")
                vdir = workdir / variant.value
                vdir.mkdir(exist_ok=True)
                raw = vdir / "disk.raw"
                runner.run(["cp", "--sparse=always", "--reflink=auto", str(base), str(raw)],
                           log_name=f"customize-{a}")
                with disk.mount_root(raw, runner, f"customize-{a}", workdir) as (root, _):
                    res.customized[variant.value] = customize(root, variant)
                raws[variant] = raw
            base.unlink()
        res.outputs = self._convert(arch, raws, outdir, runner, res, report)
        self._boot_and_verify(arch, raws, outdir, logdir, runner, res, report)
        for raw in raws.values():
            raw.unlink()
        return res

    def _convert(self, arch: Arch, raws: dict[Variant, Path], outdir: Path, runner: Runner,
                 res: ArchResult, report: Callable[..., None]) -> list[Output]:
        jobs = [Job(raws[v], outdir / self.spec.file_name(arch, v, f), f,
                    f"convert-{arch.value}-{v.value}-{f.value}")
                for v in self.spec.variants for f in self.spec.formats_for(v)]
        variant_of = {job.dest: v for v in self.spec.variants for job in jobs
                      if job.raw == raws[v]}
        check_space(outdir, sum(raw.stat().st_blocks * 512 for raw in raws.values()) // 2,
                    "the images", "--output")
        report("convert", f"{len(jobs)} conversions at once", 0, len(jobs))
        count = 0

        def on_done(d: Done) -> None:
            nonlocal count
            count += 1
            report("convert", f"{d.job.dest.name}: {d.digest.size / 1e6:.0f} MB in "
                   f"{d.seconds:.0f} s", count, len(jobs))

        done, stats = convert_all(jobs, self.opts, runner, on_done)
        res.timings["convert"] = round(stats.wall, 1)
        res.timings["convert_cpu"] = round(stats.cpu, 1)
        return [Output(d.job.dest.name, arch.value, variant_of[d.job.dest].value,
                       d.job.fmt.value, d.digest.size, d.digest.sha256,
                       d.job.fmt.koji_archive_type) for d in done]

    def _boot_and_verify(self, arch: Arch, raws: dict[Variant, Path], outdir: Path,
                         logdir: Path, runner: Runner, res: ArchResult,
                         report: Callable[..., None]) -> None:
        by_variant: dict[str, list[Output]] = {}
        for o in res.outputs:
            by_variant.setdefault(o.variant, []).append(o)

        def raw_sha256(raw: Path) -> str:
            sink = HashingSink()
            with open(raw, "rb") as f:
                while chunk := f.read(1 << 22):
                    runner.check_cancelled()
                    sink(chunk)
            return sink.hexdigest()

        def verify(variant: Variant, out: Output, raw_sum: Future[str]) -> tuple[str, str]:
            raw = raws[variant]
            same = ImageFormat(out.format).writer().same_content(
                outdir / out.file, raw, raw_sum.result(), runner,
                f"verify-{arch.value}-{variant.value}")
            if not same:
                raise VerifyError(f"{out.file} does not expand to the same disk as the "
                                  f"booted {variant.value} image")
            return out.file, f"expands to the same disk content as {variant.value} disk.raw"

        # One worker per job, so a verification waiting for its raw digest never starves
        # the digest it waits for.
        with ThreadPoolExecutor(max_workers=len(res.outputs) + len(raws)) as pool:
            sums = {v: pool.submit(raw_sha256, raw) for v, raw in raws.items()}
            checks = [pool.submit(verify, Variant(o.variant), o, sums[Variant(o.variant)])
                      for o in res.outputs]
            try:
                if self.boot:
                    with self._timed(res, "boot_test"):
                        for variant in self.spec.variants:
                            res.boot_tests.append(
                                self._boot_one(arch, variant, raws[variant],
                                               by_variant.get(variant.value, []), outdir,
                                               logdir, runner, report).as_dict())
                else:
                    report("boot-test", "skipped (--no-boot-test)")
                with self._timed(res, "verify"):
                    for fut in checks:
                        name, verdict = fut.result()
                        res.verified[name] = verdict
            except BaseException:
                runner.cancel()
                raise
        report("verify", f"{len(res.verified)} outputs expand to the disk that was booted")

    def _boot_one(self, arch: Arch, variant: Variant, raw: Path, outputs: list[Output],
                  outdir: Path, logdir: Path, runner: Runner,
                  report: Callable[..., None]) -> boottest.BootResult:
        qcow = [o for o in outputs if o.format == ImageFormat.QCOW2.value]
        image, fmt = (outdir / qcow[0].file, "qcow2") if qcow else (raw, "raw")
        report("boot-test", f"{variant.value}: booting {image.name} "
               f"({self.host.accel}, timeout {self.spec.boot_test.timeout} s)")
        console = logdir / f"boot-console-{arch.value}-{variant.value}.log"
        result = boottest.boot_test(image, fmt, arch, variant.value, self.host,
                                    self.spec.boot_test.timeout, runner, raw.parent, console,
                                    f"boot-{arch.value}-{variant.value}")
        report("boot-test", f"{variant.value}: {'PASS' if result.passed else 'FAIL'}: "
               f"{result.detail}")
        return result

    @contextmanager
    def _timed(self, res: ArchResult, stage: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            res.timings[stage] = round(time.monotonic() - t0, 1)

    # -- local mode --------------------------------------------------------------------
    def build(self, output: Path, workdir_base: Path | None = None,
              keep_workdir: bool = False) -> BuildResult:
        """Build every arch; publish images, CHECKSUM and manifest.json into ``output``."""
        clash = [n for n in self.spec.output_names() if (output / n).exists()]
        if clash:
            raise KojiImageError(f"output: {output / clash[0]} already exists; remove it or "
                                 "choose another --output")
        base = workdir_base or self.host.workdir
        if not base.is_dir():
            raise KojiImageError(f"workdir: {base} is not a directory")
        check_space(base, self.work_space(), "the work files", "--workdir")
        created_output = not output.exists()
        output.mkdir(parents=True, exist_ok=True)
        # Logs go straight to their final place: a failed build keeps them (the error
        # names them), a cancelled one removes what it wrote.
        logdir = output / "logs"
        logs_before = set(logdir.iterdir()) if logdir.exists() else set()
        logdir.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".koji-image-staging-", dir=output))
        work = Path(tempfile.mkdtemp(prefix="koji-image-", dir=base))
        # libvirt runs qemu as libvirt-qemu, which must reach the disks under it.
        work.chmod(0o755)
        results: list[ArchResult] = []
        ok = False
        try:
            started = datetime.datetime.now(datetime.UTC)
            for arch in self.spec.arches:
                (work / arch.value).mkdir(mode=0o755)
                results.append(self.build_arch(arch, work / arch.value, staging, logdir))
            manifest = self.manifest(results, started, Runner(logdir, self.log, self.cancel))
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            digests = [(o.file, Digest(o.size, o.sha256)) for r in results for o in r.outputs]
            (staging / "CHECKSUM").write_text(checksum_text(digests))
            for f in sorted(staging.iterdir()):
                os.replace(f, output / f.name)
            ok = True
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, CancelledError)):
                for f in set(logdir.iterdir()) - logs_before:
                    f.unlink()
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if not ok:
                if not any(logdir.iterdir()):
                    logdir.rmdir()
                if created_output and not any(output.iterdir()):
                    output.rmdir()
            if keep_workdir:
                self.log.info("work dir kept: %s", work)
            else:
                shutil.rmtree(work, ignore_errors=True)
        return BuildResult(self.spec, output, results, output / "manifest.json",
                           output / "CHECKSUM")

    def manifest(self, results: list[ArchResult], started: datetime.datetime,
                  runner: Runner) -> dict[str, Any]:
        return {
            "manifest": "koji-image-plugin", "manifest_version": 1,
            "nvr": self.spec.nvr,
            "spec": self.spec.as_dict(),
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.datetime.now(datetime.UTC)
                        .isoformat(timespec="seconds"),
            "host": {"hostname": platform.node(), "domain_type":
                     self.host.resolved_domain_type, "accel": self.host.accel,
                     "cpus": os.cpu_count()},
            "images": [asdict(o) for r in results for o in r.outputs],
            "boot_tests": [b for r in results for b in r.boot_tests],
            "boot_test_passed": all(r.passed for r in results) if self.boot else None,
            "arches": {r.arch: {"packages": r.packages, "timings": r.timings,
                                "install": r.install, "verified": r.verified,
                                "customized": r.customized} for r in results},
            "tools": tool_versions(runner, self.spec.arches),
            "logs": sorted(p.name for p in runner.log_dir.iterdir()),
        }


def tool_versions(runner: Runner, arches: tuple[Arch, ...]) -> dict[str, str]:
    import importlib.metadata

    out = {"koji-image-plugin": __version__, "python": platform.python_version()}
    for tool in ["qemu-img", "xz", "tar", *sorted({a.qemu_system for a in arches})]:
        text = runner.run([tool, "--version"], log_name="versions", capture=True)
        out[tool] = text.splitlines()[0].strip() if text else "unknown"
    try:
        out["oz"] = importlib.metadata.version("oz")
    except importlib.metadata.PackageNotFoundError:
        out["oz"] = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "oz"],
                                   capture_output=True, text=True).stdout or "unknown"
    try:
        import libvirt
        v = libvirt.getVersion()
        out["libvirt"] = f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"
    except Exception:  # noqa: BLE001 - a version is information, not a requirement
        out["libvirt"] = "unknown"
    return out
