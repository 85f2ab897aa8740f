"""Output formats: one small module each (``qcow2.py``, ``rawtarxz.py``, ``rawxz.py``),
each registering its :class:`Writer` for its :class:`ImageFormat` (``base.py``)."""

from __future__ import annotations

from ...spec.formats import ImageFormat
from . import qcow2, rawtarxz, rawxz, vmdk
from .base import ConvertOptions, Writer

__all__ = ["ConvertOptions", "Writer", "qcow2", "rawtarxz", "rawxz", "vmdk", "writer"]


def writer(fmt: ImageFormat) -> Writer:
    """The writer of ``fmt`` (every format has one: a test checks)."""
    return Writer.registry[fmt]()
