"""The numpy GE2E speaker encoder: a tiny random model for the maths, torch for the reference,
the packaged weights on real speech for the outcome."""

from __future__ import annotations

import itertools
import pickle
import re

import numpy as np
import pytest

from simulinterp.legacy_torch import load_legacy_torch
from simulinterp.packaged import ModelNotFoundError
from simulinterp.speakers import encoder as enc_mod
from simulinterp.speakers.encoder import (
    SAMPLE_RATE,
    EncoderNotInstalledError,
    GE2EEncoder,
    load_weights,
    mel_frames,
    normalize_volume,
    partial_starts,
    weights_path,
)


def _voice(seconds: float, f0: float = 140.0, seed: int = 0, level: float = 0.05) -> np.ndarray:
    """A voice-like test signal: harmonics of a wavering pitch, syllable envelope, some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / SAMPLE_RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    wave = wave * envelope + 0.05 * rng.standard_normal(len(t))
    return (level * wave / np.abs(wave).max()).astype(np.float32)


@pytest.fixture(scope="module")
def tiny() -> GE2EEncoder:
    return GE2EEncoder.random(seed=0, hidden=16)


def _packaged() -> GE2EEncoder:
    try:
        return GE2EEncoder()
    except ModelNotFoundError as err:
        pytest.skip(str(err))


# --- features ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n_samples", [201, 3200, 25_600, 25_601, 40_000])
def test_mel_frames_shape(n_samples):
    mel = mel_frames(_voice(n_samples / SAMPLE_RATE + 0.01)[:n_samples])
    assert mel.shape == (1 + n_samples // 160, 40)
    assert mel.dtype == np.float32
    assert (mel >= 0).all()


@pytest.mark.parametrize(
    ("channel", "fft_bin", "librosa_value"),  # librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)
    [
        (0, 1, 0.007390209473669529),
        (0, 2, 0.012404520995914936),
        (10, 20, 0.01187948975712061),
        (20, 40, 0.0),
        (39, 190, 0.0012151539558544755),
        (39, 199, 0.00012151539704063907),
    ],
)
def test_mel_filters_match_librosa(channel, fft_bin, librosa_value):
    assert enc_mod._mel_filters()[fft_bin, channel] == pytest.approx(librosa_value, abs=1e-8)


@pytest.mark.parametrize("tone_hz", [300.0, 1000.0, 4000.0])
def test_mel_frames_puts_a_tone_in_its_channel(tone_hz):
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    mel = mel_frames(0.1 * np.sin(2 * np.pi * tone_hz * t).astype(np.float32))
    fft_bin = round(tone_hz * 400 / SAMPLE_RATE)
    assert mel[5:-5].mean(axis=0).argmax() == enc_mod._mel_filters()[fft_bin].argmax()


def test_mel_frames_pad_modes_differ_only_at_the_edges():
    wav = _voice(1.0)
    reflect, zeros = mel_frames(wav), mel_frames(wav, pad_mode="constant")
    np.testing.assert_array_equal(reflect[2:-2], zeros[2:-2])
    assert not np.array_equal(reflect[:2], zeros[:2])
    with pytest.raises(ValueError, match="pad_mode"):
        mel_frames(wav, pad_mode="edge")


@pytest.mark.parametrize(
    ("amplitude", "expected_rms"),
    [(0.001, 10 ** (-30 / 20)), (0.01, 10 ** (-30 / 20)), (0.5, 0.5 / np.sqrt(2))],
)
def test_normalize_volume_only_raises(amplitude, expected_rms):
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    wav = (amplitude * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    out = normalize_volume(wav)
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(expected_rms, rel=1e-3)


def test_normalize_volume_keeps_silence():
    np.testing.assert_array_equal(normalize_volume(np.zeros(4000, np.float32)), 0.0)


@pytest.mark.parametrize(
    ("n_samples", "starts"),  # worked by hand from Resemblyzer's compute_partial_slices
    [(3_200, [0]), (16_000, [0]), (25_600, [0]), (32_000, [0, 77]), (40_000, [0, 77])],
)
def test_partial_starts(n_samples, starts):
    assert partial_starts(n_samples) == starts


def test_partial_starts_rejects_a_rate_that_leaves_gaps():
    with pytest.raises(ValueError, match="rate"):
        partial_starts(50_000, rate=0.5)


# --- the model, tiny and random ----------------------------------------------------------------


def test_embed_windows_shapes_and_norms(tiny):
    out = tiny.embed_windows([_voice(1.6), _voice(0.2, seed=1), _voice(2.3, seed=2)])
    assert out.shape == (3, tiny.dim) == (3, 16)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert tiny.embed_windows([]).shape == (0, 16)


def test_embed_is_normalized_and_deterministic(tiny):
    wav = _voice(4.0)
    first = tiny.embed(wav)
    assert first.shape == (16,)
    assert np.linalg.norm(first) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(first, GE2EEncoder.random(seed=0, hidden=16).embed(wav))
    assert not np.allclose(first, GE2EEncoder.random(seed=1, hidden=16).embed(wav))


def test_batching_matches_one_by_one(tiny):
    windows = [_voice(1.6, seed=s, f0=100 + 20 * s) for s in range(6)] + [_voice(0.9), _voice(2.0)]
    batched = tiny.embed_windows(windows)  # six windows of 161 frames: the per-gate path
    single = np.concatenate([tiny.embed_windows([w]) for w in windows])
    np.testing.assert_allclose(batched, single, atol=1e-6)


def test_quiet_input_is_raised_to_the_same_level(tiny):
    wav = _voice(1.6, level=0.01)  # below -30 dBFS: normalization removes the scale
    np.testing.assert_allclose(
        tiny.embed_windows([wav]), tiny.embed_windows([wav * 0.3]), atol=1e-5
    )
    np.testing.assert_allclose(tiny.embed(wav), tiny.embed(wav * 0.3), atol=1e-5)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros(0, np.float32), "needs at least 0.2 s"),
        (np.zeros(3199, np.float32), "needs at least 0.2 s"),
        (np.zeros((2, 8000), np.float32), "mono 1-D"),
        (np.full(8000, np.nan, np.float32), "NaN"),
    ],
)
def test_bad_input_raises(tiny, samples, message):
    with pytest.raises(ValueError, match=message):
        tiny.embed(samples)
    with pytest.raises(ValueError, match=message):
        tiny.embed_windows([_voice(1.0), samples])


def _tiny_state(hidden: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    state = {
        "linear.weight": rng.standard_normal((hidden, hidden), np.float32),
        "linear.bias": np.ones(hidden, np.float32),
    }
    for k in range(3):
        width = 40 if k == 0 else hidden
        state[f"lstm.weight_ih_l{k}"] = rng.standard_normal((4 * hidden, width), np.float32)
        state[f"lstm.weight_hh_l{k}"] = rng.standard_normal((4 * hidden, hidden), np.float32)
        state[f"lstm.bias_ih_l{k}"] = np.zeros(4 * hidden, np.float32)
        state[f"lstm.bias_hh_l{k}"] = np.zeros(4 * hidden, np.float32)
    return state


def test_weights_are_checked():
    assert GE2EEncoder(_tiny_state(8)).dim == 8
    with pytest.raises(ValueError, match="missing"):
        GE2EEncoder({k: v for k, v in _tiny_state(8).items() if k != "linear.bias"})
    with pytest.raises(ValueError, match="LSTM layers"):
        GE2EEncoder({k: v for k, v in _tiny_state(8).items() if not k.endswith("_l1")})
    with pytest.raises(ValueError, match="hidden size 8"):
        GE2EEncoder(_tiny_state(8), hidden=32)


# --- weights: finding, checking, reading ----------------------------------------------------------


def test_missing_weights_say_how_to_install(monkeypatch):
    monkeypatch.delenv(enc_mod.ENV_VAR, raising=False)
    monkeypatch.setattr(enc_mod, "package_dir", lambda dist, folder="": None)
    with pytest.raises(EncoderNotInstalledError, match=re.escape(enc_mod.PIP_HINT)) as info:
        weights_path()
    assert isinstance(info.value, ModelNotFoundError)


def test_env_var_names_the_weights(monkeypatch, tmp_path):
    monkeypatch.setenv(enc_mod.ENV_VAR, str(tmp_path / "absent.pt"))
    with pytest.raises(EncoderNotInstalledError, match=enc_mod.ENV_VAR):
        weights_path()
    (tmp_path / "there.pt").write_bytes(b"x")
    monkeypatch.setenv(enc_mod.ENV_VAR, str(tmp_path / "there.pt"))
    assert weights_path() == tmp_path / "there.pt"


def test_wrong_checksum_is_refused(tmp_path):
    path = tmp_path / "pretrained.pt"
    path.write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="sha256"):
        load_weights(path)
    with pytest.raises(EncoderNotInstalledError):
        load_weights(tmp_path / "absent.pt")


def _legacy_header() -> bytes:
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    return b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, info))


def test_legacy_reader_runs_no_code_from_the_file(tmp_path):
    import collections

    path = tmp_path / "evil.pt"
    path.write_bytes(_legacy_header() + pickle.dumps(collections.Counter("ab"), protocol=2))
    with pytest.raises(ValueError, match="refusing to load collections.Counter"):
        load_legacy_torch(path)


def test_legacy_reader_rejects_other_files(tmp_path):
    (tmp_path / "zip.pt").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="zip"):
        load_legacy_torch(tmp_path / "zip.pt")
    (tmp_path / "other.pt").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="legacy"):
        load_legacy_torch(tmp_path / "other.pt")


def test_packaged_weights_load():
    weights = _packaged_weights()
    assert weights["lstm.weight_ih_l0"].shape == (1024, 40)
    assert weights["linear.weight"].shape == (256, 256)
    assert not weights["linear.weight"].flags.writeable  # the cached copy is shared
    model = GE2EEncoder(weights)
    assert (model.dim, model.hidden, model.layers) == (256, 256, 3)


def _packaged_weights() -> dict[str, np.ndarray]:
    try:
        return load_weights()
    except ModelNotFoundError as err:
        pytest.skip(str(err))


# --- against torch ----------------------------------------------------------------------------


def _torch_reference(state: dict[str, np.ndarray], hidden: int):
    torch = pytest.importorskip("torch")
    lstm = torch.nn.LSTM(40, hidden, 3, batch_first=True)
    linear = torch.nn.Linear(hidden, state["linear.weight"].shape[0])
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    lstm.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("lstm.")})
    linear.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("linear.")})

    def embed(mels: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            _, (last, _) = lstm(torch.from_numpy(mels))
            raw = torch.relu(linear(last[-1]))
            return (raw / raw.norm(dim=1, keepdim=True)).numpy()

    return embed


@pytest.mark.torch
@pytest.mark.parametrize("batch", [1, 5])
def test_lstm_matches_torch_random_weights(batch):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    lstm, linear = torch.nn.LSTM(40, 24, 3), torch.nn.Linear(24, 24)
    state = {f"lstm.{k}": v.detach().numpy() for k, v in lstm.state_dict().items()}
    state |= {f"linear.{k}": v.detach().numpy() for k, v in linear.state_dict().items()}
    state["linear.bias"] = np.abs(state["linear.bias"]) + 0.2  # keep ReLU outputs nonzero
    mels = np.stack([mel_frames(normalize_volume(_voice(1.6, seed=s))) for s in range(batch)])
    ours = GE2EEncoder(state, hidden=24).embed_mels(mels)
    np.testing.assert_allclose(ours, _torch_reference(state, 24)(mels), atol=1e-5)


@pytest.mark.torch
def test_lstm_matches_torch_packaged_weights():
    weights = _packaged_weights()
    reference = _torch_reference(weights, 256)
    model = GE2EEncoder(weights)
    wav = normalize_volume(_voice(6.0, f0=180.0))
    mels = np.stack([mel_frames(wav[i : i + 25_600]) for i in range(0, 60_000, 12_000)])
    np.testing.assert_allclose(model.embed_mels(mels), reference(mels), atol=1e-5)
    np.testing.assert_allclose(model.embed_mels(mels[:1]), reference(mels[:1]), atol=1e-5)


@pytest.mark.torch
def test_legacy_reader_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {
        "float": torch.randn(3, 5),
        "double": torch.randn(7, dtype=torch.float64),
        "half": torch.randn(2, 2).half(),
        "bfloat": torch.tensor([1.5, -2.25, 3.0]).bfloat16(),
        "long": torch.tensor([1, -2, 2**40]),
        "bool": torch.tensor([True, False, True]),
        "transposed": base.t(),  # strides, shares its storage with "slice"
        "slice": base[1:3, 2:],  # an offset into that storage
        "param": torch.nn.Parameter(torch.ones(2, 3)),
        "empty": torch.zeros(0, 4),
    }
    path = tmp_path / "legacy.pt"
    checkpoint = {"step": 3, "model_state": state, "optimizer_state": {"m": torch.ones(9)}}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    loaded = load_legacy_torch(path)
    assert set(loaded) == set(state)
    for name, tensor in state.items():
        expected = tensor.detach().float().numpy() if name == "bfloat" else tensor.detach().numpy()
        assert loaded[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(loaded[name], expected, err_msg=name)
    torch.save(state, path, _use_new_zipfile_serialization=False)  # a bare state dict
    np.testing.assert_array_equal(load_legacy_torch(path)["slice"], state["slice"].numpy())


# --- real speech --------------------------------------------------------------------------------


@pytest.mark.integration
def test_same_speaker_is_closer_on_librispeech(shared_data):
    """Ten LibriSpeech test-other speakers, three utterances each (Resemblyzer's demo set)."""
    sf = pytest.importorskip("soundfile")
    model = _packaged()
    audio = shared_data / "speech" / "speech_en_librispeech_untranscribed" / "audio"
    files = sorted(audio.glob("librispeech_test-other_*.flac"))
    if len(files) < 6:
        pytest.skip(f"too few LibriSpeech test-other files in {audio}")
    speakers = [re.search(r"_(\d+)-\d+-\d+\.flac$", f.name).group(1) for f in files]
    waves = [sf.read(f, dtype="float32") for f in files]
    assert all(rate == SAMPLE_RATE for _, rate in waves)
    embeddings = np.stack([model.embed(wav) for wav, _ in waves])
    similarity = embeddings @ embeddings.T
    pairs = list(itertools.combinations(range(len(files)), 2))
    same = [similarity[i, j] for i, j in pairs if speakers[i] == speakers[j]]
    different = [similarity[i, j] for i, j in pairs if speakers[i] != speakers[j]]
    assert np.mean(same) > np.mean(different) + 0.2  # measured: 0.90 against 0.54
    np.fill_diagonal(similarity, -1.0)
    nearest = similarity.argmax(axis=1)
    hits = np.mean([speakers[i] == speakers[n] for i, n in enumerate(nearest)])
    assert hits >= 0.9  # measured: 1.0
