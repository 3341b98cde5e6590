"""Team projects under load: writer processes editing one PostgreSQL project at once, and a dense page's read.

Starts a private PostgreSQL server (``tests/postgres_server.py``: Debian's binaries, a free loopback port), makes
a team project with one page of annotations, and starts writer processes that each make a series of edits
(transcriptions) with the version they last saw: mostly on annotations of their own, one in five on a small
shared set, where they meet each other's changes and must be refused rather than overwrite. Each writer records
every edit the project acknowledged. Then the bench checks that nothing acknowledged was lost: every
annotation's version is one plus the number of acknowledged edits of it, and holds the value of the last one.

- ``lost``: acknowledged edits not in the project (must be 0); ``raw_errors``: errors that were not a plain,
  expected refusal (must be 0); ``stale_refused``: edits refused because another writer had changed the row;
  ``applied_unanswered``: edits the server applied whose answer never came (0 unless connections broke);
- ``edit_p50_ms`` / ``edit_p90_ms``: one edit's round trip, as a writer sees it (target p90 ≤ 30 ms);
- ``page_open_sqlite_ms`` / ``page_open_postgres_ms`` (median of 7) and their ratio (target ≤ 1.5): what the
  app does off the UI thread to open a page (read its annotations, build the shape layer); ``page_read_*``: the
  read alone, the database's part.

    .venv/bin/python bench/team.py [--smoke] [--writers 10] [--edits 1000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.context
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import cpu_flags  # noqa: E402

SHARED_ROWS = 20


def build(folder: Path, address: str, annotations: int) -> tuple[int, list[int]]:
    """A team project in ``address`` with one page of ``annotations`` boxes; the page and the annotation ids."""
    from engine.annotations import Geometry, Provenance, create_annotations
    from engine.categories import add_category
    from engine.project import Project
    from engine.store.schema import Image
    from engine.store.team import parse_address
    from engine.store.types import AnnotationStatus, SourceKind

    with Project.create(folder, name="Team bench", team_database=parse_address(address)) as project:
        with project.unit_of_work() as session:
            image = Image(path="/scans/page.tif", sha256="b" * 64, width=4000, height=6000, format="TIFF",
                          mode="RGB", file_size=1, file_mtime=0.0)
            session.add(image)
            session.flush()
            page = image.id
        category = add_category(project, "Word").id
        rng = random.Random(3)
        shapes = [Geometry(polygons=[{"exterior": _star(rng), "holes": []}]) for _ in range(annotations)]
        made = create_annotations(project, image_id=page, category_id=category, geometries=shapes, creator="bench",
                                  provenances=[Provenance(SourceKind.MODEL, "hi-sam", "1", "", 0.5)] * len(shapes),
                                  status=AnnotationStatus.PROPOSED)
        return page, [record.id for record in made]


def _star(rng: random.Random) -> list[float]:
    cx, cy, points = rng.uniform(100, 3900), rng.uniform(100, 5900), rng.randint(20, 200)
    ring: list[float] = []
    for k in range(points):
        ring += [cx + 30 * (0.6 + 0.4 * rng.random()) * (1 if k % 2 else 0.7), cy + 30 * k / points]
    return ring


def writer(folder: Path, index: int, edits: int, own: list[int], shared: list[int], out: Path, go: Path) -> None:
    """One writer process: ``edits`` transcriptions, each on the version last seen; every acknowledged edit is
    written to ``out`` as it is acknowledged (so a killed writer's record is still complete). It says it is ready
    (``out`` with ``.ready``) once the project is open, and starts when ``go`` appears."""
    from engine.annotations import get_annotations, set_text
    from engine.errors import ConnectionLostError, MarginaliaError, ProjectBusyError, StaleEditError
    from engine.project import Project

    rng = random.Random(index)
    latencies: list[float] = []
    refused = raw = 0
    with Project.open(folder) as project, out.open("w", encoding="utf-8") as log:
        known = {record.id: record.version for record in get_annotations(project, own + shared)}
        out.with_suffix(".ready").touch()
        while not go.exists():
            time.sleep(0.005)
        for number in range(edits):
            target = rng.choice(shared) if rng.random() < 0.2 else rng.choice(own)
            value = f"w{index}-e{number}"
            versions: dict[int, int] = {}
            begun = time.perf_counter()
            while True:
                try:
                    set_text(project, {target: value}, editor=f"writer {index}", expected={target: known[target]},
                             versions=versions)
                    latencies.append((time.perf_counter() - begun) * 1000)
                    known[target] = versions[target]
                    log.write(json.dumps({"id": target, "version": versions[target], "value": value}) + "\n")
                    log.flush()
                except StaleEditError:
                    refused += 1
                    now = _read_again(project, target)
                    if now.text == value and now.updated_by == f"writer {index}":
                        # The commit went through but its answer was lost with the connection: acknowledged now.
                        log.write(json.dumps({"id": target, "version": now.version, "value": value}) + "\n")
                        log.flush()
                        refused -= 1
                    known[target] = now.version  # as a window does: shows what is there, the curator goes on
                except (ConnectionLostError, ProjectBusyError):
                    time.sleep(0.2)  # the server restarts, or a row lock waits: the same edit again
                    continue
                except MarginaliaError as error:
                    raw += 1
                    print(f"writer {index}: unexpected refusal: {error}", file=sys.stderr)
                except Exception as error:  # noqa: BLE001 - a raw database error is what the bench counts
                    raw += 1
                    print(f"writer {index}: raw error: {type(error).__name__}: {error}", file=sys.stderr)
                break
    out.with_suffix(".summary").write_text(json.dumps({"latencies": latencies, "refused": refused, "raw": raw}),
                                           encoding="utf-8")


def _read_again(project: object, target: int) -> object:
    """The row as it is now, waiting out a server that is restarting."""
    from engine.annotations import get_annotations
    from engine.errors import ConnectionLostError

    while True:
        try:
            return get_annotations(project, [target])[0]
        except ConnectionLostError:
            time.sleep(0.2)


def _writers_context() -> multiprocessing.context.BaseContext:
    """Separate processes, as curators' apps are, each with its own connections. Where the system has it, they
    fork from a server process that imported the engine once (a fresh one each imports it: half a second of CPU
    a writer); elsewhere each starts afresh."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["engine.annotations", "engine.project", "psycopg"])
        return context
    return multiprocessing.get_context("spawn")


def _writer_from_spec(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    # A forked writer has its server's environment, not its starter's: libpq's settings (PGPASSFILE…) come along.
    for name in [name for name in os.environ if name.startswith("PG")]:
        del os.environ[name]
    os.environ.update(spec["libpq_environment"])
    writer(Path(spec["folder"]), spec["index"], spec["edits"], spec["own"], spec["shared"], Path(spec["out"]),
           Path(spec["go"]))


def run_writers(folder: Path, ids: list[int], writers: int, edits: int, work: Path,
                during: object = None, shared_rows: int = SHARED_ROWS) -> dict[str, object]:
    """Start ``writers`` processes and wait for them (calling ``during()`` once they are under way, e.g. to
    restart the server); the figures and the check of what was acknowledged."""
    shared, rest = ids[:shared_rows], ids[shared_rows:]
    go = work / "go"
    go.unlink(missing_ok=True)
    processes = []
    for index in range(writers):
        own = rest[index::writers]
        spec = work / f"writer-{index}.json"
        spec.write_text(json.dumps({"folder": str(folder), "index": index, "edits": edits, "own": own,
                                    "shared": shared, "out": str(work / f"writer-{index}.log"),
                                    "go": str(go), "libpq_environment": {name: value for name, value in os.environ.items()
                                                                          if name.startswith("PG")}}),
                        encoding="utf-8")
        process = _writers_context().Process(target=_writer_from_spec, args=(str(spec),), name=f"writer {index}")
        process.start()
        processes.append(process)
    # All start together, once every one has opened the project (however slowly a loaded machine starts them).
    deadline = time.monotonic() + 120
    while not all((work / f"writer-{k}.ready").exists() for k in range(writers)) and time.monotonic() < deadline:
        if any(process.exitcode is not None for process in processes):
            break  # one has failed already: its record says why
        time.sleep(0.02)
    go.touch()
    if callable(during):
        time.sleep(0.3)
        during()
    for process in processes:
        process.join(timeout=900)
    codes = [process.exitcode for process in processes]
    return check(folder, work, writers) | {"exit_codes": codes}


def check(folder: Path, work: Path, writers: int) -> dict[str, object]:
    from engine.annotations import get_annotations
    from engine.project import Project

    acknowledged: dict[int, list[dict]] = defaultdict(list)
    latencies: list[float] = []
    refused = raw = 0
    for index in range(writers):
        log = work / f"writer-{index}.log"
        for line in log.read_text(encoding="utf-8").splitlines() if log.is_file() else []:
            entry = json.loads(line)
            acknowledged[entry["id"]].append(entry)
        summary = log.with_suffix(".summary")
        if summary.is_file():
            facts = json.loads(summary.read_text(encoding="utf-8"))
            latencies += facts["latencies"]
            refused += facts["refused"]
            raw += facts["raw"]
        else:
            raw += 1  # a writer that did not finish
    lost = unanswered = 0
    with Project.open(folder) as project:
        rows = {record.id: record for record in get_annotations(project, list(acknowledged))}
    for annotation_id, entries in acknowledged.items():
        row = rows.get(annotation_id)
        last = max(entries, key=lambda entry: entry["version"])
        versions = [entry["version"] for entry in entries]
        # Lost: an acknowledged version overwritten unseen (two acknowledgements of one version), or the row
        # behind its last acknowledged version, or at it with another value.
        if row is None or len(set(versions)) != len(versions) or row.version < last["version"] \
                or (row.version == last["version"] and row.text != last["value"]):
            lost += 1
        elif row is not None:
            # Applied but never answered: the connection broke after the commit left (the server restarted).
            unanswered += row.version - 1 - len(entries)
    latencies.sort()
    return {"acknowledged": sum(len(entries) for entries in acknowledged.values()), "lost": lost,
            "applied_unanswered": unanswered,
            "stale_refused": refused, "raw_errors": raw,
            "edit_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
            "edit_p90_ms": round(statistics.quantiles(latencies, n=10)[-1], 2) if len(latencies) > 1 else None}


def page_opens(folders: list[Path], page: int, trials: int = 9) -> list[tuple[float, float]]:
    """Per folder, the median ms of reading the page's annotations, and of what the app does to open it off the
    UI thread (``gui.pages_ahead.read_page``: the read, then the shape layer's outlines, overlays and grid). The
    folders take turns, so that whatever else the machine does weighs on each alike."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from engine.annotations import annotations_of
    from engine.categories import list_categories
    from engine.project import Project
    from gui.pages_ahead import read_page

    projects = [Project.open(folder) for folder in folders]
    try:
        colours = {category.id: category.colour for category in list_categories(projects[0])}
        reads: list[list[float]] = [[] for _ in projects]
        opens: list[list[float]] = [[] for _ in projects]
        for project in projects:
            read_page(project, page, colours)  # connections and statement caches warm, as in a window
        for _ in range(trials):
            for index, project in enumerate(projects):
                begun = time.perf_counter()
                annotations_of(project, page)
                reads[index].append((time.perf_counter() - begun) * 1000)
                begun = time.perf_counter()
                read_page(project, page, colours)
                opens[index].append((time.perf_counter() - begun) * 1000)
    finally:
        for project in projects:
            project.close()
    return [(statistics.median(r), statistics.median(o)) for r, o in zip(reads, opens, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="2 writers × 20 edits, 200 annotations")
    parser.add_argument("--writers", type=int)
    parser.add_argument("--edits", type=int)
    parser.add_argument("--writer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:  # one writer, started by hand
        _writer_from_spec(args.writer)
        return
    from tests.postgres_server import start_postgres, stop_postgres, superuser_connection

    writers = args.writers or (2 if args.smoke else 10)
    edits = args.edits or (20 if args.smoke else 1000)
    annotations = 200 if args.smoke else 3000
    with tempfile.TemporaryDirectory() as workspace_name:
        workspace = Path(workspace_name)
        facts = start_postgres(workspace / "server")
        try:
            import psycopg

            with psycopg.connect(**superuser_connection(facts)) as admin:
                admin.execute("CREATE DATABASE team_bench")
            pgpass = workspace / "pgpass"
            pgpass.write_text(f"{facts['host']}:{facts['port']}:*:{facts['superuser']}:{facts['password']}\n")
            pgpass.chmod(0o600)
            os.environ["PGPASSFILE"] = str(pgpass)
            address = f"postgresql://{facts['superuser']}@{facts['host']}:{facts['port']}/team_bench"
            page, ids = build(workspace / "team", address, annotations)
            figures = run_writers(workspace / "team", ids, writers, edits, workspace)
            from engine.team_projects import export_single_file
            from engine.project import Project

            with Project.open(workspace / "team") as team:
                export_single_file(team, workspace / "single")
            with psycopg.connect(**superuser_connection(facts, "team_bench")) as admin:
                admin.execute("VACUUM (ANALYZE) annotation")  # the writers' dead rows, as autovacuum soon would
            sqlite_ms, postgres_ms = page_opens([workspace / "single", workspace / "team"], page,
                                                trials=3 if args.smoke else 9)
        finally:
            stop_postgres(facts)
            if facts.get("remove_after"):
                shutil.rmtree(facts["remove_after"], ignore_errors=True)
    print(json.dumps({"bench": "team", "cpus": os.cpu_count(), "cpu_flags": cpu_flags(), "writers": writers,
                      "edits_per_writer": edits, **{k: v for k, v in figures.items() if k != "exit_codes"},
                      "annotations_on_page": annotations,
                      "page_open_sqlite_ms": round(sqlite_ms[1], 1), "page_open_postgres_ms": round(postgres_ms[1], 1),
                      "page_open_ratio": round(postgres_ms[1] / sqlite_ms[1], 2),
                      "page_read_sqlite_ms": round(sqlite_ms[0], 1), "page_read_postgres_ms": round(postgres_ms[0], 1),
                      "page_read_ratio": round(postgres_ms[0] / sqlite_ms[0], 2)}))


if __name__ == "__main__":
    main()
