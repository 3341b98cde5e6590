"""Bad files get a clear reason, are skipped, and never disturb what is already there."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

import samples
from engine.ingest.report import Outcome
from engine.ingest.scan_import import import_scans
from engine.jobs import CancelToken, JobProgress
from engine.project import Project
from engine.store.schema import Image


def _snapshot(project: Project) -> tuple[list[tuple], dict[str, bytes]]:
    with project.unit_of_work() as session:
        rows = [(i.id, i.path, i.sha256, i.width, i.height) for i in session.scalars(select(Image))]
    thumbnails = {str(p): p.read_bytes() for p in sorted(project.thumbnail_dir.rglob("*.jpg"))}
    return rows, thumbnails


def _reason(report, path: Path) -> tuple[Outcome, str]:
    (result,) = [r for r in report.results if r.path == path]
    return result.outcome, result.reason


@pytest.fixture
def project_with_one_scan(project: Project, tmp_path: Path) -> Project:
    good = samples.write_jpeg(tmp_path / "good.jpg")
    assert import_scans(project, [good]).images_added == 1
    return project


BAD_FILES = {
    "empty.jpg": (lambda d: (d / "empty.jpg").write_bytes(b""), "empty"),
    "truncated.jpg": (lambda d: samples.truncate(samples.write_jpeg(d / "whole.jpg", (900, 700)),
                                                 d / "truncated.jpg"), "truncated"),
    "truncated.png": (lambda d: samples.truncate(samples.write_png(d / "whole.png", (900, 700)),
                                                 d / "truncated.png"), "truncated"),
    "letter.jpg": (lambda d: (d / "letter.jpg").write_text("Dear curator,\nthis is no image.\n"),
                   "not an image although its name ends in .jpg: it holds text"),
    "bomb.png": (lambda d: samples.write_png_bomb_header(d / "bomb.png"), "decompression bomb"),
    "page.xml.tif": (lambda d: (d / "page.xml.tif").write_text("<?xml version='1.0'?><PcGts/>"),
                     "XML"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_is_reported_and_project_unchanged(
    project_with_one_scan: Project, tmp_path: Path, name: str
) -> None:
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    make, expected_reason = BAD_FILES[name]
    make(bad_dir)
    before = _snapshot(project_with_one_scan)
    report = import_scans(project_with_one_scan, [bad_dir / name])
    outcome, reason = _reason(report, (bad_dir / name).absolute())
    assert outcome is Outcome.FAILED
    assert expected_reason in reason
    assert _snapshot(project_with_one_scan) == before


def test_broken_symlink_is_reported(project: Project, tmp_path: Path) -> None:
    link = tmp_path / "moved.tif"
    link.symlink_to(tmp_path / "no-longer-here.tif")
    inside = tmp_path / "folder"
    inside.mkdir()
    (inside / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    report = import_scans(project, [link, inside])
    assert _reason(report, link)[1].startswith("broken link")
    assert _reason(report, inside / "dangling.jpg")[1].startswith("broken link")


def test_missing_path_is_reported(project: Project, tmp_path: Path) -> None:
    report = import_scans(project, [tmp_path / "nowhere"])
    assert _reason(report, tmp_path / "nowhere") == (Outcome.FAILED, "not found")


def test_a_folder_of_mixed_files_imports_the_good_ones(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    (folder / "sub").mkdir(parents=True)
    samples.write_jpeg(folder / "one.jpg")
    samples.write_png(folder / "sub" / "two.png")
    (folder / "notes.txt").write_text("shelf 3")
    (folder / "zero.tif").write_bytes(b"")
    (folder / ".hidden.jpg").write_text("skipped quietly")
    report = import_scans(project, [folder])
    assert {r.path.name: r.outcome for r in report.results} == {
        "one.jpg": Outcome.IMPORTED,
        "two.png": Outcome.IMPORTED,
        "notes.txt": Outcome.IGNORED,
        "zero.tif": Outcome.FAILED,
    }


def test_duplicates_are_reported_and_not_imported_twice(project: Project, tmp_path: Path) -> None:
    original = samples.write_jpeg(tmp_path / "original.jpg")
    copy = tmp_path / "copy-with-other-name.jpg"
    shutil.copy(original, copy)
    first = import_scans(project, [original, copy])
    assert [r.outcome for r in first.results] == [Outcome.IMPORTED, Outcome.DUPLICATE]
    assert "imported earlier in this run" in first.results[1].reason
    again = import_scans(project, [original])
    assert again.results[0].outcome is Outcome.DUPLICATE
    assert str(original) in again.results[0].reason
    with project.unit_of_work() as session:
        assert len(session.scalars(select(Image)).all()) == 1


def test_progress_is_reported_for_every_file(project: Project, tmp_path: Path) -> None:
    for index in range(5):
        samples.write_jpeg(tmp_path / "scans" / f"page{index}.jpg", (100 + index, 80))
    seen: list[JobProgress] = []
    import_scans(project, [tmp_path / "scans"], progress=seen.append)
    assert seen[0].done == 0 and seen[0].total == 5
    assert [p.done for p in seen[1:]] == [1, 2, 3, 4, 5]
    assert all(p.total == 5 for p in seen)


def test_cancel_keeps_what_was_imported(project: Project, tmp_path: Path) -> None:
    for index in range(12):
        samples.write_jpeg(tmp_path / f"page{index:02d}.jpg", (100 + index, 80))
    token = CancelToken()

    def cancel_after_three(progress: JobProgress) -> None:
        if progress.done == 3:
            token.cancel()

    report = import_scans(project, [tmp_path], progress=cancel_after_three, cancel=token, window=1)
    assert report.cancelled
    assert len(report.of(Outcome.IMPORTED)) == 3
    assert report.of(Outcome.IGNORED)[0].path == project.folder  # its own folder is no scan
    with project.unit_of_work() as session:
        assert len(session.scalars(select(Image)).all()) == 3
    rest = import_scans(project, [tmp_path])
    assert len(rest.of(Outcome.IMPORTED)) == 9 and len(rest.of(Outcome.DUPLICATE)) == 3


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    # Root reads everything, so the import runs as an unprivileged user when we are root.
    workspace = Path(tempfile.mkdtemp(prefix="marginalia-perm-"))
    try:
        workspace.chmod(0o777)
        secret = samples.write_jpeg(workspace / "secret.jpg")
        secret.chmod(0o000)
        readable = samples.write_jpeg(workspace / "open.jpg", (64, 48))
        readable.chmod(0o644)
        # Root reads everything: drop to an unprivileged user once the modules are loaded
        # (the interpreter itself may live where that user cannot look).
        script = (
            "import os, sys\nfrom pathlib import Path\n"
            "import PIL.Image\n"
            "from engine.project import Project\n"
            "from engine.ingest.scan_import import import_scans\n"
            "PIL.Image.init()\n"
            f"project = Project.create(Path({str(workspace / 'project')!r}))\n"
            "project.close()\n"
            "if os.geteuid() == 0:\n"
            "    for root, dirs, files in os.walk(project.folder):\n"
            "        for name in [root, *(os.path.join(root, f) for f in dirs + files)]:\n"
            "            os.chown(name, 65534, 65534)\n"
            "    os.setgid(65534); os.setuid(65534)\n"
            f"report = import_scans(project, [Path({str(workspace)!r})])\n"
            "for r in report.results:\n    print(r.path.name, r.outcome.value, r.reason, sep='|')\n"
        )
        completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                   cwd=Path(__file__).resolve().parent.parent)
        assert completed.returncode == 0, completed.stderr
        outcomes = {line.split("|")[0]: line.split("|")[1:] for line in completed.stdout.splitlines()}
        assert outcomes["secret.jpg"] == ["failed", "permission denied: the file cannot be read"]
        assert outcomes["open.jpg"][0] == "imported"
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
