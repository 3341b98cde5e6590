"""The command line as a user runs it: real processes, real files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import samples

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], capture_output=True,
                          text=True, cwd=cwd or REPO, env=env, timeout=120)


@pytest.mark.parametrize("command", ["", "new", "import", "list", "export", "import-coco", "relink", "gui"])
def test_every_command_has_help(command: str) -> None:
    result = run(*([command] if command else []), "--help")
    assert result.returncode == 0
    assert "usage: marginalia" in result.stdout
    if command == "export":
        assert "--include-proposals" in result.stdout


def test_installed_console_script_runs() -> None:
    script = Path(sys.executable).parent / "marginalia"
    assert script.exists(), "the package is installed with its console script"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("Marginalia ")


def test_a_whole_session_from_the_command_line(tmp_path: Path) -> None:
    """Seconds: every step is a real process, as a curator's shell runs them."""
    project = tmp_path / "Psalter"
    scans = tmp_path / "scans"
    samples.write_jpeg(scans / "f1r.jpg", (320, 200))
    samples.write_multipage_tiff(scans / "gathering.tif", [(100, 80), (90, 120)])
    (scans / "broken.jpg").write_text("not an image")

    created = run("new", str(project), "--name", "Psalter of St. Ælfric")
    assert created.returncode == 0 and "Psalter of St. Ælfric" in created.stdout

    imported = run("import", str(project), str(scans))
    assert imported.returncode == 0, imported.stderr
    assert "failed" in imported.stdout and "broken.jpg" in imported.stdout
    assert "not an image although its name ends in .jpg" in imported.stdout
    assert "2 file(s) imported (3 page(s))" in imported.stdout

    listed = run("list", str(project), "--json")
    data = json.loads(listed.stdout)
    assert data["project"]["name"] == "Psalter of St. Ælfric"
    assert sorted((i["width"], i["height"], i["format"]) for i in data["images"]) == [
        (90, 120, "TIFF"), (100, 80, "TIFF"), (320, 200, "JPEG")]

    coco_in = tmp_path / "in.json"
    coco_in.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "f1r.jpg", "width": 320, "height": 200}],
        "categories": [{"id": 1, "name": "Initiale"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40],
                         "segmentation": [[10, 20, 40, 20, 40, 60, 10, 60]], "area": 1200}],
    }))
    assert run("import-coco", str(project), str(coco_in)).returncode == 0
    listed = json.loads(run("list", str(project), "--json").stdout)
    assert sum(i["accepted"] for i in listed["images"]) == 1

    out = tmp_path / "export" / "out.json"
    out.parent.mkdir()
    exported = run("export", str(project), "--format", "coco", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    written = json.loads(out.read_text())
    assert [a["bbox"] for a in written["annotations"]] == [[10, 20, 30, 40]]
    assert {i["file_name"] for i in written["images"]} == {"f1r.jpg", "gathering.tif"}


def test_import_fails_only_when_nothing_can_be_done(tmp_path: Path) -> None:
    assert run("new", str(tmp_path / "p")).returncode == 0
    nothing = run("import", str(tmp_path / "p"), str(tmp_path / "absent"))
    assert nothing.returncode != 0
    assert "none of the given paths exists" in nothing.stderr
    no_project = run("import", str(tmp_path / "no-project"), str(tmp_path))
    assert no_project.returncode != 0


def test_errors_are_one_line_without_traceback_unless_debug(tmp_path: Path) -> None:
    plain = run("list", str(tmp_path / "missing"))
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == [f"marginalia: error: No project folder at {tmp_path / 'missing'}."]
    debug = run("list", str(tmp_path / "missing"), "--debug")
    assert "Traceback" in debug.stderr
    bad_coco = tmp_path / "bad.json"
    bad_coco.write_text("{oops")
    run("new", str(tmp_path / "p"))
    result = run("import-coco", str(tmp_path / "p"), str(bad_coco))
    assert result.returncode == 1 and "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_file_names_with_shell_characters_are_just_names(tmp_path: Path) -> None:
    odd = samples.write_jpeg(tmp_path / "scans" / "folio $(touch pwned); `id` 'x'.jpg")
    run("new", str(tmp_path / "p"))
    result = run("import", str(tmp_path / "p"), str(odd), cwd=tmp_path)
    assert result.returncode == 0 and "1 file(s) imported" in result.stdout
    assert not (tmp_path / "pwned").exists()


def test_gui_screenshot_of_the_demo_on_first_run(tmp_path: Path) -> None:
    """Seconds: a real process builds the demo project and starts the app's window."""
    from PIL import Image, ImageStat

    shot = tmp_path / "window.png"
    result = run("gui", "--screenshot", str(shot))
    assert result.returncode == 0, result.stderr
    image = Image.open(shot)
    assert image.size[0] >= 800 and image.size[1] >= 600
    assert max(ImageStat.Stat(image.convert("L")).stddev) > 20  # a real window, not a blank frame
    listed = run("list", os.path.join(os.environ["MARGINALIA_DATA_DIR"], "demo-project"), "--json")
    assert len(json.loads(listed.stdout)["images"]) == 5


def test_a_screenshot_leaves_the_curators_settings_as_they_were(tmp_path: Path) -> None:
    """Seconds: two real processes start the app's window (Qt and the project) to take screenshots."""
    from gui.settings import AppSettings, default_path

    settings = AppSettings()
    settings.curator = "Ada Curator"
    before = default_path().read_bytes()
    run("new", str(tmp_path / "p"))
    for target in (tmp_path / "p", tmp_path / "p" / "project.sqlite"):  # a folder, or its database double-clicked
        result = run("gui", str(target), "--screenshot", str(tmp_path / "shot.png"))
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "shot.png").stat().st_size > 10_000
    assert default_path().read_bytes() == before  # no window layout, recent project or last page written


def test_gui_with_a_missing_project_fails_on_one_line(tmp_path: Path) -> None:
    result = run("gui", str(tmp_path / "nowhere"), "--screenshot", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"marginalia: error: No project folder at {tmp_path / 'nowhere'}."]


def test_the_in_process_runner_answers_as_the_program_does(tmp_path: Path) -> None:
    """The model commands' tests run the CLI in the test's process (tests/cli_runner.py), sparing seconds of
    imports per call: it must give back what the program gives, exit status, output and errors alike."""
    from tests.cli_runner import run_cli

    def session(folder: Path, call) -> list[tuple[int, str, str]]:  # noqa: ANN001
        steps = [("new", str(folder)), ("new", str(folder)), ("list", str(folder)), ("list", str(folder / "none")),
                 ("import",), ("detect", str(folder), "--phrase", "x=Stamp", "--pages", "1,nine")]
        answers = [call(*step) for step in steps]
        return [(a.returncode, a.stdout.replace(str(folder), "<P>"), a.stderr.replace(str(folder), "<P>"))
                for a in answers]

    by_process = session(tmp_path / "process" / "Psalter", run)
    in_process = session(tmp_path / "runner" / "Psalter", run_cli)
    assert [code for code, _, _ in by_process] == [0, 1, 0, 1, 2, 1]
    assert in_process == by_process
