"""The project store: opening, pragmas, migrations, constraints, threads."""

import hashlib
import shutil
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from engine.errors import ProjectError, ProjectVersionError
from engine.project import Project
from engine.store.database import SCHEMA_HEAD, current_revision, head_revision, open_engine, upgrade_to_head
from engine.store.schema import Annotation, Base, Category, Image, LabelSession
from engine.store.types import AnnotationStatus, SourceKind

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "project_v1.sqlite"


def _image(**overrides) -> Image:
    fields = dict(path="/scans/a.tif", sha256="a" * 64, width=100, height=50, format="TIFF",
                  mode="RGB", file_size=10, file_mtime=0.0)
    fields.update(overrides)
    return Image(**fields)


def _annotation(image_id: int, category_id: int) -> Annotation:
    return Annotation(image_id=image_id, category_id=category_id, bbox_x=1, bbox_y=2, bbox_w=3,
                      bbox_h=4, area=12, source_kind=SourceKind.HUMAN,
                      status=AnnotationStatus.ACCEPTED)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_project_uses_wal_and_foreign_keys(project: Project) -> None:
    with project.unit_of_work() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert project.name == "Test project"
    assert project.db_path.is_file()


def test_migrations_from_empty_match_the_models(tmp_path: Path) -> None:
    db_path = tmp_path / "fresh.sqlite"
    engine = open_engine(db_path)
    upgrade_to_head(engine, db_path)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head_revision() == SCHEMA_HEAD == current_revision(engine)
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], f"models and migrations disagree: {differences}"


def test_migrations_on_postgresql_match_the_models(team_database: str) -> None:
    from engine.store.postgres_store import make_engine
    from engine.store.team import parse_address

    engine = make_engine(parse_address(team_database))
    with engine.begin() as connection:
        from alembic import command

        from engine.store.database import alembic_config

        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == SCHEMA_HEAD
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == [], f"models and migrations disagree on PostgreSQL: {differences}"


def test_opening_a_folder_that_is_not_a_project_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="not a Marginalia project"):
        Project.open(tmp_path)
    with pytest.raises(ProjectError, match="No project folder"):
        Project.open(tmp_path / "missing")


def test_creating_over_an_existing_project_is_refused(any_project: Project) -> None:
    project = any_project
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(project.folder)


def test_a_project_from_a_newer_version_is_refused_untouched(project: Project) -> None:
    project.close()
    with sqlite3.connect(project.db_path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_future'")
    before = _sha(project.db_path)
    with pytest.raises(ProjectVersionError, match="newer version"):
        Project.open(project.folder)
    assert _sha(project.db_path) == before


def test_a_damaged_database_gives_a_clear_error_and_is_not_changed(tmp_path: Path) -> None:
    folder = tmp_path / "damaged"
    folder.mkdir()
    (folder / "project.sqlite").write_bytes(b"this is not a database" * 100)
    before = _sha(folder / "project.sqlite")
    with pytest.raises(ProjectError, match="is damaged .*file is not a database.* restore the project folder"):
        Project.open(folder)
    assert _sha(folder / "project.sqlite") == before


def test_foreign_keys_protect_categories_and_cascade_image_deletion(any_project: Project) -> None:
    project = any_project
    with project.unit_of_work() as session:
        image = _image()
        category = Category(name="Initial", colour="#E69F00")
        session.add_all([image, category])
        session.flush()
        session.add(_annotation(image.id, category.id))
    with pytest.raises(IntegrityError):
        with project.unit_of_work() as session:
            session.execute(delete(Category))
    with project.unit_of_work() as session:
        session.execute(delete(Image))
    with project.unit_of_work() as session:
        assert session.scalars(select(Annotation)).all() == []
        assert len(session.scalars(select(Category)).all()) == 1


def test_the_same_page_of_the_same_file_cannot_be_stored_twice(any_project: Project) -> None:
    project = any_project
    with project.unit_of_work() as session:
        session.add(_image())
    with pytest.raises(IntegrityError):
        with project.unit_of_work() as session:
            session.add(_image(path="/elsewhere/a.tif"))
    with project.unit_of_work() as session:
        session.add(_image(page_index=1))
        assert len(session.scalars(select(Image)).all()) == 2


def test_timestamps_come_back_as_utc(any_project: Project) -> None:
    project = any_project
    started = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with project.unit_of_work() as session:
        session.add(LabelSession(curator="Ada", started_at=started))
    with project.unit_of_work() as session:
        stored = session.scalars(select(LabelSession)).one()
    assert stored.started_at == started
    assert stored.started_at.tzinfo is not None


def test_threads_write_through_their_own_sessions(any_project: Project) -> None:
    project = any_project
    errors: list[BaseException] = []

    def write(thread_number: int) -> None:
        try:
            for index in range(20):
                with project.unit_of_work() as session:
                    session.add(_image(sha256=f"{thread_number:02d}{index:062d}"))
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=write, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with project.unit_of_work() as session:
        assert len(session.scalars(select(Image)).all()) == 80


def test_a_failed_unit_of_work_changes_nothing(any_project: Project) -> None:
    project = any_project
    with pytest.raises(RuntimeError):
        with project.unit_of_work() as session:
            session.add(_image())
            session.flush()
            raise RuntimeError("interrupted")
    with Project.open(project.folder) as other, other.unit_of_work() as session:  # another connection
        assert session.execute(text("SELECT count(*) FROM image")).scalar() == 0


def _copy_fixture(tmp_path: Path) -> Path:
    folder = tmp_path / "old-project"
    folder.mkdir()
    shutil.copy(FIXTURE_V1, folder / "project.sqlite")
    return folder


def test_a_version_1_project_opens_upgraded_with_everything_kept(tmp_path: Path) -> None:
    folder = _copy_fixture(tmp_path)
    with Project.open(folder) as upgraded:
        with upgraded.unit_of_work() as session:
            assert MigrationContext.configure(session.connection()).get_current_revision() == head_revision()
            images = session.scalars(select(Image).order_by(Image.id)).all()
            annotations = session.scalars(select(Annotation)).all()
            names = sorted(c.name for c in session.scalars(select(Category)))
            curators = [s.curator for s in session.scalars(select(LabelSession))]
        assert upgraded.name == "Version 1 project — Ælfric"
    assert [Path(i.path).name for i in images] == ["bengel_abriss01_1751_0007.jpg",
                                                   "kant_aufklaerung_1784_0020.jp2"]
    assert len(annotations) == 7 and {a.reviewed_by for a in annotations} == {""}
    assert "Decorated initial" in names and curators == ["Ada Lovelace"]
    backups = list(folder.glob("project.sqlite.before-upgrade-0001"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as old:
        assert old.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
        assert old.execute("SELECT count(*) FROM annotation").fetchone() == (7,)


def test_a_failed_upgrade_restores_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.store.database as database

    folder = _copy_fixture(tmp_path)
    def explode(engine) -> None:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE annotation")
        raise RuntimeError("disk full")

    monkeypatch.setattr(database, "_run_migrations", explode)
    with pytest.raises(ProjectError, match="restored unchanged"):
        Project.open(folder)
    with sqlite3.connect(folder / "project.sqlite") as restored:
        assert restored.execute("SELECT count(*) FROM annotation").fetchone() == (7,)
    monkeypatch.undo()
    with Project.open(folder) as reopened, reopened.unit_of_work() as session:
        assert len(session.scalars(select(Annotation)).all()) == 7


def test_upgrading_keeps_search_vectors_and_stops_reusing_their_ids(tmp_path: Path) -> None:
    from alembic import command

    from engine.store.database import alembic_config

    db_path = tmp_path / "old.sqlite"
    engine = open_engine(db_path)
    config = alembic_config()
    with engine.begin() as connection:  # a project as the previous release left it
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    image = _image()
    with engine.begin() as connection:
        connection.execute(Image.__table__.insert().values(
            {column.name: getattr(image, column.name) for column in Image.__table__.columns
             if getattr(image, column.name) is not None}))
        for vector_id in (1, 2):
            connection.execute(text("INSERT INTO vector (id, model_id, image_id, content, data, created_at) "
                                    "VALUES (:id, 'clip', 1, 'c', x'00000000', '2026-01-01 00:00:00.000000')"),
                               {"id": vector_id})
    upgrade_to_head(engine, db_path)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT id FROM vector ORDER BY id")).scalars().all() == [1, 2]
        connection.execute(text("DELETE FROM vector WHERE id = 2"))
        connection.execute(text("INSERT INTO vector (model_id, image_id, content, data, created_at) "
                                "VALUES ('clip', 1, 'd', x'00000000', '2026-01-01 00:00:00.000000')"))
        assert connection.execute(text("SELECT max(id) FROM vector")).scalar() == 3  # 2 is not given again
    engine.dispose()


def test_json_columns_read_fast_and_still_read_what_the_fast_reader_refuses(project: Project) -> None:
    """orjson reads JSON columns; values it refuses (NaN, integers past 64 bits, which Python's json writes
    and older versions or other tools may have stored) are still read, not lost to an error."""
    from engine.annotations import annotations_of
    from engine.store.database import read_json

    assert read_json('[{"exterior": [1.25, 2.5, 3, 4], "holes": []}]') == [{"exterior": [1.25, 2.5, 3, 4],
                                                                           "holes": []}]
    assert read_json(b"[0.1]") == [0.1]  # floats exact, not re-rounded
    assert read_json("[NaN]")[0] != read_json("[NaN]")[0]  # nan
    assert read_json(f"[{2**70}]") == [2**70]
    with project.unit_of_work() as session:
        image, category = _image(), Category(name="Word", colour="#123456")
        session.add_all([image, category])
        session.flush()
        session.add(_annotation(image.id, category.id))
        session.flush()
        session.execute(text("UPDATE annotation SET polygons = :p"),
                        {"p": '[{"exterior": [1, 1, 3, 1, 3, NaN], "holes": []}]'})
        image_id = image.id
    (record,) = annotations_of(project, image_id)
    assert record.polygons[0]["exterior"][:5] == [1, 1, 3, 1, 3]
