"""A disk into an EBS snapshot with the EBS direct APIs, the way AWS's coldsnap does it.

``StartSnapshot``, then ``PutSnapshotBlock`` for every 512 KiB block that is not all
zeros (in parallel, each with its SHA-256), then ``CompleteSnapshot`` with the count of
blocks written and the linear checksum: the SHA-256 of the blocks' digests in block
order. Blocks come straight out of the image (``raw``, or a ``raw.xz`` decompressed as it
streams; holes of a sparse raw are skipped without being read), so no second copy of the
disk is written.

Throttling and 5xx answers are retried by botocore's ``standard`` retry mode (exponential
backoff with jitter); a transfer that makes no progress for ``stall_timeout`` seconds is
abandoned with an error that says how far it got, never waited on forever.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import lzma
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import CancelledError, CloudError
from ..runner import Runner
from ..units import gib_ceil

#: The EBS direct APIs' block size: PutSnapshotBlock accepts exactly 524288 bytes.
BLOCK_SIZE = 512 * 1024
ZERO_BLOCK = bytes(BLOCK_SIZE)


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    volume_size_gib: int
    blocks: int
    blocks_written: int
    checksum: str
    seconds: float


def raw_blocks(path: Path, runner: Runner) -> tuple[int, Iterator[tuple[int, bytes]]]:
    """(disk size in bytes, (block index, data) of every block that is not all zeros) of
    a raw disk, plain (holes skipped with SEEK_DATA) or xz-compressed (``.raw.xz``)."""
    if path.name.endswith(".raw.xz"):
        return _xz_size(path, runner), _stream_blocks(lzma.open(path, "rb"))
    if path.name.endswith(".raw"):
        return path.stat().st_size, _sparse_blocks(path)
    raise CloudError(f"{path.name}: an EBS snapshot is made from a .raw or .raw.xz disk; "
                     "build the ec2 variant with format raw.xz")


def _xz_size(path: Path, runner: Runner) -> int:
    """The uncompressed size from the xz index, without decompressing."""
    out = runner.run(["xz", "--robot", "--list", str(path)], log_name="xz-list", capture=True)
    for line in out.splitlines():
        fields = line.split("\t")
        if fields[0] == "totals":
            return int(fields[4])
    raise CloudError(f"{path.name}: xz --list gave no totals; is it an xz file?")


def _stream_blocks(f: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    with f:
        index = 0
        while True:
            block = f.read(BLOCK_SIZE)
            if not block:
                return
            if len(block) < BLOCK_SIZE:
                block = block.ljust(BLOCK_SIZE, b"\0")
            if block != ZERO_BLOCK:
                yield index, block
            index += 1


def _sparse_blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                return
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            index = data // BLOCK_SIZE
            while index * BLOCK_SIZE < hole:
                f.seek(index * BLOCK_SIZE)
                block = f.read(BLOCK_SIZE).ljust(BLOCK_SIZE, b"\0")
                if block != ZERO_BLOCK:
                    yield index, block
                index += 1
            pos = index * BLOCK_SIZE


def linear_checksum(digests: dict[int, bytes]) -> str:
    """CompleteSnapshot's LINEAR checksum: SHA-256 over the block digests in block order."""
    full = hashlib.sha256()
    for index in sorted(digests):
        full.update(digests[index])
    return base64.b64encode(full.digest()).decode()


def upload(ebs: Any, path: Path, runner: Runner, *, description: str, tags: dict[str, str],
           workers: int = 16, stall_timeout: float = 300,
           cancel: threading.Event | None = None,
           on_start: Callable[[str], None] | None = None,
           log: logging.Logger | None = None) -> Snapshot:
    """Write ``path`` into a new snapshot through ``ebs`` (a boto3 ``ebs`` client).

    ``on_start`` gets the snapshot id as soon as it exists, so the caller can delete it if
    anything later fails."""
    log = log or runner.log
    size, blocks = raw_blocks(path, runner)
    volume_gib = gib_ceil(size)
    start = time.monotonic()
    snapshot_id = _start(ebs, volume_gib, description, tags, on_start)
    total = -(-size // BLOCK_SIZE)
    log.info("snapshot %s: writing %s (%d GiB, %d blocks of 512 KiB) with %d workers",
             snapshot_id, path.name, volume_gib, total, workers)
    writer = _BlockWriter(ebs, snapshot_id, workers, stall_timeout,
                          cancel or runner.cancel_event, log)
    digests = writer.write_all(blocks)
    checksum = linear_checksum(digests)
    ebs.complete_snapshot(
        SnapshotId=snapshot_id,
        ChangedBlocksCount=len(digests),
        Checksum=checksum,
        ChecksumAlgorithm="SHA256",
        ChecksumAggregationMethod="LINEAR",
    )
    seconds = round(time.monotonic() - start, 1)
    log.info("snapshot %s: completed, %d of %d blocks written (the rest are zeros) in "
             "%.1f s", snapshot_id, len(digests), total, seconds)
    return Snapshot(snapshot_id, volume_gib, total, len(digests), checksum, seconds)


def _start(ebs: Any, volume_gib: int, description: str, tags: dict[str, str],
           on_start: Callable[[str], None] | None) -> str:
    """StartSnapshot; ``on_start`` hears of the snapshot before anything can fail."""
    resp = ebs.start_snapshot(
        VolumeSize=volume_gib,
        Description=description,
        Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        Timeout=60,
    )
    snapshot_id: str = resp["SnapshotId"]
    if on_start:
        on_start(snapshot_id)
    reported = resp.get("BlockSize")
    if reported not in (BLOCK_SIZE, BLOCK_SIZE // 1024):
        # AWS answers 524288 (bytes); moto answers 512 (KiB). Anything else is an API
        # this code does not know.
        raise CloudError(f"snapshot {snapshot_id}: the EBS service reports block size "
                         f"{reported}; this uploader writes {BLOCK_SIZE}-byte blocks")
    return snapshot_id


class _BlockWriter:
    """PutSnapshotBlock for every block, ``workers`` in flight, at most twice that many
    queued; a cancel or ``stall_timeout`` seconds without a block written stop it."""

    def __init__(self, ebs: Any, snapshot_id: str, workers: int, stall_timeout: float,
                 cancel: threading.Event, log: logging.Logger) -> None:
        self.ebs, self.snapshot_id, self.workers = ebs, snapshot_id, workers
        self.stall_timeout, self.cancel, self.log = stall_timeout, cancel, log
        self.digests: dict[int, bytes] = {}
        self.lock = threading.Lock()
        self.pending: set[Future[None]] = set()
        self.last_progress = time.monotonic()
        self.last_log = 0.0

    def write_all(self, blocks: Iterator[tuple[int, bytes]]) -> dict[int, bytes]:
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ebs-put")
        try:
            for index, block in blocks:
                self.settle(2 * self.workers)
                self.pending.add(pool.submit(self.put, index, block))
            self.settle(0)
        except BaseException:
            for fut in self.pending:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return self.digests

    def put(self, index: int, block: bytes) -> None:
        digest = hashlib.sha256(block).digest()
        self.ebs.put_snapshot_block(
            SnapshotId=self.snapshot_id,
            BlockIndex=index,
            BlockData=block,
            DataLength=BLOCK_SIZE,
            Checksum=base64.b64encode(digest).decode(),
            ChecksumAlgorithm="SHA256",
        )
        with self.lock:
            self.digests[index] = digest

    def settle(self, limit: int) -> None:
        """Wait until at most ``limit`` blocks are in flight."""
        while len(self.pending) > limit:
            done, _ = wait(self.pending, timeout=1, return_when=FIRST_COMPLETED)
            if self.cancel.is_set():
                raise CancelledError(f"snapshot {self.snapshot_id}: upload cancelled")
            for fut in done:
                self.pending.discard(fut)
                fut.result()
            now = time.monotonic()
            if done:
                self.last_progress = now
            elif now - self.last_progress > self.stall_timeout:
                raise CloudError(
                    f"snapshot {self.snapshot_id}: upload stalled: no block written for "
                    f"{self.stall_timeout:.0f} s ({len(self.digests)} blocks written); "
                    "check the network to the EBS endpoint and retry (the run cleans up "
                    "and a rerun starts over)")
            if now - self.last_log > 30:
                self.last_log = now
                self.log.info("snapshot %s: %d blocks written", self.snapshot_id,
                              len(self.digests))


def read_back(ebs: Any, snapshot_id: str) -> dict[int, bytes]:
    """Every block of a snapshot (index -> data), for verification."""
    out: dict[int, bytes] = {}
    kwargs: dict[str, Any] = {"SnapshotId": snapshot_id}
    while True:
        page = ebs.list_snapshot_blocks(**kwargs)
        for blk in page.get("Blocks", []):
            got = ebs.get_snapshot_block(SnapshotId=snapshot_id,
                                         BlockIndex=blk["BlockIndex"],
                                         BlockToken=blk["BlockToken"])
            out[blk["BlockIndex"]] = got["BlockData"].read()
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]
