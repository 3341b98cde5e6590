"""A warm start for the benches' smoke runs (``tests/test_benches.py``): this process imports the heavy
third-party libraries once, then forks a fresh child for each bench, which runs the script as ``__main__``
with its own arguments, environment, working folder and output files, and exits with its status.

Each bench still runs in a process of its own, as ``python bench/NAME.py --smoke`` would; what it is spared is
seconds of importing torch, transformers, ONNX, OpenCV and Qt. Nothing of Marginalia's is imported here
(its modules read the environment), and nothing here starts a thread before forking (a forked child has only
the thread that forked).

Protocol: one JSON request a line on standard input ``{"script", "args", "env", "cwd", "stdout",
"stderr"}``; one JSON line back ``{"returncode"}``. "ready" is printed once the libraries are loaded.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

PRELOADED = ("numpy", "PIL.Image", "torch", "torchvision", "torch.onnx", "onnx", "onnxruntime", "transformers",
             "open_clip", "segment_anything", "faiss", "cv2", "sqlalchemy", "alembic", "PySide6.QtCore",
             "PySide6.QtGui", "PySide6.QtWidgets")
# transformers imports a model family only when it is asked for: the families the tiny models are built from.
TRANSFORMERS_FAMILIES = ("auto", "vit", "bit", "dinov2_with_registers", "grounding_dino", "sam2", "bert", "xlm_roberta",
                         "swin")
_FAMILY_PARTS = ("configuration_", "modeling_", "image_processing_", "processing_", "tokenization_")


def preload(names: tuple[str, ...] = PRELOADED, families: tuple[str, ...] = TRANSFORMERS_FAMILIES) -> None:
    """Import ``names`` and the families' modules (a missing one is left to whoever needs it)."""
    import pkgutil

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    for family in families:
        try:
            package = importlib.import_module(f"transformers.models.{family}")
        except ImportError:
            continue
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.startswith(_FAMILY_PARTS) and "_tf_" not in module.name and "_flax_" not in module.name:
                try:
                    importlib.import_module(f"{package.__name__}.{module.name}")
                except Exception:  # noqa: BLE001 - an optional backend's module; the bench imports what it needs
                    pass


def main() -> None:
    preload()
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            _run_as_main(request)
        _, status = os.waitpid(child, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


def _run_as_main(request: dict) -> None:
    """In the forked child: never returns."""
    status = 1
    try:
        import runpy
        import tempfile
        import traceback

        for stream, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), stream)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        tempfile.tempdir = None  # read TMPDIR again, as a new process would
        script = request["script"]
        sys.argv = [script, *request["args"]]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        try:
            runpy.run_path(script, run_name="__main__")
            status = 0
        except SystemExit as leaving:
            if isinstance(leaving.code, int) or leaving.code is None:
                status = leaving.code or 0
            else:
                print(leaving.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - reported as a process would report it
            traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


if __name__ == "__main__":
    main()
