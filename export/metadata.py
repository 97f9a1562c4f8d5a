"""`metadata.json`: the contract between the Python side and the web app (docs/metadata.md)."""
import json
from pathlib import Path

from training.model import PIXEL_MEAN, PIXEL_STD

FORMAT = "webdet-web-model"
FORMAT_VERSION = 1


def build_metadata(config: dict, name: str, num_anchors: int, quantization: str, evaluation: dict | None) -> dict:
    size = int(config["model"]["input_size"])
    labels = [{"id": int(i), "name": n} for i, n in sorted(config["data"]["labels"].items(), key=lambda x: int(x[0]))]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "architecture": config["model"]["architecture"],
        "input": {"name": "input", "shape": [1, size, size, 3], "dtype": "float32", "color": "rgb",
                  "normalization": {"mean": PIXEL_MEAN, "std": PIXEL_STD},
                  "fit": config["export"].get("fit", "letterbox"), "align": "top-left", "pad_value": 0.0},
        "outputs": {
            "boxes": {"name": "boxes", "shape": [1, num_anchors, 4], "layout": "ymin,xmin,ymax,xmax",
                      "units": "normalized_input"},
            "scores": {"name": "scores", "shape": [1, num_anchors, len(labels)], "activation": "sigmoid"},
        },
        "labels": labels,
        "score_threshold": float(config["export"]["score_threshold"]),
        "iou_threshold": float(config["eval"]["iou_threshold"]),
        "max_detections": int(config["eval"]["max_detections"]),
        "nms": "per_class",
        "quantization": quantization,
        "evaluation": evaluation or {},
    }


def write_metadata(path, metadata: dict) -> None:
    Path(path).write_text(json.dumps(metadata, indent=2), encoding="utf-8")


def read_metadata(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
