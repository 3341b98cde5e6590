"""What the canvas shows of a page's annotations: which statuses, categories and sources, how opaque,
filled or outlined. Remembered per project (as JSON in the settings)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from engine.annotations import AnnotationRecord
from engine.store.types import AnnotationStatus

DEFAULT_STATUSES = frozenset({AnnotationStatus.PROPOSED.value, AnnotationStatus.ACCEPTED.value})


def source_of(record: AnnotationRecord) -> str:
    """The name a layer toggle uses for who made a shape: the model's id, or "human", "import"…"""
    return record.source_model or record.source_kind.value


@dataclass(frozen=True)
class Layers:
    statuses: frozenset[str] = DEFAULT_STATUSES  # rejected proposals are hidden unless asked for
    hidden_categories: frozenset[int] = field(default_factory=frozenset)
    hidden_sources: frozenset[str] = field(default_factory=frozenset)
    opacity: float = 1.0  # of fills and mask overlays; outlines stay fully visible
    outline_only: bool = False  # dense pages: no fills, so the page shows through

    def shows(self, record: AnnotationRecord) -> bool:
        return (record.status.value in self.statuses and record.category_id not in self.hidden_categories
                and source_of(record) not in self.hidden_sources)

    def showing(self, kind: str, key: str | int) -> bool:
        """Whether one status, category or source is shown."""
        if kind == "status":
            return key in self.statuses
        return key not in (self.hidden_categories if kind == "category" else self.hidden_sources)

    def toggled(self, kind: str, key: str | int) -> Layers:
        """These layers with one status, category or source switched on or off."""
        name = {"status": "statuses", "category": "hidden_categories", "source": "hidden_sources"}[kind]
        current: frozenset = getattr(self, name)
        return replace(self, **{name: current ^ {key}})

    def to_json(self) -> str:
        plain = asdict(self)
        return json.dumps({key: sorted(value) if isinstance(value, frozenset) else value
                           for key, value in plain.items()})

    @classmethod
    def from_json(cls, text: str | None) -> Layers:
        """The remembered layers; anything unreadable falls back to the defaults (never hides shapes by
        accident: an unknown status name simply matches nothing)."""
        try:
            data = json.loads(text or "{}")
            return cls(statuses=frozenset(data.get("statuses", DEFAULT_STATUSES)),
                       hidden_categories=frozenset(int(v) for v in data.get("hidden_categories", [])),
                       hidden_sources=frozenset(str(v) for v in data.get("hidden_sources", [])),
                       opacity=min(1.0, max(0.0, float(data.get("opacity", 1.0)))),
                       outline_only=bool(data.get("outline_only", False)))
        except (ValueError, TypeError, AttributeError):
            return cls()
