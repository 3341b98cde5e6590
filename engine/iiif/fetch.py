"""Fetching IIIF documents over HTTP(S) with limits and plain reasons: a size cap, a time-out, a redirect
limit, and one message per failure a curator can act on (the host cannot be reached, the server answered 404,
it answers too slowly, it redirects in a loop, it sent a web page instead of JSON).

Only ``http`` and ``https`` addresses are fetched (no ``file:`` or ``ftp:`` behind a pasted address); local
files are read by the caller.
"""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import engine
from engine.errors import JobCancelled, MarginaliaError
from engine.jobs import CancelToken

TIMEOUT_S = 30.0
MAX_REDIRECTS = 5
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # a manifest of some thousand canvases is a few megabytes
USER_AGENT = f"Marginalia/{engine.__version__} (IIIF import)"


class FetchError(MarginaliaError):
    """An address that gave nothing usable, with the reason."""


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # after redirects
    data: bytes
    content_type: str


class _LimitedRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS
    max_repeats = 2

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201 - urllib's signature
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):  # urllib itself would follow ftp:
            raise FetchError(f"{req.full_url} redirects to {newurl}, which is not a web address.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_LimitedRedirects())


CANCEL_POLL_S = 0.2


def fetch(url: str, *, limit: int = MAX_DOCUMENT_BYTES, timeout: float = TIMEOUT_S,
          cancel: CancelToken | None = None) -> Fetched:
    """The body at ``url``, at most ``limit`` bytes, or :class:`FetchError` saying why not. With ``cancel``,
    cancelling raises JobCancelled within a fraction of a second even while a large image is still arriving
    or a server says nothing: the transfer is left to end on its own (its time-out bounds it) and its bytes
    are dropped, never cached."""
    if cancel is None:
        return _fetch(url, limit, timeout)
    outcome: list[Fetched | BaseException] = []
    finished = threading.Event()

    def transfer() -> None:
        try:
            outcome.append(_fetch(url, limit, timeout))
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread as it is
            outcome.append(error)
        finally:
            finished.set()

    threading.Thread(target=transfer, name="iiif-fetch", daemon=True).start()
    while not finished.wait(CANCEL_POLL_S):
        if cancel.cancelled:
            raise JobCancelled()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _fetch(url: str, limit: int, timeout: float) -> Fetched:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"{url} is not a web address (http or https); open a saved file with its path instead.")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/ld+json, "
                                                   "application/json;q=0.9, image/*;q=0.8, */*;q=0.1"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise FetchError(f"{url} is {int(declared):,} bytes, more than the {limit:,} a IIIF document or "
                                 "image may be here.")
            data = response.read(limit + 1)
            if len(data) > limit:
                raise FetchError(f"{url} is more than the {limit:,} bytes a IIIF document or image may be here.")
            if declared and declared.isdigit() and len(data) < int(declared):
                raise FetchError(f"{url} ended after {len(data):,} of its {int(declared):,} bytes (the connection "
                                 "broke); try again.")
            return Fetched(response.geturl(), data, response.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as error:
        if error.code in (301, 302, 303, 307, 308):
            raise FetchError(f"{url} redirects in a loop or too many times ({MAX_REDIRECTS} at most).") from None
        raise FetchError(f"{url}: the server answered {error.code} {error.reason}"
                         + (" (no such document there)" if error.code == 404 else "")) from None
    except (TimeoutError, socket.timeout):
        raise FetchError(f"{url}: the server did not answer within {timeout:g} s.") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise FetchError(f"{url}: the server did not answer within {timeout:g} s.") from None
        raise FetchError(f"{url} cannot be reached ({reason}); check the address and the network.") from None
    except (ConnectionError, OSError) as error:
        raise FetchError(f"{url}: the connection failed ({error}); try again.") from None
