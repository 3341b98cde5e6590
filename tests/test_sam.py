"""SAM segmentation with the tiny SAM of the test kit: cache, decoders, coordinates, masks, proposals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from sqlalchemy import select

from engine.coco.geometry import rasterise
from engine.errors import JobCancelled
from engine.ingest.scan_import import import_scans
from engine.inventory import list_images
from engine.jobs import CancelToken
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.segmentation.automatic import EverythingSettings, segment_everything
from engine.segmentation.decoder import onnx_folder
from engine.segmentation.embeddings import EmbeddingCache
from engine.segmentation.frame import InputFrame
from engine.segmentation.masks import iou, polygon_iou, shape_of_mask
from engine.segmentation.precompute import precompute_embeddings
from engine.segmentation.prompts import NEGATIVE, POSITIVE, Prompt
from engine.segmentation.annotate import save_segmentation
from engine.segmentation.segmenter import PageRef, Segmenter
from engine.store.schema import Annotation, ModelRun
from engine.store.types import AnnotationStatus

SAM = "sam-vit-b"


@pytest.fixture
def service(model_store) -> ModelService:
    model_store.add_tiny(SAM)
    return ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))


def _page(tmp_path: Path, size: tuple[int, int] = (2577, 3633), name: str = "page.png") -> PageRef:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).ellipse((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill="black")
    path = tmp_path / name
    image.save(path)
    return PageRef(1, path, 0, name.encode().hex().ljust(64, "0")[:64], size[0], size[1], "PNG")


def test_embeddings_are_cached_in_memory_and_on_disk(service: ModelService, tmp_path: Path) -> None:
    page = _page(tmp_path, (900, 600))
    cache = EmbeddingCache(tmp_path / "cache")
    segmenter = Segmenter(service, cache, SAM)
    first = segmenter.embedding(page)
    assert first.features.shape == (32, 64, 64) and len(segmenter._encode_seconds) == 1
    assert segmenter.embedding(page) is first  # memory hit: no second encode
    assert len(segmenter._encode_seconds) == 1
    reopened = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM)  # as after restarting the app
    again = reopened.embedding(page)
    assert np.array_equal(again.features, first.features) and reopened._encode_seconds == []
    assert again.frame == InputFrame(900, 600)
    # The key names the model and its exact checkpoint: another one never reuses the embedding.
    other_model = Segmenter(service, cache, "sam-vit-l")
    assert other_model.model_id != SAM and not (tmp_path / "cache" / other_model_key_name(page)).exists()
    assert segmenter.key_for(page).checkpoint_sha256 == service.store.get(SAM).files[
        "sam_vit_b_01ec64.pth"]["sha256"]


def other_model_key_name(page: PageRef) -> str:
    return f"{page.sha256}-p0-sam-vit-l-"


def test_the_disk_cache_is_bounded_least_recently_used_first(service: ModelService, tmp_path: Path) -> None:
    pages = [_page(tmp_path, (400, 300), f"p{i}.png") for i in range(3)]
    cache = EmbeddingCache(tmp_path / "cache", memory_items=1)
    segmenter = Segmenter(service, cache, SAM)
    segmenter.embedding(pages[0])
    one_file = cache.disk_usage()
    cache.disk_bytes = 2 * one_file
    segmenter.embedding(pages[1])
    import os
    import time

    os.utime(cache.folder / segmenter.key_for(pages[0]).filename, (time.time() + 5, time.time() + 5))  # p0 read last
    segmenter.embedding(pages[2])
    assert segmenter.has_embedding(pages[0]) and segmenter.has_embedding(pages[2])
    assert not segmenter.has_embedding(pages[1])  # the least recently used went
    assert cache.disk_usage() <= 2 * one_file
    removed = cache.prune(lambda name: name.startswith(pages[2].sha256))  # e.g. pages deleted from the project
    assert removed == 1 and not segmenter.has_embedding(pages[0])


def test_a_damaged_cache_file_is_encoded_again(service: ModelService, tmp_path: Path) -> None:
    page = _page(tmp_path, (500, 400))
    segmenter = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM)
    key = segmenter.key_for(page)
    segmenter.embedding(page)
    (tmp_path / "cache" / key.filename).write_bytes(b"\x00" * 100)
    fresh = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM)
    assert fresh.embedding(page).features.shape == (32, 64, 64) and len(fresh._encode_seconds) == 1


def test_onnx_and_torch_decoders_give_the_same_mask(service: ModelService, tmp_path: Path) -> None:
    page = _page(tmp_path, (1024, 768))
    onnx = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM)
    torch_path = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM, prefer_onnx=False)
    embedding = onnx.embedding(page)
    prompts = [Prompt(points=((300, 200, POSITIVE),)),
               Prompt(points=((300, 200, POSITIVE), (700, 500, NEGATIVE))),
               Prompt(box=(100, 100, 600, 500)),
               Prompt(points=((350, 250, POSITIVE),), box=(100, 100, 600, 500))]
    for prompt in prompts:
        fast, slow = onnx.segment(embedding, prompt), torch_path.segment(embedding, prompt)
        assert fast.index == slow.index
        assert np.allclose(fast.decoded.scores, slow.decoded.scores, atol=1e-4)
        assert iou(fast.page_mask(), slow.page_mask()) >= 0.999
    assert onnx.decoder().name == "onnx" and torch_path.decoder().name == "torch"
    export = onnx_folder(service.store.get(SAM).folder, onnx.checkpoint())
    assert {p.name for p in export.iterdir()} == {"full.onnx", "prepare.onnx", "prompt.onnx"}  # kept for next time
    refined = onnx.segment(embedding, Prompt(points=((300, 200, POSITIVE),), previous=fast.low_res))
    assert refined.low_res.shape == (256, 256)


def test_a_new_decoder_export_removes_its_older_versions_only(service: ModelService, tmp_path: Path) -> None:
    segmenter = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM)
    current = onnx_folder(service.store.get(SAM).folder, segmenter.checkpoint())
    older, other_weights = current.with_name(current.name.rsplit("-v", 1)[0] + "-v1"), current.with_name(
        "sam-decoder-0123456789abcdef-v1")
    for folder in (older, other_weights):
        folder.mkdir(parents=True)
        (folder / "prompt.onnx").write_bytes(b"an older export")
    assert segmenter.decoder().name == "onnx"
    assert (current / "prompt.onnx").is_file() and not older.exists()
    assert (other_weights / "prompt.onnx").read_bytes() == b"an older export"  # another checkpoint's: kept


@pytest.mark.cpu_only("feeds SAM's predictor CPU tensors")
def test_masks_map_back_to_full_resolution_like_segment_anything(service: ModelService, shared_data: Path,
                                                                 tmp_path: Path) -> None:
    """On the non-square 2577×3633 scan: same masks as SamPredictor, and a known region lands where it is."""
    from segment_anything import SamPredictor

    scan = shared_data / "manuscripts" / "SBB0000F29300010000_0002.tif"
    page = PageRef(1, scan, 0, "5" * 64, 2577, 3633, "TIFF")
    segmenter = Segmenter(service, EmbeddingCache(tmp_path / "cache"), SAM, prefer_onnx=False)
    embedding = segmenter.embedding(page)
    assert embedding.frame.size == (726, 1024)
    box = (600.0, 900.0, 1800.0, 2400.0)
    ours = segmenter.segment(embedding, Prompt(points=((1200.0, 1500.0, POSITIVE),), box=box))

    network = service.run(SAM, lambda n: n)
    predictor = SamPredictor(network.sam)
    predictor.original_size = (3633, 2577)
    predictor.input_size = (1024, 726)
    predictor.features = torch.from_numpy(embedding.features[None])
    predictor.is_image_set = True
    masks, scores, _ = predictor.predict(point_coords=np.array([[1200.0, 1500.0]]), point_labels=np.array([1]),
                                         box=np.array(box), multimask_output=False)
    assert masks.shape == (1, 3633, 2577)
    assert iou(ours.page_mask(), masks[0]) >= 0.995

    # A region known in page pixels, drawn into the frame's logits, comes back at the same place.
    frame = embedding.frame
    low_res = np.full((256, 256), -10.0, dtype=np.float32)
    (x0, y0), (x1, y1) = frame.to_frame(np.array([box[:2], box[2:]])) / 4.0  # 1024-frame → 256 logits
    low_res[int(np.ceil(y0)):int(y1), int(np.ceil(x0)):int(x1)] = 10.0
    mask = frame.mask_on_page(low_res)
    ys, xs = np.nonzero(mask)
    assert mask.shape == (3633, 2577)
    assert box[0] - 8 <= xs.min() and xs.max() <= box[2] + 8 and box[1] - 8 <= ys.min() and ys.max() <= box[3] + 8
    assert mask[1500, 1200] and not mask[300, 300]


def _ring_and_blobs(height: int = 400, width: int = 500) -> np.ndarray:
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 40, 240, 240), fill=1)
    draw.ellipse((100, 100, 180, 180), fill=0)  # a hole
    draw.rectangle((300, 60, 460, 140), fill=1)  # a second part
    draw.polygon([(320, 200), (480, 380), (300, 360)], fill=1)
    return np.asarray(image, dtype=bool)


def test_mask_polygons_and_rle_agree(shared_data: Path) -> None:
    strokes = np.asarray(Image.open(shared_data / "strokes" / "dibco11_PR1.gt.tif").convert("L")) < 128
    word = strokes[100:220, 200:700]  # printed letters, with counters (holes)
    for mask in (_ring_and_blobs(), word):
        shape = shape_of_mask(mask)
        assert np.array_equal(rasterise(None, shape.rle, *mask.shape) > 0, mask)  # RLE is exact
        assert shape.area == mask.sum()
        ys, xs = np.nonzero(mask)
        assert shape.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert polygon_iou(shape) >= 0.98
    ring = shape_of_mask(_ring_and_blobs())
    assert len(ring.polygons) == 3 and sum(len(part["holes"]) for part in ring.polygons) == 1


def _imported_page(project, shared_data: Path) -> PageRef:
    import_scans(project, [shared_data / "manuscripts" / "bengel_abriss01_1751_0007.jpg"])
    return PageRef.of(list_images(project)[0])


def _imported_strip(project, shared_data: Path, folder: Path) -> PageRef:
    """A strip of the shared page, 1600×100: SAM's frame is 1024×64 for it, and segment everything
    post-processes every candidate mask (noise, from the random tiny model) at frame size."""
    strip = folder / "bengel_strip.png"
    Image.open(shared_data / "manuscripts" / "bengel_abriss01_1751_0007.jpg").crop((0, 1400, 1600, 1500)).save(strip)
    import_scans(project, [strip])
    return PageRef.of(list_images(project)[0])


def test_an_accepted_mask_becomes_an_annotation_with_provenance(service, project, shared_data: Path) -> None:
    from engine.categories import add_category

    page = _imported_page(project, shared_data)
    category = add_category(project, "Decorated initial").id
    segmenter = Segmenter(service, EmbeddingCache(project.folder / "cache" / "sam-embeddings"), SAM)
    result = segmenter.segment(segmenter.embedding(page), Prompt(box=(100.0, 200.0, 900.0, 1200.0)))
    record = save_segmentation(project, result, image_id=page.image_id, category_id=category, creator="Ada",
                               session_id=None)
    assert record.rle is not None and record.rle["size"] == [2867, 1600]
    assert record.source_model == SAM and record.status == AnnotationStatus.ACCEPTED
    assert '"box": [100.0, 200.0, 900.0, 1200.0]' in record.prompt
    mask = result.page_mask()
    assert record.area == mask.sum() or mask.sum() == 0


def test_segment_everything_makes_proposals(service, project, shared_data: Path, tmp_path: Path) -> None:
    """Two batches of prompt points (81 of them) on a strip of a page, where SAM's frame is small."""
    from engine.categories import add_category

    page = _imported_strip(project, shared_data, tmp_path)
    category = add_category(project, "Region").id
    segmenter = Segmenter(service, EmbeddingCache(project.folder / "cache" / "sam-embeddings"), SAM)
    loose = EverythingSettings(points_per_side=9, min_predicted_iou=0.0, min_stability=0.0, min_area_fraction=0.0)
    steps = []
    records = segment_everything(project, segmenter, page, category_id=category, creator="Ada", settings=loose,
                                 progress=steps.append)
    tried = [step for step in steps if "points tried" in step.message]
    assert [step.done for step in tried] == [64, 81] and all(step.total == 81 for step in tried)
    with project.unit_of_work() as session:
        run = session.scalars(select(ModelRun).where(ModelRun.parameters["task"].as_string() ==
                                                     "segment-everything")).one()
        stored = session.scalars(select(Annotation)).all()
        assert run.timings["regions"] == len(records) == len(stored) > 0
    assert all(r.status == AnnotationStatus.PROPOSED and r.model_run_id == run.id and r.rle is not None
               and 0 <= r.score <= 1 for r in records)


def test_precompute_resumes_and_reports_unreadable_pages(service, project, shared_data: Path,
                                                          tmp_path: Path) -> None:
    folder = shared_data / "manuscripts"
    import_scans(project, [folder / "bengel_abriss01_1751_0007.jpg", folder / "dannhauer_catechismus04_1653_0585.jpg",
                           folder / "kant_aufklaerung_1784_0020.jp2"])
    pages = [PageRef.of(row) for row in list_images(project)]
    segmenter = Segmenter(service, EmbeddingCache(project.folder / "cache" / "sam-embeddings"), SAM)
    cancel = CancelToken()
    seen = []

    def stop_after_first(progress) -> None:
        seen.append(progress)
        if segmenter._encode_seconds:
            cancel.cancel()

    with pytest.raises(JobCancelled):
        precompute_embeddings(project, segmenter, pages, progress=stop_after_first, cancel=cancel)
    assert sum(segmenter.has_embedding(page) for page in pages) == 1
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((folder / "bengel_abriss01_1751_0007.jpg").read_bytes()[:2000])
    pages.append(PageRef(99, broken, 0, "b" * 64, 1600, 2867, "JPEG"))
    result = precompute_embeddings(project, segmenter, pages, progress=seen.append)
    assert (result.already_cached, result.encoded, len(result.failed)) == (1, 2, 1)
    assert "about" in seen[-2].message  # an estimate once a page has been timed
    assert all(segmenter.has_embedding(page) for page in pages[:3])


def test_the_split_decoder_computes_what_segment_anything_computes(service: ModelService, tmp_path: Path) -> None:
    from engine.segmentation.graphs import decoder_graphs, unblock_masks

    graphs = service.run(SAM, lambda network: decoder_graphs(network.sam))
    embedding = torch.randn(1, 32, 64, 64)
    prepared = graphs.prepare(embedding)
    for coords, labels in (([[100.0, 200.0], [0.0, 0.0]], [1.0, -1.0]),
                           ([[10.0, 20.0], [500.0, 600.0], [900.0, 100.0], [0.0, 0.0]], [1.0, 0.0, 1.0, -1.0]),
                           ([[300.0, 300.0], [100.0, 100.0], [700.0, 800.0]], [1.0, 2.0, 3.0])):
        points, kinds = torch.tensor([coords]), torch.tensor([labels])
        split = graphs.prompt(*prepared, points, kinds)
        full = graphs.full(embedding, points, kinds, torch.zeros(1, 1, 256, 256), torch.zeros(1))
        assert np.allclose(unblock_masks(split[0].numpy()), full[0][0].numpy(), atol=1e-4)
        assert torch.allclose(split[1], full[1], atol=1e-5)


@pytest.mark.cpu_only("names a float32 embedding file; a GPU writes bf16 ones")
def test_stale_embeddings_are_pruned(service, project, shared_data: Path, tmp_path: Path) -> None:
    from engine.segmentation.precompute import prune_stale_embeddings

    page = _imported_page(project, shared_data)
    cache = EmbeddingCache(project.folder / "cache" / "sam-embeddings")
    segmenter = Segmenter(service, cache, SAM)
    segmenter.embedding(page)
    segmenter.embedding(_page(tmp_path, (300, 200), "not-in-project.png"))
    kept = cache.folder / segmenter.key_for(page).filename
    replaced = cache.folder / kept.name.replace(segmenter.checkpoint()[:16], "0" * 16)  # an older checkpoint
    replaced.write_bytes(kept.read_bytes())
    half = cache.folder / kept.name.replace(".safetensors", "-bf16.safetensors")  # encoded in bf16 elsewhere
    half.write_bytes(kept.read_bytes())
    assert prune_stale_embeddings(project, cache, service.store) == 2
    assert sorted(p.name for p in cache.folder.iterdir()) == sorted([kept.name, half.name])


@pytest.mark.cpu_only("feeds the encoder CPU tensors")
def test_encoding_block_by_block_equals_the_encoder_and_stops_between_blocks(service: ModelService,
                                                                            tmp_path: Path) -> None:
    from engine.segmentation.segmenter import encode_batch, frame_pixels

    page = _page(tmp_path, (800, 600))
    image = frame_pixels(page)

    def both(network):  # noqa: ANN001, ANN202
        sam = network.sam
        batch = sam.preprocess(torch.from_numpy(image).permute(2, 0, 1)[None].float())
        with torch.inference_mode():
            reference = sam.image_encoder(batch).numpy()
        return reference, encode_batch(network, [image])[0]

    reference, stepped = service.run(SAM, both)
    assert np.allclose(stepped.astype(np.float32), reference[0], atol=2e-3)  # stored as float16

    class CancelAfterFirstBlock(CancelToken):
        checks = 0

        def raise_if_cancelled(self) -> None:
            self.checks += 1
            if self.checks > 1:
                raise JobCancelled()

    token = CancelAfterFirstBlock()
    with pytest.raises(JobCancelled):
        service.run(SAM, lambda network: encode_batch(network, [image], cancel=token))
    assert token.checks == 2  # stopped before the second block, not after the whole encoder


def test_segment_everything_stops_between_batches_of_points(service, project, shared_data: Path,
                                                          tmp_path: Path) -> None:
    """Seconds: the tiny SAM encodes a strip of a shared page, then decodes a batch of points before the stop."""
    from engine.categories import add_category

    page = _imported_strip(project, shared_data, tmp_path)
    segmenter = Segmenter(service, EmbeddingCache(project.folder / "cache" / "sam-embeddings"), SAM)
    segmenter.embedding(page)
    token = CancelToken()
    steps = []

    def cancel_after_first_batch(step) -> None:  # noqa: ANN001
        steps.append(step)
        if "points tried" in step.message:
            token.cancel()

    with pytest.raises(JobCancelled):
        segment_everything(project, segmenter, page, category_id=add_category(project, "Region").id,
                           creator="Ada", progress=cancel_after_first_batch, cancel=token)
    assert [step.done for step in steps if "points tried" in step.message] == [64]  # not all 1,024 points
    with project.unit_of_work() as session:
        assert session.scalars(select(Annotation)).all() == []


def test_a_stored_mask_becomes_previous_logits_where_it_lies() -> None:
    from engine.segmentation.frame import InputFrame

    frame = InputFrame(page_width=2000, page_height=1000)  # scale 0.512: low-res 0.128 per page pixel
    window = np.ones((400, 800), dtype=np.uint8)
    low = frame.low_res_from_window(window, left=1000, top=200)
    assert low.shape == (256, 256)
    inside = low > 0
    ys, xs = np.nonzero(inside)
    assert (xs.min(), ys.min()) == (128, 26) and abs(xs.max() - (128 + 102)) <= 1 and abs(ys.max() - (26 + 51)) <= 1
    assert frame.mask_on_page(low)[400, 1400] and not frame.mask_on_page(low)[100, 100]  # and back on the page


@pytest.mark.parametrize(("width", "height", "stretch", "kept"),
                         [(2577, 3633, False, True), (3000, 2000, True, True), (4000, 1100, False, False)])
def test_a_mask_on_a_large_page_is_what_resizing_the_whole_page_gives(width: int, height: int, stretch: bool,
                                                                      kept: bool, monkeypatch) -> None:
    """Small masks are interpolated over their own part of the page, large ones over the whole page: either way
    each pixel is what OpenCV's float32 resize of the whole page gives — masks inside, at the page's edges and
    corners, covering most of it, and none; only a logit within float rounding of zero may fall either way. Two
    pages one after the other each get their own size (the resize buffer is kept between clicks), and a page too
    large for the kept buffer (``kept`` False) is resized on its own."""
    import cv2

    from engine.segmentation import frame as frames

    if not kept:
        monkeypatch.setattr(frames, "KEPT_BUFFER_BYTES", 0)
    frame = InputFrame(width, height, stretch=stretch)
    rng = np.random.default_rng(4)
    blobs = [(120, 80, 30, 50), (0, 0, 20, 12), (230, 240, 26, 16), (5, 150, 8, 100),  # y, x, h, w in 256²
             (10, 10, 200, 170), (0, 0, 256, 256)]
    smooth = cv2.GaussianBlur(rng.normal(0.0, 1.0, (256, 256)).astype(np.float32), (0, 0), 6)
    for blob in [*blobs, None]:
        low = np.full((256, 256), -4.0, np.float32)
        if blob is not None:
            y, x, h, w = blob
            low[y:y + h, x:x + w] = rng.normal(1.5, 2.0, (min(h, 256 - y), min(w, 256 - x)))
        if blob == (0, 0, 256, 256):  # a smooth field crossing zero all over the page
            low = smooth * 40.0
        values = cv2.resize(frame.logits_in_frame(low), (width, height), interpolation=cv2.INTER_LINEAR)
        got = frame.mask_on_page(low)
        rounding = 1e-5 * float(np.abs(low).max())  # float32 rounding of OpenCV's two passes, with cancellation
        differ = got != (values > 0.0)
        assert got.shape == (height, width) and got.any() == bool((values > rounding).any())
        assert np.all(np.abs(values[differ]) < rounding), f"{blob}: {differ.sum()} pixels differ"
        other = InputFrame(height // 2, width // 2, stretch=stretch)
        assert other.mask_on_page(low).shape == (width // 2, height // 2)
