"""Where an export will be published: the address its identifiers start with (light: the export dialog checks
an address with it as it is typed in, without loading the export's libraries)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from engine.errors import MarginaliaError


def publication_base(base_url: str | None, folder: Path) -> str:
    """``base_url`` ending in ``/``, or the folder's own ``file:`` address where none is given."""
    if not base_url:
        return Path(folder).absolute().as_uri() + "/"
    parts = urlsplit(base_url)
    if not (parts.scheme.lower() in ("http", "https") and parts.netloc or parts.scheme.lower() == "file"):
        raise MarginaliaError(f"{base_url} is not a web address (http://… or https://…) where the export would be "
                              "published.")
    return base_url if base_url.endswith("/") else base_url + "/"
