"""Team projects on a real PostgreSQL server (started by the suite): the address without a password, stale edits
refused on both databases, roles enforced by the server, and plain messages when the server cannot be reached."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import select, text

from engine.annotations import Geometry, annotations_of, create_annotation, review, set_text, update_geometry
from engine.categories import add_category
from engine.errors import ConnectionLostError, ProjectError, ProjectReadOnlyError, StaleEditError
from engine.paths import TEAM_FILENAME
from engine.project import Project
from engine.store.schema import Annotation, Image
from engine.store.team import parse_address
from engine.store.team_roles import TeamRole, grant_role, role_of
from engine.store.types import AnnotationStatus
from tests.team_fixtures import add_page, address, make_login


def _files_text(folder: Path) -> str:
    return "".join(path.read_text(encoding="utf-8", errors="replace") for path in folder.rglob("*") if path.is_file())


def test_a_team_project_keeps_its_address_and_never_a_password(postgres, team_database: str, tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="never stores one"):
        parse_address(team_database.replace("@", f":{postgres['password']}@"))
    folder = tmp_path / "at-ada's-desk"
    with Project.create(folder, name="Herbarium", team_database=parse_address(team_database)) as project:
        assert project.is_team and not project.read_only
        page = add_page(project)
    assert (folder / TEAM_FILENAME).is_file() and not (folder / "project.sqlite").exists()
    assert postgres["password"] not in _files_text(folder)
    # A second computer joins with the same address: one project, seen from both.
    with Project.join(tmp_path / "at-ben's-desk", parse_address(team_database)) as joined:
        assert joined.name == "Herbarium"
        with joined.unit_of_work() as session:
            assert session.scalars(select(Image.id)).all() == [page]
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(tmp_path / "third", team_database=parse_address(team_database))
    assert not (tmp_path / "third" / TEAM_FILENAME).exists()


def test_an_edit_made_on_a_stale_version_is_refused_and_changes_nothing(any_project: Project) -> None:
    page = add_page(any_project)
    category = add_category(any_project, "Word").id
    seen = create_annotation(any_project, image_id=page, category_id=category, geometry=Geometry(bbox=(10, 10, 50, 20)),
                             creator="Ada")
    with Project.open(any_project.folder) as bens:  # another curator, another connection
        bens_version = update_geometry(bens, seen.id, Geometry(bbox=(12, 10, 50, 20)), editor="Ben",
                                       expected={seen.id: seen.version}).version
    assert bens_version == seen.version + 1
    with pytest.raises(StaleEditError, match="by Ben") as refused:
        update_geometry(any_project, seen.id, Geometry(bbox=(90, 90, 5, 5)), editor="Ada",
                        expected={seen.id: seen.version})
    assert refused.value.ids == [seen.id]
    with pytest.raises(StaleEditError):
        review(any_project, [seen.id], AnnotationStatus.REJECTED, reviewer="Ada", session_id=None,
               expected={seen.id: seen.version})
    (now,) = annotations_of(any_project, page)
    assert (now.bbox, now.status, now.version, now.updated_by) == ((12, 10, 50, 20), seen.status, bens_version, "Ben")
    # Made on what is there now, the same edit goes through.
    versions: dict[int, int] = {}
    set_text(any_project, {seen.id: "fol. 3r"}, editor="Ada", expected={seen.id: bens_version}, versions=versions)
    assert versions == {seen.id: bens_version + 1}


def test_roles_are_enforced_by_the_server_not_only_the_app(postgres, team_project_folder: Path) -> None:
    with Project.open(team_project_folder) as owner:
        page = add_page(owner)
        category = add_category(owner, "Initial").id
        made = create_annotation(owner, image_id=page, category_id=category, geometry=Geometry(bbox=(1, 1, 9, 9)),
                                 creator="owner", status=AnnotationStatus.PROPOSED)
        team = {name: make_login(postgres, name) for name in ("vera_view", "anna_annot", "rolf_review")}
        for name, role in (("vera_view", TeamRole.VIEWER), ("anna_annot", TeamRole.ANNOTATOR),
                           ("rolf_review", TeamRole.REVIEWER)):
            grant_role(owner.store.engine, name, role)
        database = owner.store.url.database
    for name, role in (("vera_view", TeamRole.VIEWER), ("anna_annot", TeamRole.ANNOTATOR)):
        folder = team_project_folder.parent / name
        with Project.join(folder, parse_address(address(postgres, database, name))) as theirs:
            assert role_of(theirs.store.engine) == role
            assert theirs.read_only == (role == TeamRole.VIEWER)
            assert len(annotations_of(theirs, page)) == 1  # both may read
            # Past the app's own check, straight to the server: refused there, said plainly.
            with pytest.raises(ProjectReadOnlyError, match="does not allow this change") as refused:
                if role == TeamRole.VIEWER:
                    with theirs.unit_of_work() as session:
                        session.execute(text("UPDATE annotation SET text = 'x'"))
                else:
                    review(theirs, [made.id], AnnotationStatus.ACCEPTED, reviewer=name, session_id=None)
            assert team[name] not in str(refused.value)
            if role == TeamRole.ANNOTATOR:
                set_text(theirs, {made.id: "annotators transcribe"}, editor=name)
                with pytest.raises(ProjectReadOnlyError):
                    add_category(theirs, "Coat of arms")  # the taxonomy is the administrator's
    rolfs = parse_address(address(postgres, database, "rolf_review"))
    with Project.join(team_project_folder.parent / "rolf", rolfs) as rolf:
        review(rolf, [made.id], AnnotationStatus.ACCEPTED, reviewer="rolf_review", session_id=None)
        (row,) = annotations_of(rolf, page)
        assert (row.status, row.text) == (AnnotationStatus.ACCEPTED, "annotators transcribe")


def test_an_unreachable_server_or_a_wrong_password_is_said_plainly_without_the_password(
        postgres, team_project_folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wrong = "not-the-password-" + secrets.token_hex(4)
    empty_pgpass = tmp_path / "empty-pgpass"
    empty_pgpass.write_text("", encoding="utf-8")
    monkeypatch.setenv("PGPASSFILE", str(empty_pgpass))
    monkeypatch.setenv("PGPASSWORD", wrong)
    with pytest.raises(ConnectionLostError, match="cannot be reached") as refused:
        Project.open(team_project_folder)
    assert wrong not in str(refused.value) and postgres["password"] not in str(refused.value)
    assert "password authentication failed" in str(refused.value)
    from tests.postgres_server import free_port

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / TEAM_FILENAME).write_text(
        (team_project_folder / TEAM_FILENAME).read_text(encoding="utf-8").replace(str(postgres["port"]),
                                                                                 str(free_port())), encoding="utf-8")
    with pytest.raises(ConnectionLostError, match="Check the network"):
        Project.open(elsewhere)


def test_rows_that_change_on_the_server_raise_their_version_even_in_bulk(any_project: Project) -> None:
    from engine.review import ProposalFilter, review_matching

    page = add_page(any_project)
    category = add_category(any_project, "Line").id
    made = [create_annotation(any_project, image_id=page, category_id=category, geometry=Geometry(bbox=(i, 1, 5, 5)),
                              creator="model", status=AnnotationStatus.PROPOSED) for i in range(3)]
    review_matching(any_project, ProposalFilter(), AnnotationStatus.ACCEPTED, reviewer="Ada", session_id=None)
    with any_project.unit_of_work() as session:
        versions = dict(session.execute(select(Annotation.id, Annotation.version)).all())
    assert versions == {record.id: record.version + 1 for record in made}


def test_other_curators_changes_are_told_within_a_second_and_ones_own_are_not(team_project_folder: Path) -> None:
    import queue
    import time

    from engine.store.changes import Change

    told: queue.Queue[Change] = queue.Queue()
    with Project.open(team_project_folder) as mine, Project.open(team_project_folder) as theirs:
        page = add_page(mine)
        category = add_category(mine, "Word").id
        listener = mine.listen(told.put)
        assert listener is not None and listener.listening.wait(5)
        made = create_annotation(mine, image_id=page, category_id=category, geometry=Geometry(bbox=(1, 1, 9, 9)),
                                 creator="Ada")
        begun = time.monotonic()
        review(theirs, [made.id], AnnotationStatus.REJECTED, reviewer="Ben", session_id=None)
        change = told.get(timeout=1.0)
        assert time.monotonic() - begun < 1.0
        assert change == Change("annotation", page, (made.id,))
        time.sleep(0.3)
        assert told.empty()  # one notice for Ben's statement; none for Ada's own creation
        listener.stop()


def test_a_single_file_project_has_no_listener(project: Project) -> None:
    assert project.listen(lambda change: None) is None


def test_a_page_lease_tells_who_reviews_it_lapses_by_itself_and_is_given_back(any_project: Project) -> None:
    import time

    from engine.leases import leases_of_others, release_lease, take_lease

    page, other_page = add_page(any_project), add_page(any_project, "b" * 64)
    with Project.open(any_project.folder) as bens:
        assert take_lease(any_project, page, "Ada", "ada-window") is None
        held = take_lease(bens, page, "Ben", "ben-window")
        assert held is not None and held.holder == "Ada" and "Ada is reviewing this page" in held.describe()
        assert set(leases_of_others(bens, "ben-window")) == {page}  # Ben's review queue leaves it out
        assert take_lease(any_project, page, "Ada", "ada-window") is None  # renewing one's own
        release_lease(any_project, page, "ada-window")
        assert take_lease(bens, page, "Ben", "ben-window") is None
        # A lease that is not renewed (its window crashed) lapses by itself.
        assert take_lease(bens, other_page, "Ben", "ben-window", seconds=0.2) is None
        assert set(leases_of_others(any_project, "ada-window")) == {page, other_page}
        time.sleep(0.3)
        assert set(leases_of_others(any_project, "ada-window")) == {page}
        assert take_lease(any_project, other_page, "Ada", "ada-window") is None


def test_a_team_project_can_require_tls(postgres, team_project_folder: Path) -> None:
    from engine.store.team import read_connection, write_connection

    if not (Path(postgres["folder"]) / "server.crt").is_file():
        pytest.fail("the test server has no certificate (openssl missing): TLS is untested")
    address_now = read_connection(team_project_folder)
    write_connection(team_project_folder, address_now.update_query_dict({"sslmode": "require"}))
    assert "sslmode=require" in (team_project_folder / TEAM_FILENAME).read_text(encoding="utf-8")
    with Project.open(team_project_folder) as project, project.unit_of_work() as session:
        assert session.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar() is True


def test_a_bulk_undo_over_someone_elses_later_edit_is_refused_whole(any_project: Project) -> None:
    from engine.review import ProposalFilter, review_matching, undo_change

    page = add_page(any_project)
    category = add_category(any_project, "Line").id
    made = [create_annotation(any_project, image_id=page, category_id=category, geometry=Geometry(bbox=(i, 1, 5, 5)),
                              creator="model", status=AnnotationStatus.PROPOSED) for i in range(3)]
    change = review_matching(any_project, ProposalFilter(), AnnotationStatus.ACCEPTED, reviewer="Ada")
    with Project.open(any_project.folder) as bens:
        set_text(bens, {made[1].id: "Ben's reading"}, editor="Ben")
    with pytest.raises(StaleEditError, match="Cannot undo: 1 of the annotation"):
        undo_change(any_project, change)
    rows = {row.id: row for row in annotations_of(any_project, page)}
    assert all(row.status is AnnotationStatus.ACCEPTED for row in rows.values())  # nothing undone, not even part
    assert rows[made[1].id].text == "Ben's reading"
