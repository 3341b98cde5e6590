"""SAM's two-way transformer for many prompts on one image, without the work that does not depend on them.

``segment_anything``'s ``TwoWayTransformer`` is given the image repeated once per prompt (``[N, C, h, w]``) and
projects every image token of every copy to queries, keys, values and back (``[N, h·w, C] × [C, C/2]``, four to
ten times per prompt), and its ``keys + key_pe`` adds a contiguous tensor to a permuted view (three to four times
slower on a CPU than two of one layout). Here:

* the image comes once (``[1, C, h, w]``): the first token-to-image attention projects it once for all prompts;
* an attention between the image tokens and a prompt's few tokens (T = 7) never projects the image tokens: the
  projections are folded into the tokens' side, where they cost T rows instead of h·w. Per head h (q, k, v the
  projections, W their weights, b their biases, d the head width):
  image→tokens ``softmax((X W_qₕᵀ + b_qₕ) kₕᵀ/√d) vₕ W_oₕᵀ = softmax(X (W_qₕᵀ kₕᵀ/√d) + b_qₕ kₕᵀ/√d) (vₕ W_oₕᵀ)``;
  tokens→image ``softmax(qₕ (X W_kₕᵀ + b_kₕ)ᵀ/√d) (X W_vₕᵀ + b_vₕ) = softmax((qₕ W_kₕ/√d) Xᵀ) X W_vₕᵀ + b_vₕ``
  (a term constant along the image tokens does not change a softmax; a softmax's weights sum to 1);
* image tokens stay in one contiguous ``[N, h·w, C]`` layout.

The same modules and parameters are used (checkpoints load unchanged); the results equal the original's to
float rounding (``tests/test_fused_modules.py`` compares them).
"""

from __future__ import annotations

import math

import torch
from segment_anything.modeling.transformer import Attention, TwoWayTransformer
from torch.nn import functional as F


def two_way(transformer: TwoWayTransformer, image: torch.Tensor, image_pe: torch.Tensor,
            tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """image and its positional encoding ``[1, C, h, w]``, prompt tokens ``[N, T, C]`` → the tokens ``[N, T, C]``
    and image tokens ``[N, h·w, C]``, as ``transformer(image.repeat(N), image_pe.repeat(N), tokens)`` gives them."""
    image_tokens = image.flatten(2).transpose(1, 2).contiguous()  # [1, hw, C]
    position = image_pe.flatten(2).transpose(1, 2).contiguous()
    queries, token_pe = tokens, tokens
    keys = image_tokens  # [1, hw, C] until the first image-to-token attention makes it [N, hw, C]
    for layer in transformer.layers:
        if layer.skip_first_layer_pe:
            queries = layer.self_attn(q=queries, k=queries, v=queries)
        else:
            query = queries + token_pe
            queries = queries + layer.self_attn(q=query, k=query, v=queries)
        queries = layer.norm1(queries)
        keyed = keys + position
        queries = layer.norm2(queries + _tokens_to_image(layer.cross_attn_token_to_image, queries + token_pe, keyed,
                                                         keys))
        queries = layer.norm3(queries + layer.mlp(queries))
        keys = layer.norm4(keys + _image_to_tokens(layer.cross_attn_image_to_token, keyed, queries + token_pe,
                                                   queries))
    if keys.shape[0] != tokens.shape[0]:  # no layer: the image itself, once per prompt
        keys = keys.expand(tokens.shape[0], -1, -1)
    final = _tokens_to_image(transformer.final_attn_token_to_image, queries + token_pe, keys + position, keys)
    return transformer.norm_final_attn(queries + final), keys


def _tokens_to_image(attention: Attention, tokens: torch.Tensor, keyed: torch.Tensor,
                     image: torch.Tensor) -> torch.Tensor:
    """SAM's ``Attention(q=tokens [N, T, C], k=keyed, v=image)``, the image ``[1 or N, P, C]`` → ``[N, T, C]``."""
    if image.shape[0] == 1:  # one image for every prompt: projected once
        return _attend(attention, tokens, keyed, image)
    count, length, channels = tokens.shape
    heads = attention.num_heads
    width = attention.internal_dim // heads
    queries = attention.q_proj(tokens).view(count, length, heads, width)
    folded = torch.einsum("nthd,hdc->nhtc", queries, attention.k_proj.weight.view(heads, width, channels))
    scores = folded.reshape(count, heads * length, channels) @ keyed.transpose(1, 2) / math.sqrt(width)
    mixed = torch.softmax(scores, dim=-1) @ image  # [N, H·T, C]
    values = torch.einsum("nhtc,hdc->nthd", mixed.view(count, heads, length, channels),
                          attention.v_proj.weight.view(heads, width, channels))
    values = values + attention.v_proj.bias.view(heads, width)
    return attention.out_proj(values.reshape(count, length, heads * width))


def _image_to_tokens(attention: Attention, keyed: torch.Tensor, tokens: torch.Tensor,
                     token_values: torch.Tensor) -> torch.Tensor:
    """SAM's ``Attention(q=keyed [1 or N, P, C], k=tokens, v=token_values [N, T, C])`` → ``[N, P, C]``."""
    count, length, channels = tokens.shape
    heads = attention.num_heads
    width = attention.internal_dim // heads
    keys = attention.k_proj(tokens).view(count, length, heads, width) / math.sqrt(width)
    folded = torch.einsum("hdc,nthd->nhtc", attention.q_proj.weight.view(heads, width, channels), keys)
    offset = torch.einsum("hd,nthd->nht", attention.q_proj.bias.view(heads, width), keys)
    scores = torch.baddbmm(offset.reshape(count, 1, heads * length), keyed.expand(count, -1, -1),
                           folded.reshape(count, heads * length, channels).transpose(1, 2))  # [N, P, H·T]
    weights = torch.softmax(scores.view(count, -1, heads, length), dim=-1).view(count, -1, heads * length)
    values = attention.v_proj(token_values).view(count, length, heads, width)
    outputs = torch.einsum("nthd,chd->nhtc", values, attention.out_proj.weight.view(channels, heads, width))
    # Each head's weights sum to 1, so out_proj's bias shared among the heads' outputs adds it once per image token.
    outputs = outputs.reshape(count, heads * length, channels) + attention.out_proj.bias / heads
    return weights @ outputs


def _attend(attention: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """SAM's ``Attention`` on ``q [Bq, Nq, C]``, ``k``/``v [Bk, Nk, C]`` where a batch of 1 stands for every prompt
    (projected once, broadcast) → ``[max(Bq, Bk), Nq, C]``."""
    heads = attention.num_heads
    query = _heads(attention.q_proj(q), heads)
    key, value = _heads(attention.k_proj(k), heads), _heads(attention.v_proj(v), heads)
    batch = max(query.shape[0], key.shape[0])
    query, key, value = (x.expand(batch, -1, -1, -1) for x in (query, key, value))
    out = F.scaled_dot_product_attention(query, key, value)  # [B, heads, Nq, d]
    return attention.out_proj(out.transpose(1, 2).reshape(batch, q.shape[1], -1))


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, N, C]`` → ``[B, heads, N, C / heads]``."""
    batch, count, channels = x.shape
    return x.view(batch, count, heads, channels // heads).transpose(1, 2)
