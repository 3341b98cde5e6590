"""``marginalia about``: the version, the commit, where files go, and whether each model library loads."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from engine.paths import log_file, user_data_dir


def add_parser(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    about = sub.add_parser("about", parents=[debug], help="version, folders and model libraries (loads each)")
    about.add_argument("--json", action="store_true", help="machine-readable output")
    about.set_defaults(handler=cmd_about)


def cmd_about(args: argparse.Namespace) -> int:
    from engine.models.store import models_dir
    from engine.version import build_info, library_versions

    info = build_info()
    libraries = library_versions(load=True)
    facts = {"version": info.version, "commit": info.commit, "built": info.built,
             "python": platform.python_version(), "platform": platform.platform(), "frozen": bool(
                 getattr(sys, "frozen", False)), "data": str(user_data_dir()), "models": str(models_dir()),
             "log": str(log_file()), "libraries": libraries}
    if args.json:
        print(json.dumps(facts, indent=1))
    else:
        print(info.line())
        print(f"Python {facts['python']} on {facts['platform']}")
        for label, key in (("Projects' shared data", "data"), ("Models", "models"), ("Log", "log")):
            print(f"{label}: {facts[key]}")
        for name, version in libraries.items():
            print(f"  {name}: {version}")
    broken = [name for name, version in libraries.items() if version.startswith("fails to load")]
    return 1 if broken else 0
