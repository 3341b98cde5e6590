"""Reading a page's text with Hi-SAM: strokes, and words grouped in lines grouped in paragraphs.

For each window of the page (``engine.text.windows``): the image is encoded once; the S-Decoder gives
stroke logits (stitched over windows into the page's stroke mask); point prompts are chosen from the strokes'
structure and decoded by the H-Decoder in rounds (``engine.text.prompts``; ``TextOptions.points``: the authors'
random sampling, seeded: the same page gives the same result). As the authors do, points whose line score is
low are dropped, lines are de-duplicated with Matrix NMS (SOLOv2, Gaussian, σ = 2, best first) on their 256²
masks, lines whose paragraph masks overlap (IoU > 0.5) share a paragraph (union-find), and each connected piece
of a line's word mask is a word.

Across windows: pieces of one line seen by neighbouring windows (a line is often wider than a window)
are joined, words seen twice are kept once, and paragraphs sharing a line are one. Reading order is a
recursive XY cut of the paragraphs (columns stay columns), lines top to bottom, words left to right.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from engine.jobs import CancelToken
from engine.text.masks import PageMask, union
from engine.text.prompts import decode_in_rounds
from engine.text.windows import Window, might_hold_text, plan_windows

NMS_SIGMA = 2.0
IOU_COLUMNS = 4096  # mask pixels counted at once when comparing masks (a buffer of masks × this, in float32)
WORD_REACH = 8  # 256²-frame pixels (32 page pixels in a 1024 window) a line's words may reach beyond its mask


@dataclass(frozen=True)
class TextOptions:
    strokes: bool = True
    hierarchy: bool = True
    window: int | None = 1024  # page pixels per window (the model's own scale); None: the whole page at once
    stroke_threshold: float = 0.0  # logits above it are text
    line_score: float = 0.5  # a point's line is kept when its predicted IoU is above this
    nms_score: float = 0.5  # … and its score after Matrix NMS
    paragraph_affinity: float = 0.5  # paragraph-mask IoU that puts two lines in one paragraph
    word_threshold: float = 0.0
    points: int | None = None  # the authors' exhaustive sampling: this many random stroke pixels per window;
    #                            None: prompts from the strokes' structure, in rounds (engine.text.prompts)
    max_prompts: int = 256  # per window, for the structured prompts (more where the window holds more marks of ink:
    #                          engine.text.prompts.decode_in_rounds)
    skip_blank: bool = True  # windows without a stroke-like mark are not read (engine.text.windows.might_hold_text)
    batch: int | None = None  # points decoded at once; None: 100 on a GPU, 4 on a CPU (fastest per point there)
    min_word_area: int = 32  # pixels
    max_lines: int | None = None  # per window, best first; None: every line the prompts gave (one at most a prompt:
    #                                a window of small print in columns holds 250 lines, and 120 lost half of them)
    word_inputs_bytes: int = 256 * 1024**2  # per window: what the best lines' decodes leave for their words (the
    #                                         image tokens under a line's box: at most 2 MB in bf16, 4 MB in float32
    #                                         for the published models), so the lines finally kept are not decoded
    #                                         twice; lines beyond it (the lowest scores) are decoded again
    seed: int = 0


@dataclass
class FoundLine:
    mask: PageMask
    score: float
    words: list[PageMask] = field(default_factory=list)


@dataclass
class FoundParagraph:
    mask: PageMask
    score: float
    lines: list[FoundLine] = field(default_factory=list)


@dataclass
class PageText:
    """``strokes``: the page's stroke mask ``[H, W]`` bool (``None`` when not asked for)."""

    width: int
    height: int
    strokes: np.ndarray | None
    paragraphs: list[FoundParagraph]
    windows: int
    prompts: int = 0  # decoded by the H-Decoder (lines and paragraphs; the words of kept lines not counted)
    windows_skipped: int = 0  # nothing stroke-like in them: not read
    windows_cut: int = 0  # prompts stopped at ``max_prompts`` with ink still to prompt: lines may be missing


@dataclass
class LinePiece:
    """A line as one window saw it, with the window's paragraph group."""

    mask: PageMask
    score: float
    words: list[PageMask]
    group: tuple[int, int]


def read_text(network: object, image: np.ndarray, options: TextOptions = TextOptions(),
              cancel: CancelToken | None = None, progress: Callable[[int, int], None] | None = None) -> PageText:
    """``image``: the page, ``[H, W, 3]`` uint8 RGB; ``network``: a loaded Hi-SAM (``HiSamNetwork``)."""
    height, width = image.shape[:2]
    windows = plan_windows(width, height, options.window)
    total = np.zeros((height, width), np.float32)
    count = np.zeros((height, width), np.uint16)
    pieces: list[LinePiece] = []
    prompts = skipped = windows_cut = 0
    rng = np.random.default_rng(options.seed)
    for number, window in enumerate(windows):
        if cancel is not None:
            cancel.raise_if_cancelled()
        crop = np.ascontiguousarray(image[window.y0:window.y1, window.x0:window.x1])
        if options.skip_blank and not might_hold_text(crop):
            skipped += 1
            if progress is not None:
                progress(number + 1, len(windows))
            continue
        embedding, input_size = network.encode(crop, cancel)  # type: ignore[attr-defined]
        logits = network.stroke_logits(embedding, input_size, (window.height, window.width))  # type: ignore[attr-defined]
        total[window.y0:window.y1, window.x0:window.x1] += logits
        count[window.y0:window.y1, window.x0:window.x1] += 1
        if options.hierarchy:
            found, decoded, cut = _window_lines(network, embedding, input_size, logits, window, number, options, rng,
                                                cancel)
            pieces += found
            prompts += decoded
            windows_cut += cut
        if progress is not None:
            progress(number + 1, len(windows))
    # A page part that only windows left unread cover holds no strokes, whatever the threshold.
    strokes = np.where(count > 0, total / np.maximum(count, 1), -np.inf) > options.stroke_threshold \
        if options.strokes else None
    paragraphs = assemble(pieces) if options.hierarchy else []
    return PageText(width, height, strokes, paragraphs, len(windows), prompts, skipped, windows_cut)


def _window_lines(network: object, embedding: object, input_size: tuple[int, int], logits: np.ndarray,
                  window: Window, number: int, options: TextOptions, rng: np.random.Generator,
                  cancel: CancelToken | None) -> tuple[list[LinePiece], int, bool]:
    """The window's line pieces, how many prompts were decoded for them, and whether they were cut at the cap."""
    strokes = logits > options.stroke_threshold
    scale = input_size[0] / window.height  # window pixels → the model's input frame
    batch = options.batch or _batch_for(network)
    if options.points is None:
        points, masks, scores, word_inputs, cut = _structured_prompts(network, embedding, input_size, strokes, scale,
                                                                      options, batch, cancel)
    else:
        points, masks, scores, word_inputs, cut = _exhaustive_prompts(network, embedding, strokes, scale, options,
                                                                      batch, rng, cancel)
    if not masks:
        return [], len(points), cut
    line_scores = np.concatenate(scores)
    if not len(line_scores):
        return [], len(points), cut
    order = np.argsort(-line_scores[:, 0], kind="stable")  # best first; the logits themselves are not reordered
    # Compared as masks, not logits: the batches' logits are not concatenated (a window's are 128 MB in float32)
    decayed = matrix_nms(np.concatenate([batch_masks[:, 0] > 0 for batch_masks in masks])[order],
                         line_scores[order, 0])
    best = np.flatnonzero(decayed > options.nms_score)
    kept = order[best[np.argsort(-decayed[best], kind="stable")][: options.max_lines]]
    kept_masks = _rows(masks, kept)  # [kept, 2, 256, 256]: line and paragraph logits
    regions = [_line_region(line) for line in kept_masks[:, 0]]
    # … and the words only of the lines kept, only around each line (the costly part)
    word_masks = _words_of_lines(network, embedding, points, line_scores[kept, 1].astype(int), regions, batch,
                                 word_inputs, cancel)
    line_scores = line_scores[:, 0]
    groups = _groups(mask_iou(kept_masks[:, 1] > 0) > options.paragraph_affinity)
    pieces = []
    for index, line_logits, words, group in zip(kept, kept_masks[:, 0], word_masks, groups, strict=True):
        line = PageMask.of(_to_window(line_logits, 256, input_size, window) > 0, window.x0, window.y0)
        word_mask = PageMask.of(_to_window(words, 384, input_size, window) > options.word_threshold,
                                window.x0, window.y0)
        found = word_mask.components(options.min_word_area) if word_mask is not None else []
        shape = union(found) if found else line
        if shape is not None:
            pieces.append(LinePiece(shape, float(line_scores[index]), found, (number, group)))
    return pieces, len(points), cut


class _LineDecodes:
    """Lines and paragraphs the H-Decoder gives for points (the model's input frame), kept where the line scores
    above ``options.line_score``: ``masks`` ``[K, 2, 256, 256]`` and ``scores`` ``[K, 2]`` (score, index of the
    point among all decoded), batch by batch; and ``word_inputs`` (index of the point → what its line's words need
    from its decode) for the best-scoring lines, within ``options.word_inputs_bytes``."""

    def __init__(self, network: object, embedding: object, options: TextOptions, cancel: CancelToken | None) -> None:
        self.network, self.embedding, self.options, self.cancel = network, embedding, options, cancel
        self.masks: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []
        self.decoded = 0
        self.word_inputs: dict[int, object] = {}
        self._by_score: list[tuple[float, int]] = []  # a heap: the lowest-scoring kept inputs go first
        self._bytes = 0

    def decode(self, points: np.ndarray) -> np.ndarray:
        """The kept lines' logits ``[K, 256, 256]`` for ``points [B, 2]``."""
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        level_masks, level_iou, inputs = self.network.levels_and_word_inputs(self.embedding, points)  # type: ignore[attr-defined]
        keep = np.flatnonzero(level_iou[:, 1] > self.options.line_score)
        self.masks.append(level_masks[keep][:, 1:])
        self.scores.append(np.stack([level_iou[keep, 1], self.decoded + keep.astype(np.float32)], axis=1))
        for index in keep.tolist():  # only the tokens its line's words read: a line's box is a small part
            region = _line_region(level_masks[index, 1])
            kept = self.network.word_inputs_for(inputs[index], region)  # type: ignore[attr-defined]
            self._remember(self.decoded + index, float(level_iou[index, 1]), kept)
        self.decoded += len(points)
        return level_masks[keep][:, 1]

    def _remember(self, point: int, score: float, inputs: object) -> None:
        heapq.heappush(self._by_score, (score, point))
        self.word_inputs[point] = inputs
        self._bytes += inputs.nbytes  # type: ignore[attr-defined]
        while self._bytes > self.options.word_inputs_bytes and self._by_score:
            _, dropped = heapq.heappop(self._by_score)
            self._bytes -= self.word_inputs.pop(dropped).nbytes  # type: ignore[attr-defined]


def _words_of_lines(network: object, embedding: object, points: np.ndarray, point_of_line: np.ndarray,
                    regions: list[tuple[int, int, int, int]], batch: int,
                    word_inputs: dict[int, object], cancel: CancelToken | None = None) -> list[np.ndarray]:
    """Each line's words-of-the-line logits ``[384, 384]`` within its region, from what its point's decode left:
    kept in ``word_inputs`` (when they cover the region), or else its point (``points[point_of_line]``) decoded
    again."""
    words: list[np.ndarray] = []
    for start in range(0, len(point_of_line), batch):
        if cancel is not None:
            cancel.raise_if_cancelled()  # a window's words take seconds on a CPU
        chunk, chunk_regions = point_of_line[start:start + batch].tolist(), regions[start:start + batch]
        missing = [point for point, region in zip(chunk, chunk_regions, strict=True)
                   if point not in word_inputs or not word_inputs[point].covers(region)]  # type: ignore[attr-defined]
        again = dict(zip(missing, network.levels_and_word_inputs(embedding, points[missing])[2],  # type: ignore[attr-defined]
                         strict=True)) if missing else {}
        inputs = [again[point] if point in again else word_inputs[point] for point in chunk]
        words.extend(network.words_of(inputs, chunk_regions))  # type: ignore[attr-defined]
    return words


def _exhaustive_prompts(network: object, embedding: object, strokes: np.ndarray, scale: float,
                        options: TextOptions, batch: int, rng: np.random.Generator,
                        cancel: CancelToken | None,
                        ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], dict[int, object], bool]:
    """The authors' sampling: ``options.points`` random stroke pixels, every one decoded (never said cut)."""
    ys, xs = np.nonzero(strokes)
    chosen = rng.permutation(len(xs))[: options.points]
    points = np.stack([xs[chosen], ys[chosen]], axis=1).astype(np.float32) * scale  # input frame
    lines = _LineDecodes(network, embedding, options, cancel)
    for start in range(0, len(points), batch):
        lines.decode(points[start:start + batch])
    return points, lines.masks, lines.scores, lines.word_inputs, False


def _structured_prompts(network: object, embedding: object, input_size: tuple[int, int], strokes: np.ndarray,
                        scale: float, options: TextOptions, batch: int,
                        cancel: CancelToken | None,
                        ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], dict[int, object], bool]:
    """Candidates from the strokes' structure, decoded in rounds; those inside a kept line are not decoded. Last:
    whether the prompts were cut at the cap with ink still to prompt."""
    frame = (256, scale * 256 / max(input_size))  # the line masks' frame: window pixels → its 256² cells
    lines = _LineDecodes(network, embedding, options, cancel)
    decoded = decode_in_rounds(strokes, frame, batch, options.max_prompts,
                               lambda points: lines.decode(points * scale) > 0)
    return decoded.points * scale, lines.masks, lines.scores, lines.word_inputs, decoded.cut


def _rows(batches: list[np.ndarray], indices: np.ndarray) -> np.ndarray:
    """Rows ``indices`` of the batches as if concatenated, ``[len(indices), *row]``, without concatenating them."""
    sizes = np.array([len(batch) for batch in batches])
    ends = np.cumsum(sizes)
    which = np.searchsorted(ends, indices, side="right")
    rows = [batches[b][i - (ends[b] - sizes[b])] for b, i in zip(which.tolist(), indices.tolist(), strict=True)]
    return np.stack(rows) if rows else np.zeros((0, *batches[0].shape[1:]), batches[0].dtype)


def _line_region(line_logits: np.ndarray) -> tuple[int, int, int, int]:
    """Where a line's words can be: its mask's box in the 256² frame grown by ``WORD_REACH`` (an empty line has
    no words: an empty region)."""
    inside = line_logits > 0
    rows, columns = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if not len(rows):
        return (0, 0, 0, 0)
    return (max(0, int(rows[0]) - WORD_REACH), int(rows[-1]) + 1 + WORD_REACH,
            max(0, int(columns[0]) - WORD_REACH), int(columns[-1]) + 1 + WORD_REACH)


def _on_gpu(network: object) -> bool:
    return str(getattr(network, "device", "cpu")).startswith("cuda")


def _batch_for(network: object) -> int:
    return 100 if _on_gpu(network) else 4


def _to_window(logits: np.ndarray, side: int, input_size: tuple[int, int], window: Window) -> np.ndarray:
    """Logits ``[side, side]`` of the model's input frame → ``[h, w]`` of the window (as SAM post-processes)."""
    side_of_frame = max(input_size)  # the input frame: the longest side resized to the model's input
    frame = cv2.resize(logits.astype(np.float32), (side_of_frame, side_of_frame), interpolation=cv2.INTER_LINEAR)
    cropped = frame[: input_size[0], : input_size[1]]  # the padding cut away
    return cv2.resize(cropped, (window.width, window.height), interpolation=cv2.INTER_LINEAR)


def matrix_nms(masks: np.ndarray, scores: np.ndarray, sigma: float = NMS_SIGMA) -> np.ndarray:
    """SOLOv2's Matrix NMS (Gaussian): each mask's score decayed by its overlap with better ones, compensated
    by how much those were themselves overlapped. ``masks [N, h, w]`` bool, best first; ``scores [N]``."""
    iou = np.triu(mask_iou(masks), k=1)
    compensation = iou.max(axis=0)  # [N]: how overlapped each mask is by a better one
    decay = np.exp(-sigma * iou**2) / np.exp(-sigma * compensation[:, None] ** 2)
    return scores * decay.min(axis=0)


def mask_iou(masks: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``[N, N]`` of masks ``[N, h, w]`` (bool).

    Intersections are counted ``IOU_COLUMNS`` pixels at a time as float32 products into one buffer (the masks
    whole in float32 would be 67 MB for a window's 256 lines) and summed in float64: every count is a whole number
    held exactly, whatever the masks' size."""
    count = len(masks)
    if count == 0:
        return np.zeros((0, 0), np.float32)
    flat = masks.reshape(count, -1)
    inter = np.zeros((count, count), np.float64)
    buffer = np.empty((count, min(IOU_COLUMNS, flat.shape[1])), np.float32)
    for start in range(0, flat.shape[1], IOU_COLUMNS):
        part = buffer[:, : min(IOU_COLUMNS, flat.shape[1] - start)]
        np.copyto(part, flat[:, start:start + IOU_COLUMNS])
        inter += part @ part.T
    areas = np.count_nonzero(flat, axis=1).astype(np.float64)
    union_ = areas[:, None] + areas[None, :] - inter
    return np.where(union_ > 0, inter / np.maximum(union_, 1), 0).astype(np.float32)


class _UnionFind:
    def __init__(self, count: int) -> None:
        self.parent = list(range(count))

    def root(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def join(self, first: int, second: int) -> None:
        self.parent[self.root(second)] = self.root(first)


def _groups(linked: np.ndarray) -> list[int]:
    """Connected groups of a symmetric adjacency matrix: each item's group number."""
    groups = _UnionFind(len(linked))
    for i, j in zip(*np.nonzero(np.triu(linked, k=1)), strict=True):
        groups.join(int(i), int(j))
    return [groups.root(i) for i in range(len(linked))]


def assemble(pieces: list[LinePiece]) -> list[FoundParagraph]:
    """Join pieces of one line (windows overlap; a line is wider than a window), keep each word once,
    and make paragraphs of lines that share a window's paragraph group."""
    joined = _UnionFind(len(pieces))
    for i, a in enumerate(pieces):
        for j in range(i + 1, len(pieces)):
            if joined.root(i) != joined.root(j) and continues(a.mask, pieces[j].mask):
                joined.join(i, j)
    lines: dict[int, list[LinePiece]] = {}
    for index, piece in enumerate(pieces):
        lines.setdefault(joined.root(index), []).append(piece)
    merged = [FoundLine(union([p.mask for p in parts]), max(p.score for p in parts),
                        _distinct([w for p in parts for w in p.words])) for parts in lines.values()]
    groups = [{p.group for p in parts} for parts in lines.values()]
    share = np.array([[bool(a & b) for b in groups] for a in groups], bool) if groups else np.zeros((0, 0), bool)
    paragraph_of = _groups(share)
    paragraphs: dict[int, list[FoundLine]] = {}
    for index, paragraph in enumerate(paragraph_of):
        paragraphs.setdefault(paragraph, []).append(merged[index])
    found = [FoundParagraph(union([line.mask for line in members]), max(line.score for line in members),
                            sorted(members, key=lambda line: (line.mask.y0, line.mask.x0)))
             for members in paragraphs.values()]
    for paragraph in found:
        for line in paragraph.lines:
            line.words.sort(key=lambda word: (word.x0, word.y0))
    return [found[i] for i in xy_cut([p.mask.box for p in found])]


def continues(a: PageMask, b: PageMask) -> bool:
    """Whether two windows' views of a line are one line: on the same row (their boxes share at least half
    the lower one's height) and, where their boxes meet, mostly the same pixels. A line wider than a
    window is seen in pieces that share only the windows' overlap."""
    box = a.shared_box(b)
    if box is None or box[3] - box[1] < 0.5 * min(a.mask.shape[0], b.mask.shape[0]):
        return False
    smaller = min(a.pixels_in(box), b.pixels_in(box))
    return smaller > 0 and a.intersection(b) >= 0.5 * smaller


def _distinct(words: list[PageMask]) -> list[PageMask]:
    """Words seen by two windows once: the larger view kept, a smaller one mostly inside it dropped."""
    kept: list[PageMask] = []
    for word in sorted(words, key=lambda w: -w.area):
        if not any(word.box_overlap(other) >= 0.5 * word.area and word.intersection(other) >= 0.5 * word.area
                   for other in kept):
            kept.append(word)
    return kept


def xy_cut(boxes: list[tuple[int, int, int, int]]) -> list[int]:
    """Reading order of boxes (x0, y0, x1, y1) by recursive XY cut: split at horizontal gaps (top to
    bottom), else at vertical gaps (left to right: columns), recursively; boxes no gap separates go top
    to bottom."""

    def split(indices: list[int], axis: int) -> list[list[int]]:
        ordered = sorted(indices, key=lambda i: boxes[i][axis])
        groups: list[list[int]] = []
        end = None
        for index in ordered:
            if end is None or boxes[index][axis] >= end:
                groups.append([index])
                end = boxes[index][axis + 2]
            else:
                groups[-1].append(index)
                end = max(end, boxes[index][axis + 2])
        return groups

    def order(indices: list[int]) -> list[int]:
        if len(indices) <= 1:
            return indices
        for axis in (1, 0):
            groups = split(indices, axis)
            if len(groups) > 1:
                return [i for group in groups for i in order(group)]
        return sorted(indices, key=lambda i: (boxes[i][1], boxes[i][0]))

    return order(list(range(len(boxes))))
