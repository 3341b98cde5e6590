"""SAM 2.1 (Hiera) through transformers, with the tiny SAM 2 of the test kit: load, frame, decoders, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from engine.errors import MarginaliaError
from engine.models.catalogue import get_spec, suggested_segmentation_model
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.segmentation.automatic import segment_everything
from engine.segmentation.embeddings import EmbeddingCache
from engine.segmentation.frame import InputFrame
from engine.segmentation.prompts import Prompt
from engine.segmentation.graphs import unblock_masks
from engine.segmentation.sam2_decoder import Sam2Graphs
from engine.segmentation.segmenter import PageRef, Segmenter

SAM2 = "sam2.1-hiera-tiny"


@pytest.fixture
def service(model_store) -> ModelService:
    model_store.add_tiny(SAM2)
    return ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))


def _page(tmp_path: Path, size: tuple[int, int] = (1200, 2000)) -> PageRef:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((size[0] // 5, size[1] // 5, size[0] // 2, size[1] // 3), fill="black")
    path = tmp_path / "page.png"
    image.save(path)
    return PageRef(1, path, 0, "5a" * 32, size[0], size[1], "PNG")


@pytest.mark.cpu_only("compares the exported decoder in float32 on the CPU")
def test_the_decoder_graph_gives_what_transformers_sam2_gives(service: ModelService) -> None:
    def compare(network):
        model = network.model
        pixels = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 1024, 1024)).astype(np.float32))
        embedding, high_0, high_1 = network.encode(pixels)
        graphs = Sam2Graphs.of(model)
        points = torch.tensor([[[300.0, 420.0], [0.0, 0.0]]])
        labels = torch.tensor([[1.0, -1.0]])
        with torch.inference_mode():
            ours, scores = graphs.full(embedding, high_0, high_1, points, labels, torch.zeros(1, 1, 256, 256),
                                       torch.zeros(1))
            # The per-page preparation and the per-click rest give what the whole graph gives.
            split, split_scores = graphs.prompt(*graphs.prepare(embedding, high_0, high_1), points, labels)
            torch.testing.assert_close(torch.from_numpy(unblock_masks(split.numpy()))[None], ours, atol=1e-4,
                                       rtol=1e-4)
            torch.testing.assert_close(split_scores, scores, atol=1e-5, rtol=1e-5)
            theirs = [model(image_embeddings=[high_0, high_1, embedding], input_points=points[:, None, :1],
                            input_labels=torch.ones(1, 1, 1, dtype=torch.int), multimask_output=multimask)
                      for multimask in (True, False)]
        return ours, scores, theirs

    ours, scores, (three, single) = service.run(SAM2, compare)
    assert ours.shape == (1, 4, 256, 256) and scores.shape == (1, 4)
    torch.testing.assert_close(ours[0, 1:], three.pred_masks[0, 0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(scores[0, 1:], three.iou_scores[0, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours[0, :1], single.pred_masks[0, 0], atol=1e-4, rtol=1e-4)


def test_a_click_is_decoded_the_same_by_onnx_and_torch_on_a_stretched_frame(service: ModelService,
                                                                             tmp_path: Path) -> None:
    """Seconds: SAM 2's prompt decoder is exported to ONNX and compared with transformers' own."""
    page = _page(tmp_path)
    results = {}
    for onnx in (True, False):
        segmenter = Segmenter(service, EmbeddingCache(tmp_path / f"cache-{onnx}"), SAM2, prefer_onnx=onnx)
        embedding = segmenter.embedding(page)
        assert embedding.frame == InputFrame(1200, 2000, 1024, stretch=True)
        assert embedding.features.shape == (32, 64, 64)
        assert {name: extra.shape for name, extra in embedding.extras.items()} == {
            "high_res_0": (4, 256, 256), "high_res_1": (8, 128, 128)}
        prompt = Prompt(points=((400.0, 550.0, 1),))
        first = segmenter.segment(embedding, prompt)
        refined = segmenter.segment(embedding, Prompt(points=((400.0, 550.0, 1), (900.0, 1800.0, 0)),
                                                      previous=first.low_res))
        assert segmenter.decoder().name == ("onnx" if onnx else "torch") and not segmenter.notice
        results[onnx] = (first, refined)
    for onnx_result, torch_result in zip(results[True], results[False], strict=True):
        np.testing.assert_allclose(onnx_result.decoded.logits(onnx_result.index),
                                   torch_result.decoded.logits(torch_result.index), atol=1e-3)
        assert onnx_result.page_mask().shape == (2000, 1200)
        assert np.array_equal(onnx_result.page_mask(), torch_result.page_mask())


def test_a_stretched_frame_maps_each_axis_on_its_own() -> None:
    frame = InputFrame(1000, 4000, 1024, stretch=True)
    assert frame.size == (1024, 1024)
    np.testing.assert_allclose(frame.to_frame(np.array([[500.0, 1000.0]])), [[512.0, 256.0]])
    logits = np.full((256, 256), -5.0, dtype=np.float32)
    logits[:, :128] = 5.0  # the left half of the square is the left half of the page
    mask = frame.mask_on_page(logits)
    assert mask.shape == (4000, 1000) and mask[:, :495].all() and not mask[:, 505:].any()
    window = np.ones((400, 100), dtype=np.float32)  # a stored mask at page (200, 800)
    low = frame.low_res_from_window(window, 200, 800)
    assert (low > 0).sum() == pytest.approx(100 * 256 / 1000 * 400 * 256 / 4000, rel=0.25)
    ys, xs = np.nonzero(low > 0)
    assert xs.min() == round(200 * 256 / 1000) and ys.min() == round(800 * 256 / 4000)


def test_embeddings_come_back_from_disk_with_their_high_resolution_maps(service: ModelService,
                                                                         tmp_path: Path) -> None:
    page = _page(tmp_path)
    first = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM2).embedding(page)
    reopened = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM2)
    again = reopened.embedding(page)
    assert reopened._encode_seconds == [] and again.frame == first.frame
    for name in ("high_res_0", "high_res_1"):
        assert np.array_equal(again.extras[name], first.extras[name])  # stored and fresh: same precision


def test_segment_everything_says_which_models_offer_it(service: ModelService, project, tmp_path: Path) -> None:
    segmenter = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM2)
    with pytest.raises(MarginaliaError, match="ViT"):
        segment_everything(project, segmenter, _page(tmp_path), category_id=1, creator="test")


def test_a_cpu_is_offered_sam2_tiny_unless_only_another_sam_is_installed() -> None:
    assert get_spec(suggested_segmentation_model(False)).family == "sam2"
    assert suggested_segmentation_model(True) == "sam-vit-b"
    assert suggested_segmentation_model(False, {"sam-vit-l"}) == "sam-vit-l"
    assert suggested_segmentation_model(False, {"sam-vit-l", SAM2}) == SAM2


@pytest.mark.cpu_only("the exported encoder is the CPU's")
def test_a_cpu_in_float32_encodes_through_the_exported_encoder_with_torchs_outputs(service: ModelService,
                                                                                   model_store) -> None:
    """Seconds: SAM 2's image encoder is exported to ONNX, then run beside torch on a 1024-px frame."""
    def both(network):
        pixels = network.pixels([np.random.default_rng(1).integers(0, 255, (1024, 1024, 3), dtype=np.uint8)])
        through_onnx = network.encode(pixels)
        assert network.onnx_encoder() is not None
        with torch.inference_mode():
            high_0, high_1, embedding = network.model.get_image_embeddings(pixels)
        return through_onnx, (embedding, high_0, high_1)

    ours, theirs = service.run(SAM2, both)
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, reference, atol=1e-4, rtol=1e-3)
    folder = model_store.get(SAM2).folder / "derived"
    assert [p.name for p in folder.glob("sam2-encoder-*/encoder.onnx")] == ["encoder.onnx"]  # kept for next time


@pytest.mark.cpu_only("the exported encoder is the CPU's")
@pytest.mark.parametrize("half", [False, True])
def test_a_cancel_stops_a_page_being_encoded(service: ModelService, monkeypatch, half: bool) -> None:
    """ONNX Runtime (float32) is stopped through its terminate flag; torch (bf16) between encoder blocks."""
    import threading

    from engine.errors import JobCancelled
    from engine.jobs import CancelToken

    monkeypatch.setenv("MARGINALIA_CPU_BF16", "1" if half else "0")
    service.manager.unload_all()
    token = CancelToken()

    def encode(network):
        assert (network.onnx_encoder() is None) == half
        pixels = network.pixels([np.zeros((1024, 1024, 3), dtype=np.uint8)])
        timer = threading.Timer(0.05, token.cancel)
        timer.start()
        try:
            for _ in range(200):  # far longer than the cancel takes
                network.encode(pixels, token)
        finally:
            timer.cancel()

    with pytest.raises(JobCancelled):
        service.run(SAM2, encode)
