"""`webdet serve`: the bundled web app and an exported model from one process, plus a detection API.

Static files come only from two roots (the app's dist/ and the export's web_model/); the headers
let the wasm backend use threads (cross-origin isolation) and let browsers cache the weight shards.
"""
import io
import json
import mimetypes
import posixpath
import shutil
import threading
import urllib.parse
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from webdet.errors import WebdetError

APP_DIST = Path(__file__).resolve().parents[1] / "webapp" / "dist"
MIME = {".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
        ".bin": "application/octet-stream", ".css": "text/css", ".html": "text/html; charset=utf-8",
        ".map": "application/json", ".png": "image/png", ".svg": "image/svg+xml"}
MAX_UPLOAD = 20 * 1024 * 1024


def resolve_inside(root: Path, relative: str) -> Path | None:
    """The file `relative` under `root`, or None if it would leave the root (.., absolute, symlinks out)."""
    parts = [p for p in posixpath.normpath("/" + relative).split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    candidate = root.joinpath(*parts).resolve()
    try:
        candidate.relative_to(root.resolve())
    except ValueError:
        return None
    return candidate


class Handler(SimpleHTTPRequestHandler):
    server_version = "webdet"
    app_root: Path = APP_DIST
    model_root: Path | None = None
    detector_factory = None
    _detector = None
    _lock = threading.Lock()

    def log_message(self, fmt, *args):  # quiet by default; errors still reach the client
        pass

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def _target(self) -> tuple[Path | None, bool]:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path.startswith("/model/") and self.model_root is not None:
            return resolve_inside(self.model_root, path[len("/model/"):]), True
        relative = path.lstrip("/") or "index.html"
        return resolve_inside(self.app_root, relative), False

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        target, is_model = self._target()
        if target is not None and target.is_dir():
            target = target / "index.html"
        if target is None or not target.is_file():
            self.send_error(HTTPStatus.NOT_FOUND, "Not found")
            return
        data = target.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", MIME.get(target.suffix, mimetypes.guess_type(target.name)[0]
                                                  or "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        immutable = target.suffix in (".bin", ".wasm")
        self.send_header("Cache-Control", "public, max-age=31536000, immutable" if immutable else "no-cache")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def detector(self):
        """The server's detector, loaded on first use (each server class has its own)."""
        bound = type(self)
        with bound._lock:
            if bound._detector is None and bound.detector_factory is not None:
                bound._detector = bound.detector_factory()
            return bound._detector

    def do_POST(self):
        if urllib.parse.urlsplit(self.path).path != "/api/detect":
            self._json(HTTPStatus.NOT_FOUND, {"error": "POST /api/detect with an image body"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_UPLOAD:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"send an image of 1 byte to {MAX_UPLOAD} bytes"})
            return
        body = self.rfile.read(length)
        try:
            detector = self.detector()
        except WebdetError as exc:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
            return
        if detector is None:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "no SavedModel is served; export with webdet export"})
            return
        import numpy as np
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(body)) as image:
                pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "the body is not an image"})
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        threshold = float(query["score_threshold"][0]) if "score_threshold" in query else None
        detections = detector.detect(pixels, threshold)
        self._json(HTTPStatus.OK, {"width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
                                   "detections": detections})


def make_server(export_dir, host: str = "127.0.0.1", port: int = 8000, app_root: Path = APP_DIST,
                detector_factory=None) -> ThreadingHTTPServer:
    """A server for `export_dir` (its web_model/ at /model/, its saved_model/ behind /api/detect)."""
    export_dir = Path(export_dir)
    if not (Path(app_root) / "index.html").is_file():
        raise WebdetError(f"{app_root}: the web app is not built; run `make webapp` (npm ci && npm run build in webapp/)")
    model_root = export_dir / "web_model" if (export_dir / "web_model").is_dir() else export_dir
    if not (model_root / "model.json").is_file():
        raise WebdetError(f"{export_dir}: no web_model/model.json; run `webdet export` first")
    if detector_factory is None and (export_dir / "saved_model" / "saved_model.pb").is_file():
        def detector_factory():
            from export.detector import load_detector
            return load_detector(export_dir)
    handler = type("BoundHandler", (Handler,), {"app_root": Path(app_root), "model_root": model_root,
                                                "detector_factory": staticmethod(detector_factory) if detector_factory else None,
                                                "_detector": None, "_lock": threading.Lock()})
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise WebdetError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None


def serve(export_dir, host: str = "127.0.0.1", port: int = 8000) -> None:
    server = make_server(export_dir, host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"Serving the webdet app with {export_dir} at http://{shown}:{server.server_address[1]}/  (Ctrl+C stops)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def build_site(export_dir, out_dir, app_root: Path = APP_DIST) -> Path:
    """A static folder for any host: the app at the root, the model in model/."""
    export_dir, out_dir = Path(export_dir), Path(out_dir)
    model_root = export_dir / "web_model" if (export_dir / "web_model").is_dir() else export_dir
    if not (Path(app_root) / "index.html").is_file():
        raise WebdetError(f"{app_root}: the web app is not built; run `make webapp` first")
    if not (model_root / "model.json").is_file():
        raise WebdetError(f"{export_dir}: no web_model/model.json; run `webdet export` first")
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.copytree(app_root, out_dir, ignore=shutil.ignore_patterns("*.map"))
    shutil.copytree(model_root, out_dir / "model")
    return out_dir
