"""Click-to-mask latency with a cached embedding: Marginalia's decoder next to SamPredictor.predict.

Real-size ViT-B (random weights, published shapes) from a model store; each
image is encoded once (not timed), then the same clicks are decoded by both:
ours (ONNX Runtime prompt decoder, best candidate upscaled to the page) and
segment-anything's ``SamPredictor.predict`` (all three candidates upscaled),
each returning full-resolution boolean masks. The same clicks are then decoded
with SAM 2.1 Hiera-tiny (the CPU default) through its own ONNX decoder
(``sam2_p50_ms_*``). ``preview_p50_ms_*`` / ``sam2_preview_p50_ms_*``: the same clicks to the mask the
SAM tool shows at each click (at the model's frame resolution; the full-resolution mask is made when the
curator accepts the shape). Prints one JSON line.

    .venv/bin/python bench/sam_click.py [--clicks 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, add_smoke_flag, bench_store, cpu_flags, emit  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
MODEL = "sam-vit-b"
LIGHT_MODEL = "sam2.1-hiera-tiny"


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def _preview_p50(segmenter: Any, embedding: Any, clicks: np.ndarray) -> float:
    """Milliseconds from a click to the mask the SAM tool shows (frame resolution), the median."""
    from engine.segmentation.prompts import POSITIVE, Prompt

    times = []
    for x, y in clicks:
        started = time.perf_counter()
        segmenter.segment(embedding, Prompt(points=((float(x), float(y), POSITIVE),))).preview_mask()
        times.append((time.perf_counter() - started) * 1000)
    return _percentile(times, 50)


def _pages(folder: Path) -> dict[str, object]:
    from PIL import Image

    from engine.segmentation.segmenter import PageRef

    painting = Image.open(SHARED / "artworks" / "turner_the_shipwreck_1805.jpg").convert("RGB").resize((1024, 768))
    painting.save(folder / "painting-1024x768.png")
    return {"1024x768": PageRef(1, folder / "painting-1024x768.png", 0, "1" * 64, 1024, 768, "PNG"),
            "2577x3633": PageRef(2, SHARED / "manuscripts" / "SBB0000F29300010000_0002.tif", 0, "2" * 64,
                                 2577, 3633, "TIFF")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=60)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.clicks = 2

    import torch
    from segment_anything import SamPredictor

    from engine.models.runtime import DeviceChoice, ModelManager
    from engine.models.service import ModelService
    from engine.segmentation.embeddings import EmbeddingCache
    from engine.segmentation.prompts import POSITIVE, Prompt
    from engine.segmentation.segmenter import Segmenter

    device = "cpu"  # the decoder is what is timed; it runs on the CPU on every machine
    service = ModelService(bench_store([MODEL, LIGHT_MODEL], args.smoke), ModelManager(device=DeviceChoice(device)))
    figures: dict[str, object] = {"bench": "sam_click", "model": MODEL, "device": device, "cpu_flags": cpu_flags(),
                                  "torch_threads": torch.get_num_threads(), "clicks": args.clicks}
    with tempfile.TemporaryDirectory() as scratch:
        segmenter = Segmenter(service, EmbeddingCache(Path(scratch) / "cache"), MODEL)
        light = Segmenter(service, EmbeddingCache(Path(scratch) / "cache"), LIGHT_MODEL)
        predictor = SamPredictor(service.run(MODEL, lambda network: network.sam))
        rng = np.random.default_rng(0)
        pages = list(_pages(Path(scratch)).items())
        for label, page in pages[:1] if args.smoke else pages:  # smoke: every path, on the smaller page
            started = time.perf_counter()
            embedding = segmenter.embedding(page)
            figures[f"encode_s_{label}"] = round(time.perf_counter() - started, 2)
            segmenter.decoder()  # export / session start, once, outside the timings
            clicks = rng.uniform((0, 0), (page.width, page.height), size=(args.clicks, 2))
            ours, baseline = [], []
            predictor.original_size = (page.height, page.width)
            width, height = embedding.frame.size
            predictor.input_size = (height, width)
            predictor.features = torch.from_numpy(embedding.features[None])
            predictor.is_image_set = True
            # Each in its own run of clicks, as a curator clicks: interleaved, each would pay for the other's
            # idle threads still spinning (torch's OpenMP pool, ONNX Runtime's) when it starts.
            for x, y in clicks:
                started = time.perf_counter()
                mask = segmenter.segment(embedding, Prompt(points=((float(x), float(y), POSITIVE),))).page_mask()
                ours.append((time.perf_counter() - started) * 1000)
                assert mask.shape == (page.height, page.width)
            for x, y in clicks:
                started = time.perf_counter()
                masks, _, _ = predictor.predict(point_coords=np.array([[x, y]]), point_labels=np.array([1]),
                                                multimask_output=True)
                baseline.append((time.perf_counter() - started) * 1000)
            figures[f"p50_ms_{label}"] = _percentile(ours, 50)
            figures[f"preview_p50_ms_{label}"] = _preview_p50(segmenter, embedding, clicks)
            figures[f"p90_ms_{label}"] = _percentile(ours, 90)
            figures[f"baseline_p50_ms_{label}"] = _percentile(baseline, 50)
            figures[f"speedup_{label}"] = round(statistics.median(baseline) / statistics.median(ours), 2)
            light.decoder()  # export / session start, once per model install, outside the timings
            started = time.perf_counter()  # a page never seen: decode, encode, first mask on the page
            light_embedding = light.embedding(page)
            x, y = clicks[0]
            light.segment(light_embedding, Prompt(points=((float(x), float(y), POSITIVE),))).page_mask()
            figures[f"sam2_first_click_s_{label}"] = round(time.perf_counter() - started, 2)
            times = []
            for x, y in clicks:
                started = time.perf_counter()
                mask = light.segment(light_embedding, Prompt(points=((float(x), float(y), POSITIVE),))).page_mask()
                times.append((time.perf_counter() - started) * 1000)
                assert mask.shape == (page.height, page.width)
            figures[f"sam2_p50_ms_{label}"] = _percentile(times, 50)
            figures[f"sam2_preview_p50_ms_{label}"] = _preview_p50(light, light_embedding, clicks)
            figures[f"sam2_p90_ms_{label}"] = _percentile(times, 90)
        figures["decoder"] = segmenter.decoder().name
        figures["sam2_decoder"] = light.decoder().name
    emit(figures)


if __name__ == "__main__":
    main()
