"""The service's settings: one object from the CLI flags, passed as JSON to uvicorn's worker processes."""
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from webdet.errors import WebdetError
from webdet.resources import app_dist

APP_DIST = app_dist()
ENV_VAR = "WEBDET_SERVICE_SETTINGS"
ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


@dataclass(frozen=True)
class ServiceSettings:
    export_dir: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    queue: str = "memory"
    result_ttl: int = 3600
    retries: int = 0
    job_timeout: int = 300
    max_upload_mb: float = 20.0
    max_pixels_mpx: float = 40.0
    cors_origins: tuple = field(default_factory=tuple)
    threads: int = 2
    max_queued: int = 64
    app_root: str = str(APP_DIST)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_pixels(self) -> int:
        return int(self.max_pixels_mpx * 1e6)

    @property
    def uses_redis(self) -> bool:
        return self.queue.startswith(("redis://", "rediss://", "unix://"))

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ServiceSettings":
        values = json.loads(os.environ[ENV_VAR])
        values["cors_origins"] = tuple(values.get("cors_origins", ()))
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def check_settings(s: ServiceSettings) -> ServiceSettings:
    """One-line errors naming the flag at fault, before anything starts."""
    positive = {"--max-upload-mb": s.max_upload_mb, "--max-pixels": s.max_pixels_mpx}
    for flag, value in positive.items():
        if not (math.isfinite(value) and value > 0):
            raise WebdetError(f"{flag} {value}: must be a positive number")
    counts = {"--workers": s.workers, "--result-ttl": s.result_ttl, "--job-timeout": s.job_timeout,
              "--threads": s.threads, "--max-queued": s.max_queued}
    for flag, value in counts.items():
        if value < 1:
            raise WebdetError(f"{flag} {value}: must be at least 1")
    if s.retries < 0:
        raise WebdetError(f"--retries {s.retries}: must be 0 or more")
    if not 0 <= s.port <= 65535:
        raise WebdetError(f"--port {s.port}: must be 0 to 65535")
    for origin in s.cors_origins:
        if origin != "*" and not ORIGIN.match(origin):
            raise WebdetError(f"--cors-origin {origin}: give an origin like https://me.github.io (no path) or *")
    if s.queue != "memory" and not s.uses_redis:
        raise WebdetError(f"--queue {s.queue}: use memory (the default) or redis://HOST:PORT/DB")
    if s.workers > 1 and not s.uses_redis:
        raise WebdetError(f"--workers {s.workers}: in-process jobs live in one process; "
                          "add --queue redis://HOST:PORT/DB to run several")
    if not (Path(s.app_root) / "index.html").is_file():
        raise WebdetError(f"{s.app_root}: the web app is not built; run `make webapp` (npm ci && npm run build in webapp/)")
    if not (web_model_dir(s.export_dir) / "model.json").is_file():
        raise WebdetError(f"{s.export_dir}: no web_model/model.json; run `webdet export` first")
    return s


def web_model_dir(export_dir) -> Path:
    """An export's web_model/, or the folder itself when it is a bare web model."""
    export_dir = Path(export_dir)
    return export_dir / "web_model" if (export_dir / "web_model").is_dir() else export_dir
