"""Real Kokoro speech, checked by the packaged recognizer (whisper-base) listening to it."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from simulinterp.asr.models import load_speech_model
from simulinterp.audio.io import SAMPLE_RATE
from simulinterp.eval.speech import asr_error
from simulinterp.tts.kokoro import KokoroSynthesizer
from simulinterp.tts.voices import default_voice

pytestmark = pytest.mark.integration

ZH = "所以我的美国同胞们，不要问国家能为你们做什么。"
EN = "And so my fellow Americans, ask not what your country can do for you."


@pytest.fixture(scope="module")
def kokoro() -> KokoroSynthesizer:
    return KokoroSynthesizer(threads=2)


@pytest.fixture(scope="module")
def whisper():
    return load_speech_model("base", threads=2)


def speak(kokoro, text: str, lang: str, speed: float = 1.0) -> np.ndarray:
    voice = default_voice(kokoro, lang)
    clauses = list(kokoro.synthesize(text, voice, lang, speed=speed))
    assert all(c.samples.dtype == np.float32 and c.sample_rate == 24_000 for c in clauses)
    return np.concatenate([c.samples for c in clauses]) if clauses else np.zeros(0, np.float32)


@pytest.mark.parametrize(("text", "lang"), [(ZH, "zh"), (EN, "en")])
def test_the_recognizer_understands_the_default_voice(kokoro, whisper, text, lang):
    audio = soxr.resample(speak(kokoro, text, lang), 24_000, SAMPLE_RATE).astype(np.float32)
    heard = whisper.transcribe(audio, lang)
    assert asr_error([heard], [text], lang) < 0.25, heard


def test_latin_words_and_numbers_inside_chinese_are_spoken(kokoro):
    full = speak(kokoro, "我们用GPU训练了3个模型，准确率是95%。", "zh")
    bare = speak(kokoro, "我们用训练了个模型，准确率是。", "zh")
    assert len(full) > len(bare) + 0.8 * 24_000  # GPU, 三, 百分之九十五: well over a second


def test_emoji_only_text_is_silent(kokoro):
    assert list(kokoro.synthesize("😀🎉👍", "jm_kumo", "en")) == []
    assert list(kokoro.synthesize("。😀！", "jf_nezumi", "zh")) == []


def test_faster_speed_gives_shorter_audio(kokoro):
    normal = speak(kokoro, EN, "en", speed=1.0)
    fast = speak(kokoro, EN, "en", speed=1.3)
    assert len(fast) < 0.9 * len(normal)


def test_a_blended_voice_speaks(kokoro):
    kokoro.add_voice("speaker_1", kokoro.blend({"jf_nezumi": 0.5, "jm_kumo": 0.5}))
    assert "speaker_1" in kokoro.voices("en")
    clauses = list(kokoro.synthesize("hello there.", "speaker_1", "en"))
    assert len(clauses) == 1 and clauses[0].duration_s > 0.3
