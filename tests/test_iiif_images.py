"""IIIF Image API pages at full resolution from a local image server (started by this module on 127.0.0.1):
whole where allowed, stitched from full-size tiles where the server caps sizes or has only static tiles (level
0), identical to the source pixels; fetched once (a second run reads the cache); and every bad answer — a
missing or failing document, a web page, a time-out, a redirect loop, a gigapixel description, a tile of the
wrong size, a truncated tile — refused with its reason."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import JobCancelled
from engine.iiif.fetch import FetchError, fetch
from engine.iiif.image_api import (
    ImageServiceError,
    TileCache,
    full_image,
    plan,
    read_info,
)
from engine.iiif.manifest import ImageService
from engine.jobs import CancelToken
from tests.iiif_server import V3, ImageServer


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[ImageServer]:
    source = Image.open(shared_data / "manuscripts" / "bengel_abriss01_1751_0007.jpg").convert("RGB")
    started = ImageServer(source.crop((100, 100, 700, 520)))  # 600×420
    yield started
    started.http.shutdown()


def _info(server: ImageServer, service: ImageService) -> object:
    return read_info(fetch(f"{service.id}/info.json").data, service, f"{service.id}/info.json")


def test_a_whole_image_comes_in_one_request_and_a_second_run_fetches_nothing(server: ImageServer,
                                                                            tmp_path: Path) -> None:
    service = server.service("open", 3, profile="level2")
    info = _info(server, service)
    assert [request.url for request in plan(info)] == [f"{server.base}/open/full/max/0/default.jpg"]
    fetched: list[str] = []
    page = full_image(info, TileCache(tmp_path), fetched=fetched.append)
    assert np.array_equal(np.asarray(page), np.asarray(server.source))
    again: list[str] = []
    full_image(info, TileCache(tmp_path), fetched=again.append)
    assert len(fetched) == 1 and again == [] and server.requests["/open/full/max/0/default.jpg"] == 1


@pytest.mark.parametrize(("version", "info", "tiles"), [
    (2, {"profile": ["http://iiif.io/api/image/2/level2.json", {"maxWidth": 300}],
         "maxWidth": 300, "tiles": [{"width": 256, "scaleFactors": [1, 2, 4]}]}, 6),
    (3, {"profile": "level0", "tiles": [{"width": 200, "height": 150, "scaleFactors": [1, 2]}]}, 9),
])
def test_a_capped_or_static_server_gives_tiles_stitched_to_the_source_pixels(server: ImageServer, tmp_path: Path,
                                                                             version: int, info: dict,
                                                                             tiles: int) -> None:
    service = server.service(f"capped{version}", version, **info)
    described = _info(server, service)
    requests = plan(described)
    assert len(requests) == tiles and not described.whole_allowed
    first = "0,0,256,256/256," if version == 2 else "0,0,200,150/200,150"  # each version's canonical form
    assert requests[0].url == f"{server.base}/capped{version}/{first}/0/default.jpg"
    page = full_image(described, TileCache(tmp_path))
    assert np.array_equal(np.asarray(page), np.asarray(server.source))


def test_a_cancel_stops_between_tiles_and_keeps_only_whole_tiles(server: ImageServer, tmp_path: Path) -> None:
    service = server.service("cancelled", 3, profile="level0", tiles=[{"width": 100, "scaleFactors": [1]}])
    described = _info(server, service)
    token = CancelToken()
    seen: list[str] = []

    def fetched(url: str) -> None:
        seen.append(url)
        token.cancel()

    with pytest.raises(JobCancelled):
        full_image(described, TileCache(tmp_path), cancel=token, fetched=fetched)
    cached = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert 1 <= len(cached) < len(plan(described)) and not [p for p in cached if p.suffix == ".part"]


def test_a_cancel_stops_within_a_second_while_one_large_image_is_still_arriving(server: ImageServer,
                                                                                  tmp_path: Path) -> None:
    service = server.service("trickling", 3, profile="level2")  # the whole 600×420 PNG: some seconds at 10 KB/s
    server.trickle.add("trickling")
    token = CancelToken()
    timer = threading.Timer(0.5, token.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        full_image(_info(server, service), TileCache(tmp_path), cancel=token)
    stopped = time.monotonic()
    cancelled_at = started + 0.5
    assert stopped - cancelled_at < 1.0, stopped - cancelled_at
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []  # nothing half-fetched kept


@pytest.mark.parametrize(("name", "said"), [
    ("liar", "the server's description does not match its images"),
    ("truncated", "is not a whole image"),
])
def test_a_tile_of_the_wrong_size_or_cut_short_refuses_the_page(server: ImageServer, tmp_path: Path, name: str,
                                                               said: str) -> None:
    service = server.service(name, 3, profile="level0", tiles=[{"width": 300, "scaleFactors": [1]}])
    (server.lies if name == "liar" else server.truncated).add(name)
    with pytest.raises(ImageServiceError, match=said):
        full_image(_info(server, service), TileCache(tmp_path))


def test_a_gigapixel_description_is_refused_before_anything_is_fetched(server: ImageServer) -> None:
    service = ImageService(f"{server.base}/giga", 3)
    data = json.dumps({"@context": V3, "id": service.id, "width": 40_000, "height": 30_000}).encode()
    with pytest.raises(ImageServiceError, match="1,200 megapixels, above the"):
        read_info(data, service, "giga/info.json")


@pytest.mark.parametrize(("path", "said"), [
    ("/nothing-here.json", "answered 404 Not Found (no such document there)"),
    ("/failing", "answered 500"),
    ("/loop", "redirects in a loop"),
])
def test_bad_answers_are_said_plainly(server: ImageServer, path: str, said: str) -> None:
    with pytest.raises(FetchError, match=re.escape(said)):
        fetch(server.base + path)


def test_a_slow_server_times_out_and_other_addresses_are_refused(server: ImageServer) -> None:
    with pytest.raises(FetchError, match="did not answer within 0.5 s"):
        fetch(server.base + "/slow", timeout=0.5)
    with pytest.raises(FetchError, match="not a web address"):
        fetch("file:///etc/passwd")
    with pytest.raises(FetchError, match="cannot be reached"):
        fetch("http://127.0.0.1:9/manifest.json", timeout=2)
