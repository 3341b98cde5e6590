"""The command line run in the test's own process: the ``cli.app.main`` that ``main.py`` calls, with its
standard output and error captured and the environment set for the call.

A fresh ``python main.py`` spends seconds importing torch and transformers before the command starts, and a
test of a model command runs several. Tests of what a command does and says run it here: each call builds
its own model service and store, as a new process would. Tests of the process itself (the entry point, what
it imports, how it waits for another process, a kill) still start one: ``tests/test_cli.py``,
``test_text_tower.py``, ``test_coco_trust.py``, ``gui/test_kill.py``.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``marginalia ARGS`` with ``env`` as the whole environment (``None``: this process's); what a process
    would give back: its exit status, standard output and standard error."""
    from cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as leaving:  # argparse's usage errors, --help, --version
            if isinstance(leaving.code, str):
                err.write(leaving.code + "\n")
            status = leaving.code if isinstance(leaving.code, int) else (0 if leaving.code is None else 1)
    return subprocess.CompletedProcess(["marginalia", *args], status, out.getvalue(), err.getvalue())
