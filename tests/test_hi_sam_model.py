"""The Hi-SAM adapter: the published checkpoints' key layout, loading through the real store and runtime,
and files that are not what they claim to be."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import JobCancelled
from engine.jobs import CancelToken
from engine.models.adapters.hi_sam import HiSamArchitecture
from engine.models.adapters.weights import NotAWeightsFile, build_without_init, fill_from
from engine.models.runtime import DeviceChoice, ModelManager
from engine.models.service import ModelService
from engine.models.store import ModelStore
from tests.modelkit.tiny import tiny_spec

MODEL = "hi-sam-vit-b"


def _decoder(prefix: str, width: int, hierarchy: bool) -> dict[str, tuple[int, ...]]:
    """SAM's mask decoder as the authors' Hi-SAM lays it out (two-way transformer, 3+1 mask tokens), plus
    the S-Decoder's high-resolution branch or the H-Decoder's word branch."""
    keys: dict[str, tuple[int, ...]] = {}
    half, eighth, sixteenth = width // 2, width // 8, width // 16

    def attention(name: str, inner: int) -> None:
        for part in ("q_proj", "k_proj", "v_proj"):
            keys[f"{name}.{part}.weight"], keys[f"{name}.{part}.bias"] = (inner, width), (inner,)
        keys[f"{name}.out_proj.weight"], keys[f"{name}.out_proj.bias"] = (width, inner), (width,)

    def norm(name: str, size: int) -> None:
        keys[f"{name}.weight"], keys[f"{name}.bias"] = (size,), (size,)

    def mlp(name: str, sizes: list[tuple[int, int]]) -> None:
        for index, (out, inp) in enumerate(sizes):
            keys[f"{name}.layers.{index}.weight"], keys[f"{name}.layers.{index}.bias"] = (out, inp), (out,)

    for layer in range(2):
        base = f"{prefix}.transformer.layers.{layer}"
        attention(f"{base}.self_attn", width)
        attention(f"{base}.cross_attn_token_to_image", half)
        attention(f"{base}.cross_attn_image_to_token", half)
        for index in range(1, 5):
            norm(f"{base}.norm{index}", width)
        keys[f"{base}.mlp.lin1.weight"], keys[f"{base}.mlp.lin1.bias"] = (2048, width), (2048,)
        keys[f"{base}.mlp.lin2.weight"], keys[f"{base}.mlp.lin2.bias"] = (width, 2048), (width,)
    attention(f"{prefix}.transformer.final_attn_token_to_image", half)
    norm(f"{prefix}.transformer.norm_final_attn", width)
    keys[f"{prefix}.iou_token.weight"], keys[f"{prefix}.mask_tokens.weight"] = (1, width), (4, width)
    keys[f"{prefix}.output_upscaling.0.weight"], keys[f"{prefix}.output_upscaling.0.bias"] = (width, width // 4, 2, 2), (width // 4,)
    norm(f"{prefix}.output_upscaling.1", width // 4)
    keys[f"{prefix}.output_upscaling.3.weight"], keys[f"{prefix}.output_upscaling.3.bias"] = (width // 4, eighth, 2, 2), (eighth,)
    for index in range(4):
        mlp(f"{prefix}.output_hypernetworks_mlps.{index}", [(width, width), (width, width), (eighth, width)])
    mlp(f"{prefix}.iou_prediction_head", [(256, width), (256, 256), (4, 256)])

    def refine(name: str, convs: list[int], norms: list[int]) -> None:
        for index in convs:
            keys[f"{name}.{index}.weight"], keys[f"{name}.{index}.bias"] = (sixteenth, sixteenth, 3, 3), (sixteenth,)
        for index in norms:
            norm(f"{name}.{index}", sixteenth)

    if hierarchy:
        keys[f"{prefix}.word_mask_dc.0.weight"], keys[f"{prefix}.word_mask_dc.0.bias"] = (sixteenth, eighth, 1, 1), (sixteenth,)
        norm(f"{prefix}.word_mask_dc.1", sixteenth)
        refine(f"{prefix}.word_mask_refine", [0, 3, 6, 9], [1, 4, 7])
        mlp(f"{prefix}.output_word_mlp", [(width, width), (width, width), (sixteenth, width)])
    else:
        name = f"{prefix}.output_upscaling_hr"
        keys[f"{name}.0.weight"], keys[f"{name}.0.bias"] = (eighth, sixteenth, 2, 2), (sixteenth,)
        keys[f"{name}.3.weight"], keys[f"{name}.3.bias"] = (sixteenth, sixteenth, 2, 2), (sixteenth,)
        for index in (1, 4):
            norm(f"{name}.{index}", sixteenth)
        refine(name, [6, 9, 12, 15], [7, 10, 13])
        mlp(f"{prefix}.output_hypernetworks_mlps_hr", [(width, width), (width, width), (sixteenth, width)])
        mlp(f"{prefix}.iou_prediction_head_hr", [(256, width), (256, 256), (1, 256)])
    return keys


def published_vit_b() -> dict[str, tuple[int, ...]]:
    """Every parameter of hi_sam_b.pth merged over sam_vit_b_01ec64.pth, as the authors' builder lays out the
    model (ViT-B: width 768, 12 blocks, global attention at 2/5/8/11; prompt width 256; 12 aligner tokens)."""
    width, embed, head = 768, 256, 64
    keys: dict[str, tuple[int, ...]] = {
        "image_encoder.pos_embed": (1, 64, 64, width),
        "image_encoder.patch_embed.proj.weight": (width, 3, 16, 16), "image_encoder.patch_embed.proj.bias": (width,),
        "image_encoder.neck.0.weight": (embed, width, 1, 1), "image_encoder.neck.1.weight": (embed,),
        "image_encoder.neck.1.bias": (embed,), "image_encoder.neck.2.weight": (embed, embed, 3, 3),
        "image_encoder.neck.3.weight": (embed,), "image_encoder.neck.3.bias": (embed,)}
    for block in range(12):
        base = f"image_encoder.blocks.{block}"
        span = 127 if block in (2, 5, 8, 11) else 27
        keys.update({
            f"{base}.norm1.weight": (width,), f"{base}.norm1.bias": (width,), f"{base}.norm2.weight": (width,),
            f"{base}.norm2.bias": (width,), f"{base}.attn.qkv.weight": (3 * width, width),
            f"{base}.attn.qkv.bias": (3 * width,), f"{base}.attn.proj.weight": (width, width),
            f"{base}.attn.proj.bias": (width,), f"{base}.attn.rel_pos_h": (span, head),
            f"{base}.attn.rel_pos_w": (span, head), f"{base}.mlp.lin1.weight": (4 * width, width),
            f"{base}.mlp.lin1.bias": (4 * width,), f"{base}.mlp.lin2.weight": (width, 4 * width),
            f"{base}.mlp.lin2.bias": (width,)})
        for adapter in ("Space_Adapter", "MLP_Adapter"):
            keys.update({f"{base}.{adapter}.D_fc1.weight": (width // 4, width), f"{base}.{adapter}.D_fc1.bias": (width // 4,),
                         f"{base}.{adapter}.D_fc2.weight": (width, width // 4), f"{base}.{adapter}.D_fc2.bias": (width,)})
    keys.update({
        "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (2, embed // 2),
        **{f"prompt_encoder.point_embeddings.{i}.weight": (1, embed) for i in range(4)},
        "prompt_encoder.not_a_point_embed.weight": (1, embed), "prompt_encoder.no_mask_embed.weight": (1, embed),
        "prompt_encoder.mask_downscaling.0.weight": (4, 1, 2, 2), "prompt_encoder.mask_downscaling.0.bias": (4,),
        "prompt_encoder.mask_downscaling.1.weight": (4,), "prompt_encoder.mask_downscaling.1.bias": (4,),
        "prompt_encoder.mask_downscaling.3.weight": (16, 4, 2, 2), "prompt_encoder.mask_downscaling.3.bias": (16,),
        "prompt_encoder.mask_downscaling.4.weight": (16,), "prompt_encoder.mask_downscaling.4.bias": (16,),
        "prompt_encoder.mask_downscaling.6.weight": (embed, 16, 1, 1), "prompt_encoder.mask_downscaling.6.bias": (embed,),
        "modal_aligner.conv.0.weight": (12, embed, 3, 3),
        **{f"modal_aligner.conv.{i}.weight": (12, 12, 3, 3) for i in (2, 4, 6)}})
    base = "modal_aligner.transformer_layers.0"
    for attention in ("self_attn", "cross_attn"):
        keys.update({f"{base}.{attention}.in_proj_weight": (3 * embed, embed), f"{base}.{attention}.in_proj_bias": (3 * embed,),
                     f"{base}.{attention}.out_proj.weight": (embed, embed), f"{base}.{attention}.out_proj.bias": (embed,)})
    keys.update({f"{base}.norm1.weight": (embed,), f"{base}.norm1.bias": (embed,), f"{base}.norm2.weight": (embed,),
                 f"{base}.norm2.bias": (embed,), f"{base}.ffn.0.weight": (4 * embed, embed), f"{base}.ffn.0.bias": (4 * embed,),
                 f"{base}.ffn.2.weight": (embed, 4 * embed), f"{base}.ffn.2.bias": (embed,)})
    keys.update(_decoder("mask_decoder", embed, hierarchy=False))
    keys.update(_decoder("hi_decoder", embed, hierarchy=True))
    return keys


def test_a_full_size_vit_b_state_dict_laid_out_as_published_loads_with_nothing_missing_or_left() -> None:
    published = {key: torch.empty(shape, device="meta") for key, shape in published_vit_b().items()}
    architecture = HiSamArchitecture.from_weights(published)
    assert (architecture.sam.encoder_width, architecture.sam.encoder_depth, architecture.sam.encoder_heads) == (768, 12, 12)
    assert architecture.sam.global_attention == (2, 5, 8, 11) and architecture.sam.window_size == 14
    assert (architecture.prompt_tokens, architecture.aligner_layers, architecture.hierarchy) == (12, 1, True)
    model = build_without_init(architecture.build)
    built = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert set(built) == set(published), (sorted(set(built) - set(published))[:5], sorted(set(published) - set(built))[:5])
    assert {key: shape for key, shape in built.items() if shape != tuple(published[key].shape)} == {}
    fill_from(model, published, "Hi-SAM")  # strict: every key used, none left, shapes checked
    stroke_only = {key: value for key, value in published.items() if not key.startswith("hi_decoder.")}
    assert HiSamArchitecture.from_weights(stroke_only).hierarchy is False  # a SAM-TS file: strokes only


@pytest.fixture
def hi_sam(model_store: ModelStore) -> ModelService:
    model_store.add_tiny(MODEL)
    return ModelService(model_store, ModelManager(device=DeviceChoice("cpu")))


def test_the_tiny_checkpoint_loads_through_the_store_with_sams_frozen_weights(hi_sam: ModelService,
                                                                                 tiny_models) -> None:
    own = torch.load(tiny_models(MODEL) / "hi_sam_b.pth", weights_only=True)
    assert set(own) == {"model", "epoch"}  # wrapped as the authors' training saves it
    sam = torch.load(tiny_models("sam-vit-b") / "sam_vit_b_01ec64.pth", weights_only=True)
    network = hi_sam.run(MODEL, lambda n: n)
    loaded = network.model.state_dict()
    assert set(loaded) == set(own["model"]) | set(sam)  # every key of both files used, none left over
    adapter = "image_encoder.blocks.0.Space_Adapter.D_fc1.weight"
    frozen = "image_encoder.blocks.0.attn.qkv.weight"
    assert torch.equal(loaded[adapter].cpu(), own["model"][adapter])  # the Hi-SAM file's
    assert torch.equal(loaded[frozen].cpu(), sam[frozen])  # SAM's own
    assert torch.equal(loaded["mask_decoder.iou_token.weight"].cpu(), own["model"]["mask_decoder.iou_token.weight"])
    page = np.full((300, 200, 3), 255, np.uint8)
    page[100:120, 40:160] = 0
    embedding, input_size = network.encode(page)
    assert tuple(embedding.shape) == (1, 32, 64, 64) and input_size == (1024, 683)
    assert network.stroke_logits(embedding, input_size, (300, 200)).shape == (300, 200)
    masks, iou, words = network.levels(embedding, np.array([[300.0, 400.0], [10.0, 10.0]]))
    assert masks.shape == (2, 3, 256, 256) and iou.shape == (2, 3) and words.shape == (2, 384, 384)


def _broken_store(tmp_path: Path, tiny_models, change) -> ModelService:  # noqa: ANN001
    store = ModelStore(tmp_path / "models")
    store.import_files(tiny_spec("sam-vit-b"), [tiny_models("sam-vit-b")])
    checkpoint = torch.load(tiny_models(MODEL) / "hi_sam_b.pth", weights_only=True)
    change(checkpoint["model"])
    path = tmp_path / "hi_sam_b.pth"
    torch.save(checkpoint, path)
    store.import_files(tiny_spec(MODEL), [path])
    return ModelService(store, ModelManager(device=DeviceChoice("cpu")))


@pytest.mark.parametrize(("change", "says"), [
    (lambda weights: weights.update({"mask_decoder.extra.weight": torch.zeros(2)}), "Unexpected key"),
    (lambda weights: weights.pop("hi_decoder.output_word_mlp.layers.2.bias"), "Missing key"),
    (lambda weights: [weights.pop(key) for key in list(weights) if "Adapter" in key], "not a Hi-SAM checkpoint"),
    (lambda weights: weights.update({key: torch.zeros(value.shape[0], 64) for key, value in weights.items()
                                     if key.endswith("Adapter.D_fc1.weight")}), "different sizes"),
])
def test_a_file_that_is_not_this_hi_sam_is_refused_with_its_reason(tmp_path: Path, tiny_models, change, says) -> None:
    with pytest.raises(NotAWeightsFile, match=says):  # at import, or at the latest when it loads
        _broken_store(tmp_path, tiny_models, change).run(MODEL, lambda n: n)


def test_importing_segment_anything_itself_as_hi_sam_is_refused_at_import(tmp_path: Path, tiny_models) -> None:
    store = ModelStore(tmp_path / "models")
    with pytest.raises(NotAWeightsFile, match="looks like Segment Anything itself"):
        store.import_files(tiny_spec(MODEL), [tiny_models("sam-vit-b") / "sam_vit_b_01ec64.pth"])
    assert store.get(MODEL) is None
    assert store.import_files(tiny_spec(MODEL), [tiny_models(MODEL)]).id == MODEL  # its own file is taken


def test_words_limited_to_a_region_are_the_whole_frames_words_there(model_store: ModelStore,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The word branch run on a line's region only (and the border its convolutions read) gives exactly the
    values the whole 384² frame gives inside the region, at a frame edge too; outside it is very negative."""
    from engine.models.hi_sam_modules import WORD_OUTSIDE

    monkeypatch.setenv("MARGINALIA_CPU_BF16", "0")  # float32: the comparison is exact up to rounding
    model_store.add_tiny(MODEL)
    network = ModelService(model_store, ModelManager(device=DeviceChoice("cpu"))).run(MODEL, lambda n: n)
    page = np.full((400, 400, 3), 255, np.uint8)
    page[100:130, 40:360] = 0
    embedding, _ = network.encode(page)
    points = np.array([[300.0, 400.0], [20.0, 30.0], [900.0, 1000.0]], np.float32)
    regions = [(90, 141, 17, 200), (0, 33, 0, 256), None]  # odd bounds; at the frame's edge; everything
    _, _, whole = network.levels(embedding, points)
    masks, iou, limited = network.levels(embedding, points, regions=regions)
    for index, region in enumerate(regions):
        y0, y1, x0, x1 = region or (0, 256, 0, 256)
        inside = np.zeros((384, 384), bool)
        inside[3 * y0 // 2:-(-3 * y1 // 2), 3 * x0 // 2:-(-3 * x1 // 2)] = True
        assert np.allclose(limited[index][inside], whole[index][inside], atol=1e-4)
        assert (limited[index][~inside] == WORD_OUTSIDE).all()
    assert masks.shape == (3, 3, 256, 256) and iou.shape == (3, 3)
    decoded_masks, decoded_iou, inputs = network.levels_and_word_inputs(embedding, points)
    assert np.array_equal(decoded_masks, masks) and np.array_equal(decoded_iou, iou)  # the same decode …
    assert len(inputs) == 3 and all(i.nbytes > 0 for i in inputs)
    later = network.words_of([inputs[2], inputs[0]], [None, regions[0]])  # … whose words come later, in any order
    assert np.allclose(later[0], whole[2], atol=1e-4) and np.allclose(later[1], limited[0], atol=1e-4)
    assert network.words_of([]).shape == (0, 384, 384)


@pytest.mark.cpu_only("bit-for-bit words: a GPU keeps tokens in half precision, a whole decode in float32")
def test_a_lines_kept_tokens_are_those_under_its_box_and_give_the_same_words(model_store: ModelStore,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """What a kept line's words need is copied as the image tokens under its region only (and the border the word
    branch reads): a fraction of a point's tokens, the very words; a region they do not cover is refused."""
    from engine.models.hi_sam_modules import WORD_OUTSIDE

    monkeypatch.setenv("MARGINALIA_CPU_BF16", "0")
    model_store.add_tiny(MODEL)
    network = ModelService(model_store, ModelManager(device=DeviceChoice("cpu"))).run(MODEL, lambda n: n)
    page = np.full((400, 400, 3), 255, np.uint8)
    page[100:130, 40:360] = 0
    embedding, _ = network.encode(page)
    _, _, inputs = network.levels_and_word_inputs(embedding, np.array([[300.0, 400.0], [20.0, 30.0]], np.float32))
    line, edge = (90, 141, 17, 200), (0, 33, 0, 256)  # a line's box; a strip at the frame's edge
    kept = [network.word_inputs_for(inputs[0], line), network.word_inputs_for(inputs[1], edge)]
    assert all(k.nbytes < whole.nbytes / 2 for k, whole in zip(kept, inputs, strict=True))
    assert np.array_equal(network.words_of(kept, [line, edge]), network.words_of(inputs, [line, edge]))
    assert kept[0].covers((100, 130, 40, 150)) and kept[0].covers((5, 5, 0, 0))  # inside; empty
    assert not kept[0].covers((80, 141, 17, 200)) and not kept[0].covers(None)
    with pytest.raises(ValueError, match="do not cover"):
        network.words_of([kept[0]], [(0, 256, 0, 256)])
    nothing = network.word_inputs_for(inputs[0], (0, 0, 0, 0))
    assert nothing.source.numel() == 0 and (network.words_of([nothing], [(0, 0, 0, 0)]) == WORD_OUTSIDE).all()


def test_a_cancel_stops_an_encode_between_the_encoders_blocks(model_store: ModelStore) -> None:
    model_store.add_tiny(MODEL)
    network = ModelService(model_store, ModelManager(device=DeviceChoice("cpu"))).run(MODEL, lambda n: n)
    blocks = network.model.image_encoder.blocks
    assert len(blocks) >= 2
    token, ran = CancelToken(), []
    watchers = [block.register_forward_hook(lambda module, _inputs, _output: ran.append(module)) for block in blocks]
    cancel_in_the_first = blocks[0].register_forward_hook(lambda *_: token.cancel())  # Cancel pressed meanwhile
    page = np.full((300, 200, 3), 255, np.uint8)
    try:
        with pytest.raises(JobCancelled):
            network.encode(page, token)
        assert ran == [blocks[0]]  # the next block never started
    finally:
        for hook in (*watchers, cancel_in_the_first):
            hook.remove()
    assert all(not block._forward_pre_hooks for block in blocks)  # the encode left no hook behind
    embedding, _ = network.encode(page)  # and the model still works
    assert tuple(embedding.shape[:2]) == (1, network.architecture.sam.prompt_width)
