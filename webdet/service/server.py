"""Running the service on uvicorn: logging (one access line per request), a JSON body for the 400 that
uvicorn sends on unparseable HTTP, and several worker processes when `--workers N` asks for them."""
import copy
import json
import logging
import logging.config
import os

import h11
import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from webdet.service.settings import ENV_VAR, ServiceSettings

log = logging.getLogger("webdet.service")


class JsonErrorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; a request it cannot parse (a broken header, `Content-Length: abc`) gets
    a JSON error like every other refusal."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": f"malformed HTTP request ({msg.rstrip('.')})"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def logging_config() -> dict:
    """uvicorn's own format, with webdet's service and worker loggers beside it."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["webdet"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def run_service(settings: ServiceSettings) -> None:
    """Serve until interrupted; with `--workers N`, N processes each with its own model."""
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
    log_config = logging_config()
    logging.config.dictConfig(log_config)
    log.info("webdet %s: app, model and API at http://%s:%d/ (docs at /docs), jobs: %s",
             settings.export_dir, shown, settings.port, settings.queue)
    common = dict(host=settings.host, port=settings.port, http=JsonErrorH11Protocol, log_config=log_config,
                  timeout_keep_alive=5, server_header=False, proxy_headers=True,
                  forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))
    if settings.workers > 1:
        os.environ[ENV_VAR] = settings.to_env()
        uvicorn.run("webdet.service.app:app_from_env", factory=True, workers=settings.workers, **common)
        return
    from webdet.service.app import create_app

    uvicorn.run(create_app(settings), **common)

