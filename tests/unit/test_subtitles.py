"""SRT, WebVTT and JSON transcripts of interpreted speech: exact text and cue timing."""

from __future__ import annotations

import json
import os

import pytest

from simulinterp.events import SourceWord, SpeechCommit
from simulinterp.subtitles import (
    Cue,
    cues_from_commits,
    srt_text,
    transcript_document,
    vtt_text,
    write_srt,
    write_transcript_json,
    write_vtt,
)


def c(text: str, segment: int, start: float, end: float, final: bool = False) -> SpeechCommit:
    return SpeechCommit(text, end, end + 0.5, end + 0.5, segment, final, start, end)


def w(text: str, start: float, end: float) -> SourceWord:
    return SourceWord(text, start, end, end, end + 0.1, False)


def times(cues: list[Cue]) -> list[float]:
    """Start and end of every cue, flattened (pytest.approx compares flat lists)."""
    return [t for q in cues for t in (q.start_s, q.end_s)]


def flat(pairs: list[tuple[float, float]]) -> list[float]:
    return [t for pair in pairs for t in pair]


TWO_CUES = [Cue(1.2345, 3.5, "Hello there.", "你好。"), Cue(61.0, 3725.5, "我们去公园。")]

SRT = (
    "1\n00:00:01,234 --> 00:00:03,500\nHello there.\n\n"
    "2\n00:01:01,000 --> 01:02:05,500\n我们去公园。\n"
)
VTT = (
    "WEBVTT\n\n"
    "00:00:01.234 --> 00:00:03.500\nHello there.\n\n"
    "00:01:01.000 --> 01:02:05.500\n我们去公园。\n"
)


def test_srt_and_vtt_exact_text(tmp_path) -> None:
    assert srt_text(TWO_CUES) == SRT
    assert vtt_text(TWO_CUES) == VTT
    write_srt(tmp_path / "a.srt", TWO_CUES)
    write_vtt(tmp_path / "a.vtt", TWO_CUES)
    assert (tmp_path / "a.srt").read_bytes() == SRT.encode("utf-8")
    assert (tmp_path / "a.vtt").read_bytes() == VTT.encode("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.srt", "a.vtt"]  # no temp files


def test_bilingual_and_escaped_cues() -> None:
    cues = [Cue(0.0, 1.0, "A < B & C", "甲\n\n乙")]
    assert srt_text(cues, bilingual=True) == "1\n00:00:00,000 --> 00:00:01,000\n甲\n乙\nA < B & C\n"
    assert vtt_text(cues) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nA &lt; B &amp; C\n"


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (0.0004, "00:00:00,000", "00:00:00.000"),
        (59.9996, "00:01:00,000", "00:01:00.000"),
        (3600 * 12 + 0.5, "12:00:00,500", "12:00:00.500"),
        (-0.2, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_timestamps(seconds: float, srt: str, vtt: str) -> None:
    assert srt_text([Cue(seconds, seconds, "x")]).split("\n")[1] == f"{srt} --> {srt}"
    assert vtt_text([Cue(seconds, seconds, "x")]).split("\n")[2] == f"{vtt} --> {vtt}"


def test_one_cue_per_sentence_timed_on_the_source() -> None:
    commits = [
        c("你好，", 0, 0.5, 1.0),
        c("世界。", 0, 0.5, 2.0, True),
        c("再见。", 1, 3.0, 3.2, True),
    ]
    words = [w("Hello,", 0.5, 1.0), w("world.", 1.0, 2.0), w("Bye.", 3.0, 3.2)]
    cues = cues_from_commits(commits, words, "zh")
    assert cues == [
        Cue(0.5, 2.0, "你好，世界。", "Hello, world."),
        Cue(3.0, 4.0, "再见。", "Bye."),  # stretched to the minimum duration
    ]


def test_chinese_source_for_english_subtitles() -> None:
    commits = [c("We go", 0, 0.2, 0.8), c(" to the park.", 0, 0.2, 1.6, True)]
    words = [w(ch, 0.2 + 0.2 * i, 0.4 + 0.2 * i) for i, ch in enumerate("我们去公园。")]
    assert cues_from_commits(commits, words, "en") == [
        Cue(0.2, 1.6, "We go to the park.", "我们去公园。")
    ]


# each case: segments as (text, source_start_s, source_end_s); expected (start, end) per cue
CLIP_CASES = {
    "end_cut_at_next_start": ([("One.", 0.5, 3.0), ("Two.", 2.8, 4.0)], [(0.5, 2.8), (2.8, 4.0)]),
    "min_duration_cut_under_0.3s": (
        [("One.", 1.0, 1.1), ("Two.", 1.2, 2.5)],
        [(1.0, 1.2), (1.2, 2.5)],
    ),
    "min_duration_kept_when_room": (
        [("One.", 1.0, 1.1), ("Two.", 5.0, 5.5)],
        [(1.0, 2.0), (5.0, 6.0)],
    ),
    "sorted_by_start": ([("Two.", 4.0, 6.0), ("One.", 1.0, 5.0)], [(1.0, 4.0), (4.0, 6.0)]),
}


@pytest.mark.parametrize(("segments", "expected"), CLIP_CASES.values(), ids=CLIP_CASES)
def test_cues_never_overlap(segments, expected) -> None:
    commits = [c(text, k, start, end) for k, (text, start, end) in enumerate(segments)]
    cues = cues_from_commits(commits, [], "en")
    assert times(cues) == pytest.approx(flat(expected))


def test_empty_segments_give_no_cue() -> None:
    commits = [c(" ", 0, 0.0, 1.0), c("Hi.", 1, 2.0, 3.0), c("", 2, 4.0, 5.0)]
    assert cues_from_commits(commits, [], "en") == [Cue(2.0, 3.0, "Hi.")]


def test_long_english_cue_split_on_words_with_time_shared() -> None:
    text = " ".join(["word"] * 40)  # 199 characters
    words = [w(f"w{i}", 0.25 * i, 0.25 * i + 0.2) for i in range(40)]
    cues = cues_from_commits([c(text, 0, 0.0, 10.0)], words, "en", max_chars=50)
    assert [q.text for q in cues] == [" ".join(["word"] * 10)] * 4
    assert times(cues) == pytest.approx(flat([(0.0, 2.5), (2.5, 5.0), (5.0, 7.5), (7.5, 10.0)]))
    # each source word goes to the cue on screen at its midpoint
    assert [q.source for q in cues] == [
        " ".join(f"w{i}" for i in range(10 * k, 10 * k + 10)) for k in range(4)
    ]


def test_long_chinese_cue_split_between_characters() -> None:
    text = "我们去公园" * 20  # 100 characters
    cues = cues_from_commits([c(text, 0, 1.0, 9.0)], [], "zh", max_chars=30)
    assert [len(q.text) for q in cues] == [25, 25, 25, 25]
    assert "".join(q.text for q in cues) == text
    assert times(cues) == pytest.approx(flat([(1.0, 3.0), (3.0, 5.0), (5.0, 7.0), (7.0, 9.0)]))


def test_uneven_split_keeps_every_piece_within_the_limit() -> None:
    text = "a " * 10 + "abcdefghij " * 3 + "tail"
    cues = cues_from_commits([c(text, 0, 0.0, 6.0)], [], "en", max_chars=12)
    assert all(len(q.text) <= 12 for q in cues)
    assert " ".join(q.text for q in cues) == " ".join(text.split())
    assert cues[-1].end_s == 6.0
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(cues, cues[1:], strict=False))


def test_transcript_json_has_every_key(tmp_path) -> None:
    commits = [c("你好，", 0, 0.5, 0.9), c("世界。", 0, 0.5, 1.5, True)]
    words = [w("Hello,", 0.5, 0.9), w("world.", 1.0, 1.5)]
    cues = cues_from_commits(commits, words, "zh")
    path = tmp_path / "talk.zh.json"
    document = transcript_document(
        source_lang="en",
        target_lang="zh",
        audio="talk.wav",
        commits=commits,
        source_words=words,
        cues=cues,
        interrupted=True,
    )
    write_transcript_json(path, document)
    raw = path.read_text(encoding="utf-8")
    assert "你好" in raw  # UTF-8, not \\u escapes
    doc = json.loads(raw)
    assert list(doc) == [
        "source_lang",
        "target_lang",
        "audio",
        "interrupted",
        "translation",
        "transcript",
        "segments",
        "commits",
        "words",
    ]
    assert (doc["source_lang"], doc["target_lang"], doc["audio"]) == ("en", "zh", "talk.wav")
    assert doc["interrupted"] is True
    assert (doc["translation"], doc["transcript"]) == ("你好，世界。", "Hello, world.")
    assert doc["segments"] == [
        {
            "start_s": 0.5,
            "end_s": 1.5,
            "source": "Hello, world.",
            "text": "你好，世界。",
            "speaker": None,
        }
    ]
    assert doc["commits"] == [x.to_json() for x in commits]
    assert doc["words"][1] == {
        "text": "world.",
        "start_s": 1.0,
        "end_s": 1.5,
        "audio_s": 1.5,
        "committed_s": 1.6,
        "sentence_end": False,
        "speaker": None,
    }


def test_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "a.srt"
    write_srt(path, TWO_CUES)

    def interrupt(*_args) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_srt(path, [Cue(0.0, 1.0, "half")])
    assert path.read_text(encoding="utf-8") == SRT
    assert [p.name for p in tmp_path.iterdir()] == ["a.srt"]


def spoken_by(commit: SpeechCommit, speaker: int) -> SpeechCommit:
    from dataclasses import replace

    return replace(commit, speaker=speaker)


def test_cues_of_two_speakers_carry_labels_in_srt_and_vtt_voice_tags() -> None:
    commits = [
        spoken_by(c("你好。", 0, 0.5, 1.5, True), 0),
        spoken_by(c("我们", 1, 2.0, 2.5), 1),
        spoken_by(c("去公园。", 1, 2.0, 3.0, True), 1),
        spoken_by(c("好。", 2, 4.0, 4.5, True), 0),
    ]
    cues = cues_from_commits(commits, [], "zh")
    assert [q.speaker for q in cues] == ["S1", "S2", "S1"]
    srt = srt_text(cues)
    assert "\n[S1] 你好。\n" in srt and "\n[S2] 我们去公园。\n" in srt
    vtt = vtt_text(cues, bilingual=False)
    assert "\n<v S2>我们去公园。\n" in vtt and "\n<v S1>好。\n" in vtt


def test_one_speaker_or_none_shows_no_labels() -> None:
    alone = [spoken_by(c("你好。", 0, 0.5, 1.5, True), 0), spoken_by(c("好。", 1, 2, 3, True), 0)]
    for commits in (alone, [c("你好。", 0, 0.5, 1.5, True)]):
        cues = cues_from_commits(commits, [], "zh")
        assert "[S" not in srt_text(cues) and "<v " not in vtt_text(cues)
    assert [q.speaker for q in cues_from_commits(alone, [], "zh")] == ["S1", "S1"]


def test_the_json_transcript_has_the_speaker_of_each_word_and_segment() -> None:
    words = [
        SourceWord("Hi.", 0.5, 1.0, 1.0, 1.1, True, 0),
        SourceWord("Yes.", 2, 2.5, 2.5, 3, True, 1),
    ]
    commits = [spoken_by(c("嗨。", 0, 0.5, 1.0, True), 0), spoken_by(c("是。", 1, 2, 2.5, True), 1)]
    cues = cues_from_commits(commits, words, "zh")
    doc = transcript_document(
        source_lang="en",
        target_lang="zh",
        audio="a.wav",
        commits=commits,
        source_words=words,
        cues=cues,
    )
    assert [w["speaker"] for w in doc["words"]] == [0, 1]
    assert [s["speaker"] for s in doc["segments"]] == ["S1", "S2"]
    assert [s["source"] for s in doc["segments"]] == ["Hi.", "Yes."]
    assert [x["speaker"] for x in doc["commits"]] == [0, 1]
