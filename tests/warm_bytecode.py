"""Byte-compiles, once, what the app and its tests import, right after `make test` installs them: the two
test workers and the benches' warm start would otherwise compile the same torch, transformers and Qt
modules at the same moment, each for itself. (Compiling the whole 6 GB environment at install costs more.)

Run as ``python -m tests.warm_bytecode`` from the repository; a module that is missing is left to the tests.
"""

from __future__ import annotations

import importlib

from tests.bench_zygote import PRELOADED

APP_AND_TESTS = ("engine.project", "cli.app", "gui.main_window", "pytest", "xdist", "pytestqt.plugin",
                 "tests.modelkit.tiny")
# transformers imports its model families only when asked: the ones the tiny models use.
MODEL_FAMILIES = ("grounding_dino.modeling_grounding_dino", "sam2.modeling_sam2", "vit.modeling_vit",
                  "dinov2_with_registers.modeling_dinov2_with_registers", "xlm_roberta.modeling_xlm_roberta",
                  "bert.modeling_bert")


def main() -> None:
    for name in (*PRELOADED, *APP_AND_TESTS, *(f"transformers.models.{family}" for family in MODEL_FAMILIES)):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


if __name__ == "__main__":
    main()
