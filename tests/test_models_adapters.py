"""Every model family loads through its adapter from the store, in the publishers' formats.

The tiny models of the test kit are real architectures with random weights;
these tests check that the weights in the files are the weights that run
(not a fresh initialisation), that outputs have the documented shapes, and
that wrong or dangerous files are refused with a clear message.
"""

from __future__ import annotations

import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.errors import MarginaliaError
from engine.models.adapters import model_files
from engine.models.adapters.sam import SamArchitecture
from engine.models.adapters.weights import NotAWeightsFile, read_state_dict
from engine.models.catalogue import get_spec
from engine.models.download import download_model
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.models.store import VerificationError
from tests.modelkit.fake_hub import FakeHub
from tests.modelkit.tiny import TINY_CLIP_ARCHITECTURE, tiny_spec


def _service(store) -> ModelService:
    return ModelService(store, ModelManager(device=DeviceChoice("cpu")))


def _first_tensor(path: Path) -> tuple[str, torch.Tensor]:
    weights = read_state_dict(path)
    name = max(weights, key=lambda key: weights[key].numel())  # a large, randomly initialised matrix
    return name, weights[name]


@pytest.mark.cpu_only("compares the loaded weights bit for bit in float32 on the CPU")
def test_sam_loads_the_checkpoint_and_segments(model_store) -> None:
    installed = model_store.add_tiny("sam-vit-b")
    network = _service(model_store).run("sam-vit-b", lambda n: n)
    name, expected = _first_tensor(installed.path("sam_vit_b_01ec64.pth"))
    assert torch.equal(network.sam.state_dict()[name], expected)
    assert network.checkpoint_sha256 == installed.files["sam_vit_b_01ec64.pth"]["sha256"]
    with torch.inference_mode():
        embedding = network.sam.image_encoder(torch.zeros(1, 3, 1024, 1024))
        sparse, dense = network.sam.prompt_encoder(
            points=(torch.tensor([[[500.0, 400.0]]]), torch.tensor([[1]])), boxes=None, masks=None)
        masks, iou = network.sam.mask_decoder(
            image_embeddings=embedding, image_pe=network.sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
    assert embedding.shape == (1, 32, 64, 64)
    assert masks.shape == (1, 3, 256, 256) and iou.shape == (1, 3)


@pytest.mark.parametrize("builder, global_attention", [("build_sam_vit_b", (2, 5, 8, 11)),
                                                       ("build_sam_vit_l", (5, 11, 17, 23)),
                                                       ("build_sam_vit_h", (7, 15, 23, 31))])
def test_sam_architecture_is_read_off_the_published_shapes(builder: str, global_attention: tuple[int, ...]) -> None:
    import segment_anything

    with torch.device("meta"):  # the publisher's builder, without memory or initialisation
        published = getattr(segment_anything, builder)().state_dict()
        architecture = SamArchitecture.from_weights(published)
        ours = architecture.build().state_dict()
    assert architecture.global_attention == global_attention and architecture.image_size == 1024
    assert {key: value.shape for key, value in ours.items()} == {key: value.shape for key, value in published.items()}


@pytest.mark.cpu_only("compares the loaded weights bit for bit in float32 on the CPU")
@pytest.mark.parametrize("model_id", ["clip-vit-b-32", "clip-xlmr-b-32"])
def test_clip_embeds_texts_and_images_into_one_space(model_store, model_id: str) -> None:
    installed = model_store.add_tiny(model_id)
    weights_file = next(f.filename for f in get_spec(model_id).files if not f.optional)
    network = _service(model_store).run(model_id, lambda n: n)
    name, expected = _first_tensor(installed.path(weights_file))
    assert torch.equal(network.model.state_dict()[name], expected)
    texts = network.encode_texts(["Wappen eines Fürsten", "une carte du monde", "a coat of arms"])
    image = network.encode_images(torch.stack([network.prepare(Image.new("RGB", (300, 200), "white"))]))
    assert texts.shape == (3, 32) and image.shape == (1, 32)
    assert torch.allclose(texts.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(texts[0], texts[1])  # different words, different vectors


def test_clip_without_its_config_file_uses_the_catalogue_architecture(model_store, tiny_models) -> None:
    from engine.models.adapters import open_clip as clip_adapter

    tiny_models("clip-vit-b-32")  # registers the tiny architecture with open_clip
    spec = replace(tiny_spec("clip-vit-b-32"), options={"architecture": TINY_CLIP_ARCHITECTURE})
    folder = tiny_models("clip-vit-b-32")
    installed = model_store.import_files(spec, [folder / "open_clip_model.safetensors"])
    assert set(installed.files) == {"open_clip_model.safetensors"}  # the optional config was not there
    network = clip_adapter.load(replace(model_files(model_store, get_spec("clip-vit-b-32")), spec=spec), "cpu")
    assert network.encode_texts(["ein Wappen"]).shape == (1, 32)


@pytest.mark.cpu_only("compares with the model's own attention matrices in float32 on the CPU")
@pytest.mark.parametrize("model_id, registers", [("dino-vits16", 0), ("dinov2-reg-small", 4)])
def test_dino_gives_attention_maps_per_patch(model_store, model_id: str, registers: int) -> None:
    model_store.add_tiny(model_id)
    network = _service(model_store).run(model_id, lambda n: n)
    assert network.register_tokens == registers
    pixels = torch.randn(2, 3, 64, 96)
    maps = network.attention_maps(pixels)
    assert maps.shape == (2, 2, 8, 12)
    assert network.tokens(pixels).shape == (2, 1 + registers + 8 * 12, 32)
    # The class token's attention over all tokens sums to one; the patches get part of it.
    assert bool(((maps.sum(dim=(-1, -2)) > 0) & (maps.sum(dim=(-1, -2)) <= 1.0 + 1e-5)).all())
    # The class token's row, computed alone, is the row of the full attention matrix the model returns.
    network.model.set_attn_implementation("eager")
    with torch.inference_mode():
        full = network.model(pixel_values=pixels, output_attentions=True,
                             interpolate_pos_encoding=True).attentions[-1]  # [B, heads, T, T]
    assert torch.allclose(maps, full[:, :, 0, 1 + registers:].reshape(2, 2, 8, 12), atol=1e-5)



def test_dino_attention_is_found_under_either_name_transformers_gave_it() -> None:
    """transformers 5.17 names the projections query/key, 5.24 q_proj/k_proj (both ran the test above)."""
    from torch import nn

    from engine.models.adapters.dino import last_query_and_key

    def layer(names: tuple[str, str]) -> nn.Module:
        attention = nn.Module()
        for name in names:
            setattr(attention, name, nn.Linear(4, 4))
        return attention

    for names in (("query", "key"), ("q_proj", "k_proj")):
        model = nn.Sequential(layer(names), layer(names), nn.LayerNorm(4))
        assert last_query_and_key(model) == (getattr(model[1], names[0]), getattr(model[1], names[1]))
    with pytest.raises(MarginaliaError, match="transformers version"):
        last_query_and_key(nn.Sequential(nn.Linear(4, 4), layer(("to_q", "to_k"))))

def test_grounding_dino_returns_boxes_in_image_pixels(model_store) -> None:
    model_store.add_tiny("grounding-dino-tiny")
    image = Image.new("RGB", (600, 400), "white")
    found = _service(model_store).run(
        "grounding-dino-tiny",
        lambda n: n.detect(image, ["coat of arms", "a map"], box_threshold=0.0, text_threshold=0.0))
    assert len(found) == 30  # every query of the tiny model passes a zero threshold
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    for detection in found:
        x0, y0, x1, y1 = detection.box
        assert 0 <= x0 <= x1 <= 600 and 0 <= y0 <= y1 <= 400


def test_downloaded_models_load_through_the_real_hub_path(hub: FakeHub, tmp_path: Path, tiny_models) -> None:
    from engine.models.store import ModelStore

    store = ModelStore(tmp_path / "models")
    for model_id in ("xlm-roberta-base-text", "clip-xlmr-b-32"):
        spec = get_spec(model_id)
        folder = tiny_models(model_id)
        for file in spec.files:
            if (folder / file.filename).exists():
                hub.add(spec.source.repo_id, file.filename, (folder / file.filename).read_bytes())
    hub.files.pop(("laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k", "open_clip_config.json"))
    hub.add("laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k", "open_clip_config.json",
            (tiny_models("clip-xlmr-b-32") / "open_clip_config.json").read_bytes())
    installed = download_model("clip-xlmr-b-32", store)  # its text component comes first
    assert store.get("xlm-roberta-base-text") is not None
    assert "open_clip_config.json" in installed.files
    vectors = _service(store).run("clip-xlmr-b-32", lambda n: n.encode_texts(["Schiffe im Sturm"]))
    assert vectors.shape == (1, 32)


def test_optional_files_missing_on_the_hub_are_skipped(hub: FakeHub, tmp_path: Path, tiny_models) -> None:
    from engine.models.store import ModelStore

    store = ModelStore(tmp_path / "models")
    folder = tiny_models("grounding-dino-tiny")
    spec = get_spec("grounding-dino-tiny")
    for file in spec.files:
        if not file.optional:
            hub.add(spec.source.repo_id, file.filename, (folder / file.filename).read_bytes())
    installed = download_model(spec, store)
    assert set(installed.files) == {f.filename for f in spec.files if not f.optional}
    found = _service(store).run("grounding-dino-tiny", lambda n: n.detect(Image.new("RGB", (64, 64)), ["map"]))
    assert isinstance(found, list)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_that_would_run_code_is_refused_unexecuted(model_store, tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    bad = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(1), "trap": _Payload(marker)}, bad)
    with pytest.raises(VerificationError, match="would run code"):  # the import looks inside, safely
        model_store.import_files(tiny_spec("sam-vit-b"), [bad])
    assert not marker.exists() and model_store.get("sam-vit-b") is None
    installed = model_store.add_tiny("sam-vit-b")
    shutil.copyfile(bad, installed.path("sam_vit_b_01ec64.pth"))  # changed on disk since its install
    with pytest.raises(NotAWeightsFile, match="would run code"):
        _service(model_store).run("sam-vit-b", lambda n: n)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # the same file, unpickled without protection, would run it
        torch.load(bad, weights_only=True)


def test_the_wrong_checkpoint_for_a_model_is_a_clear_error(model_store, tiny_models, tmp_path: Path) -> None:
    clip_weights = read_state_dict(tiny_models("clip-vit-b-32") / "open_clip_model.safetensors")
    wrong = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(clip_weights, wrong)
    model_store.import_files(tiny_spec("sam-vit-b"), [wrong])  # a sound checkpoint, of another model
    with pytest.raises(NotAWeightsFile, match="not a Segment Anything checkpoint"):
        _service(model_store).run("sam-vit-b", lambda n: n)
    model_store.remove("sam-vit-b")
    damaged = tmp_path / "damaged" / "open_clip_model.safetensors"
    damaged.parent.mkdir()
    damaged.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(VerificationError, match="not a readable safetensors file"):
        model_store.import_files(tiny_spec("clip-vit-b-32"), [damaged])
    installed = model_store.add_tiny("clip-vit-b-32")
    shutil.copyfile(damaged, installed.path("open_clip_model.safetensors"))  # damaged on disk since
    with pytest.raises(NotAWeightsFile, match="not a readable safetensors file"):
        _service(model_store).run("clip-vit-b-32", lambda n: n)


def test_a_model_that_is_not_installed_says_how_to_get_it(model_store) -> None:
    with pytest.raises(MarginaliaError, match="models download dino-vitb16"):
        _service(model_store).run("dino-vitb16", lambda n: n)
    model_store.add_tiny("xlm-roberta-base-text")
    with pytest.raises(MarginaliaError, match="part of another model"):
        _service(model_store).run("xlm-roberta-base-text", lambda n: n)


def test_models_move_between_devices_and_keep_working(model_store) -> None:
    model_store.add_tiny("dinov2-reg-small")
    service = _service(model_store)
    before = service.run("dinov2-reg-small", lambda n: n.attention_maps(torch.ones(1, 3, 64, 64))).cpu()
    moved = service.run("dinov2-reg-small", lambda n: n.to("cpu"))  # what running out of GPU memory does
    assert moved.device == "cpu" and moved.dtype is torch.float32
    after = moved.attention_maps(torch.ones(1, 3, 64, 64))
    if service.manager.device.device == "cpu":
        assert torch.equal(before, after)
    else:  # from half precision on the GPU to float32: the same maps, to half precision's digits
        assert torch.allclose(before, after, rtol=0.05, atol=1e-3)
    service.unload("dinov2-reg-small")
    assert service.manager.loaded() == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_models_run_in_half_precision(model_store) -> None:
    model_store.add_tiny("clip-vit-b-32")
    service = ModelService(model_store, ModelManager(device=DeviceChoice("cuda")))
    network = service.run("clip-vit-b-32", lambda n: n)
    assert network.dtype in (torch.float16, torch.bfloat16)
    assert next(network.model.parameters()).dtype == network.dtype
    assert network.encode_texts(["map"]).dtype == torch.float32
    assert network.runtime == f"torch-{str(network.dtype).removeprefix('torch.')}"  # not "torch-float32"


def test_any_damaged_checkpoint_is_refused_in_plain_words(tmp_path: Path) -> None:
    """Random bytes fail torch's readers in many ways (struct, index, key, decode errors); each is one refusal."""
    import random

    for seed in range(60):
        rng = random.Random(seed)
        damaged = tmp_path / "model.pth"
        damaged.write_bytes(rng.randbytes(rng.choice([10, 100, 5000, 70_000])))
        with pytest.raises(NotAWeightsFile, match="is not a readable weights file"):
            read_state_dict(damaged)
