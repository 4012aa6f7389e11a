"""``simulinterp serve``: the live server and its web page; ``simulinterp llm-server``: llama.cpp's
own OpenAI-compatible server, which several ``serve`` workers can share (``docs/scaling.md``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from simulinterp.cli.common import CliError, add_model, load_backend, native_logs_to


def add_parsers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve",
        help="serve the web page and the WebSocket API (live subtitles and voice)",
        description="Serve live interpretation: a web page (microphone or file, subtitles, "
        "voice) and the WebSocket API of docs/protocol.md. Binds 127.0.0.1 unless told. "
        "--model auto (the default) is the 1.5B with --max-sessions 1 and the 0.5B with more: "
        "what keeps that many sessions real time on 2 cores (bench/serve.py).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--token",
        default=os.environ.get("SIMULINTERP_TOKEN"),
        help="secret clients give as ?token= (required off loopback; default: $SIMULINTERP_TOKEN)",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed besides the server's own, e.g. https://app.example "
        "(repeatable)",
    )
    parser.add_argument("--tls-cert", help="certificate (PEM): serve HTTPS and WSS")
    parser.add_argument("--tls-key", help="its private key (PEM)")
    parser.add_argument("--max-sessions", type=int, default=2, help="live sessions at most")
    parser.add_argument(
        "--save-dir", help="append each session's transcript here as it goes (SRT, VTT, JSON)"
    )
    parser.add_argument(
        "--max-lag", type=float, default=8.0, help="seconds behind before audio is dropped"
    )
    parser.add_argument(
        "--max-session-s", type=float, default=4 * 3600.0, help="longest session, seconds"
    )
    parser.add_argument(
        "--no-voice", action="store_true", help="subtitles only (no speech output, less CPU)"
    )
    parser.add_argument(
        "--tts",
        default="auto",
        help="voice backend: auto (piper for English when the espeak-ng program is installed: "
        "a tenth of Kokoro's CPU; kokoro otherwise and for Chinese), kokoro, piper (en), espeak",
    )
    add_model(parser, default="auto")
    group = parser.add_argument_group("speech recognition")
    group.add_argument("--asr-model", default="base", help="whisper preset or directory")
    group.add_argument("--asr-threads", type=int, default=1, help="threads per decode")
    group.add_argument("--asr-step", type=float, default=0.5, help="seconds between decodes")
    parser.set_defaults(run=run_serve)

    llm = sub.add_parser(
        "llm-server",
        help="run llama.cpp's OpenAI-compatible server on a packaged model (for serve workers)",
        description="llama.cpp's own HTTP server (OpenAI /v1/completions) on a packaged model, "
        "for several 'serve --backend openai --base-url URL' workers to share.",
    )
    llm.add_argument("--model", default="quality", help="packaged preset or a GGUF path")
    llm.add_argument("--host", default="127.0.0.1")
    llm.add_argument("--port", type=int, default=8080)
    llm.add_argument("--parallel", type=int, default=4, help="requests served at once")
    llm.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    llm.add_argument("--context", type=int, default=4096, help="context tokens per request")
    llm.add_argument(
        "--cache-ram",
        type=int,
        default=1024,
        help="MiB of RAM for prompt states evicted from slots (sessions outnumbering slots "
        "reuse them; bounded, llama.cpp's own default is 8192)",
    )
    llm.add_argument(
        "--log",
        default=str(Path.home() / ".cache" / "simulinterp" / "llm-server.log"),
        help="where llama.cpp's own log goes (each request's timings)",
    )
    llm.set_defaults(run=run_llm_server)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from simulinterp.server.app import create_app
    from simulinterp.server.backpressure import BackpressureConfig
    from simulinterp.server.engine import ServerSettings

    if bool(args.tls_cert) != bool(args.tls_key):
        raise CliError("give both --tls-cert and --tls-key (or neither)")
    for path in (args.tls_cert, args.tls_key):
        if path and not Path(path).is_file():
            raise CliError(f"file not found: {path}")
    try:
        settings = ServerSettings(
            host=args.host,
            port=args.port,
            token=args.token or None,
            allowed_origins=tuple(args.allow_origin),
            max_sessions=args.max_sessions,
            save_dir=Path(args.save_dir) if args.save_dir else None,
            max_session_s=args.max_session_s,
            backpressure=BackpressureConfig(max_lag_s=args.max_lag),
        )
    except ValueError as err:
        raise CliError(str(err)) from err
    from simulinterp.memory import limit_heap_growth

    limit_heap_growth()  # hours of sessions: memory stays flat (see simulinterp.memory)
    engine = _engine(args)
    scheme = "https" if args.tls_cert else "http"
    shown = f"[{args.host}]" if ":" in args.host else args.host
    query = "?token=..." if settings.token else ""
    print(
        f"simulinterp serving on {scheme}://{shown}:{args.port}/{query} "
        f"(WebSocket {'wss' if args.tls_cert else 'ws'}://{shown}:{args.port}/ws; "
        "protocol: docs/protocol.md). Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        create_app(engine, settings),
        host=args.host,
        port=args.port,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
        ws_max_size=max(settings.max_frame_bytes, 64 * 1024) + 1024,
        log_level="warning",
    )
    return 0


def _engine(args: argparse.Namespace):
    """The shared models: the LLM (one slot per session), whisper, the VAD, and the voice."""
    from simulinterp.llm.models import ModelNotFoundError
    from simulinterp.pipeline import SpeechEngine
    from simulinterp.server.engine import ServerEngine

    args.adapter = getattr(args, "adapter", None)
    args.parallel = args.max_sessions
    args.prompt_cache_mib = 0  # each session's slot reuses its own prefix; RAM stays flat
    if args.model == "auto":
        # bench/serve on 2 cores: the 1.5B keeps one session real time, the 0.5B two
        args.model = "quality" if args.max_sessions == 1 else "fast"
        print(
            f"model: {args.model} ({'1.5B' if args.model == 'quality' else '0.5B'}) for "
            f"{args.max_sessions} session(s); --model quality --max-sessions 1 translates "
            "better, one session at a time",
            file=sys.stderr,
        )
    llm = load_backend(args)
    try:
        workers = min(args.max_sessions, os.cpu_count() or 1)  # sessions decode at once
        speech = SpeechEngine(
            llm, asr_model=args.asr_model, threads=args.asr_threads, asr_workers=workers
        )
    except (ModelNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    voice_loader = None
    if not args.no_voice:
        from simulinterp.cli.speak import load_voice

        tts = args.tts

        def voice_loader(lang: str):
            return load_voice(voice_backend(tts, lang), None, lang, threads=1)

    return ServerEngine(speech, asr_step_s=args.asr_step, voice_loader=voice_loader)


def voice_backend(tts: str, lang: str) -> str:
    """``auto``: Piper for English when espeak-ng (its phonemizer) is installed, since two
    voiced sessions stay real time on 2 cores with it and not with Kokoro (bench/serve);
    Kokoro otherwise, and for Chinese."""
    import shutil

    if tts != "auto":
        return tts
    return "piper" if lang == "en" and shutil.which("espeak-ng") else "kokoro"


def run_llm_server(args: argparse.Namespace) -> int:
    import threading

    from simulinterp.llm.models import ModelNotFoundError, ensure_model

    try:
        path = ensure_model(args.model)
    except (ModelNotFoundError, ValueError) as err:
        raise CliError(str(err)) from err
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = args.parallel
    params.n_ctx = args.context * args.parallel
    params.hostnames = [args.host]
    params.port = args.port
    params.cache_ram_mib = args.cache_ram
    threads = args.threads or max(1, os.cpu_count() or 1)
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    with native_logs_to(Path(args.log)):
        try:
            server = xllamacpp.Server(params)
        except Exception as err:
            raise CliError(f"llama.cpp could not start on {path}: {err}") from err
    print(
        f"llama.cpp server on {server.listening_address} ({path.name}, {args.parallel} "
        "parallel); serve workers use --backend openai --base-url "
        f"{server.listening_address}. Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    del server
    return 0
