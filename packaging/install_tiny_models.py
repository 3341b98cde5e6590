"""Install tiny models (random weights in the publishers' formats, from the test kit) into a models folder,
as the installed app's runtime finds them: used by packaging/smoke.sh, which cannot download real ones.

    .venv/bin/python packaging/install_tiny_models.py MODELS_FOLDER MODEL_ID [MODEL_ID ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.models.store import ModelStore  # noqa: E402
from tests.modelkit.tiny import tiny_spec, write_tiny  # noqa: E402


def main() -> None:
    store = ModelStore(Path(sys.argv[1]))
    for model_id in sys.argv[2:]:
        with tempfile.TemporaryDirectory() as folder:
            store.import_files(tiny_spec(model_id), [write_tiny(model_id, Path(folder) / model_id)])
        print(f"installed a tiny {model_id}")


if __name__ == "__main__":
    main()
