"""What a trained adapter says about itself (``simulinterp.json``, written by ``train sft``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METADATA_FILE = "simulinterp.json"


def adapter_metadata(adapter: str | Path | None) -> dict[str, Any]:
    """The metadata beside an adapter: in its folder, or beside its GGUF file; ``{}`` if none.

    Raises:
        ValueError: the metadata file exists but is not valid JSON.
    """
    if adapter is None:
        return {}
    path = Path(adapter)
    folder = path if path.is_dir() else path.parent
    metadata = folder / METADATA_FILE
    if not metadata.is_file():
        return {}
    try:
        return dict(json.loads(metadata.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{metadata} is not valid JSON: {err}") from err


def prompt_style_for(adapter: str | Path | None, requested: str = "auto") -> str:
    """The prompt style to use: ``requested`` unless ``auto``, else the adapter's own.

    Untrained models get ``few-shot``; adapters trained by this project say ``plain``.
    """
    if requested != "auto":
        return requested
    return str(adapter_metadata(adapter).get("prompt_style", "few-shot"))
