"""RL episodes from recordings: ASR words with their times, cut at the recognized sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from simulinterp.asr.stream import RecognizerConfig, StreamingRecognizer
from simulinterp.events import SourceWord
from simulinterp.train.speech_episodes import (
    episodes_from_speech,
    languages_of,
    read_recordings,
    recognized_words,
    speech_episodes,
)
from speech_fakes import SAMPLE_RATE, EnergyVAD, ToneWhisper, speak

SCRIPT = [["we", "go", "to", "the", "park"], ["he", "likes", "it", "very", "good."]]


def words_of(texts: list[str], step_s: float = 0.45) -> list[SourceWord]:
    out = []
    for i, text in enumerate(texts):
        start = 1.0 + i * step_s
        out.append(
            SourceWord(text, start, start + 0.3, start + 0.6, start + 0.7, text.endswith("."))
        )
    return out


def tone_recognizer(lang: str) -> StreamingRecognizer:
    config = RecognizerConfig(lang=lang, max_duty=1.0, detect_language=False)
    return StreamingRecognizer(ToneWhisper(), EnergyVAD(), config)  # type: ignore[arg-type]


def speech_folder(tmp_path: Path, rows: list[str], audio: np.ndarray | None = None) -> Path:
    (tmp_path / "audio").mkdir(parents=True)
    sf.write(tmp_path / "audio" / "a.flac", speak(SCRIPT) if audio is None else audio, SAMPLE_RATE)
    (tmp_path / "transcripts.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path


def test_each_recognized_sentence_is_an_episode_and_the_reference_is_shared_out_in_order():
    words = words_of("we go to the park. he likes it very much.".split())
    episodes = speech_episodes(words, "我们去公园。他非常喜欢它。", "en", "zh")
    assert [e.source_units for e in episodes] == [
        ("we", "go", "to", "the", "park."),
        ("he", "likes", "it", "very", "much."),
    ]
    # every reference unit goes to exactly one episode, in order
    assert "".join("".join(e.reference_units) for e in episodes) == "我们去公园。他非常喜欢它。"
    for episode in episodes:
        n = len(episode.source_units)
        assert episode.reference_units
        assert all(1 <= r <= n for r in episode.reference_reads)
        assert list(episode.reference_reads) == sorted(episode.reference_reads)
        assert episode.reference_reads[-1] == n  # finished once the sentence is read
        # times: the audio consumed at each commit, from the episode's first word
        assert episode.unit_times is not None
        assert episode.unit_times[0] == pytest.approx(0.6)
        assert list(episode.unit_times) == sorted(episode.unit_times)


def test_a_sentence_with_nothing_due_joins_the_next_and_long_ones_are_left_out():
    words = words_of("yes. we go to the park.".split())
    one = speech_episodes(words, "是的", "en", "zh")  # too short a reference to share out
    assert len(one) == 1
    assert one[0].source_units == ("yes.", "we", "go", "to", "the", "park.")
    assert speech_episodes(words, "是的", "en", "zh", max_source_units=5) == []
    assert speech_episodes([], "是的", "en", "zh") == []


def test_a_recording_becomes_episodes_of_the_words_the_streaming_recognizer_committed(tmp_path):
    folder = speech_folder(
        tmp_path,
        ["audio/a.flac\twe go to the park he likes it very good.\t我们去公园他喜欢它很好。"],
    )
    stream = tone_recognizer("en")
    words = recognized_words(stream, folder / "audio" / "a.flac")
    spoken = [w.strip(".") for s in SCRIPT for w in s]
    assert [w.text.strip(",.") for w in words if w.text != ","] == spoken
    episodes = episodes_from_speech(folder, recognizer=tone_recognizer)
    assert episodes and {(e.source_lang, e.target_lang) for e in episodes} == {("en", "zh")}
    heard = [u for e in episodes for u in e.source_units]
    assert heard == [w.text for w in words]
    duration = len(speak(SCRIPT)) / SAMPLE_RATE
    for episode in episodes:
        assert episode.unit_times is not None
        assert all(0 <= t <= duration for t in episode.unit_times)
        assert list(episode.unit_times) == sorted(episode.unit_times)
    with pytest.raises(ValueError, match="not zh-en"):
        episodes_from_speech(folder, direction="zh-en", recognizer=tone_recognizer)


def test_a_speech_folder_needs_translations_and_its_files(tmp_path):
    folder = speech_folder(tmp_path, ["audio/a.flac\twe go", "audio/a.flac\twe go\t"])
    with pytest.raises(ValueError, match="no translations"):
        read_recordings(folder)
    (folder / "transcripts.tsv").write_text("audio/b.flac\twe go\t我们走\n", encoding="utf-8")
    with pytest.raises(ValueError, match="does not exist"):
        read_recordings(folder)
    (folder / "transcripts.tsv").write_text(
        "audio/a.flac\twe go\t我们走\naudio/a.flac\tgo\t走\n", encoding="utf-8"
    )
    assert len(read_recordings(folder)) == 2 and len(read_recordings(folder, limit=1)) == 1
    assert languages_of(read_recordings(folder)) == ("en", "zh")


@pytest.mark.torch
def test_train_rl_on_a_speech_folder_trains_on_the_recognized_words(
    tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("peft")
    pytest.importorskip("accelerate")
    import json

    from simulinterp.cli import main
    from simulinterp.train import speech_episodes

    # two sentences the tone recognizer hears, and their translation
    audio = speak([["we", "go", "to", "the", "park"], ["he", "likes", "it"]])
    folder = speech_folder(tmp_path / "speech", ["audio/a.flac\twe go\t我们去公园他喜欢它"], audio)
    monkeypatch.setattr(speech_episodes, "default_recognizer", tone_recognizer)
    output = tmp_path / "rl"
    argv = ["train", "rl", "--model", str(tiny_checkpoint), "--data", str(folder)]
    argv += ["--output", str(output), "--updates", "1", "--sources", "1"]
    argv += ["--max-step-tokens", "2", "--max-final-tokens", "4"]
    argv += ["--eval-data", str(folder), "--eval-limit", "1"]
    assert main(argv) == 0
    assert "recognizing the translated recordings of" in capsys.readouterr().err
    evaluation = json.loads((output / "rl_eval.json").read_text())
    # the held-out rollouts are scored in seconds of the recording too
    assert 0 <= evaluation["after"]["LAAL_s"] <= len(audio) / SAMPLE_RATE
    log = json.loads((output / "rl_log.jsonl").read_text().splitlines()[0])
    assert "LAAL_s" in log
    assert main([*argv, "--direction", "zh-en"]) == 1
    assert "not zh-en" in capsys.readouterr().err


def test_the_reference_is_cut_at_its_own_sentence_end_near_where_the_alignment_cuts_it(
    monkeypatch,
):
    from simulinterp.train import speech_episodes as module

    words = words_of("we go to the park. he likes it very much.".split())
    reference = "我们去公园。他非常喜欢它。"
    # an alignment that links the first two characters of the second sentence to "park."
    links = [(0, 0), (0, 1), (1, 2), (4, 3), (4, 4), (4, 5), (4, 6), (4, 7), (6, 8)]
    links += [(7, 9), (8, 10), (9, 11), (9, 12)]
    monkeypatch.setattr(module, "align_corpus", lambda sources, targets: [links])
    episodes = speech_episodes(words, reference, "en", "zh")
    assert ["".join(e.reference_units) for e in episodes] == ["我们去公园。", "他非常喜欢它。"]
    # no reference sentence end nearby (the translation runs on): the alignment's cut stands
    links = [(s, t if t < 5 else t - 1) for s, t in links if t != 5]
    episodes = speech_episodes(words, "我们去公园他非常喜欢它。", "en", "zh")
    assert ["".join(e.reference_units) for e in episodes] == ["我们去公园他非", "常喜欢它。"]


def test_a_damaged_recording_is_left_out_and_the_others_kept(tmp_path, caplog):
    folder = speech_folder(tmp_path, ["audio/a.flac\tx\t我们去公园", "audio/bad.flac\tx\t他"])
    (folder / "audio" / "bad.flac").write_bytes(b"not audio at all")
    episodes = episodes_from_speech(folder, recognizer=tone_recognizer)
    assert episodes and "bad.flac is left out" in caplog.text
    (folder / "transcripts.tsv").write_text("audio/bad.flac\tx\t他\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no recording .* could be read"):
        episodes_from_speech(folder, recognizer=tone_recognizer)
