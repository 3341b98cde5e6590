"""SAM's modules computed faster give what SAM's own give: the two-way transformer with the image once for all
prompts, the image encoder's attention as fused attention."""

from __future__ import annotations

import copy

import pytest
import torch
from segment_anything.modeling import TwoWayTransformer
from segment_anything.modeling.image_encoder import Attention

from engine.models import fused_attention
from engine.models.two_way import two_way


@pytest.mark.parametrize("prompts", [1, 3])
@pytest.mark.parametrize("depth", [1, 2])
def test_the_image_once_gives_sams_tokens_and_image_for_each_prompt(prompts: int, depth: int) -> None:
    torch.manual_seed(depth * 10 + prompts)
    transformer = TwoWayTransformer(depth=depth, embedding_dim=64, mlp_dim=128, num_heads=8).eval()
    image, position = torch.randn(1, 64, 12, 16), torch.randn(1, 64, 12, 16)
    tokens = torch.randn(prompts, 7, 64)
    with torch.inference_mode():
        expected_tokens, expected_image = transformer(image.expand(prompts, -1, -1, -1),
                                                      position.expand(prompts, -1, -1, -1), tokens)
        got_tokens, got_image = two_way(transformer, image, position, tokens)
    assert got_tokens.shape == expected_tokens.shape == (prompts, 7, 64)
    assert got_image.shape == expected_image.shape == (prompts, 12 * 16, 64)
    assert torch.allclose(got_tokens, expected_tokens, atol=2e-5)
    assert torch.allclose(got_image, expected_image, atol=2e-5)
    if prompts > 1:  # each prompt has its own answer (nothing of one prompt leaks into another)
        assert not torch.allclose(got_image[0], got_image[1], atol=1e-3)


@pytest.mark.parametrize(("windows", "side"), [(1, 24), (4, 7)])  # a global block; windowed blocks
def test_the_encoders_fused_attention_gives_sams_attention_with_relative_positions(windows: int, side: int,
                                                                                  monkeypatch) -> None:
    monkeypatch.setattr(fused_attention, "BAND", 240)  # bands of 10, 10 and 4 query rows in the global block
    torch.manual_seed(side)
    own = Attention(96, 4, use_rel_pos=True, input_size=(side, side)).eval()
    own.rel_pos_h.data.normal_(0, 0.5)
    own.rel_pos_w.data.normal_(0, 0.7)  # rows and columns differ: a swapped axis would show
    fused = fused_attention.use_fused_attention(copy.deepcopy(own))
    assert type(fused) is fused_attention.RelativePositionAttention
    image = torch.randn(windows, side, side, 96)
    with torch.inference_mode():
        expected, got = own(image), fused(image)
    assert got.shape == expected.shape == (windows, side, side, 96)
    assert torch.allclose(got, expected, atol=2e-5)


def test_one_prompts_attentions_folded_give_sams_and_sam2s() -> None:
    """A click's decoder folds the image's projections into its few tokens (one prompt, one image): SAM's and
    SAM 2's attentions give the same, in both directions, and from a page's prepared query projection."""
    from segment_anything.modeling.transformer import Attention as SamAttention
    from transformers import Sam2Config
    from transformers.models.sam2.modeling_sam2 import Sam2Attention

    from engine.models.two_way import Projections, image_to_tokens, tokens_to_image

    torch.manual_seed(3)
    config = Sam2Config().mask_decoder_config
    config.hidden_size, config._attn_implementation = 64, "eager"
    sam, sam2 = SamAttention(64, 8, downsample_rate=2).eval(), Sam2Attention(config).eval()
    tokens, token_values = torch.randn(1, 7, 64), torch.randn(1, 7, 64)
    image, keyed = torch.randn(1, 300, 64), torch.randn(1, 300, 64)
    with torch.inference_mode():
        for attention, own in ((sam, lambda q, k, v: sam(q=q, k=k, v=v)),
                               (sam2, lambda q, k, v: sam2(q[:, None], k[:, None], v[:, None])[0][:, 0])):
            parts = Projections.of(attention)
            assert (parts.heads, parts.width) == (8, 4)
            got = tokens_to_image(parts, tokens, keyed, image, fold=True)
            assert torch.allclose(got, own(tokens, keyed, image), atol=2e-5)
            expected = own(keyed, tokens, token_values)
            assert torch.allclose(image_to_tokens(parts, keyed, tokens, token_values), expected, atol=2e-5)
            prepared = parts.q(keyed).view(1, 300, 8, 4).transpose(1, 2)  # [1, heads, P, d], as a page prepares it
            assert torch.allclose(image_to_tokens(parts, image, tokens, token_values, prepared), expected, atol=2e-5)


def test_the_hypernetworks_stacked_give_each_mlps_own_output() -> None:
    from segment_anything.modeling.mask_decoder import MLP

    from engine.models.two_way import stacked_mlps

    torch.manual_seed(5)
    mlps = [MLP(32, 32, 8, 3).eval() for _ in range(4)]
    rows = torch.randn(4, 32)
    with torch.inference_mode():
        expected = torch.stack([mlp(rows[i]) for i, mlp in enumerate(mlps)])
        got = stacked_mlps([list(mlp.layers) for mlp in mlps], rows)
    assert got.shape == (4, 8)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got[0], got[1], atol=1e-3)  # each row went through its own MLP


@pytest.mark.parametrize("tokens_at_once", [2048, 14, 1])  # one band; bands of 2 token rows and 1 (of 5)
def test_the_upscaling_token_by_token_gives_sams_masks(tokens_at_once: int, monkeypatch) -> None:
    from segment_anything.modeling import MaskDecoder

    from engine.models import token_upscaling
    from engine.models.hi_sam_modules import use_fused_layer_norms

    monkeypatch.setattr(token_upscaling, "TOKENS_AT_ONCE", tokens_at_once)
    torch.manual_seed(tokens_at_once)
    decoder = use_fused_layer_norms(MaskDecoder(transformer_dim=64, transformer=TwoWayTransformer(
        depth=1, embedding_dim=64, mlp_dim=128, num_heads=8)).eval())
    for module in decoder.output_upscaling:  # LayerNorm2d starts as the identity: give it something to do
        if hasattr(module, "bias") and module.bias is not None:
            module.bias.data.normal_(0, 0.5)
    source, hyper = torch.randn(3, 5 * 7, 64), torch.randn(3, 4, 8)  # 3 prompts on a 5×7 grid, 4 masks each
    with torch.inference_mode():
        features = decoder.output_upscaling(source.transpose(1, 2).reshape(3, 64, 5, 7))  # [3, 8, 20, 28]
        expected = (hyper @ features.flatten(2)).view(3, 4, 20, 28)
        got = token_upscaling.token_masks(decoder.output_upscaling, source, (5, 7), hyper)
        on_a_gpu = token_upscaling.all_at_once(decoder.output_upscaling, source, (5, 7), hyper)  # the GPU's way
    assert got.shape == on_a_gpu.shape == (3, 4, 20, 28)
    assert torch.allclose(got, expected, atol=1e-5) and torch.allclose(on_a_gpu, expected, atol=1e-5)
    assert not torch.allclose(got[0], got[1], atol=1e-3) and not torch.allclose(got[:, 0], got[:, 1], atol=1e-3)
    with torch.inference_mode():  # no prompt: no masks
        none = token_upscaling.token_masks(decoder.output_upscaling, source[:0], (5, 7), hyper[:0])
    assert none.shape == (0, 4, 20, 28)


def test_hi_sams_decoder_gives_what_sams_own_decoder_computes() -> None:
    """The H-Decoder's levels (the image once for all prompts, attentions folded, upscaled token by token) are
    segment-anything's ``MaskDecoder.predict_masks`` on the same weights (the image repeated per prompt)."""
    from segment_anything.modeling import MaskDecoder

    from engine.models.hi_sam_modules import HierarchyDecoder, use_fused_layer_norms

    torch.manual_seed(11)
    decoder = use_fused_layer_norms(HierarchyDecoder(transformer_dim=64, transformer=TwoWayTransformer(
        depth=2, embedding_dim=64, mlp_dim=128, num_heads=8)).eval())
    for module in decoder.modules():  # layer norms start as the identity: give them something to do
        if isinstance(module, torch.nn.LayerNorm) or type(module).__name__ == "ChannelLayerNorm":
            module.weight.data.normal_(1, 0.2)
            module.bias.data.normal_(0, 0.5)
    image, position, prompts = torch.randn(1, 64, 16, 16), torch.randn(1, 64, 16, 16), torch.randn(3, 2, 64)
    with torch.inference_mode():
        expected_masks, expected_iou = MaskDecoder.predict_masks(decoder, image, position, prompts,
                                                                 torch.zeros(1, 64, 16, 16))
        masks, iou, _tokens, source = decoder.decode(image, position, prompts)
    assert masks.shape == expected_masks.shape == (3, 4, 64, 64) and source.shape == (3, 256, 64)
    assert torch.allclose(masks, expected_masks, atol=1e-4)
    assert torch.allclose(iou, expected_iou, atol=1e-5)
    assert not torch.allclose(masks[0], masks[1], atol=1e-2)  # each prompt its own masks


def test_hi_sams_heads_in_bands_give_the_whole_heads_rows() -> None:
    """A high-resolution head run a band of rows at a time (each band reading the rows its 3×3 convolutions need)
    gives the whole head's values, bands of uneven height included; a layer it cannot band is refused."""
    from engine.models.hi_sam_modules import _refinement, in_bands, use_fused_layer_norms

    torch.manual_seed(13)
    head = use_fused_layer_norms(_refinement(8, upscale=False)).eval()
    for module in head:
        if getattr(module, "bias", None) is not None:
            module.bias.data.normal_(0, 0.5)
    image = torch.randn(2, 8, 21, 17)
    with torch.inference_mode():
        whole = head(image)
        for rows in (1, 4, 8, 21, 64):  # 21 bands of 1 … one band
            assert torch.allclose(in_bands(head, image, rows), whole, atol=1e-5), rows
        shifted = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3))  # no padding: the output is smaller
        with pytest.raises(TypeError, match="same-size"):
            in_bands(shifted, image, 4)
