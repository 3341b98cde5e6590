"""What the frozen app must contain that a freezing tool cannot find by following imports.

Read by ``packaging/marginalia.spec`` (PyInstaller) and by ``tests/test_packaging.py``, which fails when
the app gains a module it loads by name (a model adapter in the catalogue, a tool plug-in, an Alembic
migration) or a data file that this list does not carry. Nothing here imports PyInstaller, torch or Qt.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Modules imported by name at run time (importlib), not by an import statement a freezer can follow.
_LIBRARY_HIDDEN_IMPORTS = (
    "_libvips",  # pyvips' compiled binding (pyvips-binary); without it pyvips falls back to a slower mode
    "PySide6.QtSvg",  # the palette's SVG icons
    "sqlalchemy.dialects.sqlite",
    "alembic.runtime.migration", "alembic.ddl.sqlite", "alembic.op", "alembic.context",
    "onnxruntime.capi._pybind_state",
    "pillow_heif",
    # transformers resolves its model classes lazily: the families the adapters load.
    "transformers.models.grounding_dino", "transformers.models.vit", "transformers.models.dinov2",
    "transformers.models.dinov2_with_registers", "transformers.models.xlm_roberta",
    "transformers.models.auto",
)

# Packages whose data files (configs, vocabularies) and shared libraries (any name: torchvision's
# _C_stable.so is not a lib*.so) are loaded at run time.
DATA_PACKAGES = (
    "torchvision",  # _C_stable.so and image_stable.so: its operators (nms), which its hook misses since 0.29
    "open_clip",  # model_configs/*.json and the BPE vocabulary
    "pypdfium2_raw",  # libpdfium and its version file
    "pycocotools",
    "onnxruntime",
    "transformers",  # its lazy import structure reads module files as data
)

LIBRARY_PATTERNS = ("*.so", "*.so.*", "*.dylib", "*.dll", "*.pyd")

# Distributions whose metadata is read at run time (version checks in transformers and huggingface_hub).
METADATA = (
    "torch", "torchvision", "transformers", "tokenizers", "huggingface_hub", "safetensors", "numpy",
    "tqdm", "regex", "requests", "packaging", "filelock", "pyyaml", "open_clip_torch", "timm",
    "onnxruntime", "faiss-cpu", "segment-anything", "pycocotools", "pillow", "PySide6-Essentials",
    "sqlalchemy", "alembic", "pypdfium2", "pyvips", "orjson", "opencv-python-headless",
)

# What the app never uses; most of it is large (sizes on Linux, torch 2.14 CUDA wheel).
EXCLUDED_MODULES = (
    "triton",  # 900 MB: torch.compile's GPU code generator; the app runs models eagerly
    "torch.utils.tensorboard", "tensorboard", "torch._inductor.codegen.cuda",
    "matplotlib", "IPython", "jupyter", "notebook", "tkinter", "pytest", "_pytest",
    "caffe2", "setuptools", "pip", "tensorflow", "jax", "flax", "keras", "scipy.io",
    "ray", "pyarrow", "pandas",  # batches on a cluster (marginalia[cluster]): not the desktop app's
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtNetwork",
    "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtPdf", "PySide6.QtDBus",
    "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtXml",
    "PySide6.QtConcurrent", "PySide6.QtPrintSupport",
)

# Files dropped from what the freezer collected: build-time material of the libraries.
EXCLUDED_FILE_PARTS = (
    "torch/include/", "torch/share/cmake/", "torch/test/", "torch/testing/_internal/data/",
    "torch/lib/libtorch_cuda_linalg.a", "/__pycache__/", "caffe2/", "torchgen/packaged/",
    "PySide6/Qt/qml/", "PySide6/Qt/translations/qtwebengine", "PySide6/include/", "PySide6/typesystems/",
    "PySide6/glue/",
)
EXCLUDED_SUFFIXES = (".a", ".h", ".hpp", ".cuh", ".pyi", ".cmake")

# Qt plugins the app needs on each platform (the PySide6 hook collects them when its modules are
# imported; listed so that a test can check the frozen folder for them).
QT_PLUGINS = {
    "linux": ("platforms/libqxcb.so", "platforms/libqoffscreen.so", "platforms/libqwayland.so",
              "xcbglintegrations/libqxcb-glx-integration.so", "imageformats/libqsvg.so",
              "iconengines/libqsvgicon.so"),
    "darwin": ("platforms/libqcocoa.dylib", "imageformats/libqsvg.dylib", "iconengines/libqsvgicon.dylib"),
    "win32": ("platforms/qwindows.dll", "imageformats/qsvg.dll", "iconengines/qsvgicon.dll"),
}


def catalogue_adapters() -> list[str]:
    """Every adapter module the model catalogue names (the runtime imports them by name)."""
    from engine.models.catalogue import CATALOGUE

    return sorted({spec.adapter for spec in CATALOGUE})


def tool_modules() -> list[str]:
    """Every model-tool plug-in module of the GUI (the window imports them by name)."""
    from gui.tools.catalogue import TOOL_MODULES

    return list(TOOL_MODULES)


def migration_files() -> list[Path]:
    """Alembic's environment, template and revisions: it loads them as files, by path."""
    folder = REPO / "engine" / "store" / "migrations"
    return sorted([folder / "env.py", folder / "script.py.mako", *(folder / "versions").glob("*.py")])


def hidden_imports() -> list[str]:
    """Modules loaded by name; adapters the catalogue names before their module exists are left to the
    test (which reports them) rather than breaking a build."""
    app = [name for name in catalogue_adapters() + tool_modules() if _exists(name)]
    return sorted({*app, *_LIBRARY_HIDDEN_IMPORTS})


def app_data_files() -> list[tuple[Path, str]]:
    """(source, folder inside the frozen app) for the app's own data: assets and migrations."""
    files = [(path, str(path.parent.relative_to(REPO))) for path in sorted((REPO / "assets").rglob("*"))
             if path.is_file()]
    files += [(path, str(path.parent.relative_to(REPO))) for path in migration_files()]
    build_info = os.environ.get("MARGINALIA_BUILD_INFO")  # written by the build (version, commit, date)
    if build_info:
        files.append((Path(build_info), "engine"))
    return files


def is_excluded_file(destination: str) -> bool:
    """Whether a collected file (its path inside the frozen app) is build-time material."""
    path = destination.replace("\\", "/")
    return path.endswith(EXCLUDED_SUFFIXES) or any(part in path for part in EXCLUDED_FILE_PARTS)


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
