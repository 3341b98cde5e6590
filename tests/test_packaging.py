"""The freeze spec stays in step with the code: everything the app loads by name or reads as a file is
carried into the installed app. The package itself is built by ``make package`` (too slow for here)."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "packaging"))

import freeze_manifest as manifest  # noqa: E402

# Adapters the catalogue names before their module is written (downloads work; running says "not yet").
NOT_YET_WRITTEN: set[str] = set()


def test_the_spec_parses_and_reads_the_manifest() -> None:
    spec = (REPO / "packaging" / "marginalia.spec").read_text(encoding="utf-8")
    tree = ast.parse(spec)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT", "manifest"} <= names
    for used in ("hidden_imports", "app_data_files", "EXCLUDED_MODULES", "is_excluded_file", "DATA_PACKAGES",
                 "METADATA"):
        assert f"manifest.{used}" in spec, used


def test_every_model_adapter_and_tool_plugin_is_frozen() -> None:
    hidden = set(manifest.hidden_imports())
    adapters = set(manifest.catalogue_adapters())
    assert adapters, "the catalogue names adapters"
    missing = {name for name in adapters if importlib.util.find_spec(name) is None}
    assert missing == NOT_YET_WRITTEN, f"adapter modules the catalogue names but nobody wrote: {missing}"
    assert adapters - NOT_YET_WRITTEN <= hidden
    assert set(manifest.tool_modules()) <= hidden
    for name in hidden - NOT_YET_WRITTEN:
        assert importlib.util.find_spec(name) is not None, f"{name} is listed for freezing but does not exist"


def test_nothing_is_loaded_by_name_outside_the_registries_the_manifest_reads() -> None:
    """A new ``importlib.import_module`` (or ``__import__``) call is a module a freezer cannot see: the
    manifest must learn where its names come from, and this list with it."""
    known = {"engine/models/adapters/__init__.py", "gui/tools/catalogue.py", "engine/version.py"}
    found = set()
    for folder in ("engine", "gui", "cli"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if re.search(r"import_module\(|__import__\(", text):
                found.add(path.relative_to(REPO).as_posix())
    assert found == known, f"modules loaded by name in {found - known}: teach packaging/freeze_manifest.py"


def test_migrations_assets_and_icons_are_carried() -> None:
    carried = {(source.relative_to(REPO).as_posix(), target) for source, target in manifest.app_data_files()}
    migrations = REPO / "engine" / "store" / "migrations"
    for path in [migrations / "env.py", migrations / "script.py.mako", *(migrations / "versions").glob("*.py")]:
        assert (path.relative_to(REPO).as_posix(), path.parent.relative_to(REPO).as_posix()) in carried
    for path in (REPO / "assets").rglob("*"):
        if path.is_file():
            assert (path.relative_to(REPO).as_posix(), path.parent.relative_to(REPO).as_posix()) in carried
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        assert (REPO / "packaging" / "icons" / f"marginalia-{size}.png").is_file()
    assert (REPO / "assets" / "marginalia.svg").is_file()
    for name in ("marginalia.ico", "marginalia.icns"):
        assert (REPO / "packaging" / "icons" / name).is_file()


def test_the_qt_plugins_the_app_needs_exist_for_this_platform() -> None:
    import PySide6

    plugins = Path(PySide6.__file__).parent / "Qt" / "plugins"
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    wanted = manifest.QT_PLUGINS[platform]
    assert [name for name in wanted if not (plugins / name).exists()] == []
    assert "PySide6.QtSvg" in manifest.hidden_imports()  # the svg icon engine and image format come with it


@pytest.mark.parametrize(("destination", "excluded"), [
    ("torch/include/ATen/core/Tensor.h", True), ("torch/lib/libtorch_cpu.so", False),
    ("torch/share/cmake/Torch/TorchConfig.cmake", True), ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
    ("open_clip/model_configs/ViT-B-32.json", False), ("numpy/core/include/numpy/arrayobject.h", True),
])
def test_build_material_is_dropped_and_nothing_the_app_runs(destination: str, excluded: bool) -> None:
    assert manifest.is_excluded_file(destination) is excluded


def test_linux_package_files_are_well_formed() -> None:
    desktop = (REPO / "packaging" / "linux" / "org.marginalia.Marginalia.desktop").read_text(encoding="utf-8")
    fields = dict(line.split("=", 1) for line in desktop.splitlines() if "=" in line)
    assert fields["Exec"].startswith("/opt/marginalia/marginalia gui") and fields["Terminal"] == "false"
    assert fields["Icon"] == "org.marginalia.Marginalia"
    mime = (REPO / "packaging" / "linux" / "org.marginalia.Marginalia.xml").read_text(encoding="utf-8")
    assert fields["MimeType"].rstrip(";") in mime and 'pattern="project.sqlite"' in mime
    validator = shutil.which("desktop-file-validate")
    if validator is not None:  # freedesktop's own checker, where installed
        checked = subprocess.run([validator, str(REPO / "packaging" / "linux" / "org.marginalia.Marginalia.desktop")],
                                 capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout
    control = (REPO / "packaging" / "linux" / "control.in").read_text(encoding="utf-8")
    assert "Package: marginalia" in control and "libxcb-cursor0" in control  # Qt 6.5+ needs it for xcb


def test_version_names_the_commit_and_about_loads_the_libraries(tmp_path: Path) -> None:
    """Seconds: ``about`` imports every model library (here in this process; a fresh process does in
    tests/test_privacy.py)."""
    env = {"MARGINALIA_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    version = subprocess.run([sys.executable, str(REPO / "main.py"), "--version"], capture_output=True,
                             text=True, env=env, timeout=60)
    assert re.fullmatch(r"Marginalia \d+\.\d+\.\d+ \(commit [0-9a-f]{7,}(\+changes)?\)\n", version.stdout) or \
        "(commit unknown)" in version.stdout, version.stdout
    from tests.cli_runner import run_cli

    about = run_cli("about", "--json", env=env)  # a fresh process loading them all: tests/test_privacy.py
    assert about.returncode == 0, about.stderr
    facts = json.loads(about.stdout)
    assert facts["log"] == str(tmp_path / "marginalia.log") and not facts["frozen"]
    assert all(not v.startswith("fails") and v != "missing" for v in facts["libraries"].values()), facts
