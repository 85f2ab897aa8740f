"""A build's images to the clouds an upload request names (the same for ``koji-image
upload`` and kojid's ``uploadCloudImage`` task). EC2 takes the ``ec2`` variant's
``raw.xz`` of each arch (the disk the AMI boots); Glance takes the ``generic`` variant's
``qcow2``. Every file is checked against the SHA-256 its build recorded before anything
is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..build.results import ImageFile
from ..checksums import file_digest
from ..errors import CloudError
from ..runner import Runner
from ..spec import hostconfig
from ..spec.distro import Distro
from ..spec.upload import Cloud, UploadRequest
from .ami import Ec2Image
from .ec2 import Ec2Publisher
from .records import Outcome, inputs

Locate = Callable[[ImageFile], Path]


def verified(path: Path, image: ImageFile) -> Path:
    sha256 = file_digest(path).sha256
    if sha256 != image.sha256:
        raise CloudError(f"{image.file}: SHA-256 {sha256[:16]}... is not the "
                         f"build's {image.sha256[:16]}...; the copy is damaged, "
                         "fetch it again")
    return path


def upload(request: UploadRequest, images: Sequence[ImageFile], locate: Locate, *,
           nvr: str, distro: Distro, build_id: int | None, config: Path | None,
           runner: Runner) -> Outcome:
    """Upload what ``request`` asks for. ``locate`` gives the local path of an image
    (a kojid task downloads it then). Failures are collected, never raised, so what
    worked is recorded; the caller fails when ``errors`` is not empty."""
    out = Outcome()
    if request.ec2:
        _ec2(request, images, locate, nvr, build_id, config, runner, out)
    for cloud in request.glance:
        _glance(cloud, images, locate, nvr, distro, config, runner, out)
    return out


def _ec2(request: UploadRequest, images: Sequence[ImageFile], locate: Locate, nvr: str,
         build_id: int | None, config: Path | None, runner: Runner, out: Outcome) -> None:
    try:
        cfg = hostconfig.load_ec2(config)
        chosen = inputs(Cloud.EC2, images)
        publisher = Ec2Publisher(cfg, runner)
    except CloudError as exc:
        out.errors.append(f"ec2: {exc}")
        return
    for image in chosen:
        try:
            path = verified(locate(image), image)
            result = publisher.publish(
                Ec2Image(path, nvr, image.arch, image.variant, image.sha256, build_id,
                         image.firmware),
                regions=request.ec2_regions or None, public=request.public)
        except CloudError as exc:
            out.errors.append(f"ec2 {image.arch}: {exc}")
            continue
        out.records["ec2"] += [r.record() for r in result.regions]
        out.errors += [f"ec2 {image.arch} {region}: {err}"
                       for region, err in sorted(result.errors.items())]


def _glance(cloud: str, images: Sequence[ImageFile], locate: Locate, nvr: str,
            distro: Distro, config: Path | None, runner: Runner, out: Outcome) -> None:
    try:
        from . import glance

        target = hostconfig.load_glance(cloud, config)
        glance.check_cloud(target)
        chosen = inputs(Cloud.GLANCE, images)
    except (CloudError, ImportError) as exc:
        out.errors.append(f"glance {cloud}: {exc}")
        return
    for image in chosen:
        try:
            path = verified(locate(image), image)
            record = glance.upload(
                path, name=image.file.removesuffix(f".{image.format.extension}"),
                sha256=image.sha256, arch=image.arch,
                properties=glance.image_properties(distro, image.arch, image.variant,
                                                   nvr=nvr, firmware=image.firmware),
                target=target, log=runner.log, cancel=runner.cancel_event)
        except CloudError as exc:
            out.errors.append(f"glance {cloud} {image.arch}: {exc}")
            continue
        out.records["glance"].append(dict(record, variant=image.variant.value))
