"""The server end to end on the tone stand-ins: the protocol, its errors, limits, disconnects."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from server_fakes import CONFIG, frames, script_audio, tone_engine
from simulinterp.server.app import create_app
from simulinterp.server.engine import ServerEngine, ServerSettings
from speech_fakes import EnergyVAD

BASE = "http://127.0.0.1:8000"


def client(engine=None, **settings) -> TestClient:
    app = create_app(engine or tone_engine(), ServerSettings(**settings))
    return TestClient(app, base_url=BASE)


def connect(c: TestClient, path: str = "/ws", **kwargs):
    """A WebSocket to ``path`` on ``c``'s host (the test client's default host is not one)."""
    return c.websocket_connect(
        str(c.base_url).replace("http", "ws", 1).rstrip("/") + path, **kwargs
    )


def until(ws, kind: str, limit: int = 5000) -> tuple[dict, list[dict]]:
    """Messages up to the first of type ``kind`` (binary frames as {'type': 'audio'})."""
    seen = []
    for _ in range(limit):
        message = ws.receive()
        if message["type"] == "websocket.close":
            kinds = [e["type"] for e in seen[-5:]]
            raise AssertionError(f"closed ({message.get('code')}) before {kind}, after {kinds}")
        if message.get("bytes") is not None:
            seen.append({"type": "audio", "bytes": message["bytes"]})
            continue
        event = json.loads(message["text"])
        seen.append(event)
        if event["type"] == kind:
            return event, seen
    raise AssertionError(f"no {kind} in {limit} messages")


def error_of(ws) -> tuple[dict, int]:
    """The typed error and the close code that follows it."""
    event, _ = until(ws, "error")
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    return event, closed.value.code


def test_a_session_streams_subtitles_and_speech_then_the_transcript():
    with client() as c, connect(c, "/ws") as ws:
        ws.send_json({**CONFIG, "voice": True, "client_id": "tab-1"})
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["voice"] is True and ready["version"] == 1
        assert ready["output_sample_rate"] == 24000
        for frame in frames(script_audio()):
            ws.send_bytes(frame)
        ws.send_json({"type": "stop"})
        done, seen = until(ws, "done")
    kinds = [e["type"] for e in seen]
    # (where the recognizer got the audio in one piece, the pause is a comma)
    words = [e["text"] for e in seen if e["type"] == "source" and e["text"] != ","]
    assert words == ["we", "go", "to", "the", "park", "he", "likes", "it"]
    assert "".join(e["text"] for e in seen if e["type"] == "translation") == done["translation"]
    assert done["translation"].replace("，", "") == "们去今公园他喜欢"
    assert kinds.index("speaker") < kinds.index("source")  # the turn opens before its words
    # every speech event is followed by its audio, of the length it announces
    for i, event in enumerate(seen):
        if event["type"] == "speech":
            assert seen[i + 1]["type"] == "audio"
            assert len(seen[i + 1]["bytes"]) == 2 * event["samples"] > 0
    transcript = next(e for e in seen if e["type"] == "transcript")
    assert "-->" in transcript["srt"] and transcript["vtt"].startswith("WEBVTT")
    assert json.loads(transcript["json"])["translation"] == done["translation"]
    assert done["interrupted"] is False


def test_audio_at_another_rate_is_resampled():
    import soxr

    audio = soxr.resample(script_audio(), 16000, 44100)
    with client() as c, connect(c, "/ws") as ws:
        ws.send_json({**CONFIG, "sample_rate": 44100})
        assert ws.receive_json()["type"] == "ready"
        for frame in frames(audio, rate=44100):
            ws.send_bytes(frame)
        ws.send_json({"type": "stop"})
        done, _ = until(ws, "done")
    assert done["translation"].replace("，", "") == "们去今公园他喜欢"
    assert done["audio_s"] == pytest.approx(len(audio) / 44100, abs=0.05)


@pytest.mark.parametrize(
    ("first", "code", "close"),
    [
        ("{not json", "bad_json", 1003),
        ("[1, 2]", "bad_json", 1003),
        (json.dumps({**CONFIG, "colour": "red"}), "unknown_field", 1003),
        (json.dumps({**CONFIG, "version": 2}), "unsupported_version", 1003),
        (json.dumps({**CONFIG, "sample_rate": 100}), "bad_config", 1003),
        (json.dumps({"type": "stop"}), "bad_message", 1003),
        (json.dumps({**CONFIG, "policy": "wait-k", "latency": 2.5}), "bad_config", 1003),
    ],
)
def test_a_bad_first_message_gets_a_typed_error_and_a_clean_close(first, code, close):
    engine = tone_engine()
    engine._factory = None  # the real session builder checks the policy's knob
    engine.speech = object()  # never reached: the config is refused first
    with client(engine) as c, connect(c, "/ws") as ws:
        ws.send_text(first)
        event, closed = error_of(ws)
    assert event["code"] == code and event["message"]
    assert closed == close


def test_audio_before_the_config_is_refused():
    with client() as c, connect(c, "/ws") as ws:
        ws.send_bytes(b"\x00\x00" * 100)
        event, closed = error_of(ws)
    assert (event["code"], closed) == ("audio_before_config", 1003)


def test_an_oversized_or_odd_frame_is_refused_and_the_rest_is_kept(tmp_path):
    with client(save_dir=tmp_path, max_frame_bytes=8000) as c, connect(c, "/ws") as ws:
        ws.send_json(CONFIG)
        ws.receive_json()
        for frame in frames(script_audio(), frame_s=0.1):  # 3200 bytes each
            ws.send_bytes(frame)
        ws.send_bytes(b"\x00" * 8002)
        event, closed = error_of(ws)
    assert (event["code"], closed) == ("frame_too_large", 1009)
    with client() as c, connect(c, "/ws") as ws:
        ws.send_json(CONFIG)
        ws.receive_json()
        ws.send_bytes(b"\x00" * 3)
        event, closed = error_of(ws)
    assert (event["code"], closed) == ("bad_frame", 1003)
    saved = _saved_translation(tmp_path)  # the first session's words were still translated
    assert saved.replace("，", "") == "们去今公园他喜欢"


def _saved_translation(folder) -> str:
    import time

    for _ in range(100):  # the pipeline finishes in its own thread after the close
        logs = list(folder.glob("*.zh.json"))
        if logs and "们去" in logs[0].read_text(encoding="utf-8"):
            document = json.loads(logs[0].read_text(encoding="utf-8"))
            if document["translation"].replace("，", "") == "们去今公园他喜欢":
                return document["translation"]
        time.sleep(0.05)
    return json.loads(logs[0].read_text(encoding="utf-8"))["translation"] if logs else ""


def test_a_flood_of_tiny_frames_is_rate_limited():
    with client(max_messages_per_s=50, burst_messages=100) as c, connect(c, "/ws") as ws:
        ws.send_json(CONFIG)
        ws.receive_json()
        for _ in range(400):
            ws.send_bytes(b"\x00\x00")
        event, closed = error_of(ws)
    assert (event["code"], closed) == ("rate_limited", 1008)


def test_audio_much_faster_than_real_time_is_refused():
    with client(max_audio_speed=2.0, burst_audio_s=3.0) as c, connect(c, "/ws") as ws:
        ws.send_json(CONFIG)
        ws.receive_json()
        for frame in frames(script_audio(3), frame_s=0.5):
            ws.send_bytes(frame)
        event, closed = error_of(ws)
    assert event["code"] == "rate_limited" and "real time" in event["message"]


def test_the_token_is_checked_on_connect():
    with client(host="0.0.0.0", token="s3cret") as c:
        with connect(c, "/ws?token=wrong") as ws:
            event, closed = error_of(ws)
        assert (event["code"], closed) == ("unauthorized", 1008)
        with connect(c, "/ws") as ws:
            assert error_of(ws)[0]["code"] == "unauthorized"
        with connect(c, "/ws?token=s3cret") as ws:
            ws.send_json(CONFIG)
            assert ws.receive_json()["type"] == "ready"


def test_a_non_loopback_bind_needs_a_token():
    with pytest.raises(ValueError, match="--token"):
        ServerSettings(host="0.0.0.0")
    assert ServerSettings().host == "127.0.0.1"


def test_a_page_from_another_origin_is_refused():
    with client(allowed_origins=("https://app.example",)) as c:
        with connect(c, "/ws", headers={"origin": "https://evil.example"}) as ws:
            event, closed = error_of(ws)
        assert (event["code"], closed) == ("forbidden_origin", 1008)
        for origin in ("http://127.0.0.1:8000", "https://app.example"):
            with connect(c, "/ws", headers={"origin": origin}) as ws:
                ws.send_json(CONFIG)
                assert ws.receive_json()["type"] == "ready"


def test_a_rebound_host_name_is_refused_without_a_token():
    app = create_app(tone_engine(), ServerSettings())
    with TestClient(app, base_url="http://evil.example:8000") as c:
        with connect(c, "/ws", headers={"origin": "http://evil.example:8000"}) as ws:
            assert error_of(ws)[0]["code"] == "forbidden_origin"


def test_the_session_limit_refuses_one_more_and_frees_the_slot():
    with client(max_sessions=1) as c:
        with connect(c, "/ws") as first:
            first.send_json(CONFIG)
            assert first.receive_json()["type"] == "ready"
            assert c.get("/health").json()["sessions"] == 1
            with connect(c, "/ws") as second:
                second.send_json(CONFIG)
                event, closed = error_of(second)
            assert (event["code"], closed) == ("too_many_sessions", 1013)
            assert "full" in event["message"]
        _wait(lambda: c.get("/health").json()["sessions"] == 0)
        with connect(c, "/ws") as third:
            third.send_json(CONFIG)
            assert third.receive_json()["type"] == "ready"


def _wait(condition, tries: int = 200) -> None:
    import time

    for _ in range(tries):
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition never held")


def test_a_reconnecting_client_replaces_its_own_session(tmp_path):
    with client(max_sessions=1, save_dir=tmp_path) as c:
        with connect(c, "/ws") as old:
            old.send_json({**CONFIG, "client_id": "tab-7"})
            old.receive_json()
            for frame in frames(script_audio())[:20]:
                old.send_bytes(frame)
            with connect(c, "/ws") as new:  # same client: not refused as one more
                new.send_json({**CONFIG, "client_id": "tab-7"})
                assert new.receive_json()["type"] == "ready"
                event, closed = error_of(old)
                assert (event["code"], closed) == ("replaced", 4000)
                for frame in frames(script_audio()):
                    new.send_bytes(frame)
                new.send_json({"type": "stop"})
                done, _ = until(new, "done")
    assert done["translation"].replace("，", "") == "们去今公园他喜欢"


def test_an_abrupt_disconnect_mid_utterance_keeps_what_was_committed(tmp_path):
    with client(save_dir=tmp_path) as c:
        with connect(c, "/ws") as ws:
            ws.send_json(CONFIG)
            session = ws.receive_json()["session_id"]
            audio = script_audio()
            cut = int(16000 * (0.5 + 5 * 0.45 + 1.0 + 0.5))  # inside "he likes it"
            for frame in frames(audio[:cut]):
                ws.send_bytes(frame)
            until(ws, "translation")
        # the socket is gone without a stop: the server still finishes what it heard
        _wait(lambda: c.get("/health").json()["sessions"] == 0)
        with connect(c, "/ws") as ws:  # and serves the next client
            ws.send_json(CONFIG)
            assert ws.receive_json()["type"] == "ready"
    log = (tmp_path / f"{session}.zh.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in log]
    sources = [e["text"] for e in events if e["type"] == "source" and e["text"] != ","]
    # every word heard before the cut, finished after it (the cut-off one is misheard)
    assert sources[:6] == ["we", "go", "to", "the", "park", "he"]
    saved = json.loads((tmp_path / f"{session}.zh.json").read_text(encoding="utf-8"))
    assert saved["translation"].startswith("们去今公园")


def test_ping_pong_and_a_second_config_is_an_error():
    with client() as c, connect(c, "/ws") as ws:
        ws.send_json(CONFIG)
        ws.receive_json()
        ws.send_json({"type": "ping"})
        until(ws, "pong")
        ws.send_json(CONFIG)
        event, closed = error_of(ws)
    assert event["code"] == "bad_message" and closed == 1003


def test_health_and_the_page():
    with client(max_sessions=3) as c:
        health = c.get("/health").json()
        assert health == {"status": "ok", "version": 1, "sessions": 0, "max_sessions": 3}
        page = c.get("/")
        if page.status_code == 200:
            assert "Content-Security-Policy" in page.headers
        assert c.get("/static/../engine.py").status_code == 404  # no path escapes the folder


def test_a_session_fed_faster_than_real_time_degrades_and_its_lag_stays_bounded():
    from simulinterp.server.backpressure import BackpressureConfig

    rule = BackpressureConfig(
        skip_partials_s=0.5, partials_again_s=0.2, degrade_s=1.0, recover_s=0.5, max_lag_s=2.0
    )
    import time

    engine = tone_engine(decode_s=0.5)  # decoding takes half the audio's length
    with client(engine, backpressure=rule, lag_every_s=0.1) as c, connect(c) as ws:
        ws.send_json(CONFIG)
        ws.receive_json()
        audio = script_audio(6)  # 45 s, sent at 3x real time
        for frame in frames(audio):
            ws.send_bytes(frame)
            time.sleep(0.1 / 3)
        ws.send_json({"type": "stop"})
        done, seen = until(ws, "done", limit=100000)
    lags = [e for e in seen if e["type"] == "lag"]
    modes = {e["mode"] for e in lags}
    assert {"degraded", "dropping"} <= modes
    # bounded: past the limit by at most the audio sent during one step (3 x ~1 s here),
    # and not growing with the length of the stream
    first, last = lags[: len(lags) // 2], lags[len(lags) // 2 :]
    assert max(e["lag_s"] for e in lags) < 2.0 + 4.0
    assert max(e["lag_s"] for e in last) <= max(e["lag_s"] for e in first) + 1.0
    dropped = lags[-1]["dropped_s"]
    assert 0 < dropped < len(audio) / 16000
    warnings = [e for e in seen if e["type"] == "warning" and e["code"] == "audio_dropped"]
    assert warnings and "not heard" in warnings[0]["message"]
    assert done["audio_s"] == pytest.approx(len(audio) / 16000, abs=0.01)  # times stay the client's
    assert done["translation"]  # what was heard is interpreted
    heard = [e for e in seen if e["type"] == "source"]
    assert max(e["end_s"] for e in heard) <= len(audio) / 16000


def test_a_session_past_its_length_is_finished_then_closed():
    import time

    with client(max_session_s=0.5, lag_every_s=0.1) as c, connect(c) as ws:
        ws.send_json(CONFIG)
        assert ws.receive_json()["limits"]["max_session_s"] == 0.5
        for frame in frames(script_audio())[:30]:
            ws.send_bytes(frame)
            time.sleep(0.03)
        done, seen = until(ws, "done")
        event, closed = error_of(ws)
    assert (event["code"], closed) == ("session_too_long", 1000)
    assert any(e["type"] == "transcript" for e in seen)  # what was heard is finished first
    assert done["translation"]


def test_serve_checks_its_options_before_loading_models(tmp_path):
    from simulinterp.cli import main

    assert main(["serve", "--host", "0.0.0.0"]) == 2  # no token
    assert main(["serve", "--tls-cert", str(tmp_path / "c.pem")]) == 2  # no key
    missing = ["serve", "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k")]
    assert main(missing) == 2


def test_a_failing_session_is_a_typed_internal_error():
    from simulinterp.server.engine import ServerEngine

    def broken(config):
        raise RuntimeError("no model")

    with client(ServerEngine(None, session_factory=broken)) as c, connect(c) as ws:
        ws.send_json(CONFIG)
        event, closed = error_of(ws)
    assert (event["code"], closed) == ("internal", 1011) and "no model" in event["message"]


@pytest.mark.parametrize(
    ("tts", "lang", "espeak", "chosen"),
    [
        ("auto", "en", True, "piper"),
        ("auto", "en", False, "kokoro"),
        ("auto", "zh", True, "kokoro"),
        ("kokoro", "en", True, "kokoro"),
        ("piper", "en", False, "piper"),  # asked for: its own error says what is missing
    ],
)
def test_the_server_voice_is_piper_for_english_when_it_can_be(
    monkeypatch, tts, lang, espeak, chosen
):
    import shutil

    from simulinterp.cli.serve import voice_backend

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/espeak-ng" if espeak else None)
    assert voice_backend(tts, lang) == chosen


def test_a_tracked_session_sends_speaker_turns_and_a_voice_per_speaker(tmp_path, monkeypatch):
    from simulinterp.pipeline import SpeechSession
    from simulinterp.speakers.tracker import SpeakerTracker
    from speaker_fakes import HumEncoder
    from unit.test_speaker_pipeline import two_speakers
    from unit.test_speaker_voices import StyleSynth

    monkeypatch.setenv("SIMULINTERP_CACHE", str(tmp_path))  # the voices' profiles go here
    plain = tone_engine()

    def tracked(config):
        session = plain.session(config)
        tracker = SpeakerTracker(HumEncoder(bands=8), EnergyVAD())
        return SpeechSession(session.recognizer, session.translator, realtime=True, tracker=tracker)

    synth = StyleSynth()
    engine = ServerEngine(None, session_factory=tracked, voice_loader=lambda lang: (synth, "mid"))
    with client(engine) as c, connect(c, "/ws") as ws:
        ws.send_json({**CONFIG, "voice": True})
        assert ws.receive_json()["type"] == "ready"
        for frame in frames(two_speakers()):
            ws.send_bytes(frame)
        ws.send_json({"type": "stop"})
        _, seen = until(ws, "done")
    turns = [e for e in seen if e["type"] == "speaker"]
    assert [(t["label"], t["new"]) for t in turns] == [("S1", True), ("S2", True)]
    words = [(e["text"], e["speaker"]) for e in seen if e["type"] == "source" and e["text"] != ","]
    assert words[0] == ("we", 0) and words[-1][1] == 1
    voices = {e["speaker"]: e["voice"] for e in seen if e["type"] == "speech"}
    assert set(voices) == {0, 1} and voices[0] != voices[1]
    _wait(lambda: len(synth.voices("zh")) == 3)  # the session's fitted voices are gone
    assert synth.voices("zh") == ["low", "mid", "high"]
