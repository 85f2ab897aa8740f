"""The records of where a build's images went, and which image each cloud takes.

They are kept as ``{"version": 1, "ec2": [...], "glance": [...]}``: in ``uploads.json``
beside a local build, and in the build's extra (``cloud_image.uploads``) on a hub. A rerun
replaces the records of the same arch, variant and region or cloud, so they never pile
up. Pure data: the hub loads this module, which needs no cloud library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..build.results import ImageFile
from ..errors import CloudError
from ..files import atomic_write
from ..spec import records as spec_records
from ..spec.arches import Arch
from ..spec.upload import Cloud
from ..spec.variants import Variant

UPLOADS_FILE = "uploads.json"
UPLOADS_VERSION = 1


def _record_schema(kind: Cloud) -> dict[str, Any]:
    return {"type": "object",
            "required": ["arch", "image_id", kind.place],
            "properties": {"arch": {"enum": [a.value for a in Arch]},
                           "variant": {"enum": [v.value for v in Variant]},
                           "image_id": spec_records.line(255),
                           kind.place: spec_records.line(255),
                           "name": spec_records.line(1024)}}


#: uploads.json, and the build's ``cloud_image.uploads``
UPLOADS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"version": {"type": "integer"},
                   **{c.value: {"type": "array", "items": _record_schema(c), "maxItems": 10000}
                      for c in Cloud}},
}


@dataclass
class Outcome:
    records: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {c.value: [] for c in Cloud})
    #: one line per thing that failed (region, cloud or arch)
    errors: list[str] = field(default_factory=list)


def inputs(kind: Cloud, images: Sequence[ImageFile]) -> list[ImageFile]:
    """The images a kind of cloud takes: one per arch."""
    variant, fmt = kind.takes
    chosen = [i for i in images if i.variant is variant and i.format is fmt]
    if not chosen:
        have = sorted({f"{i.variant}/{i.format}" for i in images})
        raise CloudError(f"this build has no {variant} variant in {fmt} (it has "
                         f"{', '.join(have) or 'no images'}); build it with variants: "
                         f"[{variant}] and format {fmt} to upload to {kind}")
    return sorted(chosen, key=lambda i: i.arch.value)


def merge(existing: Mapping[str, Any] | None, new: Mapping[str, list[dict[str, Any]]]
          ) -> dict[str, Any]:
    """Upload records with ``new`` ones added; a new record replaces the one for the same
    arch, variant and region (EC2) or cloud (Glance)."""
    out: dict[str, Any] = {"version": UPLOADS_VERSION}
    for kind in Cloud:
        keys = kind.record_keys
        merged = {tuple(r.get(k) for k in keys): dict(r)
                  for r in (existing or {}).get(kind.value, [])}
        for rec in new.get(kind.value, []):
            merged[tuple(rec.get(k) for k in keys)] = dict(rec)
        out[kind.value] = [merged[k] for k in sorted(merged,
                                                     key=lambda t: tuple(map(str, t)))]
    return out


def read_local(outdir: Path) -> dict[str, Any]:
    """``uploads.json`` of a local build (empty records when there is none yet), checked
    before anything is uploaded, so a damaged one stops the upload before any cloud call."""
    path = outdir / UPLOADS_FILE
    if not path.exists():
        return merge(None, {})
    return merge(spec_records.read(path, UPLOADS_SCHEMA, "fix it or remove it (the clouds "
                                   "keep what was uploaded; a rerun finds it again)"), {})


def write_local(outdir: Path, records: Mapping[str, Any]) -> Path:
    """Write ``uploads.json`` atomically (a reader never sees half of it)."""
    path = outdir / UPLOADS_FILE
    atomic_write(path, json.dumps(records, indent=2, sort_keys=True) + "\n")
    return path


def format_records(records: Mapping[str, Any]) -> list[str]:
    """Lines for people: where each image went."""
    lines = []
    for rec in records.get(Cloud.EC2.value, []):
        flags = ", ".join(f for f, on in (("public", rec.get("public")),
                                         ("reused", rec.get("reused"))) if on)
        lines.append(f"ec2 {rec['region']} {rec['arch']}: {rec['image_id']} "
                     f"({rec['name']}; snapshot {rec.get('snapshot_id')})"
                     + (f" [{flags}]" if flags else ""))
    for rec in records.get(Cloud.GLANCE.value, []):
        lines.append(f"glance {rec['cloud']} {rec['arch']}: {rec['image_id']} "
                     f"({rec['name']}; {rec.get('status')}, {rec.get('visibility')})")
    return lines
