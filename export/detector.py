"""An exported SavedModel as a detector, for `webdet evaluate --saved-model`, `predict` and the server's API."""
from pathlib import Path

import numpy as np
import tensorflow as tf

from webdet.data_prep.label_map import read_label_map
from webdet.errors import WebdetError

OUTPUT_KEYS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def _label_map_for(saved_model_dir: Path) -> dict:
    for candidate in (saved_model_dir / "assets" / "label_map.pbtxt", saved_model_dir.parent / "label_map.pbtxt"):
        if candidate.is_file():
            return read_label_map(candidate)
    raise WebdetError(f"{saved_model_dir}: no label_map.pbtxt in assets/ or beside it")


class SavedModelDetector:
    """Callable: uint8 RGB image → {"boxes" (normalised yxyx), "scores", "classes"} above no threshold."""

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
        self.prefix = str(path)

    def __call__(self, image: np.ndarray) -> dict:
        out = self._signature(input_tensor=tf.convert_to_tensor(image[np.newaxis], tf.uint8))
        n = int(out["num_detections"][0])
        return {"boxes": out["detection_boxes"][0, :n].numpy(), "scores": out["detection_scores"][0, :n].numpy(),
                "classes": out["detection_classes"][0, :n].numpy().astype(np.int64)}


def load_saved_model_detector(saved_model_dir) -> SavedModelDetector:
    return SavedModelDetector(saved_model_dir)


def to_detections(raw: dict, label_map: dict, width: int, height: int, score_threshold: float) -> list[dict]:
    """OD API output → the docs/metadata.md detection format (pixel boxes xmin, ymin, xmax, ymax)."""
    scale = np.array([height, width, height, width], np.float64)
    result = []
    for box, score, cls in zip(raw["boxes"], raw["scores"], raw["classes"]):
        if score < score_threshold:
            continue
        y0, x0, y1, x1 = (np.asarray(box, np.float64) * scale).tolist()
        result.append({"box": [x0, y0, x1, y1], "score": float(score), "label_id": int(cls),
                       "label": label_map.get(int(cls), str(int(cls)))})
    return result


class ExportDetector:
    """What the server's /api/detect uses: `.detect(image) -> list[dict]` at the exported threshold."""

    def __init__(self, export_dir):
        import json

        export_dir = Path(export_dir)
        self.model = SavedModelDetector(export_dir / "saved_model")
        metadata = export_dir / "web_model" / "metadata.json"
        self.score_threshold = json.loads(metadata.read_text())["score_threshold"] if metadata.is_file() else 0.3

    def detect(self, image: np.ndarray, score_threshold: float | None = None) -> list[dict]:
        h, w = image.shape[:2]
        threshold = self.score_threshold if score_threshold is None else score_threshold
        return to_detections(self.model(image), self.model.label_map, w, h, threshold)


def load_detector(export_dir) -> ExportDetector:
    return ExportDetector(export_dir)
