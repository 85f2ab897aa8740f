"""Local mode's build: every arch of a spec, then the images, ``CHECKSUM`` and
``manifest.json`` moved into one output directory at once; on failure nothing but the
logs (which the error names), on a cancel not even those."""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import CancelledError, KojiImageError
from ..files import shared_dir
from . import outputs
from .pipeline import Pipeline, check_space
from .results import ArchResult, BuildResult


def _check_places(pipeline: Pipeline, output: Path, base: Path) -> None:
    clash = [n for n in pipeline.spec.output_names() if (output / n).exists()]
    if clash:
        raise KojiImageError(f"output: {output / clash[0]} already exists; remove it or "
                             "choose another --output")
    if not base.is_dir():
        raise KojiImageError(f"workdir: {base} is not a directory")
    check_space(base, pipeline.work_space(), "the work files", "--workdir")


def build(pipeline: Pipeline, output: Path, workdir_base: Path | None = None,
          keep_workdir: bool = False) -> BuildResult:
    """Build every arch; publish images, CHECKSUM and manifest.json into ``output``."""
    spec = pipeline.spec
    base = workdir_base or pipeline.host.workdir
    _check_places(pipeline, output, base)
    created_output = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    # Logs go straight to their final place: a failed build keeps them (the error
    # names them), a cancelled one removes what it wrote.
    logdir = output / "logs"
    logs_before = set(logdir.iterdir()) if logdir.exists() else set()
    logdir.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".koji-image-staging-", dir=output))
    work = shared_dir(base, "koji-image-")
    results: list[ArchResult] = []
    ok = False
    try:
        started = datetime.datetime.now(datetime.UTC)
        for arch in spec.arches:
            (work / arch.value).mkdir(mode=0o755)
            results.append(pipeline.build_arch(arch, work / arch.value, staging, logdir))
        tools = outputs.tool_versions(pipeline.runner(logdir), spec.arches)
        outputs.write_manifest(staging / outputs.MANIFEST, outputs.manifest(
            spec, pipeline.host, results, started=started, boot=pipeline.boot,
            tools=tools, logdir=logdir))
        outputs.write_checksum(staging / outputs.CHECKSUM, results)
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
            pipeline.log.info("work dir kept: %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return BuildResult(spec, output, results, output / outputs.MANIFEST,
                       output / outputs.CHECKSUM)
