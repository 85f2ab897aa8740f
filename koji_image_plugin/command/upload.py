"""``koji-image upload``: a local build's images to EC2 and Glance, records beside them."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from ..build.outputs import MANIFEST, read_manifest
from ..build.results import ImageFile
from ..clouds import records, uploads
from ..errors import Problem, SpecError
from ..runner import Runner
from ..spec import hostconfig
from ..spec.distro import Distro
from ..spec.upload import UploadRequest, check_upload, from_flags

EXIT_FAILED = 1
log = logging.getLogger("koji_image_plugin")


def _flag_problems(args: argparse.Namespace) -> list[Problem]:
    problems = []
    if args.region and "ec2" not in args.to:
        problems.append(Problem("--region", "is for EC2; add --to ec2"))
    if "glance" in args.to and not args.cloud:
        problems.append(Problem("--cloud", "--to glance needs --cloud NAME (a cloud of "
                                "clouds.yaml)"))
    if args.cloud and "glance" not in args.to:
        problems.append(Problem("--cloud", "is for Glance; add --to glance"))
    return problems


def cmd_upload(args: argparse.Namespace, cancel: threading.Event) -> int:
    out: Path = args.output
    if not (out / MANIFEST).is_file():
        raise SpecError("OUTPUT_DIR", [Problem(str(out), "has no manifest.json; give the "
                                               "output dir of a koji-image build")])
    data = from_flags(ec2="ec2" in args.to, regions=args.region,
                      clouds=args.cloud if "glance" in args.to else (), public=args.public)
    problems = _flag_problems(args)
    if data:
        problems += check_upload(data, "upload")
    if problems:
        raise SpecError("koji-image upload", problems)
    config = hostconfig.resolve(args.config)
    # every local record is checked before any cloud call: what a cloud makes is recorded
    manifest = read_manifest(out)
    existing = records.read_local(out)
    images = [ImageFile.from_dict(i) for i in manifest["images"]]
    outcome = uploads.upload(
        UploadRequest.from_dict(data), images, lambda image: out / image.file,
        nvr=str(manifest["nvr"]), distro=Distro.parse(str(manifest["spec"]["distro"])),
        build_id=None, config=config, runner=Runner(out / "logs", log, cancel))
    path = records.write_local(out, records.merge(existing, outcome.records))
    for line in records.format_records(outcome.records):
        print(line)
    print(f"records: {path}")
    for err in outcome.errors:
        print(f"koji-image: upload failed: {err}", file=sys.stderr)
    return EXIT_FAILED if outcome.errors else 0
