"""Which canvases of a manifest to import, as a curator writes it: ``1-20,25``."""

from __future__ import annotations

from engine.errors import MarginaliaError


def canvas_positions(text: str) -> list[int] | None:
    """``"1-20,25"`` → the 0-based positions 0…19 and 24; ``""`` or ``"all"`` → every canvas."""
    text = text.strip()
    if not text or text.casefold() == "all":
        return None
    positions: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            start, end = int(first), int(last or first)
            if start < 1 or end < start:
                raise ValueError(part)
            positions += range(start - 1, end)
    except ValueError:
        raise MarginaliaError(f"Canvases are counted from 1: give numbers and ranges like 1-20,25, not "
                              f"{text!r}.") from None
    return positions
