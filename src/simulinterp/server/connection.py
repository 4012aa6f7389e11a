"""One WebSocket client, from the handshake to the close: the one place where asyncio meets
the synchronous pipeline.

A :class:`Connection` reads the client's messages on the event loop and hands audio to its
:class:`~simulinterp.server.session.ServerSession`, whose stages run in their own threads;
their events come back through a queue that one writer task sends. A slow session therefore
never stalls the others, and a disconnect is the WebSocket's own ``disconnect`` message, never
an error text.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketState

from simulinterp.server.engine import ServerEngine, ServerSettings, is_loopback, policy_choice
from simulinterp.server.protocol import (
    VERSION,
    ClientConfig,
    Ping,
    ProtocolError,
    RateLimit,
    Stop,
    parse_text,
    pcm16_samples,
)
from simulinterp.server.session import ServerSession

logger = logging.getLogger(__name__)


class Registry:
    """The live sessions of this worker (their count is the session limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self.connections: dict[str, Connection] = {}

    def __len__(self) -> int:
        return len(self.connections)

    def by_client(self, client_id: str | None) -> Connection | None:
        if client_id is None:
            return None
        with self._lock:
            return next((c for c in self.connections.values() if c.client_id == client_id), None)

    def add(self, connection: Connection) -> None:
        with self._lock:
            if len(self.connections) >= self.limit:
                raise ProtocolError(
                    "too_many_sessions",
                    f"the server is full ({self.limit} sessions); try again later",
                )
            self.connections[connection.session_id] = connection

    def remove(self, connection: Connection) -> None:
        with self._lock:
            if self.connections.get(connection.session_id) is connection:
                del self.connections[connection.session_id]


class _Close:
    """The writer's last item: close with ``code``."""

    def __init__(self, code: int) -> None:
        self.code = code


class Connection:
    """One WebSocket client, from the handshake to the close.

    Args:
        websocket: the connection.
        engine: the shared models.
        settings: the server's limits.
        registry: the live sessions.
    """

    def __init__(
        self,
        websocket: WebSocket,
        engine: ServerEngine,
        settings: ServerSettings,
        registry: Registry,
    ) -> None:
        self.ws, self.engine, self.settings, self.registry = websocket, engine, settings, registry
        self.session: ServerSession | None = None
        self.client_id: str | None = None
        self.session_id = ""
        self._out: asyncio.Queue[dict[str, Any] | bytes | _Close] = asyncio.Queue()
        self._pending = 0
        self._too_slow = False
        self._closed = False
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        now = time.monotonic()
        self._messages = RateLimit(settings.max_messages_per_s, settings.burst_messages, now)
        self._audio_rate = RateLimit(settings.max_audio_speed, settings.burst_audio_s, now)
        self._stopping = False
        self._too_long = False
        self._pipeline_done = asyncio.Event()
        self._ended: set[str] = set()
        self._tasks: list[asyncio.Task] = []

    # -- the whole connection ---------------------------------------------------------

    async def serve(self) -> None:
        await self.ws.accept()
        try:
            self._check_gate()
            config = await self._receive_config()
            await self._open(config)
            await self._stream()
        except ProtocolError as err:
            await self._fail(err)
        except _Disconnected:
            logger.info("client of session %s disconnected", self.session_id or "-")
        except Exception as err:  # a bug: the client still gets a typed error
            logger.exception("session %s failed", self.session_id or "-")
            await self._fail(ProtocolError("internal", f"the server failed: {err}"))
        finally:
            self._closed = True
            if self.session is not None:
                self.session.audio.end()  # the pipeline finishes what it heard (saved)
            self._release(connection_ended=True)

    def _release(self, *, connection_ended: bool = False, pipeline_ended: bool = False) -> None:
        """Free the session's slot once the connection and the pipeline have both ended (a
        session still finishing what it heard uses the machine)."""
        with self._lock:
            self._ended |= {"connection"} if connection_ended else set()
            self._ended |= {"pipeline"} if pipeline_ended else set()
            running = self.session is not None and self.session.started_pipeline
            done = "connection" in self._ended and ("pipeline" in self._ended or not running)
        if done:
            self.registry.remove(self)

    def _check_gate(self) -> None:
        settings, headers = self.settings, self.ws.headers
        if settings.token is not None:
            given = self.ws.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), settings.token.encode()):
                raise ProtocolError("unauthorized", "wrong or missing token (?token=...)")
        host = headers.get("host", "")
        if settings.token is None and not is_loopback(_hostname(host)):
            # a page on another name that resolves here (DNS rebinding) cannot reach us
            raise ProtocolError("forbidden_origin", f"host {host!r} is not this machine")
        origin = headers.get("origin")
        if origin is not None and origin not in settings.allowed_origins:
            if urlsplit(origin).netloc != host:
                raise ProtocolError(
                    "forbidden_origin",
                    f"pages from {origin} may not connect (start the server with "
                    "--allow-origin to allow them)",
                )

    async def _receive_config(self) -> ClientConfig:
        try:
            message = await asyncio.wait_for(
                self.ws.receive(), timeout=self.settings.config_timeout_s
            )
        except TimeoutError as err:
            raise ProtocolError(
                "config_timeout", f"no config within {self.settings.config_timeout_s:g} s"
            ) from err
        kind, data = _payload(message)
        if kind == "bytes":
            raise ProtocolError("audio_before_config", "send the config before any audio")
        parsed = parse_text(data, configured=False)
        assert isinstance(parsed, ClientConfig)
        return parsed

    async def _open(self, config: ClientConfig) -> None:
        old = self.registry.by_client(config.client_id)
        if old is not None:
            await old.replace()
        session = self.engine.session(config)  # cheap: the models are loaded
        voice = None
        if config.voice:
            voice = await asyncio.to_thread(self.engine.voice, config.target_lang)
            if voice is None:
                self.post(
                    {
                        "type": "warning",
                        "code": "no_voice",
                        "message": "this server has no voice; subtitles only",
                    },
                    True,
                )
        self.session = ServerSession(
            session,
            config,
            self.post,
            voice=voice,
            save_dir=self.settings.save_dir,
            backpressure=self.settings.backpressure,
            voice_bank=self.engine.voice_bank(config.target_lang) if voice else None,
        )
        self.session_id, self.client_id = self.session.id, config.client_id
        self.registry.add(self)
        self.session.on_done = self._on_pipeline_done
        policy, knob = policy_choice(config)
        await self.ws.send_json(
            {
                "type": "ready",
                "version": VERSION,
                "session_id": self.session_id,
                "from": config.source_lang,
                "to": config.target_lang,
                "policy": policy,
                "latency": knob,
                "voice": voice is not None,
                "output_sample_rate": 24000,
                "limits": {
                    "max_frame_bytes": self.settings.max_frame_bytes,
                    "max_messages_per_s": self.settings.max_messages_per_s,
                    "max_session_s": self.settings.max_session_s,
                    "max_lag_s": self.settings.backpressure.max_lag_s,
                },
            }
        )
        self.session.start()

    async def _stream(self) -> None:
        tasks = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._write()),
        ]
        helpers = [asyncio.create_task(self._tick()), asyncio.create_task(self._finish())]
        self._tasks = tasks + helpers
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            reader, writer = tasks
            if any(task.cancelled() for task in done):
                return  # replaced by a new connection of this client
            if writer in done and writer.exception() is None:
                return  # closed normally (the reader then sees the close)
            for task in (writer, reader):
                if task in done:
                    task.result()  # a ProtocolError or _Disconnected goes up
        finally:
            for task in tasks + helpers:
                task.cancel()

    # -- the three tasks --------------------------------------------------------------

    async def _read(self) -> None:
        session = self.session
        assert session is not None
        while True:
            kind, data = _payload(await self.ws.receive())
            now = time.monotonic()
            if not self._messages.allow(now):
                raise ProtocolError(
                    "rate_limited",
                    f"more than {self.settings.max_messages_per_s:g} messages a second",
                )
            if kind == "bytes":
                samples = pcm16_samples(data, max_bytes=self.settings.max_frame_bytes)
                if not self._audio_rate.allow(now, len(samples) / session.config.sample_rate):
                    raise ProtocolError(
                        "rate_limited",
                        f"audio arrives faster than {self.settings.max_audio_speed:g}x real time",
                    )
                if not self._stopping:
                    session.feed(samples)
                continue
            message = parse_text(data, configured=True)
            if isinstance(message, Stop):
                self._stopping = True
                session.audio.end()
            elif isinstance(message, Ping):
                self.post({"type": "pong"}, True)

    async def _write(self) -> None:
        while True:
            item = await self._out.get()
            if isinstance(item, _Close):
                await self._close(item.code)
                return
            if self._too_slow:
                raise ProtocolError(
                    "client_too_slow",
                    f"more than {self.settings.max_pending_messages} messages wait for the client",
                )
            with self._lock:
                self._pending -= 1
            try:
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_json(item)
            except (OSError, RuntimeError) as err:  # the socket went away while sending
                raise _Disconnected() from err

    async def _tick(self) -> None:
        session = self.session
        assert session is not None
        while True:
            await asyncio.sleep(self.settings.lag_every_s)
            self.post(session.lag_message(), False)
            if (
                not self._too_long
                and time.monotonic() - session.started > self.settings.max_session_s
            ):
                self._too_long = True
                session.audio.end()

    async def _finish(self) -> None:
        """When the pipeline has finished: the transcript, ``done``, and a normal close."""
        session = self.session
        assert session is not None
        await self._pipeline_done.wait()
        if session.failure is not None:
            self.post(
                ProtocolError("internal", f"the session failed: {session.failure}").to_json(), True
            )
            self._close_after_posts(1011)
            return
        self.post(session.lag_message(), True)
        self.post(session.transcript_message(), True)
        self.post(
            {
                "type": "done",
                "audio_s": round(session.audio.received_s, 3),
                "translation": session.record.translation.strip(),
                "interrupted": not self._stopping,
            },
            True,
        )
        if self._too_long:
            self.post(
                ProtocolError(
                    "session_too_long",
                    f"sessions last at most {self.settings.max_session_s:g} s",
                ).to_json(),
                True,
            )
        self._close_after_posts(1000)

    # -- sending ----------------------------------------------------------------------

    def post(self, item: dict[str, Any] | bytes, essential: bool) -> None:
        """Queue a message for the client (from any thread). A client that reads too slowly
        loses ``partial`` and ``lag`` messages first, then the connection."""
        if self._closed:
            return
        with self._lock:
            if self._pending >= self.settings.max_pending_messages:
                if not essential:
                    return
                self._too_slow = True
            self._pending += 1
        try:
            self._loop.call_soon_threadsafe(self._out.put_nowait, item)
        except RuntimeError:  # the event loop has closed (the server stopped)
            pass

    def _on_pipeline_done(self) -> None:
        """(In the pipeline's thread.) Wake the finishing task, if the server still runs."""
        self._release(pipeline_ended=True)
        try:
            self._loop.call_soon_threadsafe(self._pipeline_done.set)
        except RuntimeError:  # the event loop has closed
            pass

    def _close_after_posts(self, code: int) -> None:
        """Close once everything posted so far is sent (posts arrive through the loop's
        callbacks, so the close goes the same way)."""
        self._loop.call_soon_threadsafe(self._out.put_nowait, _Close(code))

    async def replace(self) -> None:
        """A new connection with this client's id takes over."""
        self.registry.remove(self)
        for task in self._tasks:  # this connection's own tasks stop sending first
            task.cancel()
        await self._fail(ProtocolError("replaced", "a new connection of this client took over"))

    async def _fail(self, err: ProtocolError) -> None:
        logger.info("session %s: %s (%s)", self.session_id or "-", err.code, err.message)
        if self.session is not None:
            self.session.audio.end()
        try:
            if self.ws.application_state == WebSocketState.CONNECTED:
                while not self._out.empty():  # what was produced before the error still goes
                    item = self._out.get_nowait()
                    if isinstance(item, bytes):
                        await self.ws.send_bytes(item)
                    elif not isinstance(item, _Close):
                        await self.ws.send_json(item)
                await self.ws.send_json(err.to_json())
        except (OSError, RuntimeError):
            pass  # already gone: nothing to tell
        await self._close(err.close_code)

    async def _close(self, code: int) -> None:
        self._closed = True
        if self.ws.application_state == WebSocketState.CONNECTED:
            try:
                await self.ws.close(code)
            except (OSError, RuntimeError):
                pass


class _Disconnected(Exception):
    """The client closed the connection (its ``websocket.disconnect`` message)."""


def _payload(message: dict[str, Any]) -> tuple[str, Any]:
    """``("text", str)`` or ``("bytes", bytes)`` of a received ASGI message.

    Raises:
        _Disconnected: the client has gone.
    """
    if message["type"] == "websocket.disconnect":
        raise _Disconnected()
    if message.get("bytes") is not None:
        return "bytes", message["bytes"]
    return "text", message.get("text") or ""


def _hostname(host: str) -> str:
    """``127.0.0.1:8000`` -> ``127.0.0.1``; ``[::1]:8000`` -> ``::1``."""
    return urlsplit(f"//{host}").hostname or ""
