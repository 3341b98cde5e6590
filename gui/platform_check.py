"""Can Qt open a window here? Asked before Qt is imported, so a missing system library gets plain words.

On a fresh Linux machine Qt's X11 plugin (``libqxcb.so``) often lacks a few
xcb libraries; Qt then aborts with "no Qt platform plugin could be initialized"
and nothing more useful. This module imports nothing from Qt: it finds the
plugin file, asks the system's dynamic loader (``ldd``) which of its libraries
are missing, and says which packages to install on Debian/Ubuntu and Fedora.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The library Qt's X11 plugin looks for → (Debian/Ubuntu package, Fedora package).
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
}

def platform_problem(log_file: Path) -> str | None:
    """A message saying why no window can open here and what to do; ``None`` when nothing is known to be wrong."""
    if not sys.platform.startswith("linux"):
        return None
    requested = os.environ.get("QT_QPA_PLATFORM", "")
    if requested and not requested.startswith("xcb"):
        return None  # offscreen, wayland, vnc…: a choice made on purpose
    if not os.environ.get("DISPLAY"):
        if os.environ.get("WAYLAND_DISPLAY") and not requested:
            return None  # Qt goes to Wayland by itself
        return ("Marginalia cannot open its window: there is no display (DISPLAY is not set). Start it from a "
                "desktop session, or over SSH with X forwarding (ssh -X).\n"
                f"Details are written to the log file: {log_file}")
    plugin = xcb_plugin()
    if plugin is None:
        return None
    missing = missing_libraries(plugin)
    if not missing:
        return None
    debian = sorted({PACKAGES.get(name, (_guess(name), _guess(name)))[0] for name in missing})
    fedora = sorted({PACKAGES.get(name, (_guess(name), _guess(name)))[1] for name in missing})
    return ("Marginalia cannot open its window: Qt's X11 platform plugin needs system libraries that are not "
            f"installed: {', '.join(missing)}.\n"
            "Install them, then start Marginalia again:\n"
            f"  Debian/Ubuntu:  sudo apt install {' '.join(debian)}\n"
            f"  Fedora:         sudo dnf install {' '.join(fedora)}\n"
            f"Details are written to the log file: {log_file}")


def xcb_plugin() -> Path | None:
    """Qt's X11 plugin file, where Qt itself would look for it."""
    for folder in os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep):
        if folder and (Path(folder) / "libqxcb.so").is_file():
            return Path(folder) / "libqxcb.so"
    spec = importlib.util.find_spec("PySide6")  # finds the package without importing Qt
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if candidate.is_file():
            return candidate
    return None


def missing_libraries(library: Path) -> list[str]:
    """Shared libraries ``library`` needs that the dynamic loader cannot find (its whole tree)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        listing = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing = []
    for line in listing.splitlines():
        name, _, where = line.strip().partition("=>")
        if "not found" in where and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def _guess(soname: str) -> str:
    # libfoo-bar.so.3 → libfoo-bar3: Debian's usual naming; good enough as a hint
    base, _, version = soname.partition(".so")
    return base + version.strip(".").split(".")[0] if version else base
