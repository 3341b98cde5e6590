"""The two selectors that say where on a canvas a Web Annotation is: ``SvgSelector`` and ``FragmentSelector``.

Written: one ``<path>`` per shape, each part's outline and its holes as sub-paths (``M … Z``), outlines
counter-clockwise and holes clockwise so that both SVG fill rules fill it alike (Mirador draws only ``<path>``
elements); and the shape's box as ``xywh=pixel:x,y,w,h`` in whole canvas pixels, rounded outwards.

Read: whatever SVG other tools write — ``path`` (lines, Bézier curves, arcs), ``polygon``, ``polyline``,
``rect``, ``circle``, ``ellipse``, with their ``transform`` — flattened to outlines, and filled by the
element's own fill rule (``nonzero`` by default, ``evenodd`` where it says), so a hole is a hole whichever
way its sub-path turns; a fragment in pixels or in percent of the canvas.
"""

from __future__ import annotations

import io
import math
import re
from xml.etree.ElementTree import ParseError

import shapely
import svgelements
from shapely.geometry import LinearRing, LineString, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from shapely.ops import polygonize, unary_union

from engine.errors import MarginaliaError
from engine.outlines import polygons_of

MAX_SVG_CHARS = 4_000_000  # a traced mask of some ten thousand points is well under a megabyte
CURVE_STEPS = 16  # points per Bézier curve or arc: under a tenth of a pixel off for curves of a few hundred pixels
_FRAGMENT = re.compile(r"^\s*xywh\s*=\s*(?:(pixel|percent)\s*:)?\s*([^,]+),([^,]+),([^,]+),([^,&]+)\s*$", re.I)


class SelectorError(MarginaliaError):
    """A selector that does not say which area it means, with the reason."""


# -- writing -----------------------------------------------------------------------------------------------

def svg_value(parts: list[Polygon]) -> str:
    """An ``SvgSelector`` value: one ``<path>`` holding every part and hole (coordinates as given).

    The ``<svg>`` carries no ``xmlns``: Annotorious 2 (and Recogito, built on it) fails on any namespace
    declaration in a selector (seen in Chromium with 2.7), while Mirador and SVG readers take it either way —
    as the Web Annotation model's own example does."""
    rings = []
    for part in parts:
        oriented = orient(part, sign=-1.0)  # counter-clockwise on screen, where y points down
        rings.append(_subpath(oriented.exterior))
        rings.extend(_subpath(hole) for hole in oriented.interiors)
    return '<svg><path fill-rule="evenodd" d="' + " ".join(rings) + '"/></svg>'


def _subpath(ring: LinearRing) -> str:
    points = list(ring.coords)[:-1]
    return "M" + " L".join(f"{_number(x)},{_number(y)}" for x, y in points) + " Z"


def fragment_value(box: tuple[float, float, float, float]) -> str:
    """``xywh=pixel:x,y,w,h`` around ``box`` (x0, y0, x1, y1) in whole pixels: media fragments allow no
    fractions, so the box grows to the pixels it touches."""
    x0, y0 = math.floor(box[0] + 1e-6), math.floor(box[1] + 1e-6)
    x1, y1 = math.ceil(box[2] - 1e-6), math.ceil(box[3] - 1e-6)
    return f"xywh=pixel:{x0},{y0},{max(x1 - x0, 1)},{max(y1 - y0, 1)}"


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# -- reading -----------------------------------------------------------------------------------------------

def read_fragment(value: str, canvas_width: float, canvas_height: float) -> Polygon:
    """The rectangle of an ``xywh=`` fragment (``pixel:`` by default, or ``percent:`` of the canvas)."""
    match = _FRAGMENT.match(value or "")
    if match is None:
        raise SelectorError(f"the fragment {value[:80]!r} is not of the form xywh=x,y,w,h")
    try:
        x, y, w, h = (float(group) for group in match.groups()[1:])
    except ValueError:
        raise SelectorError(f"the fragment {value[:80]!r} holds a value that is not a number") from None
    if not all(math.isfinite(number) for number in (x, y, w, h)) or w <= 0 or h <= 0:
        raise SelectorError(f"the fragment {value[:80]!r} has no area")
    if (match.group(1) or "pixel").lower() == "percent":
        x, w = x * canvas_width / 100, w * canvas_width / 100
        y, h = y * canvas_height / 100, h * canvas_height / 100
    return shapely.box(x, y, x + w, y + h)


def read_svg(value: str) -> BaseGeometry:
    """The area an ``SvgSelector`` value covers: every filled shape of it, united (coordinates as given)."""
    if len(value) > MAX_SVG_CHARS:
        raise SelectorError(f"its SVG is {len(value):,} characters, more than the {MAX_SVG_CHARS:,} a shape may have")
    if re.search(r"<!(DOCTYPE|ENTITY)", value, re.I):
        raise SelectorError("its SVG declares a document type or entities, which a selector never needs")
    try:
        document = svgelements.SVG.parse(io.StringIO(value), reify=True)
    except (ParseError, ValueError, TypeError, IndexError) as error:
        raise SelectorError(f"its SVG cannot be read ({error})") from None
    areas = []
    for element in document.elements():
        if isinstance(element, svgelements.Shape) and not isinstance(element, svgelements.SimpleLine):
            area = _filled(element)
            if not area.is_empty:
                areas.append(area)
    if not areas:
        raise SelectorError("its SVG holds no shape with an area (only points or lines, or nothing)")
    return unary_union(areas)


def _filled(element: svgelements.Shape) -> BaseGeometry:
    rings = [ring for subpath in svgelements.Path(element).as_subpaths() if (ring := _ring(subpath)) is not None]
    if not rings:
        return Polygon()
    evenodd = str(element.values.get("fill-rule", "nonzero")).strip().lower() == "evenodd"
    if len(rings) == 1:
        return unary_union(polygons_of(shapely.make_valid(Polygon(rings[0]))))
    return _filled_faces(rings, evenodd)


def _filled_faces(rings: list[list[tuple[float, float]]], evenodd: bool) -> BaseGeometry:
    """Several sub-paths filled as SVG fills them: each face of their overlay is in when its winding number
    (the sum of the turns of the sub-paths around it) is non-zero, or odd under ``evenodd``."""
    closed = [LinearRing(ring) for ring in rings]
    windings = [1 if ring.is_ccw else -1 for ring in closed]
    outlines = [Polygon(ring) for ring in rings]
    faces = polygonize(unary_union([LineString(ring.coords) for ring in closed]))
    inside = []
    for face in faces:
        probe = face.representative_point()
        turns = [winding for winding, outline in zip(windings, outlines, strict=True) if outline.contains(probe)]
        if (len(turns) % 2 == 1) if evenodd else sum(turns) != 0:
            inside.append(face)
    return unary_union(inside) if inside else Polygon()


def _ring(subpath: svgelements.Path) -> list[tuple[float, float]] | None:
    points: list[tuple[float, float]] = []
    for segment in subpath:
        if isinstance(segment, (svgelements.Move, svgelements.Line, svgelements.Close)):
            end = segment.end
            if end is not None:
                points.append((float(end.x), float(end.y)))
        elif isinstance(segment, (svgelements.CubicBezier, svgelements.QuadraticBezier, svgelements.Arc)):
            for step in range(1, CURVE_STEPS + 1):
                point = segment.point(step / CURVE_STEPS)
                points.append((float(point.x), float(point.y)))
    unique = [point for index, point in enumerate(points) if index == 0 or point != points[index - 1]]
    if len(unique) > 1 and unique[0] == unique[-1]:
        unique.pop()
    if len(unique) < 3 or not all(math.isfinite(value) for point in unique for value in point):
        return None
    return unique


def is_rectangle(area: BaseGeometry) -> bool:
    """Whether ``area`` is one axis-aligned rectangle (a box drawn as a path reads back as a box)."""
    return isinstance(area, Polygon) and not area.interiors and math.isclose(area.area, area.envelope.area,
                                                                             rel_tol=1e-9, abs_tol=1e-6)
