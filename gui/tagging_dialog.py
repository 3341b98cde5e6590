"""Zero-shot tagging: the curator describes each category in words, CLIP proposes a category per page.

The descriptions are remembered per project. Nothing is accepted on the
curator's behalf: every tag arrives as a whole-page proposal with CLIP's
probability as its score, to review like any other proposal.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QDialog, QDialogButtonBox, QFormLayout, QHeaderView,
                               QLabel, QLineEdit, QRadioButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from engine.categories import CategoryRecord
from gui.docks.categories import swatch

OTHER_KEY = "other"
TICKED_KEY = "ticked"
DEFAULT_OTHERS = "a page of plain text; a blank page"
CATEGORY_ID_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True, slots=True)
class TaggingRequest:
    prompts: dict[int, str]  # category id → description
    others: tuple[str, ...]
    min_probability: float
    within: set[int] | None  # None: every page


def default_description(name: str) -> str:
    noun = name.strip()
    noun = noun[0].lower() + noun[1:] if noun[:1].isupper() and not noun[1:2].isupper() else noun
    return f"a page with {'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


class TaggingDialog(QDialog):
    """Choose categories, describe them, set how sure CLIP must be and which pages to tag."""

    def __init__(self, categories: list[CategoryRecord], remembered: dict[str, str], *, model_name: str,
                 all_pages: int, gallery_pages: list[int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Tag Pages with CLIP")
        self.setMinimumSize(600, 540)
        self._gallery_pages = gallery_pages
        self._all_pages = all_pages
        intro = QLabel(f"<p>{model_name} looks at each page and proposes the category whose description fits "
                       "it best. Tags arrive as whole-page <b>proposals</b> with CLIP's confidence, for you to "
                       "accept or reject; pages not yet indexed for search are indexed first.</p>")
        intro.setWordWrap(True)
        self.table = QTableWidget(len(categories), 2)
        self.table.setHorizontalHeaderLabels(["Category", "What it looks like, in words CLIP understands"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        ticked = set(remembered.get(TICKED_KEY, "").split(","))  # none at first: page-level categories vary
        for row, category in enumerate(categories):
            name = QTableWidgetItem(swatch(category.colour), category.name)
            name.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            name.setCheckState(Qt.CheckState.Checked if str(category.id) in ticked else Qt.CheckState.Unchecked)
            name.setData(CATEGORY_ID_ROLE, category.id)
            self.table.setItem(row, 0, name)
            text = remembered.get(str(category.id)) or default_description(category.name)
            self.table.setItem(row, 1, QTableWidgetItem(text))
        self.others = QLineEdit(remembered.get(OTHER_KEY, DEFAULT_OTHERS))
        self.others.setToolTip("Pages that look most like one of these (separated by ';') get no tag, so CLIP is "
                               "not forced to choose a category for every page")
        self.certainty = QSpinBox()
        self.certainty.setRange(1, 99)
        self.certainty.setValue(50)
        self.certainty.setSuffix(" %")
        self.certainty.setToolTip("CLIP's probability for the best category; raise it for fewer, surer tags")
        self.every_page = QRadioButton(f"All pages ({all_pages})")
        self.gallery_only = QRadioButton(f"Only the pages shown in the gallery ({len(gallery_pages)})")
        self.every_page.setChecked(True)
        scope = QButtonGroup(self)
        scope.addButton(self.every_page)
        scope.addButton(self.gallery_only)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #B3261E")
        self.problem.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Pages showing none of these:", self.others)
        form.addRow("Propose a tag when CLIP is at least:", self.certainty)
        form.addRow("Tag:", self.every_page)
        form.addRow("", self.gallery_only)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.propose = self.buttons.addButton("Propose Tags", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._accept_if_valid)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)

    def request(self) -> TaggingRequest:
        prompts = {}
        for row in range(self.table.rowCount()):
            name = self.table.item(row, 0)
            if name.checkState() == Qt.CheckState.Checked:
                prompts[int(name.data(CATEGORY_ID_ROLE))] = self.table.item(row, 1).text().strip()
        return TaggingRequest(prompts, self._other_descriptions(), self.certainty.value() / 100,
                              set(self._gallery_pages) if self.gallery_only.isChecked() else None)

    def descriptions(self) -> dict[str, str]:
        """What to remember for next time: every category's description, the ticked ones, the "other" ones."""
        texts = {str(self.table.item(row, 0).data(CATEGORY_ID_ROLE)): self.table.item(row, 1).text().strip()
                 for row in range(self.table.rowCount())}
        ticked = ",".join(str(category_id) for category_id in self.request().prompts)
        return {**texts, OTHER_KEY: self.others.text().strip(), TICKED_KEY: ticked}

    def _other_descriptions(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.others.text().split(";") if part.strip())

    def _accept_if_valid(self) -> None:
        request = self.request()
        if not self._all_pages:
            self.problem.setText("The project has no pages to tag yet: import some first.")
        elif not request.prompts:
            self.problem.setText("Tick at least one category to tag.")
        elif any(not text for text in request.prompts.values()):
            self.problem.setText("Describe every ticked category, e.g. 'a page with a coat of arms'.")
        elif len(request.prompts) + len(request.others) < 2:
            self.problem.setText("CLIP chooses between descriptions: tick another category or describe pages "
                                 "that show none of them.")
        elif request.within is not None and not request.within:
            self.problem.setText("The gallery shows no pages; change its filters or tag all pages.")
        else:
            self.accept()
