"""The online speaker tracker on hum voices (``speaker_fakes``): turns, returning speakers, the
cap, short turns, overlap, level and silence."""

from __future__ import annotations

import numpy as np
import pytest

from simulinterp.speakers.rttm import SpeakerTurn
from simulinterp.speakers.tracker import SpeakerTracker, TrackerConfig, speaker_label
from speaker_fakes import SAMPLE_RATE, HumEncoder, silence, voice
from speech_fakes import EnergyVAD


def track(audio: np.ndarray, *, chunk_s: float = 0.1, **config) -> SpeakerTracker:
    tracker = SpeakerTracker(HumEncoder(), EnergyVAD(), TrackerConfig(**config))
    step = int(chunk_s * SAMPLE_RATE)
    for i in range(0, len(audio), step):
        tracker.insert_audio(audio[i : i + step])
        tracker.process()
    tracker.finish()
    return tracker


def labels_over(tracker: SpeakerTracker, spans: list[tuple[float, float]]) -> list[int]:
    return [tracker.speaker_at(a, b) for a, b in spans]


def test_two_speakers_who_take_turns_are_two_returning_speakers():
    audio = np.concatenate([voice(0, 4), silence(0.5), voice(1, 4), silence(0.5), voice(0, 4)])
    tracker = track(audio)
    assert len(tracker.speakers) == 2
    # the middle of each turn
    assert labels_over(tracker, [(1.5, 2.5), (6, 7), (10.5, 11.5)]) == [0, 1, 0]
    turns = tracker.turns()
    assert [t.speaker for t in turns] == ["S1", "S2", "S1"]
    assert turns[1].start_s == pytest.approx(4.5, abs=0.6)
    assert turns[1].end_s == pytest.approx(8.5, abs=0.6)
    # each change is decided about a second after the turn starts
    assert [c.speaker for c in tracker.changes] == [0, 1, 0]
    assert [c.new for c in tracker.changes] == [True, True, False]
    for change in tracker.changes:
        assert 0 < change.decided_s - change.start_s <= 2.5


def test_labels_do_not_depend_on_how_the_audio_is_chunked():
    audio = np.concatenate([voice(2, 3), voice(5, 3), voice(2, 2)])
    small, whole = track(audio, chunk_s=0.1), track(audio, chunk_s=100)
    assert small.turns() == whole.turns()
    assert [c.speaker for c in small.changes] == [c.speaker for c in whole.changes]


def test_a_one_word_interjection_founds_no_speaker():
    audio = np.concatenate([voice(0, 3), voice(3, 0.4), voice(0, 3)])
    tracker = track(audio)
    assert len(tracker.speakers) == 1
    assert {t.speaker for t in tracker.turns()} == {"S1"}


def test_two_voices_at_once_are_not_a_third_speaker():
    a, b = voice(0, 9), voice(1, 9)
    overlap = a.copy()
    overlap[int(3 * SAMPLE_RATE) : int(4.2 * SAMPLE_RATE)] += b[: int(1.2 * SAMPLE_RATE)]
    audio = np.concatenate([overlap, silence(0.5), b[: int(4 * SAMPLE_RATE)]])
    tracker = track(audio)
    assert len(tracker.speakers) == 2
    assert tracker.speaker_at(7, 8) == 0 and tracker.speaker_at(11, 12) == 1


def test_twenty_speakers_in_a_row_stop_at_the_cap():
    audio = np.concatenate([voice(k, 2.5) for k in range(20)])
    tracker = track(audio, max_speakers=8)
    assert len(tracker.speakers) == 8
    labels = {t.speaker for t in tracker.turns()}
    assert labels <= {speaker_label(k) for k in range(8)}
    # the first eight are told apart before the cap is reached
    assert labels_over(tracker, [(2.5 * k + 1.2, 2.5 * k + 1.8) for k in range(8)]) == list(
        range(8)
    )


@pytest.mark.parametrize("level", [0.02, 0.95])
def test_a_whisper_or_a_shout_is_the_same_speaker(level):
    audio = np.concatenate([voice(0, 3), voice(0, 3, level=level, seed=1), voice(0, 2)])
    audio = np.clip(audio, -1, 1)
    tracker = track(audio)
    assert len(tracker.speakers) == 1


def test_silence_has_no_speaker_and_no_turn():
    tracker = track(silence(5))
    assert tracker.speakers == [] and tracker.turns() == [] and tracker.changes == []
    assert tracker.speaker_at(1, 2) == 0  # before anyone speaks, words go to the first speaker


def test_nothing_at_all_finishes_cleanly():
    tracker = SpeakerTracker(HumEncoder(), EnergyVAD())
    assert tracker.finish() == [] and tracker.turns() == []


def test_memory_stays_bounded_on_a_long_stream():
    tracker = SpeakerTracker(HumEncoder(), EnergyVAD())
    piece = voice(0, 2)
    sizes = []
    for _ in range(60):  # two minutes
        tracker.insert_audio(piece)
        tracker.process()
        sizes.append(len(tracker._buffer))
    # two windows and the new chunk, however long the stream
    assert max(sizes[5:]) == max(sizes[:5]) <= (2 * 1.6 + 2 + 0.5) * SAMPLE_RATE
    assert [t.speaker for t in tracker.turns()] == ["S1"]
    assert isinstance(tracker.turns()[0], SpeakerTurn)


def test_embeddings_are_batched_when_audio_comes_at_once():
    encoder = HumEncoder()
    tracker = SpeakerTracker(encoder, EnergyVAD())
    tracker.insert_audio(voice(0, 10))
    tracker.process()
    assert encoder.calls[0] >= 15  # one call for every window of the ten seconds


def test_the_voice_profile_of_a_speaker_grows_with_their_audio():
    tracker = track(np.concatenate([voice(0, 6), voice(4, 6)]))
    first, second = tracker.profile(0), tracker.profile(1)
    assert first is not None and second is not None
    assert first.voiced_s > 2 and second.voiced_s > 2
    assert tracker.profile(7) is None


@pytest.mark.parametrize(
    "config",
    [
        {"max_speakers": 0},
        {"hop_s": 2.0},
        {"min_voiced_s": 0},
        {"new_speaker_similarity": 1.5},
        {"confirm_windows": 0},
    ],
)
def test_bad_settings_are_refused(config):
    with pytest.raises(ValueError):
        TrackerConfig(**config)


def test_a_turn_after_silence_starts_where_its_speech_does():
    tracker = track(np.concatenate([silence(2.0), voice(0, 4)]))
    change = tracker.changes[0]
    assert change.start_s == pytest.approx(2.0, abs=0.1)
    assert 0 < change.decided_s - change.start_s <= 1.6
    assert tracker.turns()[0].start_s == pytest.approx(2.0, abs=0.1)
