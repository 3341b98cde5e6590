"""Half precision where the processor has it: the choice, its fallback, cache keys, and fidelity to float32.

Fidelity is measured with the test kit's models on the shared scans, through the same code paths the
product uses (segmenter, CLIP adapter, DINO adapter); only the precision differs between the two runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.models import precision
from engine.models.adapters import dino as dino_adapter
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.segmentation.embeddings import EmbeddingCache
from engine.segmentation.masks import iou
from engine.segmentation.prompts import Prompt
from engine.segmentation.segmenter import PageRef, Segmenter

SCANS = ("manuscripts/kant_aufklaerung_1784_0017.tif", "manuscripts/bengel_abriss01_1751_0007.jpg",
         "artworks/van_gogh_starry_night_1889.jpg")


@pytest.fixture
def with_bf16(monkeypatch: pytest.MonkeyPatch):
    """A processor with bfloat16 instructions; ``with_bf16(False)`` one without."""
    def set_support(present: bool = True) -> None:
        monkeypatch.setenv("MARGINALIA_CPU_BF16", "1" if present else "0")

    set_support(True)
    return set_support


def _service(model_store, *model_ids: str) -> ModelService:
    for model_id in model_ids:
        model_store.add_tiny(model_id)
    return ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))


def _page(path: Path, number: int) -> PageRef:
    with Image.open(path) as image:
        width, height = image.size
    return PageRef(number, path, 0, f"{number:064x}", width, height)


def test_without_bf16_instructions_everything_computes_in_float32(model_store, with_bf16) -> None:
    with_bf16(False)
    assert precision.compute_dtype("cpu", half_on_cpu=True) is torch.float32
    service = _service(model_store, "sam-vit-b", "clip-vit-b-32")
    assert service.run("sam-vit-b", lambda network: network.encoder_dtype) is torch.float32
    assert service.run("clip-vit-b-32", lambda network: network.compute_dtype) is torch.float32
    assert service.precision_of("sam-vit-b") == "fp32"
    assert "no bfloat16 instructions" in precision.describe()


def test_with_bf16_the_encoders_that_declare_it_use_it_and_the_setting_turns_it_off(model_store, with_bf16,
                                                                                     monkeypatch) -> None:
    service = _service(model_store, "sam-vit-b", "dino-vits16")
    assert service.precision_of("sam-vit-b") == "bf16"
    assert service.run("sam-vit-b", lambda network: network.encoder_dtype) is torch.bfloat16
    assert service.precision_of("dino-vits16") == "fp32"  # measured: not faster on a CPU
    monkeypatch.setattr(precision, "_policy", precision.AUTOMATIC)
    precision.set_policy(precision.FLOAT32)
    assert service.precision_of("sam-vit-b") == "bf16"  # a loaded model keeps its precision until reloaded
    service.manager.unload_all()
    assert service.precision_of("sam-vit-b") == "fp32" and "float32" in precision.describe()
    assert service.run("sam-vit-b", lambda network: network.encoder_dtype) is torch.float32
    service.manager.unload_all()
    monkeypatch.setenv("MARGINALIA_PRECISION", "auto")  # the environment wins over the setting
    assert service.precision_of("sam-vit-b") == "bf16"
    with pytest.raises(ValueError):
        precision.set_policy("half")


def test_embeddings_of_another_precision_are_not_reused(model_store, with_bf16, shared_data: Path,
                                                        tmp_path: Path) -> None:
    page = _page(shared_data / SCANS[0], 1)
    with_bf16(False)
    plain = Segmenter(_service(model_store, "sam-vit-b"), EmbeddingCache(tmp_path / "cache"), "sam-vit-b")
    plain.embedding(page)
    with_bf16(True)
    half = Segmenter(_service(model_store), EmbeddingCache(tmp_path / "cache"), "sam-vit-b")
    assert not half.has_embedding(page) and half.key_for(page) != plain.key_for(page)
    half.embedding(page)
    assert len(half._encode_seconds) == 1 and len(list((tmp_path / "cache").glob("*.safetensors"))) == 2


@pytest.mark.parametrize("model_id", ["sam-vit-b", "sam2.1-hiera-tiny"])
def test_sam_masks_in_bf16_match_float32(model_id: str, model_store, with_bf16, shared_data: Path,
                                         tmp_path: Path) -> None:
    """Seconds: each shared page is encoded twice, in float32 and in bfloat16, to compare the masks."""
    pages = [_page(shared_data / name, number) for number, name in enumerate(SCANS)]
    results: dict[bool, list[np.ndarray]] = {}
    for half in (False, True):
        with_bf16(half)
        service = _service(model_store, model_id)  # a fresh load: the precision is chosen at load time
        segmenter = Segmenter(service, EmbeddingCache(tmp_path / f"cache-{half}"), model_id)
        masks, features = [], []
        for page in pages:
            embedding = segmenter.embedding(page)
            features.append(embedding.features.ravel())
            for fx, fy in ((0.3, 0.3), (0.5, 0.6), (0.7, 0.2)):
                result = segmenter.segment(embedding, Prompt(points=((page.width * fx, page.height * fy, 1),)))
                masks.append(result.page_mask())
        results[half] = masks
        results[f"features-{half}"] = features  # type: ignore[index]
        service.manager.unload_all()
    for plain, half in zip(results["features-False"], results["features-True"], strict=True):  # type: ignore[index]
        assert float(plain @ half / np.linalg.norm(plain) / np.linalg.norm(half)) >= 0.999
    scores = [iou(plain, half) for plain, half in zip(results[False], results[True], strict=True)]
    assert any(0.01 < mask.mean() < 0.99 for mask in results[False])  # not only empty or full masks compared
    assert min(scores) >= 0.98, scores


def test_clip_image_vectors_in_bf16_match_float32(model_store, with_bf16, shared_data: Path) -> None:
    vectors = {}
    for half in (False, True):
        with_bf16(half)
        service = _service(model_store, "clip-vit-b-32")

        def encode(network):
            pixels = torch.stack([network.prepare(Image.open(shared_data / name).convert("RGB")) for name in SCANS])
            return network.encode_images(pixels).numpy(), network.compute_dtype

        vectors[half], dtype = service.run("clip-vit-b-32", encode)
        assert dtype is (torch.bfloat16 if half else torch.float32)
        service.manager.unload_all()
    cosines = (vectors[False] * vectors[True]).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_dino_attention_in_bf16_correlates_with_float32(model_store, with_bf16, shared_data: Path,
                                                        monkeypatch) -> None:
    """DINO stays float32 on CPUs (not faster there); its maps under bf16 are still checked for GPUs' sake."""
    monkeypatch.setattr(dino_adapter, "HALF_ON_CPU", True)
    maps = {}
    for half in (False, True):
        with_bf16(half)
        service = _service(model_store, "dino-vits16")

        def attend(network):
            image = Image.open(shared_data / SCANS[2]).convert("RGB").resize((224, 176))
            pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
            mean, std = torch.tensor(network.mean).view(1, 3, 1, 1), torch.tensor(network.std).view(1, 3, 1, 1)
            return network.attention_maps((pixels - mean) / std).float().numpy()

        maps[half] = service.run("dino-vits16", attend)
        service.manager.unload_all()
    assert np.corrcoef(maps[False].ravel(), maps[True].ravel())[0, 1] >= 0.99


def test_hi_sam_strokes_and_lines_in_bf16_match_float32(model_store, with_bf16, shared_data: Path) -> None:
    """Seconds: a page window encoded and decoded twice, in float32 and in bfloat16."""
    with Image.open(shared_data / SCANS[0]) as scan:
        window = np.asarray(scan.convert("RGB").crop((300, 600, 812, 1112)))
    points = np.array([[60.0, 80.0], [200.0, 250.0], [400.0, 130.0], [333.0, 444.0]], np.float32)
    seen: dict[bool, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for half in (False, True):
        with_bf16(half)
        service = _service(model_store, "hi-sam-vit-b")
        assert service.precision_of("hi-sam-vit-b") == ("bf16" if half else "fp32")

        def read(network):  # noqa: ANN001, ANN202 - a HiSamNetwork
            embedding, size = network.encode(window)
            strokes = network.stroke_logits(embedding, size, window.shape[:2])
            masks, _iou, words = network.levels(embedding, points * size[0] / window.shape[0])
            return strokes, masks[:, 1], words

        seen[half] = service.run("hi-sam-vit-b", read)
        service.manager.unload_all()
    for plain, half in zip(seen[False], seen[True], strict=True):
        assert plain.dtype == half.dtype == np.float32
        a, b = plain.ravel() - plain.mean(), half.ravel() - half.mean()
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) >= 0.999
    # The tiny model's strokes take a few dozen values (masks of them flip whole plateaus); its line logits
    # vary pixel by pixel, so their masks are compared, at the middle of the random logits (all below 0).
    plain, half = seen[False][1], seen[True][1]
    cut = np.median(plain)
    assert iou(plain > cut, half > cut) >= 0.98
