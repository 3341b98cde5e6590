"""Grounding DINO (``IDEA-Research/grounding-dino-*``) through ``transformers``.

The processor resizes an image (shorter side 800 for the published models),
tokenizes the phrases as ``"phrase one. phrase two."``; the model maps
pixels ``[1, 3, H, W]`` and tokens ``[1, L]`` to ``logits [1, Q, 256]``
(per query and text position) and ``pred_boxes [1, Q, 4]`` (cx, cy, w, h in
0..1), Q = 900 queries. ``detect`` turns them into boxes in image pixels.
It runs in float32: its deformable attention is not reliable in half precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.models.adapters import ModelFiles
from engine.models.adapters.hf import from_folder
from engine.models.adapters.weights import size_in_bytes


# Not on CPUs: measured on the SBB page at 800 px (2 threads), the Swin backbone under bf16 autocast took the
# whole detection from 10.5 s to 9.7 s, and the whole model from 15.7 s to 9.9 s; but the boxes and scores
# moved far (random weights: score correlation 0.15), and without real weights here that cannot be shown
# faithful, so Grounding DINO computes in float32 on a CPU (and, as before, on GPUs).
HALF_ON_CPU = False


@dataclass(frozen=True, slots=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    score: float
    phrase: str


@dataclass
class GroundingDinoNetwork:
    model: Any
    processor: Any
    device: str
    size_bytes: int

    def to(self, device: str) -> GroundingDinoNetwork:
        self.model.to(device)
        self.device = device
        return self

    @property
    def input_side(self) -> int:
        """The shorter side the processor resizes an image to (800 for the published models)."""
        size = self.processor.image_processor.size
        return int(size.get("shortest_edge") or min(size.get("height", 800), size.get("width", 800)))

    @property
    def input_long_side(self) -> int:
        """The longest side the processor lets an image keep (1333 for the published models)."""
        size = self.processor.image_processor.size
        return int(size.get("longest_edge") or max(size.get("height", 1333), size.get("width", 1333)))

    def detect(self, image: Any, phrases: list[str], *, box_threshold: float = 0.35,
               text_threshold: float = 0.25) -> list[Detection]:
        """Boxes for ``phrases`` on a PIL image, best first."""
        import torch

        prompt = " ".join(f"{phrase.strip().lower().rstrip('.')}." for phrase in phrases if phrase.strip())
        inputs = self.processor(images=image.convert("RGB"), text=prompt, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        found = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
            target_sizes=[(image.height, image.width)])[0]
        boxes = found["boxes"].cpu()  # predicted boxes may reach past the page's edges
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, image.width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, image.height)
        detections = [Detection(tuple(float(v) for v in box), float(score), str(label))  # type: ignore[arg-type]
                      for box, score, label in zip(boxes, found["scores"].cpu(), found["text_labels"], strict=True)]
        return sorted(detections, key=lambda d: d.score, reverse=True)


    def prompt(self, phrases: list[str]) -> str:
        """Phrases as the model reads them: lower case, each ended by a full stop."""
        return " ".join(f"{phrase.strip().lower().rstrip('.')}." for phrase in phrases if phrase.strip())

    def raw_outputs(self, images: list[Any], phrases: list[str]) -> list[RawOutput]:
        """Everything the model says about each PIL image for ``phrases``, before any threshold: what
        transformers' post-processing reads, so that thresholds can be changed later without the model.
        One batch: on a GPU pass several tiles at once."""
        import torch

        prompt = self.prompt(phrases)
        inputs = self.processor(images=[image.convert("RGB") for image in images], text=[prompt] * len(images),
                                return_tensors="pt", padding=True).to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        probs = torch.sigmoid(outputs.logits.float())  # [B, Q, 256]: per query and text position
        scores = probs.max(dim=-1).values  # [B, Q], as post-processing scores a query
        input_ids = inputs["input_ids"][0].cpu()
        length = int(inputs["attention_mask"][0].sum())
        token_phrase = self._token_phrases(prompt, phrases, input_ids[:length].tolist())
        return [RawOutput(boxes=outputs.pred_boxes[i].float().cpu().numpy(), scores=scores[i].cpu().numpy(),
                          probs=probs[i, :, :length].cpu().numpy(), token_phrase=token_phrase)
                for i in range(len(images))]

    def _token_phrases(self, prompt: str, phrases: list[str], input_ids: list[int]) -> Any:
        """For each text position, the index of the phrase it belongs to (-1: a full stop or special token)."""
        import numpy as np

        encoded = self.processor.tokenizer(prompt, return_offsets_mapping=True)
        if list(encoded["input_ids"]) != input_ids:
            raise RuntimeError("The tokenizer read the phrases differently from the model's processor.")
        spans, start = [], 0
        for phrase in phrases:
            text = phrase.strip().lower().rstrip(".")
            at = prompt.index(text, start)
            spans.append((at, at + len(text)))
            start = at + len(text)
        owner = np.full(len(input_ids), -1, dtype=np.int16)
        for position, (begin, end) in enumerate(encoded["offset_mapping"]):
            if end > begin:
                owner[position] = next((index for index, (a, b) in enumerate(spans) if a <= begin and end <= b), -1)
        return owner


@dataclass(frozen=True)
class RawOutput:
    """One image's raw detection output. ``boxes [Q, 4]``: (cx, cy, w, h) in 0..1 of the image;
    ``scores [Q]``: each query's best text-position probability; ``probs [Q, L]``: per text position;
    ``token_phrase [L]``: the phrase each position belongs to (-1 for none). Q = the model's queries."""

    boxes: Any
    scores: Any
    probs: Any
    token_phrase: Any


def load(files: ModelFiles, device: str) -> GroundingDinoNetwork:
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    model = from_folder(AutoModelForZeroShotObjectDetection, files).eval()
    processor = from_folder(AutoProcessor, files)
    return GroundingDinoNetwork(model, processor, "cpu", size_in_bytes(model)).to(device)
