"""Sizes, as tools count them and as people read them."""

from __future__ import annotations

MiB = 1 << 20
GiB = 1 << 30


def human_size(n: int) -> str:
    """Bytes for people: 512 B, 157.3 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def gib_ceil(n: int) -> int:
    """Whole GiB that hold ``n`` bytes (at least 1), as clouds size volumes."""
    return max(1, -(-n // GiB))
