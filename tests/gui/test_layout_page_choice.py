"""An ambiguous PAGE/ALTO import is one choice away from done in the app, not a dead end (issue 27, 2)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QInputDialog
from sqlalchemy import select

import samples
from engine.ingest.scan_import import import_scans
from engine.project import Project
from engine.store.schema import Annotation

PAGE = ('<?xml version="1.0" encoding="UTF-8"?><PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/'
        '2019-07-15"><Page imageFilename="folio.png" imageWidth="300" imageHeight="180"><TextRegion id="r1">'
        '<Coords points="10,10 100,10 100,50 10,50"/></TextRegion></Page></PcGts>')


def test_a_file_two_pages_fit_is_imported_onto_the_page_the_curator_chooses(qtbot, window, tmp_path: Path,
                                                                           monkeypatch) -> None:
    with Project.create(tmp_path / "project") as project:
        for number, book in enumerate(("book-a", "book-b")):
            (tmp_path / book).mkdir()
            page = samples.gradient_rgb(300, 180)
            page.putpixel((number, 0), (255, 0, 255))
            page.save(tmp_path / book / "folio.png")
        import_scans(project, [tmp_path / "book-a", tmp_path / "book-b"])
    with qtbot.waitSignal(window.project_opened, timeout=10_000):
        window.open_project(tmp_path / "project")
    layout = tmp_path / "folio.page.xml"
    layout.write_text(PAGE, encoding="utf-8")
    window.layouts.import_files([layout])

    def refusals() -> list:
        return [n for n in window.notifications.notifications() if "could belong to 2 pages" in n.label.text()]

    qtbot.waitUntil(lambda: len(refusals()) == 1, timeout=20_000)
    (note,) = refusals()
    (choose,) = [b for b in note.buttons if b.text().startswith("Choose the page for folio.page.xml")]
    offered: list[list[str]] = []

    def pick_book_b(parent, title, label, items, current, editable):
        offered.append(list(items))
        return next(item for item in items if "book-b" in item), True

    monkeypatch.setattr(QInputDialog, "getItem", pick_book_b)
    choose.click()

    def shapes() -> list[tuple[str, int]]:
        with window.project.unit_of_work() as session:
            return [(shape.image.path, shape.id) for shape in session.scalars(select(Annotation))]

    qtbot.waitUntil(lambda: len(shapes()) == 1, timeout=20_000)
    assert len(offered[0]) == 2 and all("folio.png" in item for item in offered[0])
    assert "book-b" in shapes()[0][0]
    book_b = next(row.id for row in window.gallery.model.rows() if "book-b" in row.path)
    qtbot.waitUntil(lambda: window.labelling.image_id == book_b, timeout=5_000)  # issue 27, 10: the page shown


def test_layout_files_among_the_scans_are_offered_for_their_pages(qtbot, window, tmp_path: Path) -> None:
    """Issue 27, 9: PAGE/ALTO beside the scans were "ignored — not an image", with no way on."""
    Project.create(tmp_path / "project").close()
    with qtbot.waitSignal(window.project_opened, timeout=10_000):
        window.open_project(tmp_path / "project")
    scans = tmp_path / "scans"
    scans.mkdir()
    samples.gradient_rgb(300, 180).save(scans / "folio.png")
    (scans / "folio.page.xml").write_text(PAGE, encoding="utf-8")
    window.files.import_paths([scans])

    def offers() -> list:
        return [button for note in window.notifications.notifications() for button in note.buttons
                if button.text() == "Import the 1 layout file(s)"]

    qtbot.waitUntil(lambda: len(offers()) == 1, timeout=20_000)
    (ignored,) = [r for r in window.files.last_import.results if r.layout]
    assert ignored.layout == "PAGE XML" and "Import PAGE XML or ALTO" in ignored.reason
    offers()[0].click()

    def shapes() -> int:
        with window.project.unit_of_work() as session:
            return len(list(session.scalars(select(Annotation))))

    qtbot.waitUntil(lambda: shapes() == 1, timeout=20_000)
