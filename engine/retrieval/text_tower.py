"""A CLIP text tower exported to ONNX, so that a query is embedded without torch.

A curator's script that runs ``marginalia search`` in a loop paid 6 s per call
importing torch and open_clip and loading both towers to embed one sentence.
The text tower alone, exported once from the installed weights (the first time
the model embeds text in a process that has torch), runs under ONNX Runtime;
its tokenizer is the same byte-pair vocabulary written as a ``tokenizers`` file,
with open_clip's own text cleaning (ftfy, HTML entities, spaces, lower case).
The export is checked against torch before it is kept (tokens equal, vectors at
cosine ≥ 0.9999), in a folder beside the weights named by their checksum.

Shapes: texts (N) → tokens ``[N, L]`` int64 (L = 77) → unit vectors ``[N, D]`` float32.
Only open_clip's own tokenizer (the LAION/OpenAI CLIP models) is exported; the
multilingual model's XLM-RoBERTa tower keeps the torch path.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import MarginaliaError
from engine.models.derived import export_atomically, onnx_session

log = logging.getLogger(__name__)
VERSION = 2
_CHECK_TEXTS = ("a coat of arms", "Wappen mit Löwe, 17. Jh.", "decorated initial 'S' — ſchöne Fraktur",
                "&amp; 中文 🦁 it's", "x " * 100)


def tower_folder(weights_folder: Path, checksum: str) -> Path:
    return weights_folder / "derived" / f"clip-text-{checksum[:16]}-v{VERSION}"


def _clean(text: str) -> str:
    """open_clip's cleaning for its byte-pair tokenizer: mojibake fixed, entities decoded, spaces, lower case.

    Printable ASCII holds no mojibake or terminal codes for ftfy to fix, so ftfy (a tenth of a second to
    import) is left out for it; the test compares tokens with open_clip's on both kinds of text.
    """
    if not (text.isascii() and text.isprintable()):
        import ftfy

        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).strip().lower()


class OnnxTextTower:
    """The exported tower: ``encode(texts)`` → ``[N, D]`` unit vectors; no torch imported."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        meta = json.loads((folder / "tower.json").read_text(encoding="utf-8"))
        self.context_length = int(meta["context_length"])
        self.end_of_text = int(meta["end_of_text"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # Repacking the weights for faster products takes half of a cold start and pays off only over many
        # queries; a query from the command line is one (0.25 s to open instead of 0.5, measured).
        self.session = onnx_session(folder / "text.onnx", prepacking=False)

    def tokens(self, texts: list[str]) -> np.ndarray:
        """``[N, L]`` int64, as open_clip's tokenizer gives them (start, text, end, zeros; cut at L)."""
        result = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, encoding in enumerate(self.tokenizer.encode_batch([_clean(text) for text in texts])):
            ids = encoding.ids[:self.context_length]
            if len(encoding.ids) > self.context_length:
                ids[-1] = self.end_of_text
            result[row, :len(ids)] = ids
        return result

    def encode(self, texts: list[str]) -> np.ndarray:
        (vectors,) = self.session.run(None, {"tokens": self.tokens(texts)})
        return vectors


def open_tower(weights_folder: Path, checksum: str) -> OnnxTextTower | None:
    """The exported tower of these weights, or ``None`` when it was never exported (or cannot be read)."""
    folder = tower_folder(weights_folder, checksum)
    if not (folder / "text.onnx").is_file():
        return None
    try:
        return OnnxTextTower(folder)
    except Exception as error:  # noqa: BLE001 - a damaged export: the torch path still works
        log.warning("The exported text tower in %s cannot be used: %s", folder, error)
        return None


def export_tower(network: Any, target: Path) -> Path:
    """Export ``network``'s (a loaded ``ClipNetwork``) text tower and tokenizer into ``target``, checked
    against torch; on the model's thread. Refuses tokenizers other than open_clip's own."""
    import torch
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = network.tokenizer
    if not isinstance(tokenizer, SimpleTokenizer):
        raise MarginaliaError("Only open_clip's own tokenizer is exported; this model keeps the torch path.")
    model = network.model

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, tokens: Any) -> Any:
            return torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def write(work: Path) -> None:
        _write_tokenizer(tokenizer, work)
        end = tokenizer.encoder["<end_of_text>"]
        (work / "tower.json").write_text(json.dumps({"context_length": tokenizer.context_length,
                                                     "end_of_text": end}), encoding="utf-8")
        example = tokenizer(list(_CHECK_TEXTS[:2]))
        fast_path = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel has no ONNX form
        try:
            with torch.inference_mode(False), torch.no_grad():
                torch.onnx.export(TextTower().eval(), (example,), str(work / "text.onnx"), input_names=["tokens"],
                                  output_names=["vectors"],
                                  dynamic_axes={"tokens": {0: "texts"}, "vectors": {0: "texts"}},
                                  opset_version=17, dynamo=False)
        finally:
            torch.backends.mha.set_fastpath_enabled(fast_path)
        _weights_beside(work / "text.onnx")
        _check(OnnxTextTower(work), network, list(_CHECK_TEXTS))

    return export_atomically(target, "text.onnx", write)


def _weights_beside(path: Path) -> None:
    """Move the weights out of the graph file into ``text.weights``, which ONNX Runtime maps instead of
    parsing: the session opens in 0.08 s instead of 0.4 (ViT-B-32's text tower, measured)."""
    import onnx

    model = onnx.load(str(path))
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="text.weights", size_threshold=1024)


def _write_tokenizer(tokenizer: Any, folder: Path) -> None:
    """open_clip's vocabulary and merges as a ``tokenizers`` file (CLIP's byte-level BPE)."""
    from transformers import CLIPTokenizerFast

    (folder / "vocab.json").write_text(json.dumps(tokenizer.encoder), encoding="utf-8")
    merges = sorted(tokenizer.bpe_ranks.items(), key=lambda item: item[1])
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for (a, b), _ in merges),
                                       encoding="utf-8")
    fast = CLIPTokenizerFast(str(folder / "vocab.json"), str(folder / "merges.txt"), bos_token="<start_of_text>",
                             eos_token="<end_of_text>", unk_token="<end_of_text>", pad_token="<end_of_text>")
    fast.backend_tokenizer.save(str(folder / "tokenizer.json"))
    for scratch in ("vocab.json", "merges.txt"):
        (folder / scratch).unlink()


def _check(tower: OnnxTextTower, network: Any, texts: list[str]) -> None:
    expected = network.tokenizer(texts).numpy()
    if not np.array_equal(tower.tokens(texts), expected):
        raise MarginaliaError("The exported tokenizer does not reproduce open_clip's tokens.")
    cosines = (tower.encode(texts) * network.encode_texts(texts).cpu().numpy()).sum(axis=1)
    if cosines.min() < 0.9999:
        raise MarginaliaError(f"The exported text tower drifts from torch (cosine {cosines.min():.5f}).")
