"""PDF pages as images, with PDFium (pypdfium2: Apache-2.0/BSD, wheels for every desktop platform).

Curators receive scans as PDFs. A page that is one scanned image (optionally
under an invisible OCR text layer, as "searchable PDFs" are) is taken at the
image's own pixels: nothing is resampled, and its size is the scan's. Any other
page (text, vector drawings, several images, a rotated or clipped image) is
rendered at :data:`RENDER_DPI`. Either way the page's ``/Rotate`` is honoured.

PDFium is not thread-safe: every call goes through one lock. Imports and the
viewer decode in worker processes, each with its own PDFium.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from engine.imaging.probe import FileInfo, PageInfo, UnreadableImage, check_pixel_limit

RENDER_DPI = 300
_POINTS_PER_INCH = 72
# How far the image may fall short of the page's edges (in points) and still be "the page".
_EDGE_TOLERANCE_PT = 1.5
_ROTATION_TRANSPOSE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180,
                       270: Image.Transpose.ROTATE_90}

_lock = threading.RLock()


@dataclass(frozen=True, slots=True)
class _PagePlan:
    size: tuple[int, int]  # displayed pixels
    scan: Any | None  # the page's one image object, or None: render instead
    rotation: int
    page_points: tuple[float, float]  # displayed width and height in points


def probe_pdf(path: Path) -> FileInfo:
    """Each page's displayed size in pixels, without decoding any image."""
    with _lock:
        document = _open(path)
        try:
            pages = []
            for index in range(len(document)):
                plan = _plan(document[index])
                check_pixel_limit(*plan.size)
                pages.append(PageInfo(index, plan.size[0], plan.size[1], "RGB", 1))
        finally:
            document.close()
    if not pages:
        raise UnreadableImage("the PDF has no pages")
    return FileInfo("PDF", tuple(pages))


def load_pdf_page(path: Path, page_index: int, max_side: int | None = None) -> Image.Image:
    """One page as displayed (``RGB`` or ``L``), fitting a ``max_side`` square when given."""
    with _lock:
        document = _open(path)
        try:
            if not 0 <= page_index < len(document):
                raise UnreadableImage(f"the PDF has no page {page_index + 1}")
            page = document[page_index]
            plan = _plan(page)
            full_side = max(plan.size)
            if plan.scan is not None and (max_side is None or max_side >= full_side / 2):
                image = plan.scan.get_bitmap(render=False).to_pil()
                transpose = _ROTATION_TRANSPOSE.get(plan.rotation)
                image = image.transpose(transpose) if transpose is not None else image
            else:
                # Rendering at the size wanted is cheaper than decoding a large scan and shrinking it.
                wanted = plan.size if max_side is None else _fit(plan.size, max_side)
                scale = wanted[0] / plan.page_points[0]
                image = page.render(scale=scale).to_pil()
        except UnreadableImage:
            raise
        except Exception as error:  # noqa: BLE001 - PDFium reports damage in many ways
            raise UnreadableImage(f"the PDF page cannot be drawn ({error})") from error
        finally:
            document.close()
    image = image if image.mode in ("RGB", "L") else image.convert("RGB")
    if max_side is None and image.size != plan.size:
        image = image.resize(plan.size, Image.Resampling.LANCZOS)  # rounding of the renderer, a pixel at most
    if max_side is not None and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def _open(path: Path) -> Any:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as error:
        text = str(error).lower()
        if "password" in text:
            raise UnreadableImage("the PDF is protected by a password; open it in a PDF reader and save an "
                                  "unprotected copy") from error
        raise UnreadableImage(f"the PDF cannot be read ({error}); it may be damaged") from error


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(size))
    return (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))


def _plan(page: Any) -> _PagePlan:
    width_pt, height_pt = page.get_size()  # already turned by /Rotate
    rotation = page.get_rotation() % 360
    scan = _single_scan(page)
    if scan is not None:
        pixels = scan.get_px_size()
        size = (pixels[1], pixels[0]) if rotation in (90, 270) else (pixels[0], pixels[1])
        return _PagePlan(size, scan, rotation, (width_pt, height_pt))
    scale = RENDER_DPI / _POINTS_PER_INCH
    size = (max(1, math.ceil(width_pt * scale)), max(1, math.ceil(height_pt * scale)))
    return _PagePlan(size, None, rotation, (width_pt, height_pt))


def _single_scan(page: Any) -> Any | None:
    """The page's one upright image covering the whole page, if that is all the page shows."""
    import pypdfium2.raw as pdfium_c

    images = []
    for item in page.get_objects():
        if item.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            images.append(item)
        elif not (item.type == pdfium_c.FPDF_PAGEOBJ_TEXT and pdfium_c.FPDFTextObj_GetTextRenderMode(item.raw)
                  == pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE):
            return None  # something visible besides the scan
    if len(images) != 1:
        return None
    scan = images[0]
    matrix = scan.get_matrix()
    if abs(matrix.b) > 1e-6 or abs(matrix.c) > 1e-6 or matrix.a <= 0 or matrix.d <= 0:
        return None  # turned, mirrored or skewed on the page: render what the page shows
    left, bottom, right, top = scan.get_bounds()
    box_left, box_bottom, box_right, box_top = page.get_cropbox()
    covers = (abs(left - box_left) <= _EDGE_TOLERANCE_PT and abs(bottom - box_bottom) <= _EDGE_TOLERANCE_PT
              and abs(right - box_right) <= _EDGE_TOLERANCE_PT and abs(top - box_top) <= _EDGE_TOLERANCE_PT)
    return scan if covers else None
