"""The served model: loaded and warmed up in the background at start-up, with its readiness reported.

The HTTP side starts at once (the app and `/api/status` answer while TensorFlow loads); detection
requests get 503 with Retry-After until the warm-up inference has run.
"""
import json
import logging
import os
import threading
import time
from pathlib import Path

from webdet.errors import WebdetError
from webdet.service.api_errors import ApiError
from webdet.service.settings import web_model_dir

log = logging.getLogger("webdet.service")


def load_warm_detector(export_dir):
    """The export's SavedModel detector after one inference, so no request pays for tracing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from webdet.export.detector import load_detector

    export_dir = Path(export_dir)
    if not (export_dir / "saved_model" / "saved_model.pb").is_file():
        raise WebdetError(f"{export_dir}: no saved_model/ is served (the web model alone cannot run on the "
                          "server); export with `webdet export`")
    detector = load_detector(export_dir)
    detector.detect(np.zeros((240, 320, 3), np.uint8))
    return detector


def _four_digits(value):
    """AP as the export printed it (0.6505), not 0.6504984075081893."""
    return None if value is None else round(float(value), 4)


def read_model_info(export_dir) -> dict:
    """Name, version, labels, input size and AP from the export's metadata.json and export_report.json."""
    metadata = json.loads((web_model_dir(export_dir) / "metadata.json").read_text(encoding="utf-8"))
    report_path = Path(export_dir) / "export_report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    evaluation = report.get("evaluation", {}).get("saved_model") or metadata.get("evaluation") or {}
    _, height, width, _ = metadata["input"]["shape"]
    return {"name": metadata.get("name"), "version": metadata.get("version"), "labels": metadata.get("labels", []), "input_size": [height, width],
            "AP": _four_digits(evaluation.get("AP")), "AP50": _four_digits(evaluation.get("AP50")),
            "score_threshold": metadata.get("score_threshold"), "max_detections": metadata.get("max_detections")}


class ModelService:
    """Holds the detector and says whether it is loading, ready, or failed (and why)."""

    def __init__(self, export_dir, loader=load_warm_detector):
        self.export_dir = Path(export_dir)
        self.info = read_model_info(export_dir)
        self._loader = loader
        self.detector = None
        self.state = "loading"
        self.error = None
        self.load_seconds = None
        self._thread = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._load, name="webdet-model-load", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state == "ok"

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self.detector = self._loader(self.export_dir)
        except WebdetError as exc:
            self.state, self.error = "error", str(exc)
            log.error("model not loaded: %s", exc)
            return
        except Exception as exc:  # noqa: BLE001 - reported through /api/status, not as a traceback
            self.state, self.error = "error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.error("model not loaded: %s", self.error)
            return
        self.load_seconds = round(time.perf_counter() - started, 2)
        self.state = "ok"
        log.info("model %s ready in %.1f s", self.info["name"], self.load_seconds)

    @property
    def ready(self) -> bool:
        return self.state == "ok"

    def require(self):
        """The detector, or 503 saying why there is none yet."""
        if self.state == "ok":
            return self.detector
        if self.state == "loading":
            raise ApiError(503, "the model is still loading; retry shortly (GET /api/status says when it is ready)",
                           {"Retry-After": "2"})
        raise ApiError(503, f"the model could not be loaded: {self.error}")

    def check_max_detections(self, value: int | None) -> int | None:
        limit = int(self.info.get("max_detections") or 100)
        if value is not None and not 1 <= value <= limit:
            raise ApiError(422, f"max_detections {value}: must be from 1 to {limit} (the export's maximum)")
        return value
