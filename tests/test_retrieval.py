"""Collection search with the tiny CLIP models of the test kit: indexing, consistency, ranking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select, update

from engine.errors import JobCancelled, MarginaliaError
from engine.ingest.scan_import import import_scans
from engine.jobs import CancelToken
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.retrieval.index import index_path, open_index
from engine.retrieval.indexer import index_project
from engine.retrieval.search import embed_texts, search_text, similar_to_page
from engine.retrieval.vectors import Coverage, index_coverage, load_vectors, vector_of
from engine.store.schema import Image, Vector

CLIP = "clip-vit-b-32"


@pytest.fixture
def service(model_store) -> ModelService:
    model_store.add_tiny(CLIP)
    return ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))


@pytest.fixture
def scans(project, shared_data: Path):
    import_scans(project, [shared_data / "manuscripts", shared_data / "artworks"])
    return project


@pytest.fixture
def project(request: pytest.FixtureRequest, tmp_path: Path, _new_project_template: Path):
    """SQLite; PostgreSQL too for the tests marked ``@on_both`` (those of the vectors' storage: the rest is the
    same on either database, and runs models, which cost seconds a test)."""
    from engine.project import Project
    from tests.team_fixtures import new_project_folder

    with Project.open(new_project_folder(request, getattr(request, "param", "sqlite"), tmp_path,
                                         _new_project_template)) as opened:
        yield opened


on_both = pytest.mark.parametrize("project", ["sqlite", "postgresql"], indirect=True)


def _vectors(project) -> int:
    with project.unit_of_work() as session:
        return len(session.scalars(select(Vector.id)).all())


@on_both
def test_indexing_is_incremental_and_follows_changed_pages(service, scans) -> None:
    with scans.unit_of_work() as session:
        pages = len(session.scalars(select(Image.id)).all())
    assert index_coverage(scans, CLIP) == Coverage(pages, 0, 0)
    first = index_project(scans, service, CLIP, batch_size=4)
    assert first.embedded == pages == _vectors(scans) and first.failed == []
    assert index_coverage(scans, CLIP).complete and index_coverage(scans, "clip-xlmr-b-32").pages_indexed == 0
    again = index_project(scans, service, CLIP, batch_size=4)
    assert (again.embedded, again.already) == (0, pages)
    with scans.unit_of_work() as session:  # a page whose file changed (relinked to new content)
        session.execute(update(Image).where(Image.id == 1).values(sha256="f" * 64))
    assert index_coverage(scans, CLIP) == Coverage(pages, pages - 1, 0)  # its vector is out of date
    changed = index_project(scans, service, CLIP, batch_size=4)
    assert changed.embedded == 1 and _vectors(scans) == pages  # replaced, not added
    assert open_index(scans, CLIP).size == pages


def test_a_cancelled_run_resumes_and_the_index_matches_the_database(service, scans) -> None:
    cancel = CancelToken()
    seen = []

    def stop_after_first_batch(progress) -> None:
        seen.append(progress)
        cancel.cancel()

    with pytest.raises(JobCancelled):
        index_project(scans, service, CLIP, batch_size=3, progress=stop_after_first_batch, cancel=cancel)
    assert _vectors(scans) == 3  # the first batch was committed
    stale = open_index(scans, CLIP)  # saved with the database as it was
    assert stale.size == 3
    with scans.unit_of_work() as session:  # as if a crash left rows the saved index does not know
        session.execute(delete(Vector).where(Vector.id == 1))
    rebuilt = open_index(scans, CLIP)
    ids, _ = load_vectors(scans, CLIP)
    assert rebuilt.size == len(ids) == 2
    result = index_project(scans, service, CLIP, batch_size=3)
    assert _vectors(scans) == result.already + result.embedded and result.embedded > 0
    assert open_index(scans, CLIP).size == _vectors(scans)


def test_deleting_a_page_removes_its_vector(service, scans) -> None:
    index_project(scans, service, CLIP, batch_size=8)
    before = open_index(scans, CLIP).size
    with scans.unit_of_work() as session:
        session.execute(delete(Image).where(Image.id == 2))
    assert vector_of(scans, CLIP, image_id=2) is None
    assert open_index(scans, CLIP).size == before - 1


@on_both
def test_search_ranks_pages_with_the_scores_a_direct_product_gives(service, scans) -> None:
    index_project(scans, service, CLIP, batch_size=8)
    hits = search_text(scans, service, CLIP, "a coat of arms", k=5)
    ids, vectors = load_vectors(scans, CLIP)
    query = embed_texts(service, CLIP, ["a coat of arms"])[0]
    expected = sorted(zip(vectors @ query, ids, strict=True), reverse=True)[:5]
    with scans.unit_of_work() as session:
        image_of = dict(session.execute(select(Vector.id, Vector.image_id)).all())
    assert [hit.image_id for hit in hits] == [image_of[int(i)] for _, i in expected]
    assert np.allclose([hit.score for hit in hits], [s for s, _ in expected], atol=1e-5)
    within = {hits[-1].image_id, hits[-2].image_id}
    assert {hit.image_id for hit in search_text(scans, service, CLIP, "a coat of arms", within=within)} == within
    similar = similar_to_page(scans, CLIP, hits[0].image_id, k=3)
    assert hits[0].image_id not in [hit.image_id for hit in similar] and len(similar) == 3
    with pytest.raises(MarginaliaError, match="Type what"):
        search_text(scans, service, CLIP, "   ")


def test_the_multilingual_model_indexes_and_answers_german(model_store, scans) -> None:
    model_store.add_tiny("clip-xlmr-b-32")
    service = ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))
    index_project(scans, service, "clip-xlmr-b-32", batch_size=8)
    german = search_text(scans, service, "clip-xlmr-b-32", "Wappen eines Fürsten", k=3)
    french = search_text(scans, service, "clip-xlmr-b-32", "une carte du monde", k=3)
    assert len(german) == len(french) == 3
    assert [h.score for h in german] != [h.score for h in french]
    assert index_path(scans, "clip-xlmr-b-32").is_file()


def test_search_before_indexing_says_what_to_do(service, scans) -> None:
    with pytest.raises(MarginaliaError, match="Nothing is indexed"):
        search_text(scans, service, CLIP, "a map")


def test_the_cli_indexes_and_answers_in_json(model_store, shared_data: Path, tmp_path: Path) -> None:
    """Seconds: the tiny CLIP indexes three shared paintings and answers six commands."""
    import json
    import os
    import subprocess

    from tests.cli_runner import run_cli

    model_store.add_tiny(CLIP)
    env = {**os.environ, "MARGINALIA_MODELS": str(model_store.root), "MARGINALIA_DEVICE": "cpu"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=env)

    folder = tmp_path / "collection"
    assert run("new", str(folder)).returncode == 0
    assert run("import", str(folder), str(shared_data / "artworks")).returncode == 0
    missing = run("search", str(folder), "ships in a storm")
    assert missing.returncode == 1 and "Nothing is indexed" in missing.stderr and "Traceback" not in missing.stderr
    indexed = run("index", str(folder))
    assert indexed.returncode == 0 and "3 page(s) now, 0 already" in indexed.stdout, indexed.stderr
    found = json.loads(run("search", str(folder), "ships in a storm", "-k", "2", "--json").stdout)
    assert found["query"] == '"ships in a storm"' and [r["rank"] for r in found["results"]] == [1, 2]
    assert found["results"][0]["score"] >= found["results"][1]["score"]
    assert all(r["annotation_id"] is None for r in found["results"])  # no regions yet: pages only
    like = json.loads(run("similar", str(folder), str(found["results"][0]["image_id"]), "--json").stdout)
    assert len(like["results"]) == 2 and found["results"][0]["image_id"] not in [r["image_id"]
                                                                                for r in like["results"]]
    painting = sorted((shared_data / "artworks").iterdir())[0]  # an example image given as a file
    by_file = json.loads(run("similar", str(folder), str(painting), "--json").stdout)
    assert by_file["results"][0]["path"].endswith(painting.name) and by_file["results"][0]["score"] > 0.95
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture", encoding="utf-8")
    refused = run("similar", str(folder), str(notes))
    assert refused.returncode == 1 and "not an image" in refused.stderr and "Traceback" not in refused.stderr


def test_region_search_finds_regions_and_pages(service, scans) -> None:
    from engine.annotations import Geometry, create_annotation
    from engine.categories import add_category
    from engine.retrieval.search import similar_to_region

    index_project(scans, service, CLIP, batch_size=8)
    category = add_category(scans, "Ornament").id
    first = create_annotation(scans, image_id=1, category_id=category, geometry=Geometry(bbox=(100, 100, 300, 200)),
                              creator="Ada")
    second = create_annotation(scans, image_id=3, category_id=category, geometry=Geometry(bbox=(50, 80, 200, 200)),
                               creator="Ada")
    from engine.retrieval.indexer import index_collection, index_regions

    result = index_collection(scans, service, CLIP).regions  # the curators' (accepted) regions come with the pages
    assert result.embedded == 2 and vector_of(scans, CLIP, annotation_id=first.id) is not None
    assert index_coverage(scans, CLIP).regions_indexed == 2
    hits = similar_to_region(scans, service, CLIP, first.id, k=5)
    assert first.id not in [hit.annotation_id for hit in hits]
    assert second.id in [hit.annotation_id for hit in hits]  # the other region is found
    assert any(hit.annotation_id is None for hit in hits)  # and pages too
    assert index_regions(scans, service, CLIP).embedded == 0  # incremental

    by_words = search_text(scans, service, CLIP, "an ornament", k=50, pages_only=False)
    assert {first.id, second.id} <= {hit.annotation_id for hit in by_words}  # words rank regions too
    from engine.annotations import delete_annotations, review
    from engine.store.types import AnnotationStatus

    review(scans, [second.id], AnnotationStatus.REJECTED, reviewer="Ada", session_id=None)
    assert second.id not in {hit.annotation_id for hit in similar_to_region(scans, service, CLIP, first.id, k=50)}
    assert second.id not in {h.annotation_id for h in search_text(scans, service, CLIP, "an ornament", k=50,
                                                                   pages_only=False)}  # rejected: gone at once
    delete_annotations(scans, [first.id])
    assert all(hit.annotation_id is None for hit in search_text(scans, service, CLIP, "an ornament", k=50,
                                                                pages_only=False))  # deleted: gone too


def test_zero_shot_tagging_makes_scored_proposals_once(service, scans) -> None:
    from engine.categories import add_category
    from engine.retrieval.tagging import page_probabilities, tag_pages
    from engine.store.schema import Annotation
    from engine.store.types import AnnotationStatus

    index_project(scans, service, CLIP, batch_size=8)
    maps, arms = add_category(scans, "Map").id, add_category(scans, "Coat of arms").id
    prompts = {maps: "a map of the world", arms: "a coat of arms"}
    records = tag_pages(scans, service, CLIP, prompts, creator="Ada", min_probability=0.0)
    ids, vectors = load_vectors(scans, CLIP)
    expected = page_probabilities(vectors, embed_texts(service, CLIP, list(prompts.values())),
                                  service.run(CLIP, lambda n: n.logit_scale))
    assert len(records) == len(ids)
    with scans.unit_of_work() as session:
        image_of = dict(session.execute(select(Vector.id, Vector.image_id)).all())
    by_image = {image_of[int(i)]: row for i, row in zip(ids, expected, strict=True)}
    for record in records:
        row = by_image[record.image_id]
        assert record.status == AnnotationStatus.PROPOSED and record.is_box
        assert record.category_id == [maps, arms][int(np.argmax(row))]
        assert record.score == pytest.approx(float(row.max()), abs=1e-5)
    assert tag_pages(scans, service, CLIP, prompts, creator="Ada", min_probability=0.0) == []  # no duplicates
    ships, portraits, first_page = add_category(scans, "Ship").id, add_category(scans, "Portrait").id, min(by_image)
    limited = tag_pages(scans, service, CLIP, {ships: "a ship", portraits: "a portrait"}, creator="Ada",
                        min_probability=0.0, within={first_page})
    assert [record.image_id for record in limited] == [first_page]  # only the page asked for
    records += limited
    descriptions = ["an ornament", "a page of printed text", "a blank page"]
    found = set()
    for name in descriptions[:2]:  # each description once as the category, the rest as "others"
        others = tuple(text for text in descriptions if text != name)
        category, prompt_vectors = add_category(scans, name).id, embed_texts(service, CLIP, [name, *others])
        best = np.argmax(page_probabilities(vectors, prompt_vectors, service.run(CLIP, lambda n: n.logit_scale)), 1)
        tagged = tag_pages(scans, service, CLIP, {category: name}, creator="Ada", min_probability=0.0, others=others)
        expected_pages = sorted(image_of[int(i)] for i, choice in zip(ids, best, strict=True) if choice == 0)
        assert sorted(record.image_id for record in tagged) == expected_pages  # "other" pages get nothing
        assert {record.category_id for record in tagged} <= {category}
        found.add(len(tagged) == len(ids))
        records += tagged
    assert found == {True, False}  # both outcomes seen: some pages tagged, some left alone
    with pytest.raises(MarginaliaError, match="at least two"):
        tag_pages(scans, service, CLIP, {category: "an ornament"}, creator="Ada")
    with scans.unit_of_work() as session:
        assert len(session.scalars(select(Annotation.id)).all()) == len(records)


def test_indexing_reads_the_renditions_cached_at_import(service, project, shared_data: Path, tmp_path: Path) -> None:
    import shutil

    from engine.imaging.thumbnails import RENDITION_SHORT_SIDE, rendition_path
    from engine.inventory import list_images
    from PIL import Image as PILImage

    copy = tmp_path / "scream.jpg"
    shutil.copy(shared_data / "artworks" / "munch_the_scream_1893.jpg", copy)
    import_scans(project, [copy])
    row = list_images(project)[0]
    rendition = rendition_path(project.thumbnail_dir, row.sha256, 0)
    with PILImage.open(rendition) as image:
        assert min(image.size) == RENDITION_SHORT_SIDE
        assert abs(image.width / image.height - row.width / row.height) < 0.01
    copy.unlink()  # the scan is gone (a disconnected drive): its rendition still serves search
    result = index_project(project, service, CLIP)
    assert result.embedded == 1 and result.failed == []
    rendition.unlink()
    with project.unit_of_work() as session:
        session.execute(delete(Vector))
    failed = index_project(project, service, CLIP)
    assert failed.embedded == 0 and len(failed.failed) == 1  # neither scan nor rendition: reported


def test_replacing_the_newest_vector_is_seen_by_the_saved_index(service, scans) -> None:
    from engine.retrieval.vectors import NewVector, store_vectors

    index_project(scans, service, CLIP, batch_size=8)
    with scans.unit_of_work() as session:
        newest_id, image_id, content = session.execute(
            select(Vector.id, Vector.image_id, Vector.content).order_by(Vector.id.desc()).limit(1)).one()
    replacement = np.random.default_rng(7).standard_normal(open_index(scans, CLIP).dimension).astype(np.float32)
    replacement /= np.linalg.norm(replacement)
    (new_id,) = store_vectors(scans, CLIP, [NewVector(image_id, None, content, replacement)])
    assert new_id > newest_id  # ids are never reused...
    scores, ids = open_index(scans, CLIP).search(replacement[None], 1)
    assert (int(ids[0, 0]), float(scores[0, 0])) == (new_id, pytest.approx(1.0, abs=1e-5))  # ...so no stale index


def _clustered(rng: np.random.Generator, count: int, dimension: int = 64) -> np.ndarray:
    centres = rng.standard_normal((200, dimension)).astype(np.float32)
    vectors = centres[rng.integers(0, 200, count)] + 0.3 * rng.standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_large_index_is_compressed_but_reranks_exactly_and_reloads(tmp_path: Path) -> None:
    from engine.retrieval.index import VectorIndex

    rng = np.random.default_rng(3)
    vectors = _clustered(rng, 20_000)
    ids = rng.permutation(20_000).astype(np.int64) * 3 + 5  # database ids: neither dense nor sorted
    index = VectorIndex.build(ids, vectors, exact_limit=1_000)
    assert index.compressed
    queries = vectors[:8] + 0.05 * rng.standard_normal((8, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    by_id = dict(zip(ids.tolist(), vectors, strict=True))
    scores, found = index.search(queries, 20)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :20]
    for query, row_scores, row_ids, best in zip(queries, scores, found, truth, strict=True):
        assert np.allclose(row_scores, [by_id[int(i)] @ query for i in row_ids], atol=1e-5)  # exact scores
        assert np.all(np.diff(row_scores) <= 1e-6)  # best first
        assert set(row_ids.tolist()) == set(ids[best].tolist())  # what an exact scan finds
    for allowed in (ids[::7], ids[::2]):  # a small restriction (scored exactly) and a large one (via the codes)
        scores, limited = index.search(queries, 20, allowed=allowed.tolist())
        inside = np.isin(ids, allowed)
        exact = np.sort(-(queries @ vectors[inside].T), axis=1)[:, :20]
        assert set(limited.ravel().tolist()) <= set(allowed.tolist())
        np.testing.assert_allclose(-scores, exact, atol=1e-5)

    path = tmp_path / "clip.faiss"
    index.save(path, (20_000, 1, 2))
    reloaded, fingerprint = VectorIndex.load(path, index.fetch)
    assert fingerprint == (20_000, 1, 2) and np.array_equal(reloaded.search(queries, 20)[1], found)
    path.write_bytes(b"damaged")
    assert VectorIndex.load(path, index.fetch) is None  # rebuilt rather than trusted


def test_the_index_follows_added_and_removed_vectors_without_a_rebuild(tmp_path: Path) -> None:
    from engine.retrieval.index import VectorIndex, _fetch_from

    rng = np.random.default_rng(5)
    vectors = _clustered(rng, 12_000)
    ids = np.arange(1, 12_001, dtype=np.int64)
    for exact_limit in (100_000, 1_000):  # the exact index and the compressed one
        index = VectorIndex.build(ids[:10_000], vectors[:10_000], exact_limit=exact_limit)
        fetch = _fetch_from(ids, vectors)
        index.fetch = fetch
        wanted = np.concatenate([ids[500:10_000], ids[10_000:11_000]])  # 500 gone, 1,000 new
        assert index.follow(wanted, fetch, exact_limit=exact_limit)
        assert np.array_equal(index.ids(), wanted)
        query = vectors[10_500]  # a new vector finds itself; a removed one is never found
        _, found = index.search(query[None], 5)
        assert found[0, 0] == 10_501
        _, found = index.search(vectors[:50], 10)
        assert not np.isin(found, ids[:500]).any()
        everything = np.arange(1, 12_001, dtype=np.int64)  # more than half changed: build anew instead
        assert not VectorIndex.build(ids[:1_500], vectors[:1_500], exact_limit=exact_limit).follow(
            everything, fetch, exact_limit=exact_limit)


def test_an_index_in_an_older_format_is_rebuilt_from_the_database(service, scans) -> None:
    index_project(scans, service, CLIP, batch_size=4)
    path = index_path(scans, CLIP)
    open_index(scans, CLIP)
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    path.with_suffix(".json").write_text(json.dumps({**meta, "format": 2}), encoding="utf-8")
    (path.parent / f"{path.stem}.1-2-3.vectors.npy").write_bytes(b"left by version 2")
    from engine.retrieval import index as index_module

    index_module._opened.clear()  # as after restarting the app
    assert open_index(scans, CLIP).size == _vectors(scans)
    assert not list(path.parent.glob("*.npy"))


def _drift(tower: Path) -> None:
    """Scale every float in an exported tower at random: its vectors no longer are the model's."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(tower))
    rng = np.random.default_rng(0)
    for initializer in graph.graph.initializer:
        values = numpy_helper.to_array(initializer)
        if values.dtype == np.float32:
            scaled = (values * rng.uniform(0.2, 1.8, values.shape)).astype(np.float32)
            initializer.CopyFrom(numpy_helper.from_array(scaled, initializer.name))
    onnx.save(graph, str(tower))


def _reindex(scans, service) -> None:
    service.manager.unload_all()  # as in a new session: the check runs again at the next load
    with scans.unit_of_work() as session:
        session.execute(delete(Vector))
    index_project(scans, service, CLIP, batch_size=4)


@pytest.mark.cpu_only("int8 towers are the CPU's")
def test_indexing_uses_the_first_int8_tower_faithful_here_and_torch_when_none_is(service, scans,
                                                                                  monkeypatch) -> None:
    import torch

    from engine.models.adapters import clip_onnx

    recipes = [recipe.name for recipe in clip_onnx.RECIPES]
    index_project(scans, service, CLIP, batch_size=4)
    network = service.run(CLIP, lambda loaded: loaded)
    folder = clip_onnx.tower_folder(network.derived_folder, network.checksum)
    assert json.loads((folder / "done.json").read_text(encoding="utf-8"))["recipes"] == recipes
    checked = network._int8_images
    if checked:  # the first recipe that is faithful on this processor, after those that are not
        assert list(checked.cosines) == recipes[:recipes.index(checked.recipe) + 1]
        assert [cosine >= clip_onnx.FAITHFUL for cosine in checked.cosines.values()] == [False] * (
            len(checked.cosines) - 1) + [True]
        assert network.runtime == f"onnxruntime-{checked.recipe}"
        pixels = torch.from_numpy(np.random.default_rng(0).normal(size=(4, 3, 64, 64)).astype(np.float32))
        through_int8 = network.encode_images(pixels).numpy()
        network._int8_images = False
        through_torch = network.encode_images(pixels).numpy()
        assert (through_int8 * through_torch).sum(axis=1).min() >= clip_onnx.FAITHFUL

    # The first recipe drifts (as 8-bit weights do on x86 without VNNI): the next one is checked and used.
    _drift(folder / clip_onnx.RECIPES[0].file_name)
    _reindex(scans, service)
    checked = service.run(CLIP, lambda loaded: loaded._int8_images)
    assert checked.cosines[recipes[0]] < clip_onnx.FAITHFUL
    assert checked.recipe == recipes[1] and checked.cosines[recipes[1]] >= clip_onnx.FAITHFUL
    assert service.run(CLIP, lambda loaded: loaded.runtime) == f"onnxruntime-{recipes[1]}"

    # None faithful here: torch computes, and the towers are not exported again.
    exported = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    monkeypatch.setattr(clip_onnx, "FAITHFUL", 1.01)
    _reindex(scans, service)
    assert service.run(CLIP, lambda loaded: loaded.runtime) == "torch-float32"
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == exported
    assert _vectors(scans) > 0
