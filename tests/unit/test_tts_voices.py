"""The synthesizer registry, and the clear errors of the espeak-ng backends without espeak-ng."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from simulinterp.tts import espeak as espeak_module
from simulinterp.tts.base import OUTPUT_RATE, SpokenClause, SynthesisError, to_output_rate
from simulinterp.tts.espeak import EspeakSynthesizer, parse_wav
from simulinterp.tts.kokoro import MAX_TOKENS, KokoroSynthesizer, chunk_tokens, trim_silence
from simulinterp.tts.piper import PiperSynthesizer
from simulinterp.tts.voices import check_language, default_voice, list_voices, load_synthesizer


@pytest.mark.parametrize(
    ("name", "cls"),
    [("kokoro", KokoroSynthesizer), ("piper", PiperSynthesizer), ("espeak", EspeakSynthesizer)],
)
def test_load_synthesizer_by_name(name, cls):
    synth = load_synthesizer(name, threads=2)
    assert isinstance(synth, cls)
    assert synth.name == name


def test_the_default_is_kokoro_and_loads_nothing_yet():
    synth = load_synthesizer()
    assert isinstance(synth, KokoroSynthesizer)
    assert synth._session is None


def test_unknown_backend_lists_the_choices():
    with pytest.raises(ValueError, match="kokoro, piper, espeak"):
        load_synthesizer("festival")


def test_a_language_a_backend_does_not_speak_names_those_that_do():
    with pytest.raises(ValueError, match="these do: kokoro, espeak"):
        check_language("piper", "zh")
    with pytest.raises(ValueError, match="kokoro or espeak"):
        PiperSynthesizer().voices("zh")
    with pytest.raises(ValueError, match="zh and en"):
        KokoroSynthesizer().voices("ja")


def test_default_voices_per_language():
    kokoro = load_synthesizer("kokoro")
    assert default_voice(kokoro, "zh") == "jf_nezumi"
    assert default_voice(kokoro, "en") == "jm_kumo"
    assert default_voice(load_synthesizer("piper"), "en") == "joe"
    assert default_voice(load_synthesizer("espeak"), "zh") == "cmn"
    with pytest.raises(ValueError, match="piper"):
        default_voice(load_synthesizer("piper"), "zh")


def test_list_voices_names_every_backend_and_license():
    text = list_voices()
    for word in ("kokoro (default)", "piper", "espeak", "Apache-2.0", "GPL-3.0", "jm_kumo"):
        assert word in text


@pytest.fixture
def no_espeak(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _name: None)


def test_piper_without_espeak_says_how_to_install_it(no_espeak):
    with pytest.raises(SynthesisError, match="apt install espeak-ng.*kokoro"):
        list(PiperSynthesizer().synthesize("hello there.", "joe", "en"))


def test_espeak_without_espeak_says_how_to_install_it(no_espeak):
    with pytest.raises(SynthesisError, match="espeak-ng.*apt install espeak-ng"):
        list(EspeakSynthesizer().synthesize("你好。", "cmn", "zh"))


def test_espeak_failure_is_a_synthesis_error(monkeypatch):
    monkeypatch.setattr(espeak_module, "espeak_binary", lambda _purpose: "/bin/false")
    with pytest.raises(SynthesisError, match="exited with 1"):
        list(EspeakSynthesizer().synthesize("hello.", "en-us", "en"))


def test_parse_wav_reads_espeak_placeholder_sizes():
    pcm = np.array([0, 16384, -16384], dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16)
    data = b"RIFF\xff\xff\xff\x7fWAVEfmt " + struct.pack("<I", 16) + fmt
    data += b"data\xff\xff\xff\x7f" + pcm
    samples, rate = parse_wav(data)
    assert rate == 22050
    np.testing.assert_allclose(samples, [0.0, 0.5, -0.5])
    with pytest.raises(SynthesisError):
        parse_wav(b"not a wav at all")


def test_chunk_tokens_cuts_long_clauses_after_punctuation():
    comma, space = 3, 16
    tokens = ([7] * 299 + [comma]) * 3
    pieces = chunk_tokens(tokens, {comma}, space)
    assert [len(p) for p in pieces] == [300, 300, 300]
    assert all(p[-1] == comma for p in pieces)
    long_word = [7] * (MAX_TOKENS * 2 + 5)
    assert [len(p) for p in chunk_tokens(long_word, {comma}, space)] == [510, 510, 5]
    assert chunk_tokens([], {comma}, space) == []


def test_trim_silence_keeps_a_margin():
    audio = np.zeros(24_000, np.float32)
    audio[10_000:11_000] = 0.5
    trimmed = trim_silence(audio)
    assert 1000 < len(trimmed) < 4000
    assert len(trim_silence(np.zeros(100, np.float32))) == 0


def test_to_output_rate_resamples_to_24k():
    clause = SpokenClause("x", np.zeros(22_050, np.float32), 22_050)
    out = to_output_rate(clause)
    assert abs(len(out) - OUTPUT_RATE) <= 2
    assert out.dtype == np.float32
    same = SpokenClause("x", np.ones(10, np.float32), OUTPUT_RATE)
    assert len(to_output_rate(same)) == 10
