"""A build's images to the clouds an upload request names, and the records of where they
went (the same for ``koji-image upload`` and kojid's ``uploadCloudImage`` task).

Which file goes where: EC2 takes the ``ec2`` variant's ``raw.xz`` of each arch (the disk
the AMI boots); Glance takes the ``generic`` variant's ``qcow2``. Every file is checked
against the SHA-256 its build recorded before anything is sent. The records are kept as
``{"version": 1, "ec2": [...], "glance": [...]}``: in ``uploads.json`` beside a local
build, and in the build's extra (``cloud_image.uploads``) on a hub. A rerun replaces
records of the same arch, variant and region or cloud, so they never pile up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checksums import file_digest
from .cloudconfig import load_ec2, load_glance
from .ec2 import Ec2Image, Ec2Publisher
from .errors import CloudError
from .runner import Runner
from .spec import Distro, UploadRequest

UPLOADS_FILE = "uploads.json"
UPLOADS_VERSION = 1
#: kind -> (variant, format) of the file it takes
INPUTS = {"ec2": ("ec2", "raw.xz"), "glance": ("generic", "qcow2")}
#: kind -> the keys that identify one record
RECORD_KEYS = {"ec2": ("arch", "variant", "region"), "glance": ("arch", "variant", "cloud")}


@dataclass
class Outcome:
    records: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"ec2": [], "glance": []})
    #: one line per thing that failed (region, cloud or arch)
    errors: list[str] = field(default_factory=list)


def inputs(kind: str, images: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The images (manifest records) a kind of cloud takes: one per arch."""
    variant, fmt = INPUTS[kind]
    chosen = [i for i in images if i.get("variant") == variant and i.get("format") == fmt]
    if not chosen:
        have = sorted({f"{i.get('variant')}/{i.get('format')}" for i in images})
        raise CloudError(f"this build has no {variant} variant in {fmt} (it has "
                         f"{', '.join(have) or 'no images'}); build it with variants: "
                         f"[{variant}] and format {fmt} to upload to {kind}")
    return sorted(chosen, key=lambda i: str(i["arch"]))


def verified(path: Path, image: Mapping[str, Any]) -> Path:
    sha256 = file_digest(path).sha256
    if sha256 != image["sha256"]:
        raise CloudError(f"{image['file']}: SHA-256 {sha256[:16]}... is not the "
                         f"build's {str(image['sha256'])[:16]}...; the copy is damaged, "
                         "fetch it again")
    return path


def upload(request: UploadRequest, images: list[Mapping[str, Any]],
           locate: Callable[[Mapping[str, Any]], Path], *, nvr: str, distro: str,
           build_id: int | None, config: Path | None, runner: Runner) -> Outcome:
    """Upload what ``request`` asks for. ``locate`` gives the local path of an image
    (a kojid task downloads it then). Failures are collected, never raised, so what
    worked is recorded; the caller fails when ``errors`` is not empty."""
    out = Outcome()
    if request.ec2:
        try:
            cfg = load_ec2(config)
            chosen = inputs("ec2", images)
            publisher = Ec2Publisher(cfg, runner)
        except CloudError as exc:
            out.errors.append(f"ec2: {exc}")
        else:
            for image in chosen:
                arch = str(image["arch"])
                try:
                    path = verified(locate(image), image)
                    result = publisher.publish(
                        Ec2Image(path, nvr, arch, str(image["variant"]),
                                 str(image["sha256"]), build_id),
                        regions=request.ec2_regions or None, public=request.public)
                except CloudError as exc:
                    out.errors.append(f"ec2 {arch}: {exc}")
                    continue
                out.records["ec2"] += [r.record() for r in result.regions]
                out.errors += [f"ec2 {arch} {region}: {err}"
                               for region, err in sorted(result.errors.items())]
    for cloud in request.glance:
        _glance(cloud, images, locate, nvr, Distro.parse(distro), config, runner, out)
    return out


def _glance(cloud: str, images: list[Mapping[str, Any]],
            locate: Callable[[Mapping[str, Any]], Path], nvr: str, distro: Distro,
            config: Path | None, runner: Runner, out: Outcome) -> None:
    try:
        from . import glance

        target = load_glance(cloud, config)
        glance.check_cloud(target)
        chosen = inputs("glance", images)
    except (CloudError, ImportError) as exc:
        out.errors.append(f"glance {cloud}: {exc}")
        return
    for image in chosen:
        arch, variant = str(image["arch"]), str(image["variant"])
        try:
            path = verified(locate(image), image)
            record = glance.upload(
                path, name=str(image["file"]).removesuffix(".qcow2"),
                sha256=str(image["sha256"]), arch=arch,
                properties=glance.image_properties(distro, arch, variant, nvr=nvr),
                target=target, log=runner.log, cancel=runner.cancel_event)
        except CloudError as exc:
            out.errors.append(f"glance {cloud} {arch}: {exc}")
            continue
        out.records["glance"].append(dict(record, variant=variant))


def merge(existing: Mapping[str, Any] | None, new: Mapping[str, list[dict[str, Any]]]
          ) -> dict[str, Any]:
    """Upload records with ``new`` ones added; a new record replaces the one for the same
    arch, variant and region (EC2) or cloud (Glance)."""
    out: dict[str, Any] = {"version": UPLOADS_VERSION}
    for kind, keys in RECORD_KEYS.items():
        merged = {tuple(r.get(k) for k in keys): dict(r)
                  for r in (existing or {}).get(kind, [])}
        for rec in new.get(kind, []):
            merged[tuple(rec.get(k) for k in keys)] = dict(rec)
        out[kind] = [merged[k] for k in sorted(merged, key=lambda t: tuple(map(str, t)))]
    return out


def read_local(outdir: Path) -> dict[str, Any]:
    path = outdir / UPLOADS_FILE
    if not path.exists():
        return merge(None, {})
    return merge(json.loads(path.read_text()), {})


def write_local(outdir: Path, records: Mapping[str, Any]) -> Path:
    """Write ``uploads.json`` atomically (a reader never sees half of it)."""
    path = outdir / UPLOADS_FILE
    tmp = path.with_name(f".{UPLOADS_FILE}.tmp")
    tmp.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def format_records(records: Mapping[str, Any]) -> list[str]:
    """Lines for people: where each image went."""
    lines = []
    for rec in records.get("ec2", []):
        flags = ", ".join(f for f, on in (("public", rec.get("public")),
                                         ("reused", rec.get("reused"))) if on)
        lines.append(f"ec2 {rec['region']} {rec['arch']}: {rec['image_id']} "
                     f"({rec['name']}; snapshot {rec.get('snapshot_id')})"
                     + (f" [{flags}]" if flags else ""))
    for rec in records.get("glance", []):
        lines.append(f"glance {rec['cloud']} {rec['arch']}: {rec['image_id']} "
                     f"({rec['name']}; {rec.get('status')}, {rec.get('visibility')})")
    return lines
