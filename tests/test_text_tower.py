"""Queries embedded by the exported text tower (ONNX Runtime, no torch), checked against the model itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.ingest.scan_import import import_scans
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.retrieval import search as search_module
from engine.retrieval.indexer import index_project
from engine.retrieval.search import _tower_place, embed_texts, search_text
from engine.retrieval.text_tower import open_tower, tower_folder

CLIP = "clip-vit-b-32"
TEXTS = ["a coat of arms", "Wappen mit Löwe", "ſchöne Fraktur, 1784", "&amp; 中文 🦁 it's we'll",
         "  spaces\tand\nnew lines ", "eine sehr lange Anfrage " * 30, "", "DECORATED Initial",
         "fish &amp; chips &lt;b&gt; \"quoted\" it's 1784 ~ ^ [x]", "Mojibake: SchÃ¶ne Grüße"]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def service(model_store) -> ModelService:
    model_store.add_tiny(CLIP)
    return ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))


@pytest.fixture
def indexed(project, service, shared_data: Path):
    import_scans(project, [shared_data / "artworks"])
    index_project(project, service, CLIP, batch_size=4)  # exports the tower at its end
    search_module._towers.clear()
    return project


@pytest.mark.cpu_only("the text tower is exported when a CPU indexes")
def test_indexing_exports_a_tower_that_tokenises_and_embeds_as_the_model_does(indexed, service) -> None:
    tower = open_tower(*_tower_place(service, CLIP))
    assert tower is not None
    reference = service.run(CLIP, lambda network: network.tokenizer(TEXTS).numpy())
    assert np.array_equal(tower.tokens(TEXTS), reference)
    cosines = (tower.encode(TEXTS) * embed_texts(service, CLIP, TEXTS)).sum(axis=1)
    assert cosines.min() >= 0.9999


@pytest.mark.cpu_only("the text tower is exported when a CPU indexes")
def test_search_ranks_the_same_through_the_tower_and_through_torch(indexed, service) -> None:
    through_tower = search_text(indexed, service, CLIP, "ships in a storm", k=3)
    folder = tower_folder(*_tower_place(service, CLIP))
    (folder / "text.onnx").write_bytes(b"damaged")  # a broken export: torch answers instead
    search_module._towers.clear()
    through_torch = search_text(indexed, service, CLIP, "ships in a storm", k=3)
    assert [hit.image_id for hit in through_tower] == [hit.image_id for hit in through_torch]
    assert [hit.score for hit in through_tower] == pytest.approx([hit.score for hit in through_torch], abs=1e-4)


@pytest.mark.cpu_only("the text tower is exported when a CPU indexes")
def test_the_cli_answers_a_query_without_importing_torch(indexed, service, model_store) -> None:
    # torch made unimportable in the child process: the query must not need it.
    code = ("import sys; sys.modules['torch'] = None; sys.path.insert(0, sys.argv[1]); "
            "from cli.app import main; sys.exit(main(sys.argv[2:]))")
    env = {**os.environ, "MARGINALIA_MODELS": str(model_store.root), "MARGINALIA_DEVICE": "cpu"}
    done = subprocess.run([sys.executable, "-c", code, str(REPO), "search", str(indexed.folder), "ships in a storm",
                           "-k", "2", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    expected = search_text(indexed, service, CLIP, "ships in a storm", k=2)
    assert [r["image_id"] for r in found["results"]] == [hit.image_id for hit in expected]


def test_the_multilingual_model_keeps_the_torch_path(model_store, project, shared_data: Path) -> None:
    model_store.add_tiny("clip-xlmr-b-32")
    service = ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))
    import_scans(project, [shared_data / "artworks"])
    index_project(project, service, "clip-xlmr-b-32", batch_size=4)
    assert open_tower(*_tower_place(service, "clip-xlmr-b-32")) is None
    assert len(search_text(project, service, "clip-xlmr-b-32", "Schiff im Sturm", k=2)) == 2
