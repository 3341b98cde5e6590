"""``marginalia models …``: list, download, import, remove and describe models."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cli.progress import progress_bar
from engine.models.catalogue import CATALOGUE, HubSource, UrlSource, get_spec
from engine.models.store import ModelStore


def add_parser(sub: argparse._SubParsersAction, debug: argparse.ArgumentParser) -> None:
    models = sub.add_parser("models", parents=[debug], help="list, download, import or remove models",
                            description="Models live in one folder shared by all projects "
                                        "(MARGINALIA_MODELS moves it).")
    commands = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = commands.add_parser("list", parents=[debug], help="installed and available models")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=cmd_list)
    download = commands.add_parser("download", parents=[debug], help="download and verify a model")
    download.add_argument("model", metavar="ID")
    download.set_defaults(handler=cmd_download)
    importing = commands.add_parser("import", parents=[debug], help="install a model from local files")
    importing.add_argument("model", metavar="ID")
    importing.add_argument("paths", metavar="PATH", nargs="+", help="the model's files, or a folder")
    importing.add_argument("--link", action="store_true", help="hard-link instead of copying where possible")
    importing.set_defaults(handler=cmd_import)
    remove = commands.add_parser("remove", parents=[debug], help="delete an installed model")
    remove.add_argument("model", metavar="ID")
    remove.set_defaults(handler=cmd_remove)
    check = commands.add_parser("check", parents=[debug],
                                help="load an installed model and run it once (proves it works on this computer)")
    check.add_argument("model", metavar="ID")
    check.set_defaults(handler=cmd_check)

    info = commands.add_parser("info", parents=[debug], help="everything about one model")
    info.add_argument("model", metavar="ID")
    info.set_defaults(handler=cmd_info)


def _describe(model_id: str, store: ModelStore) -> dict[str, object]:
    spec = get_spec(model_id)
    installed = store.get(model_id)
    source = spec.source
    where = (f"hf://{source.repo_id}@{source.revision}" if isinstance(source, HubSource)
             else source.url if isinstance(source, UrlSource)
             else f"import by hand ('marginalia models import {spec.id} FILE'): get {source.where_to_get_it}")
    return {"id": spec.id, "name": spec.name, "task": spec.task, "family": spec.family,
            "installed": installed is not None, "download_size": spec.download_size,
            "installed_size": installed.size if installed else None, "licence": spec.licence,
            "min_memory_gb": spec.min_memory_gb, "source": where, "requires": list(spec.requires),
            "files": [f.filename for f in spec.files],
            "folder": str(installed.folder) if installed else None}


def cmd_list(args: argparse.Namespace) -> int:
    store = ModelStore()
    rows = [_describe(spec.id, store) for spec in CATALOGUE]
    if args.json:
        json.dump({"models_folder": str(store.root), "models": rows}, sys.stdout, indent=1)
        print()
        return 0
    print(f"Models folder: {store.root}")
    print(f"{'id':<22} {'task':<18} {'size':>9}  {'licence':<11} status")
    for row in rows:
        size = f"{int(row['download_size']) / 1e6:,.0f} MB"  # type: ignore[call-overload]
        print(f"{row['id']:<22} {row['task']:<18} {size:>9}  {row['licence']:<11} "
              f"{'installed' if row['installed'] else 'available'}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from engine.models.download import download_model

    with progress_bar("Downloading") as bar:
        installed = download_model(args.model, ModelStore(), progress=bar)
    print(f"Installed {args.model} ({installed.size / 1e6:,.1f} MB; {installed.how_checked()}) in {installed.folder}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    installed = ModelStore().import_files(args.model, [Path(p) for p in args.paths], link=args.link)
    print(f"Installed {args.model} from local files ({installed.size / 1e6:,.1f} MB; {installed.how_checked()}) "
          f"in {installed.folder}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    ModelStore().remove(args.model)
    print(f"Removed {args.model}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    for key, value in _describe(args.model, ModelStore()).items():
        print(f"{key:>15}: {value}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from engine.models.adapters import adapter_for  # noqa: PLC0415 - torch loads only for this command
    from engine.models.runtime import ModelManager  # noqa: PLC0415
    from engine.models.service import ModelService  # noqa: PLC0415

    spec = get_spec(args.model)
    service = ModelService(ModelStore(), ModelManager())
    started = time.perf_counter()
    device = service.device_of(spec.id)
    loaded = time.perf_counter() - started
    probe = getattr(adapter_for(spec), "probe", None)
    print(f"{spec.id} loads on {device} in {loaded:.1f} s")
    if probe is not None:
        started = time.perf_counter()
        result = service.run(spec.id, probe)
        print(f"ran once in {time.perf_counter() - started:.1f} s: {result}")
    service.unload(spec.id)
    return 0
