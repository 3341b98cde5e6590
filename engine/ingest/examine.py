"""The per-file checks that decode pixels, run in worker processes during an import.

Kept free of database and web-framework imports so that worker processes
start quickly.
"""

from __future__ import annotations

from pathlib import Path

from engine.imaging.decode import load_page
from engine.imaging.probe import FileInfo, UnreadableImage, probe
from engine.imaging.thumbnails import is_cached, rendition_decode_side, write_cached_page
from engine.ingest.report import FileResult, Outcome


def examine_image(path: Path, image_format: str, sha256: str, thumbnail_dir: Path) -> FileInfo | FileResult:
    """Probe every page and decode it once (which proves the data whole), writing its thumbnail and rendition.

    A page whose thumbnail and rendition are already cached under this content's hash was decoded whole before
    (or made from pixels in hand, as a IIIF import does), so it is not decoded again."""
    try:
        info = probe(path, image_format)
        for page in info.pages:
            if is_cached(thumbnail_dir, sha256, page.page_index):
                continue
            reduced = load_page(path, page.page_index, max_side=rendition_decode_side(page.width, page.height),
                                image_format=image_format)
            try:
                write_cached_page(thumbnail_dir, sha256, page.page_index, reduced)
            except OSError as error:
                return FileResult(path, Outcome.FAILED, f"its thumbnail cannot be written into the project's "
                                                        f"cache ({error.strerror or error}); the file itself is fine")
        return info
    except UnreadableImage as error:
        return FileResult(path, Outcome.FAILED, str(error))
    except PermissionError:
        return FileResult(path, Outcome.FAILED, "permission denied: the file cannot be read")
    except OSError as error:
        return FileResult(path, Outcome.FAILED, f"cannot read the file ({error.strerror or error})")
    except Exception as error:  # noqa: BLE001 - one odd file must not end a batch of thousands
        return FileResult(path, Outcome.FAILED,
                          f"the file could not be read ({type(error).__name__}: {error})")


def rebuild_cached_page(path: Path, page_index: int, image_format: str, width: int, height: int, sha256: str,
                        thumbnail_dir: Path) -> bool:
    """Make a page's thumbnail and rendition again where this computer's cache lacks them (a team project joined
    here, a cache folder deleted); ``False`` where the scan cannot be read here (it is missing: relink)."""
    try:
        reduced = load_page(path, page_index, max_side=rendition_decode_side(width, height), image_format=image_format)
        write_cached_page(thumbnail_dir, sha256, page_index, reduced)
    except (UnreadableImage, OSError):
        return False
    return True
