"""Write what the installed app reports as its version, commit and build date (``engine/version.py`` reads it
from ``engine/build_info.json`` inside the app; the spec carries the file named by MARGINALIA_BUILD_INFO).

    python packaging/write_build_info.py build/build_info.json
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import engine  # noqa: E402
from engine.version import source_commit  # noqa: E402


def main() -> None:
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    info = {"version": engine.__version__, "commit": source_commit(REPO),
            "built": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")}
    target.write_text(json.dumps(info) + "\n", encoding="utf-8")
    print(f"Marginalia {info['version']} (commit {info['commit']})")


if __name__ == "__main__":
    main()
