"""The fallback for EC2-compatible clouds without the EBS direct APIs (Eucalyptus, older
private regions): stage the raw disk in S3, ``ImportSnapshot`` it, wait, delete the object.

The raw disk streams into a multipart upload (a ``.raw.xz`` is decompressed on the way),
so no second copy is written locally. The staged object is deleted whatever happens; an
import that makes no progress for ``stall_timeout`` seconds is cancelled and reported.
"""

from __future__ import annotations

import lzma
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..errors import CancelledError, CloudError
from ..runner import Runner


def _open_raw(path: Path) -> IO[bytes]:
    if path.name.endswith(".raw.xz"):
        return lzma.open(path, "rb")
    if path.name.endswith(".raw"):
        return path.open("rb")
    raise CloudError(f"{path.name}: ImportSnapshot takes a .raw or .raw.xz disk; build "
                     "the ec2 variant with format raw.xz")


def import_snapshot(ec2: Any, s3: Any, path: Path, runner: Runner, *, bucket: str, key: str,
                    description: str, tags: dict[str, str], wait_timeout: int,
                    stall_timeout: int, poll: float = 5.0,
                    on_start: Callable[[str], None] | None = None) -> str:
    """The id of a completed snapshot imported from ``path`` through ``s3://bucket/key``."""
    from boto3.s3.transfer import TransferConfig

    log = runner.log
    cancel = runner.cancel_event
    tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    try:
        log.info("s3://%s/%s: staging %s", bucket, key, path.name)
        with _open_raw(path) as src:
            s3.upload_fileobj(src, bucket, key, Config=TransferConfig(
                multipart_chunksize=64 << 20, max_concurrency=4))
        task = ec2.import_snapshot(
            Description=description,
            DiskContainer={"Description": description, "Format": "RAW",
                           "UserBucket": {"S3Bucket": bucket, "S3Key": key}},
            # one token per attempt: a rerun must not get back a task a failed run cancelled
            ClientToken=str(uuid.uuid4()),
            TagSpecifications=[{"ResourceType": "import-snapshot-task", "Tags": tag_list}],
        )
        task_id = task["ImportTaskId"]
        log.info("import task %s: importing s3://%s/%s", task_id, bucket, key)
        deadline = time.monotonic() + wait_timeout
        last: tuple[str, str, str] | None = None
        last_change = time.monotonic()
        while True:
            found = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])
            detail = found["ImportSnapshotTasks"][0]["SnapshotTaskDetail"]
            status = detail.get("Status", "")
            if detail.get("SnapshotId") and on_start and status != "completed":
                on_start(detail["SnapshotId"])
                on_start = None
            if status == "completed":
                snapshot_id = str(detail["SnapshotId"])
                if on_start:
                    on_start(snapshot_id)
                ec2.create_tags(Resources=[snapshot_id], Tags=tag_list)
                return snapshot_id
            if status in ("deleting", "deleted", "error"):
                raise CloudError(f"import task {task_id} ended {status}: "
                                 f"{detail.get('StatusMessage', 'no message')}")
            now = (status, str(detail.get("Progress", "")), str(detail.get("StatusMessage", "")))
            if now != last:
                last, last_change = now, time.monotonic()
                log.info("import task %s: %s %s%% %s", task_id, *now)
            elif time.monotonic() - last_change > stall_timeout:
                _cancel(ec2, task_id, log)
                raise CloudError(f"import task {task_id} stalled at {now[1] or '?'}% for "
                                 f"{stall_timeout} s ([ec2] import_stall_timeout); cancelled "
                                 "it, rerun to retry")
            if time.monotonic() > deadline:
                _cancel(ec2, task_id, log)
                raise CloudError(f"import task {task_id} still {status} after "
                                 f"{wait_timeout} s ([ec2] wait_timeout); cancelled it")
            if cancel.wait(poll):
                _cancel(ec2, task_id, log)
                raise CancelledError(f"import task {task_id}: cancelled")
    finally:
        try:
            s3.delete_object(Bucket=bucket, Key=key)
            log.info("s3://%s/%s: deleted", bucket, key)
        except Exception as exc:  # noqa: BLE001 - logged; the original error matters more
            log.error("s3://%s/%s: could not delete the staged disk: %s", bucket, key, exc)


def _cancel(ec2: Any, task_id: str, log: Any) -> None:
    try:
        ec2.cancel_import_task(ImportTaskId=task_id)
    except Exception as exc:  # noqa: BLE001 - best effort, logged
        log.error("import task %s: could not cancel: %s", task_id, exc)
