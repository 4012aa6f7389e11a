"""The server: a Starlette app with the page, ``/health`` and the WebSocket at ``/ws``.

Each WebSocket is a :class:`~simulinterp.server.connection.Connection` (the one place where
asyncio meets the synchronous pipeline); a :class:`~simulinterp.server.connection.Registry`
counts the live sessions.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from simulinterp.server.connection import Connection, Registry
from simulinterp.server.engine import ServerEngine, ServerSettings
from simulinterp.server.protocol import VERSION

_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; "
    "img-src 'self' data:; style-src 'self'; script-src 'self'; worker-src 'self' blob:"
)


def static_dir() -> Path:
    return Path(str(resources.files("simulinterp").joinpath("server/static")))


def create_app(engine: ServerEngine, settings: ServerSettings) -> Starlette:
    """The server's app: ``/`` (the page), ``/static``, ``/health`` and ``/ws``."""
    registry = Registry(settings.max_sessions)

    async def page(request: Request) -> Response:
        index = static_dir() / "index.html"
        if not index.is_file():
            return PlainTextResponse("the web page is not installed", status_code=500)
        return FileResponse(index, headers={"Content-Security-Policy": _CSP})

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "version": VERSION,
                "sessions": len(registry),
                "max_sessions": settings.max_sessions,
            }
        )

    async def socket(websocket: WebSocket) -> None:
        await Connection(websocket, engine, settings, registry).serve()

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/health", health),
            WebSocketRoute("/ws", socket),
            Mount("/static", StaticFiles(directory=static_dir(), check_dir=False)),
        ]
    )
    app.state.registry = registry
    return app
