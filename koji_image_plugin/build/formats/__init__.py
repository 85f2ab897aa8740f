"""Output formats: one small module each (``qcow2.py``, ``rawtarxz.py``, ``rawxz.py``,
``vmdk.py``, ``vhd.py``, ``gce.py``, ``vagrant.py`` with both boxes), each registering
its :class:`Writer` for its :class:`ImageFormat` (``base.py``)."""

from __future__ import annotations

from ...spec.formats import ImageFormat
from . import gce, qcow2, rawtarxz, rawxz, vagrant, vhd, vmdk
from .base import ConvertOptions, Writer

__all__ = ["ConvertOptions", "Writer", "gce", "qcow2", "rawtarxz", "rawxz", "vagrant", "vhd",
           "vmdk", "writer"]


def writer(fmt: ImageFormat) -> Writer:
    """The writer of ``fmt`` (every format has one: a test checks)."""
    return Writer.registry[fmt]()
