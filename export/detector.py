"""An export as a `webdet.contract.Detector`: the SavedModel (for `webdet evaluate --saved-model`,
`predict` and the server's API) and the web model run in Node by the app's own code."""
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from webdet.contract import Detection, LabelMap, from_od_api
from webdet.data_prep.label_map import read_label_map
from webdet.errors import WebdetError

OUTPUT_KEYS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def _label_map_for(saved_model_dir: Path) -> LabelMap:
    for candidate in (saved_model_dir / "assets" / "label_map.pbtxt", saved_model_dir.parent / "label_map.pbtxt"):
        if candidate.is_file():
            return read_label_map(candidate)
    raise WebdetError(f"{saved_model_dir}: no label_map.pbtxt in assets/ or beside it")


class SavedModelDetector:
    """A SavedModel with the OD API signature; `detect` keeps what scores at least the threshold."""

    def __init__(self, saved_model_dir):
        path = Path(saved_model_dir)
        if not (path / "saved_model.pb").is_file():
            raise WebdetError(f"{path}: not a SavedModel (no saved_model.pb)")
        try:
            loaded = tf.saved_model.load(str(path))
        except (OSError, ValueError, tf.errors.OpError) as exc:
            raise WebdetError(f"{path}: cannot load the SavedModel ({str(exc).splitlines()[0]})") from None
        signature = loaded.signatures.get("serving_default")
        if signature is None or not set(OUTPUT_KEYS) <= set(signature.structured_outputs):
            raise WebdetError(f"{path}: not a detection model (serving_default must return {', '.join(OUTPUT_KEYS)})")
        self._loaded, self._signature = loaded, signature
        self.label_map = _label_map_for(path)
        self.source = str(path)

    def detect(self, image: np.ndarray, score_threshold: float = 0.0) -> list[Detection]:
        out = self._signature(input_tensor=tf.convert_to_tensor(image[np.newaxis], tf.uint8))
        n = int(out["num_detections"][0])
        h, w = image.shape[:2]
        return from_od_api(out["detection_boxes"][0, :n].numpy(), out["detection_scores"][0, :n].numpy(),
                           out["detection_classes"][0, :n].numpy(), self.label_map, w, h, score_threshold)


def load_saved_model_detector(saved_model_dir) -> SavedModelDetector:
    return SavedModelDetector(saved_model_dir)


class ExportDetector(SavedModelDetector):
    """An export folder's SavedModel whose default threshold is the export's (metadata.json): what
    `webdet predict` and the server use when a request names none."""

    def __init__(self, export_dir):
        export_dir = Path(export_dir)
        super().__init__(export_dir / "saved_model")
        metadata = export_dir / "web_model" / "metadata.json"
        self.score_threshold = json.loads(metadata.read_text())["score_threshold"] if metadata.is_file() else 0.3

    def detect(self, image: np.ndarray, score_threshold: float | None = None) -> list[Detection]:
        return super().detect(image, self.score_threshold if score_threshold is None else score_threshold)


def load_detector(export_dir) -> ExportDetector:
    return ExportDetector(export_dir)


class WebModelDetector:
    """The TF.js web model, run in Node by the app's own detector module (`webapp/src/detector.js`,
    wasm backend by default), so what it finds is what the browser finds.

    `detect` starts one Node process per call; `detect_many` runs a list of images in one. Like the
    SavedModel, it reports nothing scoring below the export's `min_score` (metadata.json).
    """

    def __init__(self, web_dir, backend: str = "wasm"):
        from webdet.export.metadata import read_metadata

        self.web_dir, self.backend = Path(web_dir), backend
        for needed in ("model.json", "metadata.json"):
            if not (self.web_dir / needed).is_file():
                raise WebdetError(f"{self.web_dir}: not a web model (no {needed})")
        self.metadata = read_metadata(self.web_dir / "metadata.json")
        self.label_map = LabelMap.of(self.metadata["labels"])
        self.source = str(self.web_dir)
        self.backend_used = None

    def detect(self, image: np.ndarray, score_threshold: float = 0.0) -> list[Detection]:
        return self.detect_many([image], score_threshold)[0]

    def detect_many(self, images: list[np.ndarray], score_threshold: float = 0.0) -> list[list[Detection]]:
        from webdet.export.parity import run_web_model

        floor = max(score_threshold, float(self.metadata.get("min_score", 0.0)))
        web = run_web_model(self.web_dir, images, self.backend, score_threshold=floor)
        self.backend_used = web["backend"]
        return [result["detections"] for result in web["results"]]
