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
