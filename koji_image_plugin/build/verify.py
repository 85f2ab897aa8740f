"""The proof that every output expands to the same disk as the one that booted (so the
qcow2 that passed its boot tests vouches for the raw.xz and the raw.tar.xz of its
variant). Each output is checked as soon as it is written, while the others are still
being written and the boots run."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from ..checksums import HashingSink
from ..errors import VerifyError
from ..runner import Runner
from ..spec.variants import Variant
from .formats import writer
from .results import ImageFile


def raw_sha256(raw: Path, runner: Runner) -> str:
    """The raw disk's SHA-256, stopping at a cancel between chunks."""
    sink = HashingSink()
    with open(raw, "rb") as f:
        while chunk := f.read(1 << 22):
            runner.check_cancelled()
            sink(chunk)
    return sink.hexdigest()


class Verifier:
    """Checks submitted outputs against their variant's raw disk (hashed once)."""

    def __init__(self, raws: dict[Variant, Path], outdir: Path, runner: Runner,
                 outputs: int) -> None:
        self.raws, self.outdir, self.runner = raws, outdir, runner
        # one worker per job, so a check waiting for its raw digest never starves the
        # digest it waits for
        self.pool = ThreadPoolExecutor(max_workers=outputs + len(raws),
                                       thread_name_prefix="verify")
        self.sums = {v: self.pool.submit(raw_sha256, raw, runner) for v, raw in raws.items()}
        self.checks: list[Future[tuple[str, str]]] = []

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            self.runner.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, out: ImageFile) -> None:
        self.checks.append(self.pool.submit(self._check, out))

    def _check(self, out: ImageFile) -> tuple[str, str]:
        raw = self.raws[out.variant]
        same = writer(out.format).same_content(self.outdir / out.file, raw,
                                               self.sums[out.variant].result(),
                                               self.runner, f"verify-{out.arch}-{out.variant}")
        if not same:
            raise VerifyError(f"{out.file} does not expand to the same disk as the "
                              f"booted {out.variant} image")
        return out.file, f"expands to the same disk content as {out.variant} disk.raw"

    def results(self) -> dict[str, str]:
        """Each output's verdict; raises the first mismatch."""
        return dict(f.result() for f in self.checks)
