"""The protocol's pure parts: message parsing, audio frames, the rate limit, backpressure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulinterp.server.backpressure import (
    DEGRADED,
    DROPPING,
    NORMAL,
    Backpressure,
    BackpressureConfig,
)
from simulinterp.server.protocol import (
    CLOSE_CODES,
    MAX_TEXT_BYTES,
    ClientConfig,
    Ping,
    ProtocolError,
    RateLimit,
    Stop,
    parse_text,
    pcm16_bytes,
    pcm16_samples,
)

CONFIG = {"type": "config", "version": 1}


def config(**fields) -> ClientConfig:
    parsed = parse_text(json.dumps({**CONFIG, **fields}), configured=False)
    assert isinstance(parsed, ClientConfig)
    return parsed


def refused(text: str, *, configured: bool = False) -> str:
    with pytest.raises(ProtocolError) as err:
        parse_text(text, configured=configured)
    return err.value.code


def test_a_minimal_config_takes_the_defaults():
    assert config() == ClientConfig()
    assert config(**{"from": "en"}).target_lang == "zh"  # 'to' defaults to the other language


def test_a_full_config():
    parsed = config(
        **{"from": "en", "to": "zh"},
        policy="wait-k",
        latency=3,
        voice=True,
        glossary=[{"source": "Hao Ren", "target": "郝仁"}],
        sample_rate=48000,
        client_id="tab-4f2a",
        partials=False,
        speakers=3,
    )
    assert parsed == ClientConfig(
        "en", "zh", "wait-k", 3.0, True, (("Hao Ren", "郝仁"),), 48000, "tab-4f2a", False, 3
    )
    assert config(speakers="auto").speakers == 8 and config(speakers=1).speakers == 1


@pytest.mark.parametrize(
    ("fields", "code", "names"),
    [
        ({"colour": "red"}, "unknown_field", "colour"),
        ({"version": 2}, "unsupported_version", "2"),
        ({"version": True}, "unsupported_version", "True"),
        ({"from": "fr"}, "bad_config", "from"),
        ({"from": "zh", "to": "zh"}, "bad_config", "both"),
        ({"policy": "learned"}, "bad_config", "policy"),
        ({"latency": "low"}, "bad_config", "latency"),
        ({"latency": True}, "bad_config", "latency"),
        ({"sample_rate": 16000.5}, "bad_config", "sample_rate"),
        ({"sample_rate": 96000}, "bad_config", "sample_rate"),
        ({"voice": "yes"}, "bad_config", "voice"),
        ({"client_id": "../etc"}, "bad_config", "client_id"),
        ({"client_id": "x" * 65}, "bad_config", "client_id"),
        ({"glossary": {"a": "b"}}, "bad_config", "glossary"),
        ({"glossary": [["a", "b"]]}, "bad_config", "glossary term 1"),
        ({"glossary": [{"source": " ", "target": "b"}]}, "bad_config", "glossary term 1"),
        ({"glossary": [{"source": "a", "target": "b"}] * 501}, "bad_config", "500"),
        ({"speakers": 0}, "bad_config", "speakers"),
        ({"speakers": 33}, "bad_config", "speakers"),
        ({"speakers": "many"}, "bad_config", "speakers"),
        ({"speakers": True}, "bad_config", "speakers"),
    ],
)
def test_a_bad_config_names_what_is_wrong(fields, code, names):
    with pytest.raises(ProtocolError) as err:
        parse_text(json.dumps({**CONFIG, **fields}), configured=False)
    assert err.value.code == code
    assert names in err.value.message


def test_config_nan_latency_is_refused():
    assert refused('{"type": "config", "version": 1, "latency": NaN}') == "bad_config"


@pytest.mark.parametrize(
    ("text", "configured", "code"),
    [
        ("", False, "bad_json"),
        ("{", False, "bad_json"),
        ('"config"', False, "bad_json"),
        ("[" * 60000, False, "bad_json"),  # deep nesting is refused, not a crash
        ('{"type": "stop"}', False, "bad_message"),
        ('{"type": "config", "version": 1}', True, "bad_message"),
        ('{"type": "dance"}', True, "bad_message"),
        ('{"no": "type"}', True, "bad_message"),
        ('"' + "x" * MAX_TEXT_BYTES + '"', True, "frame_too_large"),
    ],
)
def test_bad_messages(text, configured, code):
    assert refused(text, configured=configured) == code


def test_stop_and_ping_after_the_config():
    assert parse_text('{"type": "stop"}', configured=True) == Stop()
    assert parse_text('{"type": "ping"}', configured=True) == Ping()


def test_every_error_has_a_close_code_and_a_json_form():
    err = ProtocolError("too_many_sessions", "full")
    assert err.close_code == 1013
    assert err.to_json() == {"type": "error", "code": "too_many_sessions", "message": "full"}
    assert all(1000 <= code < 5000 for code in CLOSE_CODES.values())
    with pytest.raises(ValueError):
        ProtocolError("oops", "no such code")


def test_pcm16_frames_round_trip_and_are_checked():
    samples = np.array([0.0, 0.5, -0.5, -1.0, 0.999], np.float32)
    frame = pcm16_bytes(samples)
    assert len(frame) == 10
    assert np.allclose(pcm16_samples(frame, max_bytes=10), samples, atol=1 / 32768)
    assert pcm16_bytes(np.array([2.0, -2.0], np.float32)) == pcm16_bytes(
        np.array([32767 / 32768, -1.0], np.float32)
    )  # clipped, not wrapped
    with pytest.raises(ProtocolError, match="at most 8"):
        pcm16_samples(frame, max_bytes=8)
    with pytest.raises(ProtocolError) as err:
        pcm16_samples(frame[:3], max_bytes=10)
    assert err.value.code == "bad_frame"


def test_the_rate_limit_allows_bursts_and_the_average():
    limit = RateLimit(rate=10, burst=5, now_s=0.0)
    assert [limit.allow(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert limit.allow(0.1)  # a tenth of a second refills one
    assert not limit.allow(0.1)
    assert sum(limit.allow(1.0 + i / 20) for i in range(40)) == pytest.approx(5 + 20, abs=1)
    audio = RateLimit(rate=2.0, burst=3.0, now_s=0.0)  # seconds of audio per second
    assert audio.allow(0.0, 2.5) and not audio.allow(0.0, 1.0) and audio.allow(1.0, 2.0)


@pytest.mark.parametrize(
    ("lags", "modes", "partials"),
    [
        ([0.5, 1.5, 2.5, 1.5, 0.5], [NORMAL] * 5, [True, True, False, False, True]),
        ([5, 3, 1.9], [DEGRADED, DEGRADED, NORMAL], [False, False, False]),
        (
            [9, 6, 4.1, 3.9, 0.5],
            [DROPPING, DROPPING, DROPPING, DEGRADED, NORMAL],
            [False] * 4 + [True],
        ),
    ],
)
def test_the_backpressure_rule_steps_up_and_back_with_hysteresis(lags, modes, partials):
    rule = Backpressure(BackpressureConfig())
    seen = []
    for lag in lags:
        seen.append((rule.update(lag), rule.partials))
    assert seen == list(zip(modes, partials, strict=True))


def test_backpressure_thresholds_are_checked():
    with pytest.raises(ValueError):
        BackpressureConfig(degrade_s=1.0, recover_s=2.0)
    assert BackpressureConfig(max_lag_s=6).resume_at == 3


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "type",
                            "version",
                            "from",
                            "to",
                            "policy",
                            "latency",
                            "voice",
                            "glossary",
                            "sample_rate",
                            "client_id",
                            "partials",
                            "extra",
                        ]
                    ),
                    inner,
                    max_size=6,
                )
            ),
            max_leaves=20,
        ).map(json.dumps),
    ),
    st.booleans(),
)
def test_fuzz_any_message_parses_or_gets_a_typed_error(text, configured):
    """Whatever arrives, the parser answers with a message or a ProtocolError, never a crash."""
    try:
        parsed = parse_text(text, configured=configured)
    except ProtocolError as err:
        assert err.code in CLOSE_CODES and err.message
        return
    assert isinstance(parsed, ClientConfig | Stop | Ping)
    if isinstance(parsed, ClientConfig):
        assert parsed.source_lang != parsed.target_lang
        assert 8000 <= parsed.sample_rate <= 48000


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {"type": st.just("config"), "version": st.just(1)},
        optional={
            "from": st.sampled_from(["zh", "en", "de", 1, None]),
            "sample_rate": st.integers(0, 10**6) | st.floats(allow_nan=True),
            "glossary": st.lists(
                st.fixed_dictionaries(
                    {"source": st.text(max_size=120), "target": st.text(max_size=5)}
                ),
                max_size=3,
            ),
            "client_id": st.text(max_size=70),
            "latency": st.floats(allow_nan=True, allow_infinity=True) | st.integers(),
        },
    )
)
def test_fuzz_configs_near_the_valid_ones(message):
    try:
        parsed = parse_text(json.dumps(message), configured=False)
    except ProtocolError as err:
        assert err.code in {"bad_config", "unknown_field"}
        return
    assert isinstance(parsed, ClientConfig)
    for source, target in parsed.glossary:
        assert 0 < len(source) <= 100 and 0 < len(target) <= 100
