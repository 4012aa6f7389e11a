"""SRT, WebVTT and JSON transcripts of interpreted speech."""

from __future__ import annotations

import json

from simulinterp.events import SourceWord, SpeechCommit
from simulinterp.subtitles import (
    Cue,
    cues_from_commits,
    srt_text,
    vtt_text,
    write_srt,
    write_transcript_json,
)


def c(text, segment, start, end, final=False):
    return SpeechCommit(text, end, end + 0.5, end + 0.5, segment, final, start, end)


def w(text, start, end):
    return SourceWord(text, start, end, end, end, False)


def test_srt_and_vtt_formats():
    cues = [Cue(1.2345, 3.0, "你好。"), Cue(61.0, 3725.5, "再见。")]
    assert srt_text(cues) == (
        "1\n00:00:01,234 --> 00:00:03,000\n你好。\n\n2\n00:01:01,000 --> 01:02:05,500\n再见。\n"
    )
    assert vtt_text(cues).startswith("WEBVTT\n\n00:00:01.234 --> 00:00:03.000\n你好。\n")


def test_one_cue_per_sentence_timed_on_the_source():
    commits = [
        c("你好，", 0, 0.5, 1.0),
        c("世界。", 0, 0.5, 2.0, True),
        c("再见。", 1, 3.0, 3.2, True),
    ]
    words = [w("Hello,", 0.5, 1.0), w("world.", 1.0, 2.0), w("Bye.", 3.0, 3.2)]
    cues = cues_from_commits(commits, words, "zh")
    assert [(q.start_s, q.end_s, q.text, q.source) for q in cues] == [
        (0.5, 2.0, "你好，世界。", "Hello, world."),
        (3.0, 4.0, "再见。", "Bye."),  # stretched to the minimum duration
    ]


def test_cues_never_overlap():
    commits = [c("One.", 0, 0.0, 0.2), c("Two.", 1, 0.5, 1.0)]
    cues = cues_from_commits(commits, [], "en")
    assert cues[0].end_s == 0.5 and cues[1].start_s == 0.5


def test_long_sentences_are_split_on_spaces():
    text = " ".join(["word"] * 40)
    cues = cues_from_commits([c(text, 0, 0.0, 10.0)], [], "en", max_chars=50)
    assert len(cues) == 4
    assert all(len(q.text) <= 50 and not q.text.startswith(" ") for q in cues)
    assert cues[0].start_s == 0.0 and cues[-1].end_s == 10.0
    assert all(a.end_s == b.start_s for a, b in zip(cues, cues[1:], strict=False))


def test_transcript_json_has_everything(tmp_path):
    commits = [c("你好。", 0, 0.5, 1.0, True)]
    words = [w("Hello.", 0.5, 1.0)]
    cues = cues_from_commits(commits, words, "zh")
    path = tmp_path / "talk.zh.json"
    write_transcript_json(
        path,
        source_lang="en",
        target_lang="zh",
        audio="talk.wav",
        commits=commits,
        source_words=words,
        cues=cues,
        interrupted=True,
    )
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["translation"] == "你好。" and doc["transcript"] == "Hello."
    assert doc["interrupted"] is True
    assert doc["segments"][0]["text"] == "你好。"
    assert doc["commits"][0]["audio_s"] == 1.0 and doc["words"][0]["text"] == "Hello."


def test_writing_leaves_no_temporary_files(tmp_path):
    write_srt(tmp_path / "a.srt", [Cue(0, 1, "x")])
    assert [p.name for p in tmp_path.iterdir()] == ["a.srt"]
