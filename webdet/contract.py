"""The detection contract every stage, the service, the web app and the docs share (docs/metadata.md).

One detection record: {"box": [xmin, ymin, xmax, ymax] in pixels of the original image, "score",
"label_id", "label"}. One label map: ids from 1 → names. One IoU. One `Detector` protocol: a
checkpoint, a SavedModel and the web model (run in Node) all answer `detect(image)` the same way,
so evaluation, parity, prediction and the service never convert between shapes.
"""
from typing import Protocol, TypedDict

import numpy as np


class Detection(TypedDict):
    box: list[float]  # xmin, ymin, xmax, ymax in pixels of the image detected on
    score: float
    label_id: int
    label: str


class LabelMap(dict):
    """Label ids (from 1) → names, whatever form they were stored in: a YAML or JSON mapping (whose
    keys may be strings) or metadata.json's list of {"id", "name"}."""

    @classmethod
    def of(cls, labels) -> "LabelMap":
        if isinstance(labels, (list, tuple)):
            return cls((int(item["id"]), str(item["name"])) for item in labels)
        return cls((int(k), str(v)) for k, v in dict(labels).items())

    def records(self) -> list[dict]:
        """metadata.json's form: [{"id", "name"}] by id."""
        return [{"id": i, "name": self[i]} for i in sorted(self)]

    def ids(self) -> dict[str, int]:
        """Names → ids."""
        return {name: i for i, name in self.items()}

    def name(self, label_id: int) -> str:
        return self.get(int(label_id), str(int(label_id)))


class Detector(Protocol):
    """What evaluate, export's parity, predict and the service call."""

    label_map: LabelMap
    source: str  # what it was loaded from, for messages

    def detect(self, image: np.ndarray, score_threshold: float = 0.0) -> list[Detection]:
        """Detections on one RGB uint8 image [H, W, 3], best first."""


def box_iou(a, b) -> float:
    """IoU of two boxes in the same corner layout (xyxy or yxyx: the formula is the same)."""
    ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ih * iw
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def from_od_api(boxes, scores, classes, label_map: LabelMap, width: int, height: int,
                score_threshold: float = 0.0) -> list[Detection]:
    """The OD API's outputs (normalised ymin, xmin, ymax, xmax; scores; class ids) → records in pixels."""
    scale = np.array([height, width, height, width], np.float64)
    found = []
    for box, score, cls in zip(np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores).reshape(-1),
                               np.asarray(classes).reshape(-1)):
        if score < score_threshold:
            continue
        y0, x0, y1, x1 = (box * scale).tolist()
        found.append({"box": [x0, y0, x1, y1], "score": float(score), "label_id": int(cls),
                      "label": label_map.name(cls)})
    return found


def as_arrays(detections: list[Detection]) -> dict:
    """Records → {"boxes" (n, 4) pixel xyxy, "scores", "classes"}: what COCO scoring takes."""
    return {"boxes": np.asarray([d["box"] for d in detections], np.float64).reshape(-1, 4),
            "scores": np.asarray([d["score"] for d in detections], np.float64),
            "classes": np.asarray([d["label_id"] for d in detections], np.int64)}
