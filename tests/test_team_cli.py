"""Team projects through the command line: a new one, sharing a curator's project (the original only read), the
archive copy back to one file (what a team project holds, value by value), and roles."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from engine.paths import TEAM_FILENAME
from engine.project import Project
from engine.store.transfer import table_digests
from tests import samples
from tests.cli_runner import run_cli
from tests.team_fixtures import address, admin_sql


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _curators_project(tmp_path: Path) -> Path:
    project = tmp_path / "Psalter"
    scans = tmp_path / "scans"
    samples.write_jpeg(scans / "f1r.jpg", (320, 200))
    samples.write_multipage_tiff(scans / "gathering.tif", [(100, 80), (90, 120)])
    assert run_cli("new", str(project), "--name", "Psalter of St. Ælfric").returncode == 0
    assert run_cli("import", str(project), str(scans)).returncode == 0
    coco = tmp_path / "in.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "f1r.jpg", "width": 320, "height": 200}],
        "categories": [{"id": 1, "name": "Initiale"}, {"id": 2, "name": "Zierleiste"}],
        "annotations": [{"id": k, "image_id": 1, "category_id": 1 + k % 2, "bbox": [10 + k, 20, 30, 40], "area": 1200,
                         "segmentation": [[10 + k, 20, 40 + k, 20, 40 + k, 60, 10 + k, 60]]} for k in range(1, 40)],
    }), encoding="utf-8")
    assert run_cli("import-coco", str(project), str(coco)).returncode == 0
    return project


def test_share_copies_a_project_into_postgresql_checked_and_leaves_the_original_untouched(
        postgres, team_database: str, tmp_path: Path) -> None:
    original = _curators_project(tmp_path)
    before = _sha(original / "project.sqlite")
    shared = run_cli("share", str(original), team_database, "--folder", str(tmp_path / "team"))
    assert shared.returncode == 0, shared.stderr
    assert "3 page(s), 39 annotation(s)" in shared.stdout and "unchanged" in shared.stdout
    assert _sha(original / "project.sqlite") == before
    assert (tmp_path / "team" / TEAM_FILENAME).is_file() and not (tmp_path / "team" / "project.sqlite").exists()
    with Project.open(original, read_only=True) as mine, Project.open(tmp_path / "team") as team:
        assert table_digests(mine.store.engine) == table_digests(team.store.engine)
        assert team.name == "Psalter of St. Ælfric"
    # The team goes on (new rows take new ids after the copied ones), then archives the project as one file.
    added = tmp_path / "more.json"
    added.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "f1r.jpg", "width": 320, "height": 200}],
        "categories": [{"id": 1, "name": "Initiale"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [100, 100, 10, 10], "area": 100}]}))
    imported = run_cli("import-coco", str(tmp_path / "team"), str(added))
    assert imported.returncode == 0, imported.stderr
    archived = run_cli("export-project", str(tmp_path / "team"), str(tmp_path / "archive"))
    assert archived.returncode == 0, archived.stderr
    assert "40 annotation(s)" in archived.stdout
    with Project.open(tmp_path / "archive") as archive, Project.open(tmp_path / "team") as team:
        assert not archive.is_team
        assert table_digests(archive.store.engine) == table_digests(team.store.engine)
    listed = json.loads(run_cli("list", str(tmp_path / "archive"), "--json").stdout)
    assert sum(image["accepted"] for image in listed["images"]) == 40
    # A database holding a project is never shared into: refused, and no folder is left half made.
    again = run_cli("share", str(original), team_database, "--folder", str(tmp_path / "again"))
    assert again.returncode != 0 and "already holds a project" in again.stderr
    assert not (tmp_path / "again").exists()
    assert postgres["password"] not in shared.stdout + shared.stderr + archived.stdout + again.stderr


def test_new_team_project_from_the_command_line_refuses_a_password_in_the_address(
        postgres, team_database: str, tmp_path: Path) -> None:
    with_password = team_database.replace("@", ":hunter2@")
    refused = run_cli("new", str(tmp_path / "p"), "--db", with_password)
    assert refused.returncode != 0 and "~/.pgpass" in refused.stderr and "hunter2" not in refused.stderr
    assert not (tmp_path / "p").exists()
    created = run_cli("new", str(tmp_path / "p"), "--db", team_database, "--name", "Kupferstiche")
    assert created.returncode == 0, created.stderr
    joined = run_cli("join", str(tmp_path / "second-desk"), team_database)
    assert joined.returncode == 0 and "Kupferstiche" in joined.stdout
    admin_sql(postgres, "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cli_viewer') THEN "
                        "CREATE ROLE cli_viewer LOGIN PASSWORD 'x'; END IF; END $$")
    granted = run_cli("team-role", str(tmp_path / "p"), "cli_viewer", "viewer")
    assert granted.returncode == 0, granted.stderr
    unknown = run_cli("team-role", str(tmp_path / "p"), "nobody_here", "viewer")
    assert unknown.returncode != 0 and "no login 'nobody_here'" in unknown.stderr
    assert address(postgres, "x") and postgres["password"] not in granted.stdout + unknown.stderr


def test_each_computer_finds_the_scans_through_its_own_roots_and_relinks_without_moving_the_others(
        postgres, team_database: str, tmp_path: Path) -> None:
    import shutil

    original = _curators_project(tmp_path)
    assert run_cli("share", str(original), team_database, "--folder", str(tmp_path / "ada")).returncode == 0
    # Ben's computer mounts the shared drive elsewhere.
    shutil.copytree(tmp_path / "scans", tmp_path / "mnt" / "Scans")
    assert run_cli("join", str(tmp_path / "ben"), team_database).returncode == 0
    shutil.rmtree(tmp_path / "scans")  # not at the stored paths on Ben's computer (nor, now, on Ada's)
    listed = run_cli("roots", str(tmp_path / "ben"))
    assert "0 of 3 page(s) found" in listed.stdout
    added = run_cli("roots", str(tmp_path / "ben"), "--add", str(tmp_path / "scans"), str(tmp_path / "mnt" / "Scans"))
    assert added.returncode == 0 and "3 of 3 page(s) found on this computer" in added.stdout, added.stdout
    pages = json.loads(run_cli("list", str(tmp_path / "ben"), "--json").stdout)["images"]
    assert all(page["path"].startswith(str(tmp_path / "mnt" / "Scans")) and not page["missing"] for page in pages)
    # Ada relinks to where she moved them: her computer's roots change, the shared paths do not.
    shutil.copytree(tmp_path / "mnt" / "Scans", tmp_path / "elsewhere" / "scans")
    relinked = run_cli("relink", str(tmp_path / "ada"), str(tmp_path / "elsewhere"))
    assert relinked.returncode == 0 and "2 image file(s) relinked" in relinked.stdout, relinked.stdout
    ada_pages = json.loads(run_cli("list", str(tmp_path / "ada"), "--json").stdout)["images"]
    assert all(page["path"].startswith(str(tmp_path / "elsewhere")) and not page["missing"] for page in ada_pages)
    ben_pages = json.loads(run_cli("list", str(tmp_path / "ben"), "--json").stdout)["images"]
    assert all(page["path"].startswith(str(tmp_path / "mnt" / "Scans")) for page in ben_pages)
    with Project.open(tmp_path / "ada") as team, team.unit_of_work() as session:
        from sqlalchemy import select

        from engine.store.schema import Image

        assert all(path.startswith(str(tmp_path / "scans")) for path in session.scalars(select(Image.path)))
