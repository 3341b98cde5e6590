"""File ▸ Join Team Project…: this computer's folder for a team project on a PostgreSQL server.

The curator gives the address their administrator sent (``postgresql://you@server/database``) and a new or empty
folder; the password is not asked for here, nor kept: PostgreSQL's client finds it in ``~/.pgpass`` (or
``PGPASSWORD``, or a service file), and the dialog says so. Joining talks to the server, so it runs as a job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QWidget)

from engine.errors import MarginaliaError
from engine.project import Project
from engine.store.team import parse_address
from gui.notifications import NotificationArea
from gui.settings import AppSettings
from gui.workers import JobRunner


class JoinTeamDialog(QDialog):
    def __init__(self, start_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Join a team project")
        self._start = start_folder
        form = QFormLayout(self)
        self.address = QLineEdit()
        self.address.setPlaceholderText("postgresql://you@server.library.org/collection")
        form.addRow("Team database:", self.address)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a new or empty folder on this computer")
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(choose)
        form.addRow("Folder here:", row)
        note = QLabel("Your password is never stored in the project: PostgreSQL reads it from ~/.pgpass "
                      "(or PGPASSWORD). The folder keeps the address and this computer's caches.")
        note.setWordWrap(True)
        form.addRow(note)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020;")
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Join")
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(560, self.sizeHint().height())

    def _choose(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "A new or empty folder for the team project", str(self._start))
        if chosen:
            self.folder.setText(chosen)

    def _check(self) -> None:
        try:
            parse_address(self.address.text())
        except MarginaliaError as error:
            self.problem.setText(str(error))
            return
        if not self.folder.text().strip():
            self.problem.setText("Choose a folder for the project on this computer.")
            return
        self.accept()


def ask_join_team_project(parent: QWidget, settings: AppSettings, jobs: JobRunner, notifications: NotificationArea,
                          attach: Callable[[Project], None]) -> None:
    dialog = JoinTeamDialog(settings.start_folder("projects"), parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return
    address, folder = parse_address(dialog.address.text()), Path(dialog.folder.text().strip())
    settings.remember_folder("projects", folder.parent)
    jobs.submit("Joining the team project", lambda progress, cancel: Project.join(folder, address), attach)
