"""The labelling flow: the page on the canvas, its annotations, and every edit to them.

Connects the canvas and the side panels to undoable commands and keeps them
all in step when something changes (an edit, an undo, a review).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import shiboken6
from PySide6.QtGui import QImage, QUndoStack
from PySide6.QtWidgets import QDialog

from engine.annotations import AnnotationRecord, Geometry, Provenance, get_annotations
from engine.categories import CategoryRecord, category_counts, list_categories
from engine.imaging.thumbnails import thumbnail_path
from engine.inventory import list_images
from engine.sessions import session_counts
from engine.store.types import AnnotationStatus
from gui.canvas.shape_layer import LayerContents
from gui.canvas.view import ImageCanvas
from gui.commands import (
    CreateAnnotation,
    DeleteAnnotations,
    EditContext,
    EditGeometry,
    EditMetadata,
    Review,
    SetCategory,
)
from gui.docks.annotations import AnnotationsPanel
from gui.docks.categories import CategoriesPanel
from gui.docks.metadata import MetadataPanel
from gui.gallery import GalleryPanel
from gui.notifications import NotificationArea
from gui.page_leases import PageLeaseKeeper
from gui.page_loader import PageLoader
from gui.pages_ahead import PagesAhead, read_page
from gui.settings import AppSettings
from gui.status import StatusBar
from gui.workers import Job, JobRunner


@dataclass(frozen=True)
class LabellingViews:
    canvas: ImageCanvas
    gallery: GalleryPanel
    categories: CategoriesPanel
    annotations: AnnotationsPanel
    metadata: MetadataPanel
    status: StatusBar
    notifications: NotificationArea


class LabellingController:
    def __init__(self, views: LabellingViews, undo_stack: QUndoStack, loader: PageLoader,
                 settings: AppSettings, refresh_all_pages: Callable[[], None], jobs: JobRunner) -> None:
        self.views = views
        self._jobs = jobs
        self.on_page_ready: Callable[[], None] | None = None  # the page at its sharpest, its shapes all shown
        self._waiting_for: set[str] = set()  # of "pixels", "shapes": what the open page still waits for
        self._reload_generation = 0
        self.pages_ahead = PagesAhead(jobs)
        self.leases = PageLeaseKeeper(jobs, views.notifications.info)
        self._reading = False  # a read of the open page's annotations is in flight
        self._page_read: Job | None = None
        self._select_when_shown: list[int] | None = None
        self._recounting = False
        self._recount_again = False  # edits came while counting: count once more afterwards
        self._pages_to_recount: set[int] = set()
        self._categories_to_recount: set[int] | None = set()  # None: every category
        self.bulk_dialog: QDialog | None = None
        self._refresh_all_pages = refresh_all_pages  # lists every page off the UI thread
        self._undo = undo_stack
        self._loader = loader
        self._loader.on_loaded = lambda: self._part_ready("pixels")
        self._settings = settings
        self.ctx: EditContext | None = None
        self.image_id: int | None = None
        self._records: list[AnnotationRecord] = []
        self._selected_ids: list[int] = []
        self._categories: dict[int, CategoryRecord] = {}
        self._connect()

    def _connect(self) -> None:
        views = self.views
        views.gallery.image_selected.connect(self.show_image)
        views.canvas.annotation_drawn.connect(self._drawn)
        views.canvas.geometry_edited.connect(self.reshape)
        views.canvas.stroke_finished.connect(self.paint_stroke)
        views.canvas.selection_changed.connect(views.annotations.select)
        views.canvas.selection_changed.connect(self._selection_for_status)
        views.annotations.selection_changed.connect(views.canvas.select_annotations)
        views.annotations.accept_requested.connect(lambda: self.review_selected(AnnotationStatus.ACCEPTED))
        views.annotations.reject_requested.connect(lambda: self.review_selected(AnnotationStatus.REJECTED))
        views.annotations.accept_all_requested.connect(self.accept_all)
        views.annotations.delete_requested.connect(self.delete_selected)
        views.annotations.bulk_requested.connect(self.open_bulk_review)
        views.categories.current_changed.connect(self._category_chosen)
        views.metadata.edited.connect(self._metadata_edited)

    # -- project ------------------------------------------------------------------------

    def attach(self, ctx: EditContext | None) -> None:
        if self.bulk_dialog is not None and shiboken6.isValid(self.bulk_dialog):
            self.bulk_dialog.close()  # it acts on the project it was opened for
        self.bulk_dialog = None
        if self.ctx is not None:
            self.ctx.events.annotations_changed.disconnect(self._annotations_changed)
            self.ctx.events.annotations_edited.disconnect(self._annotations_edited)
            self.ctx.events.categories_changed.disconnect(self.reload_categories)
            self.ctx.events.image_changed.disconnect(self._image_changed)
        self.ctx = ctx
        self.leases.attach(ctx)
        self.pages_ahead.forget()
        self.views.categories.set_context(ctx)
        self.image_id = None
        self._loader.cancel()
        self.views.canvas.clear_page()
        self.views.annotations.set_annotations([], {}, [])
        self.views.metadata.set_image(None)
        if ctx is None:
            return
        ctx.events.annotations_changed.connect(self._annotations_changed)
        ctx.events.annotations_edited.connect(self._annotations_edited)
        ctx.events.categories_changed.connect(self.reload_categories)
        ctx.events.image_changed.connect(self._image_changed)
        self.reload_categories()
        remembered = self._settings.last_category(ctx.project.folder)
        if remembered in self._categories:
            self.views.categories.set_current(remembered)
        self.refresh_session()

    def reload_categories(self) -> None:
        if self.ctx is None:
            return
        records = list_categories(self.ctx.project)
        self._categories = {record.id: record for record in records}
        self.views.categories.set_categories(records)
        self.views.gallery.set_categories(records)
        self.pages_ahead.forget()
        self._reload_annotations()

    # -- the current page -----------------------------------------------------------------

    def show_image(self, image_id: int) -> None:
        if self.ctx is None or image_id == self.image_id:
            return
        self.views.metadata.flush()
        row = self.views.gallery.model.row_for(image_id)
        if row is None:
            return
        self.image_id = image_id
        self.leases.hold(image_id)
        self._select_when_shown = None
        self._waiting_for = {"pixels", "shapes"}
        ahead = self.pages_ahead.take(image_id, self._colours())
        if ahead is None:
            self.pages_ahead.stop_reading()  # a jump elsewhere: the neighbours' read would slow this one
            self._reload_annotations(selected=[])  # first: the read runs while the page is set up
        # Until they arrive, nothing of the previous page may be listed or acted on.
        self._records = []
        self.views.annotations.set_annotations([], self._categories, [])
        self._loader.cancel()  # frees the previous page before the canvas drops it
        thumb = QImage(str(thumbnail_path(self.ctx.project.thumbnail_dir, row.sha256, row.page_index)))
        page = self.views.canvas.show_page(f"{row.sha256}:{row.page_index}", row.width, row.height, thumb)
        self._loader.load(row, page, after_shapes=True)
        self.views.metadata.set_image(row)
        self._settings.set_last_page(self.ctx.project.folder, image_id)
        if ahead is not None:  # read ahead while the previous page was open: shown at once
            self._reload_generation += 1
            self._reading = False
            self._show_annotations(self._reload_generation, image_id, *ahead, selected=[])

    def _read_neighbours_ahead(self) -> None:
        if self.ctx is None or self.image_id is None:
            return
        order = self.views.gallery.visible_image_ids()
        if self.image_id not in order:
            return
        at = order.index(self.image_id)
        self.pages_ahead.read_ahead(self.ctx.project, order[at + 1:at + 2] + order[max(0, at - 1):at], self._colours())

    def _reload_annotations(self, selected: list[int] | None = None) -> None:
        """Read the page's annotations and make their outlines off the UI thread, then show them.

        A page with thousands of shapes would otherwise hold the window for a second or more. Only the
        newest request for the page still open is shown.
        """
        if self.ctx is None or self.image_id is None:
            return
        self._reload_generation += 1
        self._reading = True
        generation, project, image_id, colours = self._reload_generation, self.ctx.project, self.image_id, \
            self._colours()
        if self._page_read is not None:
            self._page_read.cancel()  # its result would be dropped; it would only slow this one
        self._page_read = self._jobs.submit(
            "Reading the page's annotations", lambda progress, cancel: read_page(project, image_id, colours, cancel),
            lambda result: self._show_annotations(generation, image_id, *result, selected=selected),
            visible=False, announce_cancel=False)

    def _colours(self) -> dict[int, str]:
        return {category_id: category.colour for category_id, category in self._categories.items()}

    def _show_annotations(self, generation: int, image_id: int, records: list[AnnotationRecord],
                          prepared: LayerContents, *, selected: list[int] | None) -> None:
        if generation != self._reload_generation or image_id != self.image_id or self.ctx is None:
            return  # a newer read is on its way, or the curator moved on
        self._reading = False
        keep = self.views.canvas.selected_ids() if selected is None else selected
        if self._select_when_shown is not None:
            keep, self._select_when_shown = self._select_when_shown, None
        self._records = records
        self.ctx.versions.note_seen(records)
        present = {record.id for record in records}
        keep = [annotation_id for annotation_id in keep if annotation_id in present]
        self.views.canvas.set_annotations(records, self._categories, keep, prepared)
        self.views.annotations.set_annotations(records, self._categories, keep)
        self._loader.shapes_shown()
        self._part_ready("shapes")

    def _part_ready(self, part: str) -> None:
        if part in self._waiting_for:
            self._waiting_for.discard(part)
            if not self._waiting_for:
                self._read_neighbours_ahead()  # the curator is likely to step there next
                if self.on_page_ready is not None:
                    self.on_page_ready()

    @property
    def shapes_shown(self) -> bool:
        """The open page's annotations are all on the canvas and in the panel (none being read)."""
        return self.image_id is not None and "shapes" not in self._waiting_for and not self._reading

    def records(self) -> list[AnnotationRecord]:
        return list(self._records)

    # -- reacting to changes ------------------------------------------------------------------

    def _annotations_changed(self, image_id: int) -> None:
        assert self.ctx is not None
        self.pages_ahead.forget(None if image_id == -1 else image_id)
        if image_id in (-1, self.image_id):
            self._reload_annotations()
        if image_id == -1:
            self._refresh_all_pages()
            self._recount(None)
        else:
            self._recount(image_id)

    def _annotations_edited(self, image_id: int, ids: list[int]) -> None:
        """Update only the annotations an edit touched (and the counts around them)."""
        assert self.ctx is not None
        self.pages_ahead.forget(image_id)
        if image_id == self.image_id and self._reading:
            self._reload_annotations()  # the read in flight may predate this edit: read again
        elif image_id == self.image_id:
            fresh = get_annotations(self.ctx.project, ids)
            self.ctx.versions.note_seen(fresh)
            present = {record.id for record in fresh}
            removed = [annotation_id for annotation_id in ids if annotation_id not in present]
            touched = set(ids)
            described = sorted(touched & set(self._selected_ids))  # before the canvas drops a rejected shape
            categories = {r.category_id for r in self._records if r.id in touched} | \
                {r.category_id for r in fresh}  # the counts that can have changed: before and after
            self._records = sorted([r for r in self._records if r.id not in touched] + fresh,
                                   key=lambda record: record.id)
            self.views.canvas.update_annotations(fresh, removed, self._categories)
            self.views.annotations.update_annotations(fresh, removed, self._categories)
            if described:
                self._say_status(described)  # the new status, not the one it had when selected
            self._recount(image_id, categories)
            return
        self._recount(image_id)

    def _recount(self, image_id: int | None, categories: set[int] | None = None) -> None:
        """Refresh the counts around an edit in a job: the badges of the pages it touched, the uses of the
        categories it touched (``None``: of every category), the session's work. Each is a count over an
        index, never over the whole project; edits that come faster than the counts are gathered into
        the next count."""
        assert self.ctx is not None
        if image_id is not None:  # None: only the categories and the session (the pages are listed anew)
            self._pages_to_recount.add(image_id)
        if categories is None or self._categories_to_recount is None:
            self._categories_to_recount = None
        else:
            self._categories_to_recount |= categories
        if self._recounting:
            self._recount_again = True
            return
        self._recounting, self._recount_again = True, False
        project, session_id, pages = self.ctx.project, self.ctx.session_id, sorted(self._pages_to_recount)
        touched = self._categories_to_recount
        self._pages_to_recount, self._categories_to_recount = set(), set()

        def count(progress: object, cancel: object) -> tuple[list, list[CategoryRecord] | dict[int, int], object]:
            return (list_images(project, pages) if pages else [],
                    list_categories(project) if touched is None else category_counts(project, touched),
                    None if session_id is None else session_counts(project, session_id))

        def counted(result: tuple[list, list[CategoryRecord] | dict[int, int], object]) -> None:
            if self.ctx is None or self.ctx.project is not project:
                return
            rows, categories, session = result
            for row in rows:
                self.views.gallery.model.update_row(row)
            if isinstance(categories, dict):
                self._categories = {category_id: replace(record, annotation_count=categories.get(
                    category_id, record.annotation_count)) for category_id, record in self._categories.items()}
                self.views.categories.update_counts(categories)
            else:
                self._categories = {record.id: record for record in categories}
                self.views.categories.set_categories(categories)
            if session is not None:
                self.views.status.set_session(self.ctx.curator, session)

        def ended() -> None:
            self._recounting = False
            if self._recount_again and self.ctx is not None:
                self._recount(None, set())  # with the pages and categories gathered meanwhile

        self._jobs.submit("Counting annotations", count, counted, visible=False).ended.connect(ended)

    def _image_changed(self, image_id: int) -> None:
        assert self.ctx is not None
        for row in list_images(self.ctx.project, [image_id]):
            self.views.gallery.model.update_row(row)
            if image_id == self.image_id:
                self.views.metadata.set_image(row)

    def refresh_session(self) -> None:
        if self.ctx is None or self.ctx.session_id is None:
            self.views.status.set_session("", None)
            return
        self.views.status.set_session(self.ctx.curator, session_counts(self.ctx.project, self.ctx.session_id))

    def _selection_for_status(self, ids: list[int]) -> None:
        self._selected_ids = list(ids)
        self._say_status(ids)

    def _say_status(self, ids: list[int]) -> None:
        if len(ids) == 1:
            record = next((r for r in self._records if r.id == ids[0]), None)
            if record is not None:
                category = self._categories.get(record.category_id)
                self.views.status.showMessage(
                    f"#{record.id} {category.name if category else ''} — {record.status.value}, "
                    f"area {record.area:.0f} px²", 4000)

    # -- edits ----------------------------------------------------------------------------------

    def categories(self) -> list[CategoryRecord]:
        return list(self._categories.values())

    def current_category(self) -> CategoryRecord | None:
        return self._categories.get(self.views.categories.current_category_id())

    def _category_chosen(self, category_id: int | None) -> None:
        if self.ctx is not None and category_id is not None:
            self._settings.set_last_category(self.ctx.project.folder, category_id)

    def _drawn(self, geometry: Geometry) -> None:
        self.add_shape(geometry)

    def add_shape(self, geometry: Geometry, provenance: Provenance | None = None) -> None:
        """A new annotation in the current category (asking for one if there is none), undoable."""
        if self.ctx is None or self.image_id is None:
            return
        category = self.current_category()
        if category is None:
            self.views.notifications.info("Every shape needs a category: name one to go on.")
            created = self.views.categories.add()
            if created is None:
                return
            category = created
        command = CreateAnnotation(self.ctx, self.image_id, category.id, geometry, category.name, provenance)
        self._undo.push(command)
        if command.record is not None:
            self.views.canvas.select_annotations([command.record.id])

    def reshape(self, annotation_id: int, geometry: Geometry) -> None:
        """A new outline for an annotation of the open page (an undoable edit; provenance stays)."""
        if self.ctx is not None and self.image_id is not None:
            self._undo.push(EditGeometry(self.ctx, self.image_id, annotation_id, geometry))

    def open_bulk_review(self) -> None:
        """The bulk review dialog, over this page, the gallery's pages or the whole project."""
        if self.ctx is None:
            return
        from gui.bulk_review import BulkReviewDialog, BulkScope  # noqa: PLC0415 - opened on demand

        dialog = BulkReviewDialog(self.ctx, self._jobs, self._undo, self.views.notifications, self.categories(),
                                  BulkScope(self.image_id, self.views.gallery.visible_image_ids()),
                                  self.views.canvas.window())
        dialog.finished.connect(dialog.deleteLater)
        self.bulk_dialog = dialog
        dialog.open()

    def select_annotations(self, ids: list[int]) -> None:
        """Select annotations of the open page, now or as soon as its shapes are shown."""
        if self._reading:
            self._select_when_shown = list(ids)
        else:
            self.views.canvas.select_annotations(ids)

    def paint_stroke(self, stroke: list[tuple[float, float]], radius: float, erase: bool) -> None:
        """A brush or eraser stroke on the selected shape (a new mask when the brush has nothing selected)."""
        if self.ctx is None or self.image_id is None:
            return
        from engine.mask_editing import paint  # noqa: PLC0415 - OpenCV loads when first needed

        selected = self.selected()
        if len(selected) > 1:
            self.views.notifications.info("Select one shape to paint on (several are selected).")
            return
        record = next((r for r in self._records if selected and r.id == selected[0]), None)
        if record is None and erase:
            self.views.notifications.info("Select the shape to erase from first.")
            return
        row = self.views.gallery.model.row_for(self.image_id)
        if row is None:
            return
        image_id, width, height = self.image_id, row.width, row.height

        def painted(geometry: Geometry) -> None:
            if self.ctx is None or image_id != self.image_id:
                return  # the curator moved on; the stroke is dropped rather than applied unseen
            if record is None:
                self.add_shape(geometry)
            else:
                self.reshape(record.id, geometry)

        self._jobs.submit("Painting the mask", lambda progress, cancel: paint(record, width, height, stroke,
                                                                              radius, erase=erase), painted)

    def convert_selected_to_polygon(self) -> None:
        if self.ctx is None or self.image_id is None:
            return
        from engine.mask_editing import to_polygon  # noqa: PLC0415

        masks = [r for r in self._records if r.id in self.selected() and r.rle is not None]
        row = self.views.gallery.model.row_for(self.image_id)
        if not masks or row is None:
            self.views.notifications.info("Select a mask (a SAM or imported mask) to convert.")
            return
        image_id, width, height = self.image_id, row.width, row.height

        def converted(geometries: list[Geometry]) -> None:
            if self.ctx is None or image_id != self.image_id:
                return
            self._undo.beginMacro(f"Convert {len(masks)} mask(s) to polygons")
            for record, geometry in zip(masks, geometries, strict=True):
                self._undo.push(EditGeometry(self.ctx, image_id, record.id, geometry))
            self._undo.endMacro()

        self._jobs.submit("Outlining the masks", lambda progress, cancel: [to_polygon(r, width, height)
                                                                            for r in masks], converted)

    def selected(self) -> list[int]:
        return self.views.canvas.selected_ids() or self.views.annotations.selected_ids()

    def review_selected(self, status: AnnotationStatus) -> None:
        ids = self.selected()
        if not ids:
            proposals = [r.id for r in self._records if r.status is AnnotationStatus.PROPOSED]
            ids = proposals[:1]  # A/R with nothing selected reviews the next proposal
        if ids and self.ctx is not None and self.image_id is not None:
            self._undo.push(Review(self.ctx, self.image_id, ids, status))
            self._select_next_proposal()

    def _select_next_proposal(self) -> None:
        proposals = [r.id for r in self._records if r.status is AnnotationStatus.PROPOSED]
        self.views.canvas.select_annotations(proposals[:1])

    def accept_all(self) -> None:
        ids = [r.id for r in self._records if r.status is AnnotationStatus.PROPOSED]
        if ids and self.ctx is not None and self.image_id is not None:
            self._undo.push(Review(self.ctx, self.image_id, ids, AnnotationStatus.ACCEPTED))

    def delete_selected(self) -> None:
        ids = self.selected()
        if ids and self.ctx is not None and self.image_id is not None:
            self._undo.push(DeleteAnnotations(self.ctx, self.image_id, ids))

    def choose_category_by_hotkey(self, number: int) -> None:
        category = self.views.categories.by_hotkey(number)
        if category is None:
            return
        self.views.categories.set_current(category.id)
        ids = self.views.canvas.selected_ids()
        if ids and self.ctx is not None and self.image_id is not None:
            self._undo.push(SetCategory(self.ctx, self.image_id, ids, category))

    def _metadata_edited(self, field: str, value: str) -> None:
        if self.ctx is not None and self.image_id is not None:
            self._undo.push(EditMetadata(self.ctx, self.image_id, field, value))
