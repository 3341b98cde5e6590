"""Structured prompts lose no line the authors' exhaustive sampling finds, with far fewer decodes.

A constructed page: lines of rendered text at known places (two columns, small and large print, lines cut by
window edges, a hatched picture beside them: strokes that are no text), each line's ink drawn in its own
colour. A stand-in for Hi-SAM's decoders — not a model — reads
that colour: strokes are the ink, and a point prompt's line (and words, and paragraph) is the box of the
line's ink it falls on, in the model's frames. Everything else (windows, candidates, rounds, Matrix NMS,
joining lines across windows) is the product's code.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from engine.errors import JobCancelled
from engine.jobs import CancelToken
from engine.text.hierarchy import PageText, TextOptions, read_text
from engine.text.prompts import (
    EXTEND_UP_TO,
    FRUITLESS,
    candidates,
    decode_in_rounds,
    farthest_first,
    ink_marks,
    nearest_to,
    uncovered_pieces,
)
from engine.text.run import TextReport

INPUT_SIDE = 1024


@dataclass
class SeenWindow:
    crop: np.ndarray
    boxes: dict[int, tuple[int, int, int, int]]


class TrueLines:
    """Hi-SAM's interface over a page whose ink names its line: green + 256 × blue (1…65,535; 0: a picture's ink,
    no line; paper is white)."""

    device = "cpu"
    input_side = INPUT_SIDE

    def __init__(self) -> None:
        self.decoded = 0

    def encode(self, crop: np.ndarray, cancel: CancelToken | None = None) -> tuple[SeenWindow, tuple[int, int]]:
        """The "embedding": the window itself, and each line's ink box in it (y0, y1, x0, x1)."""
        height, width = crop.shape[:2]
        scale = INPUT_SIDE / max(height, width)
        ink = crop[..., 0] < 128
        boxes = {}
        names = _line_names(crop)
        for line in np.unique(names[ink]):
            ys, xs = np.nonzero(ink & (names == line))
            boxes[int(line)] = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
        return SeenWindow(crop, boxes), (round(height * scale), round(width * scale))

    def stroke_logits(self, seen: SeenWindow, input_size: tuple[int, int],
                      original: tuple[int, int]) -> np.ndarray:
        return np.where(seen.crop[..., 0] < 128, 1.0, -1.0).astype(np.float32)

    def levels(self, seen: SeenWindow, points: np.ndarray, words: bool = True, regions=None):  # noqa: ANN001, ANN201
        crop = seen.crop
        height, width = crop.shape[:2]
        scale = INPUT_SIDE / max(height, width)  # window pixels → input frame
        if not words:
            self.decoded += len(points)
        masks = np.full((len(points), 3, 256, 256), -5.0, np.float32)
        word_masks = np.full((len(points), 384, 384) if words else (len(points), 0, 0), -5.0, np.float32)
        quality = np.zeros((len(points), 3), np.float32)
        for number, (x, y) in enumerate(points / scale):
            pixel = crop[min(int(y), height - 1), min(int(x), width - 1)]
            name = int(pixel[1]) + 256 * int(pixel[2])
            if pixel[0] >= 128 or name == 0:
                continue  # not on ink, or on the picture: no line
            y0, y1, x0, x1 = seen.boxes[name]
            for side, target in ((256, masks[number]), (384, word_masks[number][None]))[:2 if words else 1]:
                to = scale * side / INPUT_SIDE
                target[:, int(y0 * to):int(np.ceil(y1 * to)), int(x0 * to):int(np.ceil(x1 * to))] = 5.0
            quality[number] = 0.9
        for number, region in enumerate(regions or []):  # words only where the product asks for them
            if region is not None:
                y0, y1, x0, x1 = region
                outside = np.ones((384, 384), bool)
                outside[3 * y0 // 2:-(-3 * y1 // 2), 3 * x0 // 2:-(-3 * x1 // 2)] = False
                word_masks[number][outside] = -1e4
        return masks, quality, word_masks if words else None

    def levels_and_word_inputs(self, seen: SeenWindow, points: np.ndarray):  # noqa: ANN201
        masks, quality, _ = self.levels(seen, points, words=False)
        return masks, quality, [DecodedPoint(seen, point) for point in points]

    def words_of(self, inputs: list[DecodedPoint], regions=None) -> np.ndarray:  # noqa: ANN001
        return self.levels(inputs[0].seen, np.stack([i.point for i in inputs]), words=True, regions=regions)[2]

    def word_inputs_for(self, inputs: DecodedPoint, region) -> DecodedPoint:  # noqa: ANN001
        return inputs


@dataclass(frozen=True)
class DecodedPoint:
    seen: SeenWindow
    point: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.point.nbytes

    def covers(self, region) -> bool:  # noqa: ANN001
        return True


def _page() -> tuple[np.ndarray, dict[int, tuple[int, int, int, int]]]:
    """A 2400×1800 page (two columns of text, a heading, a hatched picture) and its lines' ink boxes (x0, y0, x1,
    y1) by line number."""
    page = np.full((1800, 2400, 3), 255, np.uint8)
    rng = np.random.default_rng(7)
    lines: dict[int, tuple[int, int, int, int]] = {}

    def draw(text: str, at: tuple[int, int], font: int, size: float, thickness: int, right: int) -> None:
        ink = np.zeros(page.shape[:2], np.uint8)
        cv2.putText(ink, text, at, font, size, 255, thickness, cv2.LINE_8)
        ink[:, right:] = 0  # the column ends there
        number = len(lines) + 1
        page[ink > 0] = (0, number, 0)
        ys, xs = np.nonzero(ink)
        lines[number] = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)

    draw("CAPITVLVM SECVNDVM", (700, 70), cv2.FONT_HERSHEY_TRIPLEX, 1.8, 3, 2400)  # a heading in large print
    woodcut = np.zeros(page.shape[:2], bool)  # a hatched picture in the second column: strokes, no text
    woodcut[900:1500:5, 1300:2300] = True
    woodcut[900:1500, 1300:2300:7] = True
    page[woodcut] = (0, 0, 0)
    for x0, x1 in ((60, 1150), (1250, 2340)):  # two columns of small print
        for y in range(140, 1760, 34):
            if rng.random() < 0.15 or (x0 == 1250 and 870 <= y <= 1530):
                continue  # a paragraph break, or the picture
            words = " ".join("".join(rng.choice(list("abcdefghiklmnoprstu"), rng.integers(2, 9))) for _ in range(14))
            draw(words, (x0, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 2, x1)
    return page, lines


def _line_names(page: np.ndarray) -> np.ndarray:
    return page[..., 1].astype(np.int64) + 256 * page[..., 2].astype(np.int64)


def _lines_found(page: np.ndarray, text) -> set[int]:  # noqa: ANN001 - a PageText
    """The page's line numbers whose ink a found line covers most of."""
    found = set()
    for paragraph in text.paragraphs:
        for line in paragraph.lines:
            mask = line.mask
            inside = page[mask.y0:mask.y0 + mask.mask.shape[0], mask.x0:mask.x0 + mask.mask.shape[1]]
            ink = (inside[..., 0] < 128) & mask.mask
            if ink.any():
                found.add(int(np.bincount(_line_names(inside)[ink]).argmax()))
    return found


@pytest.fixture(scope="module")
def page() -> tuple[np.ndarray, dict[int, tuple[int, int, int, int]]]:
    return _page()


def test_structured_prompts_find_every_line_the_exhaustive_sampling_finds_with_far_fewer_decodes(page) -> None:
    """Seconds: the exhaustive sampling decodes hundreds of points a window through the stand-in."""
    image, lines = page
    exhaustive, structured = TrueLines(), TrueLines()
    options = dict(window=1024, line_score=0.5, nms_score=0.5, max_lines=200, min_word_area=4)
    by_points = read_text(exhaustive, image, TextOptions(points=400, **options))
    by_structure = read_text(structured, image, TextOptions(**options))
    found_exhaustively, found_structurally = _lines_found(image, by_points), _lines_found(image, by_structure)
    print(f"lines {len(lines)}; exhaustive: {len(found_exhaustively)} found with {exhaustive.decoded} decodes; "
          f"structured: {len(found_structurally)} found with {structured.decoded} decodes")
    assert found_exhaustively <= found_structurally  # no line lost
    assert found_structurally == set(lines)  # and here every line is found
    assert by_structure.prompts == structured.decoded and by_points.prompts == exhaustive.decoded
    assert structured.decoded * 4 <= exhaustive.decoded


def test_a_cancel_while_a_windows_words_are_made_stops_before_the_next_lines(page) -> None:
    image, _ = page
    token = CancelToken()

    class CancelledDuringWords(TrueLines):
        calls = 0

        def words_of(self, inputs, regions=None):  # noqa: ANN001, ANN201
            self.calls += 1
            token.cancel()  # the curator presses Cancel while the first lines' words are made
            return super().words_of(inputs, regions)

    network = CancelledDuringWords()
    with pytest.raises(JobCancelled):
        read_text(network, image, TextOptions(window=1024, line_score=0.5, nms_score=0.5, batch=2), token)
    assert network.calls == 1


def test_candidates_are_one_per_inked_cell_and_rounds_spread_and_skip_covered_points() -> None:
    strokes = np.zeros((96, 96), bool)
    strokes[10:14, 5:90] = True  # a line through four cells
    strokes[60, 60] = True  # a speck: too little ink for a candidate
    pool = candidates(strokes, cell=24, min_ink=4)
    assert sorted(map(tuple, pool.astype(int).tolist())) == [(12, 12), (36, 12), (60, 12), (84, 12)]
    assert candidates(np.zeros((50, 50), bool)).shape == (0, 2)
    spread = farthest_first(np.array([[0, 0], [1, 0], [50, 0], [100, 0]], np.float32), np.zeros((0, 2)), 2)
    assert spread.tolist() == [0, 3]  # the ends, not neighbours
    rounds: list[np.ndarray] = []
    frame = (96, 1.0)  # the mask frame is the window's own pixels here

    def decode(points: np.ndarray) -> np.ndarray:
        rounds.append(points)
        return strokes[None]  # the first line found covers every candidate

    decoded = decode_in_rounds(strokes, frame, batch=1, cap=10, decode=decode)
    assert len(rounds) == 1 and len(decoded.points) == 1 and not decoded.cut
    no_line = np.zeros((0, 96, 96), bool)
    capped = decode_in_rounds(strokes, frame, batch=3, cap=2, decode=lambda points: no_line)
    assert len(capped.points) == 2 and capped.cut  # stopped with ink left to prompt: said
    ink = np.zeros((480, 480), bool)
    ink[::12, :] = True  # 400 inked cells the decoder finds no line in
    ink[:, ::100] = True  # … in one piece of ink
    nothing = np.zeros((0, 480, 480), bool)
    given_up = decode_in_rounds(ink, (480, 1.0), batch=4, cap=256, decode=lambda points: nothing)
    assert len(given_up.points) == FRUITLESS and not given_up.cut  # not 256: the strokes here are not text


def test_every_other_point_comes_from_a_piece_of_ink_where_no_point_gave_nothing() -> None:
    grid = np.stack(np.meshgrid(np.arange(0, 101, 25), np.arange(0, 101, 25)), -1).reshape(-1, 2)
    points = np.concatenate([grid, [[52, 50], [55, 50]]]).astype(np.float32)  # a hatching, a caption in it
    caption = [len(grid), len(grid) + 1]
    pieces = np.array([0] * len(grid) + [1, 1])
    corner, far = 0, len(grid) - 1
    spread = farthest_first(points, np.zeros((0, 2)), 6).tolist()
    assert spread[:2] == [corner, far] and not set(caption) & set(spread)  # by distance alone: caption last
    # the first from the hatching (then spent for this call), the second farthest, the third from the caption
    assert farthest_first(points, np.zeros((0, 2)), 3, pieces).tolist() == [corner, far, caption[0]]
    gave_nothing = np.where(pieces == 0, -1, pieces)  # a point of the hatching gave no line
    two_taken = points[[corner, far]]
    assert farthest_first(points, two_taken, 1, gave_nothing).tolist() == [caption[0]]
    assert farthest_first(points, points[:1], 1, gave_nothing).tolist() == [far]  # an odd turn: by distance
    only_caption_left = farthest_first(points[caption], two_taken, 2, gave_nothing[caption]).tolist()
    assert only_caption_left == [0, 1]


def test_distances_kept_round_by_round_are_those_to_every_point_taken() -> None:
    """The rounds keep each candidate's distance to the points taken, a round's points at a time: the same
    distances, and so the same picks, as measured from every point taken."""
    rng = np.random.default_rng(7)
    points = rng.uniform(0, 1024, (500, 2)).astype(np.float32)
    rounds = [rng.uniform(0, 1024, (size, 2)).astype(np.float32) for size in (4, 4, 1, 100)]
    kept = nearest_to(points, np.zeros((0, 2), np.float32))
    assert np.isinf(kept).all()
    for taken_in_round in rounds:
        kept = nearest_to(points, taken_in_round, kept)
    taken = np.concatenate(rounds)
    assert np.array_equal(kept, ((points[:, None] - taken[None]) ** 2).sum(-1).min(axis=1))
    pieces = rng.integers(-1, 40, len(points))
    picks = farthest_first(points, taken, 12, pieces, kept).tolist()
    assert picks == farthest_first(points, taken, 12, pieces).tolist() and len(set(picks)) == 12


def test_ink_no_kept_line_covers_gives_a_candidate_a_piece_where_no_point_was_decoded() -> None:
    strokes = np.zeros((64, 64), bool)
    strokes[8:12, 4:60] = True  # a line found
    strokes[14:18, 4:60] = True  # the next line, in the same cells, not found
    strokes[30:34, 4:30] = True  # a line where a point was decoded: the model said no
    strokes[50, 50:53] = True  # a speck
    covered = np.zeros((16, 16), bool)  # the mask frame: 4 window pixels a cell
    covered[2, 1:15] = True  # the first line's cells
    pool = uncovered_pieces(strokes, covered, 0.25, np.array([[10, 31]], np.float32))
    assert len(pool) == 1 and 14 <= pool[0, 1] < 18  # on the second line, nowhere else
    assert len(uncovered_pieces(strokes, np.ones((16, 16), bool), 0.25, np.zeros((0, 2)))) == 0


def test_beside_the_kept_lines_only_a_line_over_the_point_itself_counts_as_found() -> None:
    """Specks under lines share their cells (no candidate of their own); the decoder's lines for them lie over
    another speck each, never over the point: that is no line found there, and the window is given up."""
    side = 480
    strokes = np.zeros((side, side), bool)
    tops = range(10, side, 48)
    for top in tops:
        strokes[top:top + 4, :] = True  # a line: every cell's candidate on its rows is on it
        strokes[top + 9:top + 11, 4::12] = strokes[top + 9:top + 11, 5::12] = True  # 40 specks of 4 pixels
    decoded: list[np.ndarray] = []

    def decode(points: np.ndarray) -> np.ndarray:
        decoded.append(points)
        masks = np.zeros((len(points), side, side), bool)
        for mask, (x, y) in zip(masks, points.astype(int), strict=True):
            top = y // 48 * 48 + 10
            if y < top + 4:
                mask[top:top + 4, :] = True  # the line under the point
            else:
                other = (x + side // 2) % side // 12 * 12 + 4
                mask[top + 9:top + 11, other:other + 2] = True  # a speck across the window, not this one
        return masks

    taken = decode_in_rounds(strokes, (side, 1.0), batch=1, cap=256, decode=decode).points
    on_lines = np.isin(taken[:, 1].astype(int) % 48, range(10, 14))
    assert on_lines.sum() == len(tops)  # a point a line
    assert (~on_lines).sum() == FRUITLESS  # then the specks, until given up: not ~200 points


@pytest.mark.parametrize("pitch, size", [(13, 0.7), (16, 0.8)])
def test_small_print_with_two_lines_to_a_cell_loses_no_line(pitch: int, size: float) -> None:
    """Lines 13–16 pixels apart: a cell holds two, and its candidate falls on one of them."""
    image = np.full((1000, 1000, 3), 255, np.uint8)
    rng = np.random.default_rng(3)
    lines = 0
    for y in range(20, 980, pitch):
        ink = np.zeros(image.shape[:2], np.uint8)
        words = " ".join("".join(rng.choice(list("abcdefghiklmnoprstu"), rng.integers(2, 9))) for _ in range(16))
        cv2.putText(ink, words, (20, y), cv2.FONT_HERSHEY_PLAIN, size, 255, 1, cv2.LINE_8)
        ink[:, 980:] = 0
        lines += 1
        image[(ink > 0) & (image[..., 0] == 255)] = (0, lines, 0)
    options = dict(window=1024, line_score=0.5, nms_score=0.5, max_lines=200, min_word_area=4, max_prompts=1000)
    exhaustive, structured = TrueLines(), TrueLines()
    found_exhaustively = _lines_found(image, read_text(exhaustive, image, TextOptions(points=400, **options)))
    found_structurally = _lines_found(image, read_text(structured, image, TextOptions(**options)))
    print(f"lines {lines}; exhaustive: {len(found_exhaustively)} with {exhaustive.decoded} decodes; "
          f"structured: {len(found_structurally)} with {structured.decoded}")
    assert found_exhaustively <= found_structurally == set(range(1, lines + 1))
    assert structured.decoded * 3 <= exhaustive.decoded


def _picture(kind: str) -> np.ndarray:
    """``[1024, 1024]`` bool: an engraving's hatching as one connected grid, as dashes in rows (each dash a piece of
    its own), stippled, or in short strokes along waves."""
    picture = np.zeros((1024, 1024), bool)
    if kind == "hatched":
        picture[20:1000:5, 20:1000] = picture[20:1000, 20:1000:7] = True
    elif kind == "dashed":
        for y in range(20, 1000, 6):
            for x in range(20 + y % 28, 1000, 28):
                picture[y:y + 2, x:x + 20] = True
    elif kind == "wavy":  # short strokes along waves: each a speck of its own
        drawn = np.zeros(picture.shape, np.uint8)
        for y in range(20, 1000, 7):
            wave = np.array([[x, y + int(3 * np.sin(x / 15 + y))] for x in range(20, 1000, 4)], np.int32)
            for start in range(0, len(wave) - 1, 3):
                cv2.line(drawn, tuple(int(v) for v in wave[start]), tuple(int(v) for v in wave[start + 1]), 1, 1)
        picture = drawn > 0
    else:
        rng = np.random.default_rng(0)
        for y, x in np.argwhere(rng.random((196, 196)) < 0.7) * 5 + 20:
            picture[y:y + 2, x:x + 2] = True
    return picture


@pytest.mark.parametrize("kind, at, width", [("hatched", (400, 500), 200), ("hatched", (700, 800), 150),
                                             ("hatched", (300, 150), 60), ("dashed", (400, 500), 200),
                                             ("dashed", (300, 150), 60), ("stippled", (700, 800), 150),
                                             ("wavy", (400, 500), 200)])
def test_a_caption_amid_a_picture_is_prompted_before_the_window_is_given_up(kind: str, at: tuple[int, int],
                                                                            width: int) -> None:
    """A picture fills the window; a caption sits in a gap of it: the picture's strokes give no line, far more
    than ``FRUITLESS`` times in a row if their cells came first. Dashed or stippled, the picture is hundreds of
    pieces of ink; ink closer than ``REACH`` is one piece, and its points then wait as a hatched picture's do
    (before that, the caption was never prompted in either)."""
    image = np.full((1024, 1024, 3), 255, np.uint8)
    picture = _picture(kind)
    x, y = at
    picture[y - 30:y + 15, x - 10:x + width + 10] = False
    image[picture] = (0, 0, 0)
    ink = np.zeros(image.shape[:2], np.uint8)
    cv2.putText(ink, "Figura prima"[: max(3, width // 18)], at, cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
    image[ink > 0] = (0, 1, 0)
    network = TrueLines()
    found = _lines_found(image, read_text(network, image, TextOptions(window=1024, min_word_area=4)))
    assert found == {1}
    assert network.decoded <= FRUITLESS + 16  # and then the picture is given up


@pytest.mark.parametrize("seed", [1, 5])
def test_lines_standing_on_ruled_lines_amid_specks_are_all_found(seed: int) -> None:
    """The ruling (no text) joins a block's lines into one piece of ink with it, and 120 specks lie around the
    block: a point on the ruling gives no line, yet the lines on it are not put behind the specks."""
    image = np.full((1024, 1024, 3), 255, np.uint8)
    rng = np.random.default_rng(seed)
    lines = 0
    for y in range(120, 700, 40):
        ink = np.zeros(image.shape[:2], np.uint8)
        words = " ".join("".join(rng.choice(list("abcdefghiklmnoprstu"), rng.integers(2, 9))) for _ in range(8))
        cv2.putText(ink, words, (104, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
        ink[:, 700:] = 0
        lines += 1
        image[ink > 0] = (0, lines, 0)
        image[y - 1:y + 2, 100:704] = 0  # the ruled line the letters stand on
    image[80:720, 100:104] = image[80:720, 700:704] = image[80:84, 100:704] = image[716:720, 100:704] = 0
    for x, y in zip(rng.integers(20, 1000, 80), rng.integers(760, 1000, 80), strict=True):
        image[y:y + 3, x:x + 3] = 0
    for x, y in zip(rng.integers(760, 1000, 40), rng.integers(20, 740, 40), strict=True):
        image[y:y + 3, x:x + 3] = 0
    network = TrueLines()
    assert _lines_found(image, read_text(network, image, TextOptions(window=1024, min_word_area=4))) == \
        set(range(1, lines + 1))


def test_a_speck_is_a_small_mark_with_no_ink_beside_it() -> None:
    strokes = np.zeros((200, 400), bool)
    strokes[10:14, 10:14] = strokes[10:14, 30:34] = strokes[10:14, 50:54] = True  # three specks, 16 pixels each
    strokes[100:112, 10:16] = True  # a digit's 72 pixels
    for x in range(100, 300, 14):  # a word's letters, each of 40 pixels, 4 pixels apart
        strokes[100:110, x:x + 4] = True
    strokes[60:64, 100:104] = True  # above the word, alone
    found = ink_marks(strokes)[0]
    assert found[10:14, 10:54].sum() == 48 and found[60:64, 100:104].all()
    assert not found[100:112].any()
    assert ink_marks(np.zeros((50, 50), bool))[0].sum() == 0


@pytest.mark.parametrize("seed", [1, 4])
def test_notes_on_a_foxed_leaf_are_not_put_behind_its_specks(seed: int) -> None:
    """Four short notes on a leaf peppered with 1,200 specks: the specks' cells outnumber the notes' thirty to one,
    and with the specks spread as evenly as the notes, ``FRUITLESS`` specks in a row came long before the notes
    (none and one of the four found, seeds 1 and 4). Marks of a few pixels with no ink beside them are prompted last."""
    rng = np.random.default_rng(seed)
    image = np.full((1024, 1024, 3), 255, np.uint8)
    placed: list[tuple[int, int]] = []
    for line in range(1, 5):
        while True:
            x, y = int(rng.integers(20, 700)), int(rng.integers(40, 1000))
            if all(abs(y - other_y) > 40 or abs(x - other_x) > 320 for other_x, other_y in placed):
                break
        placed.append((x, y))
        ink = np.zeros(image.shape[:2], np.uint8)
        words = " ".join("".join(rng.choice(list("abcdefghiklmnoprstu"), rng.integers(2, 7))) for _ in range(3))
        cv2.putText(ink, words, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2)
        image[ink > 0] = (0, line, 0)
    notes = image[..., 0] < 128
    for x, y in zip(rng.integers(5, 1015, 1200), rng.integers(5, 1015, 1200), strict=True):
        if not notes[max(0, y - 6):y + 10, max(0, x - 6):x + 10].any():
            image[y:y + 4, x:x + 4] = 0
    speckled, peppered = ink_marks(image[..., 0] < 128)[0], (image[..., 0] < 128) & ~notes
    assert speckled.sum() >= 0.9 * peppered.sum()  # a few specks run together
    assert (speckled & notes).sum() <= 0.02 * notes.sum()  # an i's dot above its line is a speck too
    network = TrueLines()
    assert _lines_found(image, read_text(network, image, TextOptions(window=1024, min_word_area=4))) == {1, 2, 3, 4}
    assert network.decoded <= 4 * 4 + FRUITLESS + 8  # the notes, then the specks given up


def _columns(columns: int, pitch: int) -> np.ndarray:
    """A window of small print in ``columns`` columns, lines ``pitch`` pixels apart, each line its own number."""
    rng = np.random.default_rng(0)
    image = np.full((1024, 1024, 3), 255, np.uint8)
    width, line = 1000 // columns, 0
    for column in range(columns):
        for y in range(20, 1010, pitch):
            ink = np.zeros(image.shape[:2], np.uint8)
            words = " ".join("".join(rng.choice(list("abcdefghiklmnoprstu"), rng.integers(2, 7))) for _ in range(8))
            x = 10 + column * width
            cv2.putText(ink, words, (x, y), cv2.FONT_HERSHEY_PLAIN, 0.7, 255, 1)
            ink[:, x + width - 12:] = 0
            line += 1
            image[(ink > 0) & (image[..., 0] == 255)] = (0, line % 256, line // 256)
    return image


def _one_cell_lines(points: np.ndarray, side: int) -> np.ndarray:
    """A line for each point covering its one cell of the mask frame: always new ink, never the last line."""
    lines = np.zeros((len(points), side, side), bool)
    for number, (x, y) in enumerate(points.astype(int)):
        lines[number, y, x] = True
    return lines


@pytest.mark.parametrize("columns, pitch", [(6, 11)])
def test_many_columns_of_small_print_prompt_past_the_cap_while_lines_keep_coming(columns: int, pitch: int) -> None:
    """Seconds (540 lines decoded and their words read). Six columns of small print (a gazette scanned at a low
    resolution): the lines touch, so the window is one mark of ink; at the cap of 256 prompts over half its lines
    were left (255 of these 540 found). Each round still finds lines over new ink, so the prompts go
    on, about one a line."""
    image = _columns(columns, pitch)
    lines = len(np.unique(_line_names(image)[image[..., 0] < 128]))
    network = TrueLines()
    text = read_text(network, image, TextOptions(window=1024, min_word_area=4))
    assert lines > 256 and _lines_found(image, text) == set(range(1, lines + 1)) and text.windows_cut == 0
    assert network.decoded <= 1.05 * lines


def test_small_print_in_columns_keeps_every_line_and_a_window_cut_short_is_said() -> None:
    """186 lines in three columns: 120 lines a window at most (before) kept two thirds of them. Where the prompts
    stop at the cap with ink left to prompt, the page says so."""
    image = _columns(3, 16)
    network = TrueLines()
    text = read_text(network, image, TextOptions(window=1024, min_word_area=4))
    assert _lines_found(image, text) == set(range(1, 187)) and text.windows_cut == 0
    assert network.decoded <= 256
    cut_short = decode_in_rounds(image[..., 0] < 128, (1024, 1.0), batch=4, cap=100,
                                 decode=lambda points: np.zeros((0, 1024, 1024), bool))  # a line over nothing
    assert not cut_short.cut and len(cut_short.points) == FRUITLESS  # a window that gives nothing is given up
    endless = decode_in_rounds(image[..., 0] < 128, (1024, 1.0), batch=4, cap=100,  # every point a line of new ink
                               decode=lambda points: _one_cell_lines(points, 1024))
    assert endless.cut and len(endless.points) == EXTEND_UP_TO * 186  # up to its ceiling, then said
    report = TextReport()
    report.read(PageText(1024, 1024, None, [], windows=1, windows_cut=1), "gazette.tif — p. 3")
    assert report.summary().endswith("Lines may be missing on 1 page(s) (e.g. gazette.tif — p. 3): a window there "
                                     "holds more text than Find Text prompts in one")
