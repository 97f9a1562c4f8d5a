"""ASGI middleware: isolation and caching headers on every response, and a last line of defence
that turns an unexpected exception into a JSON 500 and one log line instead of a traceback."""
import logging
import os

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.staticfiles import StaticFiles

log = logging.getLogger("webdet.service")
IMMUTABLE = (".bin", ".wasm")


class ServiceHeaders:
    """COOP/COEP/CORP so the wasm backend may use threads; long caching for weight shards and wasm."""

    def __init__(self, app, api_cross_origin: bool):
        self.app = app
        self.api_cross_origin = api_cross_origin

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        is_api = path.startswith("/api/")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Cross-Origin-Embedder-Policy"] = "require-corp"
                headers["Cross-Origin-Resource-Policy"] = ("cross-origin" if is_api and self.api_cross_origin
                                                           else "same-origin")
                headers["X-Content-Type-Options"] = "nosniff"
                if is_api or path in ("/docs", "/openapi.json", "/redoc"):
                    headers.setdefault("Cache-Control", "no-store")
                elif path.endswith(IMMUTABLE) and message["status"] in (200, 206, 304):
                    headers["Cache-Control"] = "public, max-age=31536000, immutable"
                else:
                    headers["Cache-Control"] = "no-cache"
            await send(message)

        await self.app(scope, receive, with_headers)


class LastResort:
    """Any exception that escapes the app: a JSON 500 if nothing was sent yet, and one log line."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 - the service keeps serving
            log.error("%s %s failed: %s: %s", scope.get("method"), scope.get("path"), type(exc).__name__, exc)
            if not started:
                await JSONResponse({"error": "internal server error"}, 500)(scope, receive, send)


class StaticRoot(StaticFiles):
    """Starlette's static files (ETag, Last-Modified, Range, traversal checks); a path the OS cannot
    even represent (a NUL byte) is simply not found."""

    def lookup_path(self, path: str):
        if "\x00" in path or len(path) > 1024 or any(len(part) > 255 for part in path.split(os.sep)):
            return "", None
        try:
            return super().lookup_path(path)
        except (ValueError, OSError):
            return "", None
