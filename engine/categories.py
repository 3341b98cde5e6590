"""The label taxonomy: finding and creating categories by name."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import MarginaliaError
from engine.store.schema import Category

# Distinguishable on scans of paper and paint alike, and for colour-blind eyes
# (Okabe-Ito first, then Tableau).
PALETTE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1",
    "#FF9DA7", "#9C755F",
)
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def normalise_name(name: str) -> str:
    """Names compare in Unicode NFC with outer spaces removed: "Zierinitiale" is one category."""
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise MarginaliaError("A category needs a name.")
    return cleaned


def valid_colour(value: object) -> str | None:
    return value.upper() if isinstance(value, str) and _HEX_COLOUR.match(value) else None


def next_colour(session: Session) -> str:
    count = session.scalar(select(func.count()).select_from(Category)) or 0
    return PALETTE[count % len(PALETTE)]


def find_category(session: Session, name: str) -> Category | None:
    return session.scalars(select(Category).where(Category.name == normalise_name(name))).first()


def get_or_create_category(
    session: Session, name: str, *, colour: str | None = None, parent: Category | None = None
) -> tuple[Category, bool]:
    """The category called ``name``, created if missing; the flag says whether it was created."""
    existing = find_category(session, name)
    if existing is not None:
        return existing, False
    category = Category(
        name=normalise_name(name), colour=valid_colour(colour) or next_colour(session), parent=parent
    )
    session.add(category)
    session.flush()
    return category, True
