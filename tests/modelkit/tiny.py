"""Randomly initialised models of every family, in the publishers' on-disk formats.

Each builder writes into a folder exactly the files the catalogue names for a
model (a segment-anything ``.pth`` state dict; ``transformers`` folders with a
tokenizer built offline; open_clip weights with their ``open_clip_config.json``),
built with the real architectures, so that tests go through the real download,
verification and loading code. ``write_tiny`` makes them small (for tests);
``write_full_size`` gives them the published shapes, so that their compute and
memory equal the real model's (for benchmarks). Builders are keyed by the
catalogue's family. Weights are seeded: the same files every time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from engine.models.catalogue import HubSource, ModelSpec, get_spec

TINY_CLIP_ARCHITECTURE = "marginalia-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
_CORPUS = ["a coat of arms", "Wappen eines Fürsten", "une carte du monde", "navis in tempestate",
           "ornamented initial letter", "Schiffe im Sturm", "lettrine ornée", "a map of the world"]

# The published models' shapes, from their config.json files (transformers families).
_TINY_VIT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "image_size": 64, "patch_size": 8}
_VIT_S = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "intermediate_size": 1536}
_VIT_B = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
PUBLISHED_SHAPES: dict[str, dict[str, object]] = {
    "dino-vits16": {**_VIT_S, "image_size": 224, "patch_size": 16},
    "dino-vits8": {**_VIT_S, "image_size": 224, "patch_size": 8},
    "dino-vitb16": {**_VIT_B, "image_size": 224, "patch_size": 16},
    "dinov2-reg-small": {**_VIT_S, "image_size": 518, "patch_size": 14, "num_register_tokens": 4},
    "dinov2-reg-base": {**_VIT_B, "image_size": 518, "patch_size": 14, "num_register_tokens": 4},
    "grounding-dino-tiny": {},  # transformers' defaults are the tiny model
    "grounding-dino-base": {"backbone": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32],
                                         "window_size": 12, "image_size": 384}},
    "xlm-roberta-base-text": {"vocab_size": 250002, "max_position_embeddings": 514, "type_vocab_size": 1},
}


def _sam(spec: ModelSpec, folder: Path, full: bool) -> None:
    import segment_anything

    from engine.models.adapters.sam import SamArchitecture

    if full:
        model = segment_anything.sam_model_registry[spec.options["variant"]]()
    else:
        model = SamArchitecture(**TINY_SAM).build()
    torch.save(model.state_dict(), folder / spec.files[0].filename)


TINY_SAM = dict(image_size=1024, patch_size=16, encoder_width=32, encoder_depth=2, encoder_heads=2,
                encoder_mlp_ratio=4.0, window_size=14, global_attention=(1,), prompt_width=32, mask_in_channels=16,
                decoder_depth=2, decoder_mlp_width=64, multimask_outputs=3, iou_head_depth=3, iou_head_width=32)
VIT_B_SAM = dict(image_size=1024, patch_size=16, encoder_width=768, encoder_depth=12, encoder_heads=12,
                 encoder_mlp_ratio=4.0, window_size=14, global_attention=(2, 5, 8, 11), prompt_width=256,
                 mask_in_channels=16, decoder_depth=2, decoder_mlp_width=2048, multimask_outputs=3, iou_head_depth=3,
                 iou_head_width=256)


def _hi_sam(spec: ModelSpec, folder: Path, full: bool) -> None:
    """As the authors publish it: what training changed (adapters, aligner, both decoders), wrapped in
    ``{"model": …}`` beside the epoch; the frozen ViT and prompt encoder come from SAM's own file."""
    from engine.models.adapters.hi_sam import HiSamArchitecture
    from engine.models.adapters.sam import SamArchitecture

    sam = SamArchitecture(**(VIT_B_SAM if full else TINY_SAM))
    weights = HiSamArchitecture(sam, prompt_tokens=12, aligner_layers=1, hierarchy=True).build().state_dict()
    trained = {key: value for key, value in weights.items()
               if not key.startswith(("image_encoder.", "prompt_encoder.")) or "Adapter" in key}
    torch.save({"model": trained, "epoch": 70}, folder / spec.files[0].filename)


def _register_tiny_clip() -> None:
    import open_clip

    if open_clip.get_model_config(TINY_CLIP_ARCHITECTURE) is None:
        open_clip.factory._MODEL_CONFIGS[TINY_CLIP_ARCHITECTURE] = json.loads(json.dumps(TINY_CLIP_CONFIG))


def _open_clip(spec: ModelSpec, folder: Path, full: bool) -> None:
    import open_clip

    _register_tiny_clip()
    model_cfg = json.loads(json.dumps(open_clip.get_model_config(spec.options["architecture"]) if full
                                      else TINY_CLIP_CONFIG))
    if spec.requires:  # multilingual: an XLM-RoBERTa text tower from the component's folder
        text_folder = folder.parent / spec.requires[0]
        _xlm_roberta(get_spec(spec.requires[0]), text_folder, full)
        text_cfg = {"hf_model_name": str(text_folder), "hf_tokenizer_name": str(text_folder),
                    "hf_pooler_type": "mean_pooler", "hf_model_pretrained": False}
        model = open_clip.CustomTextCLIP(**{**model_cfg, "text_cfg": text_cfg})
        model_cfg["text_cfg"] = {"hf_model_name": "xlm-roberta-base", "hf_tokenizer_name": "xlm-roberta-base",
                                 "hf_pooler_type": "mean_pooler"}
    else:
        model = open_clip.CLIP(**model_cfg)
    weights = folder / spec.files[0].filename
    if weights.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    else:
        torch.save(model.state_dict(), weights)
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                                                         "std": [0.26862954, 0.26130258, 0.27577711]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")


def _xlm_roberta(spec: ModelSpec, folder: Path, full: bool) -> None:
    """XLM-RoBERTa's configuration and a small SentencePiece-style (Unigram) tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaConfig

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(_CORPUS * 10, trainers.UnigramTrainer(
        vocab_size=200, show_progress=False, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        unk_token="<unk>"))
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer.save(str(folder / "tokenizer.json"))
    shape = PUBLISHED_SHAPES[spec.id] if full else {
        "vocab_size": tokenizer.get_vocab_size(), "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 80}
    XLMRobertaConfig(**shape, pad_token_id=1, bos_token_id=0, eos_token_id=2).save_pretrained(folder)


def _dino(spec: ModelSpec, folder: Path, full: bool) -> None:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    model = ViTModel(ViTConfig(**(PUBLISHED_SHAPES[spec.id] if full else _TINY_VIT)), add_pooling_layer=False)
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # the format facebook/dino-* publish
    side = model.config.image_size
    ViTImageProcessor(size={"height": side, "width": side}).save_pretrained(folder)


def _dinov2(spec: ModelSpec, folder: Path, full: bool) -> None:
    from transformers import BitImageProcessor, Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    shape = PUBLISHED_SHAPES[spec.id] if full else {**_TINY_VIT, "num_register_tokens": 4}
    model = Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**shape))
    model.save_pretrained(folder)
    side = 224 if full else 64
    BitImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side}).save_pretrained(folder)


def _grounding_dino(spec: ModelSpec, folder: Path, full: bool) -> None:
    from transformers import (BertConfig, BertTokenizerFast, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, SwinConfig)

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *sorted({w.lower() for line in _CORPUS
                                                                        for w in line.split()})]
    letters = "abcdefghijklmnopqrstuvwxyzäöüéè"
    vocabulary = [*words, *letters, *(f"##{c}" for c in letters)]
    if full:  # BERT's vocabulary size, so that the text embedding weighs what the real one does
        vocabulary += [f"[unused{i}]" for i in range(30522 - len(vocabulary))]
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(vocabulary)})
    tokenizer.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")  # as the hub has it
    special = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
               "unk_token": "[UNK]"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    if full:
        shape = PUBLISHED_SHAPES[spec.id]
        backbone = SwinConfig(**shape["backbone"], out_features=["stage2", "stage3", "stage4"]) \
            if "backbone" in shape else None
        config = GroundingDinoConfig(backbone_config=backbone)
        GroundingDinoImageProcessor().save_pretrained(folder)
    else:
        GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 256}).save_pretrained(folder)
        config = GroundingDinoConfig(
            backbone_config=SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7,
                                       out_features=["stage2", "stage3", "stage4"]),
            text_config=BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=64, max_position_embeddings=64),
            d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=64, decoder_ffn_dim=64, num_queries=30, max_text_len=32, encoder_n_points=2,
            decoder_n_points=2, use_timm_backbone=False, backbone=None, use_pretrained_backbone=False)
    GroundingDinoForObjectDetection(config).save_pretrained(folder)


SAM2_PUBLISHED = {"sam2.1-hiera-tiny": {"blocks_per_stage": [1, 2, 7, 2], "global_attention_blocks": [5, 7, 9]},
                  "sam2.1-hiera-small": {"blocks_per_stage": [1, 2, 11, 2], "global_attention_blocks": [7, 10, 13]}}


def _sam2(spec: ModelSpec, folder: Path, full: bool) -> None:
    """transformers' format, as facebook/sam2.1-hiera-* publish it: config.json and model.safetensors."""
    from transformers import Sam2Config, Sam2Model

    config = Sam2Config()  # transformers' defaults are Hiera-tiny
    backbone = config.vision_config.backbone_config
    if full:
        for name, value in SAM2_PUBLISHED[spec.id].items():
            setattr(backbone, name, value)
    else:  # the input side stays 1024 (64 × 64 embedding); every width shrinks
        width = 32
        backbone.hidden_size, backbone.embed_dim_per_stage = 8, [8, 16, 32, 64]
        backbone.num_attention_heads_per_stage, backbone.blocks_per_stage = [1, 1, 2, 2], [1, 1, 2, 1]
        backbone.global_attention_blocks = [3]
        config.vision_config.backbone_channel_list = [64, 32, 16, 8]
        config.vision_config.fpn_hidden_size = width
        config.prompt_encoder_config.hidden_size = width
        decoder = config.mask_decoder_config
        decoder.hidden_size, decoder.num_attention_heads, decoder.mlp_dim, decoder.iou_head_hidden_dim = \
            width, 2, 64, 32
    Sam2Model(config).save_pretrained(folder)


BUILDERS: dict[str, Callable[[ModelSpec, Path, bool], None]] = {
    "sam": _sam,
    "sam2": _sam2,
    "hi-sam": _hi_sam,
    "open-clip": _open_clip,
    "hf-text": _xlm_roberta,
    "dino": _dino,
    "dinov2": _dinov2,
    "grounding-dino": _grounding_dino,
}


def write_tiny(model_id: str, folder: Path) -> Path:
    """The tiny model's files for ``model_id`` in ``folder`` (only the names the catalogue lists)."""
    return _write(model_id, folder, full=False)


def write_full_size(model_id: str, folder: Path) -> Path:
    """Files with the published model's shapes (random weights): its load time, memory and compute."""
    return _write(model_id, folder, full=True)


def _write(model_id: str, folder: Path, *, full: bool) -> Path:
    from engine.models.adapters.hf import quiet_transformers

    quiet_transformers()
    spec = get_spec(model_id)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    BUILDERS[spec.family](spec, folder, full)
    listed = {file.filename for file in spec.files}
    for extra in folder.iterdir():  # e.g. processor_config.json, which the hub repositories lack
        if extra.is_file() and extra.name not in listed:
            extra.unlink()
    missing = [file.filename for file in spec.files if not file.optional and not (folder / file.filename).exists()]
    assert not missing, f"the {model_id} test model lacks {missing}"
    return folder


def tiny_spec(model_id: str) -> ModelSpec:
    """The catalogue entry with the publisher's sizes and checksums dropped (tiny files differ)."""
    spec = get_spec(model_id)
    source = spec.source
    if isinstance(source, HubSource):
        return replace(spec, source=replace(source, files=tuple(replace(f, size=None, sha256=None)
                                                                 for f in source.files)))
    return replace(spec, source=replace(source, file=replace(source.file, size=None, sha256=None)))
