"""SAM's two-way transformer for prompts on one image, without the work that does not depend on them.

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
* image tokens stay in one contiguous ``[N, h·w, C]`` layout;
* in an export (the click decoders of ``engine/segmentation``), every size but the prompt's token count is a
  constant (:func:`static_size`), so that no shape arithmetic runs per click (SAM 2.1's click graph has 324
  operators, 452 before the folding and this; SAM's 209, from 277).

Folding pays while heads × T is below the projections' width (8 × 7 = 56 against 128 in SAM's decoder). The
same modules and parameters are used (checkpoints load unchanged), for SAM's blocks and SAM 2's alike
(:class:`Block` names their parts); the results equal the original's to float rounding
(``tests/test_fused_modules.py`` compares them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class Projections:
    """An attention's four projections and its heads, whatever the family calls them (SAM's ``Attention``:
    ``out_proj``, ``num_heads``; SAM 2's: ``o_proj``, ``num_attention_heads``)."""

    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    out: nn.Linear
    heads: int
    width: int  # per head

    @classmethod
    def of(cls, attention: Any) -> Projections:
        heads = int(getattr(attention, "num_heads", 0) or attention.num_attention_heads)
        out = attention.out_proj if hasattr(attention, "out_proj") else attention.o_proj
        return cls(attention.q_proj, attention.k_proj, attention.v_proj, out, heads, attention.internal_dim // heads)


@dataclass(frozen=True)
class Block:
    """One two-way attention block: the tokens' self-attention, the four layer norms, the MLP, and the two
    cross-attentions."""

    self_attention: Projections
    norms: tuple[nn.Module, nn.Module, nn.Module, nn.Module]
    mlp: nn.Module
    to_image: Projections
    to_tokens: Projections
    skip_first_layer_pe: bool

    @classmethod
    def of_sam(cls, layer: Any) -> Block:
        """segment-anything's ``TwoWayAttentionBlock``."""
        return cls(Projections.of(layer.self_attn), (layer.norm1, layer.norm2, layer.norm3, layer.norm4), layer.mlp,
                   Projections.of(layer.cross_attn_token_to_image), Projections.of(layer.cross_attn_image_to_token),
                   bool(layer.skip_first_layer_pe))


@dataclass(frozen=True)
class PreparedImage:
    """A first block's work on the image alone, done once per page (a click's decoder then skips it): the
    token-to-image attention's keys and values and the image-to-token attention's queries, ``[1, heads, P, d]``
    each, biases included."""

    keys: torch.Tensor
    values: torch.Tensor
    queries: torch.Tensor

    @classmethod
    def of(cls, block: Block, image: torch.Tensor, position: torch.Tensor) -> PreparedImage:
        """From the image tokens and their positional encoding, ``[1, P, C]`` each."""
        keyed = image + position
        return cls(_heads(block.to_image.k(keyed), block.to_image.heads),
                   _heads(block.to_image.v(image), block.to_image.heads),
                   _heads(block.to_tokens.q(keyed), block.to_tokens.heads))


def prompt_two_way(blocks: list[Block], final: Projections, final_norm: nn.Module, tokens: torch.Tensor,
                   image: torch.Tensor, position: torch.Tensor, prepared: PreparedImage,
                   kept: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-way transformer for one prompt, as a click's decoder runs it: tokens ``[1, T, C]``, the image tokens
    and their positional encoding ``[1, P, C]``, and the first block's ``prepared`` image side → the first ``kept``
    tokens ``[1, kept, C]`` (the rest, the points' own, are not read after the last block) and the image tokens
    ``[1, P, C]``. Every attention between the image and the tokens is folded."""
    queries, image = block_forward(blocks[0], tokens, image, tokens, position, prepared=prepared)
    for block in blocks[1:]:
        queries, image = block_forward(block, queries, image, tokens, position, fold=True)
    queries, tokens = queries[:, :kept], tokens[:, :kept]
    answer = tokens_to_image(final, queries + tokens, image + position, image, fold=True)
    return final_norm(queries + answer), image


def two_way(transformer: Any, image: torch.Tensor, image_pe: torch.Tensor,
            tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """segment-anything's ``TwoWayTransformer``: image and its positional encoding ``[1, C, h, w]``, prompt tokens
    ``[N, T, C]`` → the tokens ``[N, T, C]`` and image tokens ``[N, h·w, C]``, as
    ``transformer(image.repeat(N), image_pe.repeat(N), tokens)`` gives them."""
    image_tokens = image.flatten(2).transpose(1, 2).contiguous()  # [1, hw, C]
    position = image_pe.flatten(2).transpose(1, 2).contiguous()
    queries, keys = tokens, image_tokens  # keys: [1, hw, C] until the first image-to-token attention makes it N
    for layer in transformer.layers:
        queries, keys = block_forward(Block.of_sam(layer), queries, keys, tokens, position)
    if keys.shape[0] != tokens.shape[0]:  # no layer: the image itself, once per prompt
        keys = keys.expand(tokens.shape[0], -1, -1)
    final = tokens_to_image(Projections.of(transformer.final_attn_token_to_image), queries + tokens, keys + position,
                            keys)
    return transformer.norm_final_attn(queries + final), keys


def block_forward(block: Block, queries: torch.Tensor, keys: torch.Tensor, token_pe: torch.Tensor,
                  position: torch.Tensor, *, fold: bool | None = None,
                  prepared: PreparedImage | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One two-way block on tokens ``[N, T, C]`` and image tokens ``[1 or N, P, C]`` (``position`` ``[1, P, C]``)
    → tokens ``[N, T, C]``, image tokens ``[N, P, C]`` (``fold``: see :func:`tokens_to_image`; ``prepared``: this
    block's image side, made before)."""
    first, second, third, fourth = block.norms
    if block.skip_first_layer_pe:
        queries = token_attention(block.self_attention, queries, queries, queries)
    else:
        query = queries + token_pe
        queries = queries + token_attention(block.self_attention, query, query, queries)
    queries = first(queries)
    if prepared is None:
        keyed = keys + position
        answer = tokens_to_image(block.to_image, queries + token_pe, keyed, keys, fold=fold)
    else:
        keyed = keys  # not read: the image's queries are prepared
        answer = _attend_projected(block.to_image, queries + token_pe, prepared.keys, prepared.values)
    queries = second(queries + answer)
    queries = third(queries + block.mlp(queries))
    return queries, fourth(keys + image_to_tokens(block.to_tokens, keyed, queries + token_pe, queries,
                                                  prepared.queries if prepared is not None else None))


def tokens_to_image(attention: Projections, tokens: torch.Tensor, keyed: torch.Tensor,
                    image: torch.Tensor, *, fold: bool | None = None) -> torch.Tensor:
    """``Attention(q=tokens [N, T, C], k=keyed, v=image)``, the image ``[1 or N, P, C]`` → ``[N, T, C]``.

    ``fold``: whether to fold the image's projections into the tokens' side; by default only when each prompt
    has its own image (one image shared by N prompts is projected once instead)."""
    if not (image.shape[0] != 1 if fold is None else fold):
        return _attend(attention, tokens, keyed, image)
    count, channels = static_size(tokens, 0), static_size(tokens, 2)
    heads, width = attention.heads, attention.width
    queries = attention.q(tokens).reshape(count, -1, heads, width)
    folded = torch.einsum("nthd,hdc->nhtc", queries, attention.k.weight.view(heads, width, channels))
    scores = folded.reshape(count, -1, channels) @ keyed.transpose(1, 2) / math.sqrt(width)  # [N, H·T, P]
    mixed = torch.softmax(scores, dim=-1) @ image  # [N, H·T, C]
    values = torch.einsum("nhtc,hdc->nthd", mixed.reshape(count, heads, -1, channels),
                          attention.v.weight.view(heads, width, channels))
    values = values + attention.v.bias.view(heads, width)
    return attention.out(values.reshape(count, -1, heads * width))


def image_to_tokens(attention: Projections, keyed: torch.Tensor, tokens: torch.Tensor, token_values: torch.Tensor,
                    image_queries: torch.Tensor | None = None) -> torch.Tensor:
    """``Attention(q=keyed [1 or N, P, C], k=tokens, v=token_values [N, T, C])`` → ``[N, P, C]``.

    ``image_queries``: the image's query projection already made (``[1, heads, P, d]``, bias included), as a
    page's first block has it; ``keyed`` is then not read."""
    count, channels = static_size(tokens, 0), static_size(tokens, 2)
    heads, width = attention.heads, attention.width
    keys = attention.k(tokens).reshape(count, -1, heads, width) / math.sqrt(width)
    if image_queries is not None:
        pixels = static_size(image_queries, 2)
        scores = image_queries @ keys.permute(0, 2, 3, 1)  # [N, H, P, T]
        weights = torch.softmax(scores, dim=-1).transpose(1, 2).reshape(count, pixels, -1)
    else:
        pixels = static_size(keyed, 1)
        folded = torch.einsum("hdc,nthd->nhtc", attention.q.weight.view(heads, width, channels), keys)
        offset = torch.einsum("hd,nthd->nht", attention.q.bias.view(heads, width), keys)
        keyed = keyed if keyed.shape[0] == count else keyed.expand(count, -1, -1)  # an export copies an expand
        folded = folded.reshape(count, -1, channels)  # [N, H·T, C]
        if torch.onnx.is_in_onnx_export():  # an exported baddbmm scales both terms by 1: two passes more
            scores = keyed @ folded.transpose(1, 2) + offset.reshape(count, 1, -1)  # [N, P, H·T]
            weights = torch.softmax(scores.reshape(count, pixels, heads, -1), dim=-1).reshape(count, pixels, -1)
        else:
            # Image tokens last: torch's softmax over a head's T tokens then runs along the P image tokens in vector
            # registers, where over a last dimension T wide it took twice as long as the two products around it.
            scores = torch.baddbmm(offset.reshape(count, -1, 1), folded, keyed.transpose(1, 2))  # [N, H·T, P]
            weights = torch.softmax(scores.view(count, heads, -1, pixels), dim=2).view(count, -1, pixels).mT
    values = attention.v(token_values).reshape(count, -1, heads, width)
    outputs = torch.einsum("nthd,chd->nhtc", values, attention.out.weight.view(channels, heads, width))
    # Each head's weights sum to 1, so out_proj's bias shared among the heads' outputs adds it once per image token.
    outputs = outputs.reshape(count, -1, channels) + attention.out.bias / heads
    return weights @ outputs


def token_attention(attention: Projections, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The attention among a prompt's tokens (``[N, T, C]`` each → ``[N, T, C]``), as SAM's and SAM 2's own,
    with the token count left free in an export's shapes (theirs compute every shape from the tensors')."""
    count, heads, width = static_size(q, 0), attention.heads, attention.width
    query, key, value = (projection(x).reshape(count, -1, heads, width).transpose(1, 2)
                         for projection, x in ((attention.q, q), (attention.k, k), (attention.v, v)))
    weights = torch.softmax(query @ key.transpose(2, 3) / math.sqrt(width), dim=-1)
    return attention.out((weights @ value).transpose(1, 2).reshape(count, -1, heads * width))


def static_size(x: torch.Tensor, dim: int) -> int:
    """``x.shape[dim]``, as a constant in an export (a traced size costs operators on every run). Only for sizes
    that do not vary between runs of the exported graph (the batch, channels, image tokens)."""
    size = x.shape[dim]
    return int(size) if torch.onnx.is_in_onnx_export() else size


def stacked_mlps(mlps: list[list[nn.Linear]], rows: torch.Tensor) -> torch.Tensor:
    """M small MLPs of the same shape (their linear layers, ReLU between), the i-th on row i of ``rows [M, C]``
    → ``[M, D]``: one batched product a layer instead of one per MLP (SAM's hypernetworks: four on one row each;
    an export's twelve products and their plumbing become three)."""
    x = rows[:, None]  # [M, 1, C]
    depth = len(mlps[0])
    for index in range(depth):
        weights = torch.stack([mlp[index].weight for mlp in mlps]).transpose(1, 2)  # [M, in, out]
        x = x @ weights + torch.stack([mlp[index].bias for mlp in mlps])[:, None]
        if index < depth - 1:
            x = F.relu(x)
    return x[:, 0]


def _attend(attention: Projections, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The attention on ``q [Bq, Nq, C]``, ``k``/``v [Bk, Nk, C]`` where a batch of 1 stands for every prompt
    (projected once, broadcast) → ``[max(Bq, Bk), Nq, C]``."""
    heads = attention.heads
    query = _heads(attention.q(q), heads)
    key, value = _heads(attention.k(k), heads), _heads(attention.v(v), heads)
    batch = max(query.shape[0], key.shape[0])
    query, key, value = (x.expand(batch, -1, -1, -1) for x in (query, key, value))
    out = F.scaled_dot_product_attention(query, key, value)  # [B, heads, Nq, d]
    return attention.out(out.transpose(1, 2).reshape(batch, q.shape[1], -1))


def _attend_projected(attention: Projections, q: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """The attention of tokens ``q [1, T, C]`` on keys and values already projected (``[1, heads, P, d]``)
    → ``[1, T, C]``."""
    heads, width = attention.heads, attention.width
    weights = torch.softmax(_heads(attention.q(q), heads) @ key.transpose(2, 3) / math.sqrt(width), dim=-1)
    return attention.out((weights @ value).transpose(1, 2).reshape(static_size(q, 0), -1, heads * width))


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, N, C]`` → ``[B, heads, N, C / heads]``."""
    return x.reshape(static_size(x, 0), -1, heads, static_size(x, 2) // heads).transpose(1, 2)
