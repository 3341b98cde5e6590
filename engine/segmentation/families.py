"""What differs between SAM families for the segmenter, registered by the catalogue's ``family`` name.

* ``sam`` (segment-anything ViT-B/L/H): the page fits the 1024² frame by its longer
  side and is padded; one embedding ``[256, 64, 64]``; the decoder split in three
  ONNX graphs (``graphs.py``).
* ``sam2`` (SAM 2.1 Hiera through ``transformers``): the page is stretched to the
  square, as SAM 2 was trained; the embedding plus two high-resolution feature
  maps; one ONNX graph (``sam2_decoder.py``).

Each family gives the segmenter the same things: how to frame a page, how to
encode frames on the model's thread, and its prompt decoders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.errors import MarginaliaError
from engine.jobs import CancelToken
from engine.models.catalogue import get_spec
from engine.segmentation.decoder import PromptDecoder
from engine.segmentation.embeddings import as_stored

Encoded = tuple[np.ndarray, dict[str, np.ndarray]]  # features [C, 64, 64] and the family's extras


class SegmenterFamily(Protocol):
    stretch: bool  # how a page is put into the square input frame (see ``InputFrame.stretch``)
    segments_everything: bool

    def encode(self, network: Any, images: Sequence[np.ndarray], cancel: CancelToken | None) -> list[Encoded]: ...

    def graphs(self, network: Any) -> Any: ...

    def onnx_decoder(self, graphs: Any, weights_folder: Path, checkpoint: str) -> PromptDecoder: ...

    def torch_decoder(self, graphs: Any) -> PromptDecoder: ...


@dataclass(frozen=True)
class SegmentAnything:
    stretch: bool = False
    segments_everything: bool = True

    def encode(self, network: Any, images: Sequence[np.ndarray], cancel: CancelToken | None) -> list[Encoded]:
        from engine.segmentation.segmenter import encode_batch

        return [(features, {}) for features in encode_batch(network, images, cancel)]

    def graphs(self, network: Any) -> Any:
        from engine.segmentation.graphs import decoder_graphs

        return decoder_graphs(network.sam)

    def onnx_decoder(self, graphs: Any, weights_folder: Path, checkpoint: str) -> PromptDecoder:
        from engine.segmentation.decoder import OnnxPromptDecoder, export_decoder, onnx_folder

        return OnnxPromptDecoder(export_decoder(graphs, onnx_folder(weights_folder, checkpoint)))

    def torch_decoder(self, graphs: Any) -> PromptDecoder:
        from engine.segmentation.decoder import TorchPromptDecoder

        return TorchPromptDecoder(graphs)


@dataclass(frozen=True)
class SegmentAnything2:
    stretch: bool = True
    segments_everything: bool = False

    def encode(self, network: Any, images: Sequence[np.ndarray], cancel: CancelToken | None) -> list[Encoded]:
        """Frames ``[1024, 1024, 3]`` uint8 → features and high-resolution maps, one image at a time so that a
        cancel takes effect between pages (a Hiera-tiny page takes 1–3 s on a laptop CPU)."""
        encoded = []
        for image in images:
            if cancel is not None:
                cancel.raise_if_cancelled()
            embedding, high_0, high_1 = network.encode(network.pixels([image]), cancel)
            encoded.append((as_stored(embedding[0].cpu().numpy()),
                            {"high_res_0": as_stored(high_0[0].cpu().numpy()),
                             "high_res_1": as_stored(high_1[0].cpu().numpy())}))
        return encoded

    def graphs(self, network: Any) -> Any:
        from engine.segmentation.sam2_decoder import Sam2Graphs

        return Sam2Graphs.of(network.model)

    def onnx_decoder(self, graphs: Any, weights_folder: Path, checkpoint: str) -> PromptDecoder:
        from engine.segmentation.decoder import OnnxPromptDecoder
        from engine.segmentation.sam2_decoder import SAM2_INPUTS, export_graphs, onnx_folder

        return OnnxPromptDecoder(export_graphs(graphs, onnx_folder(weights_folder, checkpoint)), SAM2_INPUTS)

    def torch_decoder(self, graphs: Any) -> PromptDecoder:
        from engine.segmentation.decoder import TorchPromptDecoder
        from engine.segmentation.sam2_decoder import SAM2_INPUTS

        return TorchPromptDecoder(graphs, SAM2_INPUTS)


FAMILIES: dict[str, SegmenterFamily] = {"sam": SegmentAnything(), "sam2": SegmentAnything2()}


def family_of(model_id: str) -> SegmenterFamily:
    spec = get_spec(model_id)
    try:
        return FAMILIES[spec.family]
    except KeyError:
        raise MarginaliaError(f"{spec.name} does not segment from clicks; choose a SAM model.") from None
