"""When Qt cannot open a window, the app says which system libraries are missing and how to install them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MISSING = ("libmarginalia-absent.so.0", "libxcb-marginalia-absent.so.4")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("cc") is None
                                or shutil.which("ldd") is None, reason="needs Linux, a C compiler and ldd")


def _unloadable_plugin(folder: Path) -> Path:
    """A stand-in libqxcb.so that needs two libraries no machine has."""
    build = folder / "build"
    build.mkdir()
    for soname in MISSING:
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(build / soname), f"-Wl,-soname,{soname}", "-x", "c",
                        "-"], input=b"int marginalia_stub(void) { return 0; }\n", check=True)
    platforms = folder / "platforms"
    platforms.mkdir()
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(platforms / "libqxcb.so"), "-x", "c", "-", "-x", "none", "-Wl,--no-as-needed",
                    *(str(build / soname) for soname in MISSING)],
                   input=b"int qxcb_stub(void) { return 1; }\n", check=True)
    shutil.rmtree(build)  # linked against, then gone: the loader cannot find them
    return platforms


def test_a_missing_xcb_library_is_named_with_the_install_command(tmp_path: Path) -> None:
    platforms = _unloadable_plugin(tmp_path)
    env = {**os.environ, "QT_QPA_PLATFORM_PLUGIN_PATH": str(platforms), "DISPLAY": ":99",
           "MARGINALIA_DATA_DIR": str(tmp_path / "data")}
    env.pop("QT_QPA_PLATFORM", None)
    run = subprocess.run([sys.executable, str(REPO / "main.py"), "gui"], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60)
    assert run.returncode == 1
    message = run.stderr
    assert all(soname in message for soname in MISSING)
    assert "sudo apt install libmarginalia-absent0 libxcb-marginalia-absent4" in message
    assert "sudo dnf install" in message
    log = tmp_path / "data" / "marginalia.log"
    assert str(log) in message and MISSING[0] in log.read_text()
    assert "Traceback" not in message and "could not be initialized" not in message  # Qt was never started


def test_no_display_is_said_plainly(tmp_path: Path) -> None:
    env = {**os.environ, "MARGINALIA_DATA_DIR": str(tmp_path / "data")}
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, str(REPO / "main.py"), "gui"], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60)
    assert run.returncode == 1 and "there is no display" in run.stderr and "marginalia.log" in run.stderr


def test_known_libraries_map_to_their_packages(monkeypatch, tmp_path: Path) -> None:
    from gui import platform_check

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(platform_check, "xcb_plugin", lambda: tmp_path / "libqxcb.so")
    monkeypatch.setattr(platform_check, "missing_libraries",
                        lambda plugin: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"])
    message = platform_check.platform_problem(tmp_path / "marginalia.log")
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in message
    assert "sudo dnf install xcb-util-cursor xcb-util-keysyms xcb-util-wm" in message
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert platform_check.platform_problem(tmp_path / "marginalia.log") is None
