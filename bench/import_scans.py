"""Import throughput on the shared sample scans, repeated as distinct files.

Prints one JSON line: files/s and megabytes/s for a full import (sniff, probe,
hash, thumbnail, record), plus the time to probe a file's header alone.

    .venv/bin/python bench/import_scans.py [--copies N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.imaging.probe import probe  # noqa: E402
from engine.imaging.sniff import read_head, sniff_format  # noqa: E402
from engine.ingest.report import Outcome  # noqa: E402
from engine.ingest.scan_import import import_scans  # noqa: E402
from engine.project import Project  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _distinct_copies(source: Path, target: Path, copies: int) -> list[Path]:
    images = [p for p in sorted(source.rglob("*")) if p.is_file() and sniff_format(read_head(p))]
    made = []
    for copy in range(copies):
        for image in images:
            destination = target / f"copy{copy:03d}" / image.name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, destination)
            with destination.open("ab") as stream:  # a distinct hash, same pixels
                stream.write(copy.to_bytes(4, "little"))
            made.append(destination)
    return made


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="one copy, to check that the bench still works")
    args = parser.parse_args()
    if args.smoke:
        args.copies = 1
    with tempfile.TemporaryDirectory() as workspace:
        root = Path(workspace)
        files = _distinct_copies(SHARED, root / "scans", args.copies)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        started = time.perf_counter()
        for path in files:
            probe(path, sniff_format(read_head(path)) or "")
        probe_ms = (time.perf_counter() - started) / len(files) * 1000
        with Project.create(root / "project") as project:
            started = time.perf_counter()
            report = import_scans(project, [root / "scans"])
            elapsed = time.perf_counter() - started
        imported = len(report.of(Outcome.IMPORTED))
    print(json.dumps({
        "files": len(files),
        "imported": imported,
        "megabytes": round(megabytes, 1),
        "seconds": round(elapsed, 2),
        "files_per_s": round(len(files) / elapsed, 1),
        "mb_per_s": round(megabytes / elapsed, 1),
        "probe_ms_per_file": round(probe_ms, 2),
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
