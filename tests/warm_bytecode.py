"""Byte-compiles, once, what the app and its tests import, right after `make test` installs them: the two
test workers and the benches' warm start would otherwise compile the same torch, transformers and Qt
modules at the same moment, each for itself. Two processes share the work: the torch family, and the rest
(the app's own modules import no torch). Compiling the whole 6 GB environment at install costs more.

Run as ``python -m tests.warm_bytecode`` from the repository; a module that is missing is left to the tests.
"""

from __future__ import annotations

import subprocess
import sys

from tests.bench_zygote import PRELOADED, preload

TORCH_FAMILY = ("torch", "torchvision", "torch.onnx", "transformers", "open_clip", "segment_anything",
                "tests.modelkit.tiny")
THE_REST = (*(name for name in PRELOADED if name not in TORCH_FAMILY), "engine.project", "cli.app",
            "gui.main_window", "pytest", "xdist", "pytestqt.plugin")


def main() -> None:
    if sys.argv[1:] == ["torch"]:
        preload(TORCH_FAMILY)  # with transformers' model families
        return
    torch_family = subprocess.Popen([sys.executable, "-m", "tests.warm_bytecode", "torch"])
    preload(THE_REST, families=())
    torch_family.wait()


if __name__ == "__main__":
    main()
