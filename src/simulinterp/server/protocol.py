"""The WebSocket protocol's messages (version 1, ``docs/protocol.md``): pure parsing and checks.

Nothing here touches a socket. :func:`parse_text` turns a client's text message into a
:class:`ClientConfig`, :class:`Stop` or :class:`Ping`, or raises a :class:`ProtocolError` with
the code and close code the document gives; :func:`pcm16_samples` reads an audio frame;
:class:`RateLimit` is the message-rate token bucket.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VERSION = 1
MAX_TEXT_BYTES = 64 * 1024
MAX_GLOSSARY_TERMS = 500
MAX_TERM_CHARS = 100
SAMPLE_RATES = (8000, 48000)
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

CLOSE_CODES: dict[str, int] = {
    "bad_json": 1003,
    "bad_message": 1003,
    "bad_config": 1003,
    "unknown_field": 1003,
    "unsupported_version": 1003,
    "audio_before_config": 1003,
    "bad_frame": 1003,
    "config_timeout": 1008,
    "frame_too_large": 1009,
    "rate_limited": 1008,
    "session_too_long": 1000,
    "unauthorized": 1008,
    "forbidden_origin": 1008,
    "too_many_sessions": 1013,
    "replaced": 4000,
    "client_too_slow": 1008,
    "internal": 1011,
}


class ProtocolError(Exception):
    """A message broke the protocol: the session ends with a typed ``error`` message.

    Attributes:
        code: the error code (a key of :data:`CLOSE_CODES`).
        message: for people.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in CLOSE_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code, self.message = code, message

    @property
    def close_code(self) -> int:
        return CLOSE_CODES[self.code]

    def to_json(self) -> dict[str, str]:
        return {"type": "error", "code": self.code, "message": self.message}


@dataclass(frozen=True)
class ClientConfig:
    """The first message of a session.

    Attributes:
        source_lang: the spoken language (``from``).
        target_lang: the interpretation's language (``to``).
        policy: the READ/WRITE policy name; None: the direction's default.
        latency: the policy's latency knob; None: the policy's (or direction's) default.
        voice: also send the interpretation as speech.
        glossary: (source, target) term pairs.
        sample_rate: Hz of the audio frames.
        client_id: the client's name for itself (a reconnect replaces its old session).
        partials: send the tentative source text.
        speakers: the most speakers to tell apart (1: no tracking; the default 8 is
            ``"auto"``).
    """

    source_lang: str = "zh"
    target_lang: str = "en"
    policy: str | None = None
    latency: float | None = None
    voice: bool = False
    glossary: tuple[tuple[str, str], ...] = field(default=())
    sample_rate: int = 16000
    client_id: str | None = None
    partials: bool = True
    speakers: int = 8


@dataclass(frozen=True)
class Stop:
    """The audio has ended."""


@dataclass(frozen=True)
class Ping:
    """Asks for a ``pong``."""


_CONFIG_FIELDS = {
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
    "speakers",
}


def parse_text(text: str, *, configured: bool) -> ClientConfig | Stop | Ping:
    """Read one text message from a client.

    Args:
        text: the message.
        configured: the session already has its config (a second one is an error).

    Raises:
        ProtocolError: the message is not valid at this point.
    """
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_TEXT_BYTES:
        raise ProtocolError("frame_too_large", f"text messages are at most {MAX_TEXT_BYTES} bytes")
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise ProtocolError("bad_json", f"not JSON: {err}") from err
    if not isinstance(message, dict):
        raise ProtocolError("bad_json", "a message must be a JSON object")
    kind = message.get("type")
    if kind == "config":
        if configured:
            raise ProtocolError("bad_message", "the session already has its config")
        return parse_config(message)
    if not configured:
        raise ProtocolError("bad_message", f"the first message must be the config, not {kind!r}")
    if kind == "stop":
        return Stop()
    if kind == "ping":
        return Ping()
    raise ProtocolError("bad_message", f"unknown message type {kind!r} (config, stop, ping)")


def parse_config(message: dict[str, Any]) -> ClientConfig:
    """Check a config message field by field (see the table in ``docs/protocol.md``).

    Raises:
        ProtocolError: unknown fields, a wrong version, or a field of the wrong type or value.
    """
    unknown = sorted(set(message) - _CONFIG_FIELDS)
    if unknown:
        raise ProtocolError(
            "unknown_field",
            f"unknown config field(s): {', '.join(map(str, unknown))}; the fields are "
            + ", ".join(sorted(_CONFIG_FIELDS)),
        )
    version = message.get("version")
    if version != VERSION or isinstance(version, bool):
        raise ProtocolError(
            "unsupported_version", f"protocol version {version!r} is not supported; use {VERSION}"
        )
    source = _choice(message, "from", ("zh", "en"), "zh")
    target = _choice(message, "to", ("zh", "en"), "en" if source == "zh" else "zh")
    if source == target:
        raise ProtocolError("bad_config", f"'from' and 'to' are both {source!r}")
    policy = _policy(message.get("policy"))
    latency = message.get("latency")
    if latency is not None and (
        isinstance(latency, bool)
        or not isinstance(latency, int | float)
        or not math.isfinite(latency)
    ):
        raise ProtocolError("bad_config", f"'latency' must be a number or null, got {latency!r}")
    rate = message.get("sample_rate", 16000)
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise ProtocolError("bad_config", f"'sample_rate' must be an integer, got {rate!r}")
    if not SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]:
        raise ProtocolError(
            "bad_config", f"'sample_rate' must be {SAMPLE_RATES[0]} to {SAMPLE_RATES[1]} Hz"
        )
    client_id = message.get("client_id")
    if client_id is not None and (
        not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id)
    ):
        raise ProtocolError("bad_config", "'client_id' must be 1-64 of A-Z a-z 0-9 _ -")
    return ClientConfig(
        source_lang=source,
        target_lang=target,
        policy=policy,
        latency=None if latency is None else float(latency),
        voice=_flag(message, "voice", False),
        glossary=_glossary(message.get("glossary", [])),
        sample_rate=rate,
        client_id=client_id,
        partials=_flag(message, "partials", True),
        speakers=_speakers(message.get("speakers", "auto")),
    )


def _speakers(value: object) -> int:
    if value == "auto":
        return 8
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise ProtocolError("bad_config", f"'speakers' must be \"auto\" or 1 to 32, got {value!r}")
    return value


def _choice(message: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = message.get(key, default)
    if value not in allowed:
        raise ProtocolError("bad_config", f"{key!r} must be one of {', '.join(allowed)}")
    return value


def _flag(message: dict[str, Any], key: str, default: bool) -> bool:
    value = message.get(key, default)
    if not isinstance(value, bool):
        raise ProtocolError("bad_config", f"{key!r} must be true or false, got {value!r}")
    return value


def _policy(value: object) -> str | None:
    from simulinterp.policy import POLICIES

    live = [name for name, spec in POLICIES.items() if name not in ("learned", "offline")]
    if value is None:
        return None
    if value not in live:
        raise ProtocolError("bad_config", f"'policy' must be one of {', '.join(live)}")
    return str(value)


def _glossary(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise ProtocolError("bad_config", "'glossary' must be a list of {source, target}")
    if len(value) > MAX_GLOSSARY_TERMS:
        raise ProtocolError("bad_config", f"'glossary' has more than {MAX_GLOSSARY_TERMS} terms")
    terms = []
    for number, entry in enumerate(value, 1):
        if not isinstance(entry, dict) or set(entry) != {"source", "target"}:
            raise ProtocolError(
                "bad_config", f"glossary term {number} must be {{'source': ..., 'target': ...}}"
            )
        source, target = entry["source"], entry["target"]
        if not all(
            isinstance(t, str) and 0 < len(t.strip()) <= MAX_TERM_CHARS for t in entry.values()
        ):
            raise ProtocolError(
                "bad_config",
                f"glossary term {number}: source and target are 1-{MAX_TERM_CHARS} characters",
            )
        terms.append((source.strip(), target.strip()))
    return tuple(terms)


def pcm16_samples(frame: bytes, *, max_bytes: int) -> np.ndarray:
    """An audio frame's samples as float32 in [-1, 1).

    Raises:
        ProtocolError: the frame is too large or has an odd number of bytes.
    """
    if len(frame) > max_bytes:
        raise ProtocolError(
            "frame_too_large", f"an audio frame is at most {max_bytes} bytes, got {len(frame)}"
        )
    if len(frame) % 2:
        raise ProtocolError("bad_frame", "PCM16 frames have an even number of bytes")
    return np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0


def pcm16_bytes(samples: np.ndarray) -> bytes:
    """Float samples as PCM16 little-endian (clipped)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 32767 / 32768)
    return (clipped * 32768.0).astype("<i2").tobytes()


class RateLimit:
    """A token bucket: ``rate`` a second on average, bursts up to ``burst``.

    Args:
        rate: messages (or seconds of audio) per second allowed on average.
        burst: messages (or seconds of audio) allowed at once.
        now_s: the time of creation, seconds (any monotonic clock).
    """

    def __init__(self, rate: float, burst: float, now_s: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate > 0 and burst > 0 are required")
        self.rate, self.burst = rate, burst
        self._tokens, self._at = float(burst), now_s

    def allow(self, now_s: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` (a message, or seconds of audio) at ``now_s``: False when the bucket
        holds less."""
        self._tokens = min(self.burst, self._tokens + (now_s - self._at) * self.rate)
        self._at = now_s
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True
