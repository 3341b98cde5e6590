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


def load(files: ModelFiles, device: str) -> GroundingDinoNetwork:
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    model = from_folder(AutoModelForZeroShotObjectDetection, files).eval()
    processor = from_folder(AutoProcessor, files)
    return GroundingDinoNetwork(model, processor, "cpu", size_in_bytes(model)).to(device)
