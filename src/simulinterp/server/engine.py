"""The server's settings and its engine: the heavy models, loaded once, and a session per
connection built from the client's config."""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from simulinterp.pipeline import SpeechEngine, SpeechSession
from simulinterp.server.backpressure import BackpressureConfig
from simulinterp.server.protocol import ClientConfig, ProtocolError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """How ``simulinterp serve`` runs.

    Attributes:
        host: the address to bind (loopback by default; another needs ``token``).
        port: the TCP port.
        token: the secret a client gives as ``?token=`` (None: no token; loopback only).
        allowed_origins: browser origins accepted besides the server's own (``https://a.b``).
        max_sessions: live sessions at most; one more is refused.
        save_dir: each session's transcript is appended here as it goes (None: nowhere).
        max_frame_bytes: the largest audio frame.
        max_messages_per_s: messages a second a client may send on average.
        burst_messages: messages a client may send at once.
        max_audio_speed: audio a client may send, in seconds per second on average (a file
            may stream faster than real time; beyond this it is refused).
        burst_audio_s: audio a client may send ahead of that pace, seconds.
        max_session_s: the longest session, wall seconds.
        config_timeout_s: seconds a connection may wait before its config.
        max_pending_messages: messages waiting for a slow client at most.
        lag_every_s: seconds between ``lag`` messages.
        backpressure: the degrade rule's thresholds.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    allowed_origins: tuple[str, ...] = ()
    max_sessions: int = 4
    save_dir: Path | None = None
    max_frame_bytes: int = 64000
    max_messages_per_s: float = 100.0
    burst_messages: int = 400
    max_audio_speed: float = 4.0
    burst_audio_s: float = 60.0
    max_session_s: float = 4 * 3600.0
    config_timeout_s: float = 10.0
    max_pending_messages: int = 1000
    lag_every_s: float = 1.0
    backpressure: BackpressureConfig = field(default_factory=BackpressureConfig)

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not self.token:
            raise ValueError(
                f"binding {self.host} lets other machines connect: give --token SECRET "
                "(clients then connect with ?token=SECRET), or bind 127.0.0.1"
            )
        if self.max_sessions < 1 or self.max_frame_bytes < 2 or self.max_session_s <= 0:
            raise ValueError("max_sessions >= 1, max_frame_bytes >= 2, max_session_s > 0")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1 to 65535, got {self.port}")


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


SessionFactory = Callable[[ClientConfig], SpeechSession]
VoiceLoader = Callable[[str], tuple[object, str]]


class ServerEngine:
    """The models every session shares, and a new session for each client config.

    Args:
        speech: the speech engine (LLM, recognizer model, VAD), shared.
        asr_step_s: seconds of new audio between decodes.
        voice_loader: loads the synthesizer and voice for a language (once each; None: no
            speech output).
        session_factory: builds a session from a config instead (tests).
    """

    def __init__(
        self,
        speech: SpeechEngine | None,
        *,
        asr_step_s: float = 0.5,
        voice_loader: VoiceLoader | None = None,
        session_factory: SessionFactory | None = None,
    ) -> None:
        if speech is None and session_factory is None:
            raise ValueError("give a speech engine or a session factory")
        self.speech, self.asr_step_s = speech, asr_step_s
        self._factory = session_factory
        self._voice_loader = voice_loader
        self._voices: dict[str, tuple[object, str]] = {}
        self._lock = threading.Lock()
        self._no_encoder = False
        self._banks: dict[str, object] = {}

    def session(self, config: ClientConfig) -> SpeechSession:
        """A real-time session for ``config``.

        Raises:
            ProtocolError: ``bad_config`` when the policy, knob or glossary is refused.
        """
        if self._factory is not None:
            return self._factory(config)
        from simulinterp.asr.stream import RecognizerConfig
        from simulinterp.translate.glossary import GlossaryError

        assert self.speech is not None
        try:
            policy, translator, glossary = session_parts(config)
        except (ValueError, GlossaryError) as err:
            raise ProtocolError("bad_config", str(err)) from err
        recognizer = RecognizerConfig(lang=config.source_lang, step_s=self.asr_step_s)
        return self.speech.session(
            policy,
            translator,
            recognizer,
            realtime=True,
            glossary=glossary,
            speakers=self.tracker(config),
        )

    def tracker(self, config: ClientConfig):
        """The speaker tracker settings for ``config``; None (one speaker) when the client asks
        for one or no speaker encoder is installed (said once in the log)."""
        from simulinterp.packaged import ModelNotFoundError
        from simulinterp.speakers.tracker import TrackerConfig

        if config.speakers <= 1 or self._no_encoder:
            return None
        assert self.speech is not None
        try:
            self.speech.speaker_encoder  # noqa: B018 - loaded once, shared
        except (ModelNotFoundError, ValueError) as err:
            self._no_encoder = True
            logger.warning("speakers: %s; every session has one speaker", err)
            return None
        return TrackerConfig(max_speakers=config.speakers)

    @property
    def has_voice(self) -> bool:
        return self._voice_loader is not None

    def voice_bank(self, lang: str):
        """The packaged voices of ``lang`` and their profiles (measured once, shared by the
        sessions that give each speaker a voice), or None without a voice."""
        voice = self.voice(lang)
        if voice is None:
            return None
        from simulinterp.speakers.voices import VoiceBank, profile_cache

        with self._lock:
            if lang not in self._banks:
                self._banks[lang] = VoiceBank(voice[0], lang, cache=profile_cache(voice[0], lang))
            return self._banks[lang]

    def voice(self, lang: str) -> tuple[object, str] | None:
        """The synthesizer and voice for ``lang`` (loaded on first use), or None."""
        if self._voice_loader is None:
            return None
        with self._lock:
            if lang not in self._voices:
                self._voices[lang] = self._voice_loader(lang)
            return self._voices[lang]


def session_parts(config: ClientConfig):
    """The policy, translator config and glossary of a client config, with the direction's
    speech defaults (the same as ``interpret``) where the client gave none.

    Raises:
        ValueError: the policy refuses the knob.
        GlossaryError: the glossary is invalid (e.g. a source given twice).
    """
    from simulinterp.defaults import speech_defaults
    from simulinterp.policy import make_policy
    from simulinterp.translate import TranslatorConfig
    from simulinterp.translate.glossary import Glossary, Term

    src, tgt = config.source_lang, config.target_lang
    chosen = speech_defaults(src, tgt)
    name, knob = policy_choice(config)
    policy = make_policy(name, knob, src, tgt)
    translator = TranslatorConfig(
        source_lang=src,
        target_lang=tgt,
        layout=chosen.layout,
        context_sentences=chosen.context_sentences,
        max_duty=chosen.speaking_max_duty if config.voice else chosen.max_duty,
    )
    glossary = None
    if config.glossary:
        terms = tuple(Term(source, target) for source, target in config.glossary)
        glossary = Glossary(terms, source_lang=src)
    return policy, translator, glossary


def policy_choice(config: ClientConfig) -> tuple[str, float | None]:
    """The policy and latency knob a session runs with: the client's, else the direction's
    speech defaults, else the policy's own default (None: the policy has no knob)."""
    from simulinterp.defaults import speech_defaults
    from simulinterp.policy import POLICIES

    chosen = speech_defaults(config.source_lang, config.target_lang)
    name = config.policy or chosen.policy
    knob = config.latency
    if knob is None and name == chosen.policy:
        knob = chosen.knob
    if knob is None:
        knob = POLICIES[name].default
    return name, knob
