"""Loading ``transformers`` models from an installed folder: local files only, quietly."""

from __future__ import annotations

from typing import Any

from engine.models.adapters import ModelFiles
from engine.models.adapters.weights import NotAWeightsFile


def quiet_transformers() -> None:
    # Load reports and progress bars go to the terminal, which curators never see; errors still raise.
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def from_folder(loader: Any, files: ModelFiles, **options: Any) -> Any:
    """``loader.from_pretrained`` on the model's folder, never touching the network."""
    quiet_transformers()
    try:
        return loader.from_pretrained(str(files.installed.folder), local_files_only=True, **options)
    except (OSError, ValueError, KeyError) as error:
        raise NotAWeightsFile(f"The files of {files.spec.name} could not be loaded: "
                              f"{str(error).splitlines()[0]}") from error
