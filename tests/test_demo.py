"""The demo project: built once in the user's data folder from the bundled scans."""

import os
from pathlib import Path

from sqlalchemy import select

from engine.demo import DEMO_ASSETS, open_demo_project
from engine.inventory import summarise
from engine.paths import REPO_ROOT, demo_project_dir
from engine.store.schema import Image, ProjectInfo


def test_demo_is_built_in_the_user_data_folder_with_metadata() -> None:
    folder = demo_project_dir()
    assert str(folder).startswith(os.environ["MARGINALIA_DATA_DIR"])
    with open_demo_project() as project:
        summary = summarise(project)
        with project.unit_of_work() as session:
            images = {Path(i.path).name: i for i in session.scalars(select(Image))}
    assert summary.images == 5 and summary.missing_images == 0
    assert (summary.accepted, summary.proposed) == (6, 1)
    assert images["kant_aufklaerung_1784_0020.jp2"].date == "1784"
    assert "Deutsches Textarchiv" in images["bengel_abriss01_1751_0007.jpg"].rights
    assert all(Path(i.path).parent == folder / "scans" for i in images.values())
    assert not str(project.folder).startswith(str(REPO_ROOT))


def test_demo_is_not_rebuilt_on_the_next_start() -> None:
    def created_at(project):
        with project.unit_of_work() as session:
            return session.get(ProjectInfo, 1).created_at

    with open_demo_project() as project:
        first_built = created_at(project)
        scans = sorted(p.name for p in (project.folder / "scans").iterdir())
    with open_demo_project() as project:
        assert created_at(project) == first_built
    shipped = sorted(p.name for p in DEMO_ASSETS.iterdir() if p.suffix in {".jpg", ".jp2"})
    assert scans == shipped
