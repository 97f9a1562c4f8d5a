"""`metadata.json`: the contract between the Python side and the web app (docs/metadata.md)."""
import hashlib
import json
from pathlib import Path

from webdet.contract import LabelMap
from webdet.errors import WebdetError
from webdet.training.model import PIXEL_MEAN, PIXEL_STD

FORMAT = "webdet-web-model"
FORMAT_VERSION = 1


def evaluation_from_run(run_dir, config: dict, checkpoint: str) -> dict:
    """The training run's test-split numbers for the best checkpoint (what `summary.json` recorded).

    Empty when another checkpoint is exported or the run never evaluated: no number is better than
    a number of a different model.
    """
    path = Path(run_dir) / "summary.json"
    if checkpoint != "best" or not path.is_file():
        return {}
    summary = json.loads(path.read_text(encoding="utf-8"))
    if summary.get("best_AP") is None:
        return {}
    return {"AP": summary["best_AP"], "AP50": summary.get("best_AP50"), "AR100": summary.get("best_AR100"),
            "split": "test", "images": config.get("data", {}).get("test_images"),
            "source": f"training run (step {summary.get('best_step')})"}


def web_model_version(web_dir) -> str:
    """The web model's `version` (docs/metadata.md): the first 16 hex digits of SHA-256 over model.json's
    bytes followed by each weight shard's bytes in weightsManifest order. Any change to the graph or the
    weights changes it; metadata.json is not part of it."""
    web_dir = Path(web_dir)
    model_json = web_dir / "model.json"
    if not model_json.is_file():
        raise WebdetError(f"{web_dir}: no model.json")
    topology = model_json.read_bytes()
    digest = hashlib.sha256(topology)
    try:
        manifest = json.loads(topology).get("weightsManifest", [])
    except (ValueError, AttributeError) as exc:
        raise WebdetError(f"{model_json}: not a TF.js model.json ({exc})") from exc
    for group in manifest:
        for shard in group.get("paths", []):
            path = web_dir / shard
            if not path.is_file():
                raise WebdetError(f"{path}: a weight shard model.json lists is missing")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def build_metadata(config: dict, name: str, num_anchors: int, quantization: str, evaluation: dict | None,
                   score_threshold: float, calibration: dict | None = None, version: str = "") -> dict:
    """metadata.json exactly as docs/metadata.md describes it, from the run's resolved config, the
    export's calibrated default threshold and the web model's version (web_model_version)."""
    size = int(config["model"]["input_size"])
    labels = LabelMap.of(config["data"]["labels"]).records()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "architecture": config["model"]["architecture"],
        "input": {"name": "input", "shape": [1, size, size, 3], "dtype": "float32", "color": "rgb",
                  "normalization": {"mean": _tidy(PIXEL_MEAN), "std": _tidy(PIXEL_STD)},
                  "fit": config["export"].get("fit", "letterbox"), "align": "top-left", "pad_value": 0.0},
        "outputs": {
            "boxes": {"name": "boxes", "shape": [1, num_anchors, 4], "layout": "ymin,xmin,ymax,xmax",
                      "units": "normalized_input"},
            "scores": {"name": "scores", "shape": [1, num_anchors, len(labels)], "activation": "sigmoid"},
        },
        "labels": labels,
        "score_threshold": float(score_threshold),
        "calibration": calibration or {},
        "min_score": float(config["eval"]["score_threshold"]),
        "iou_threshold": float(config["eval"]["iou_threshold"]),
        "max_detections": int(config["eval"]["max_detections"]),
        "nms": "per_class",
        "merge_boxes": bool(config["eval"].get("merge_boxes")),
        "quantization": quantization,
        "evaluation": evaluation or {},
    }


def _tidy(values) -> list[float]:
    """0.224 * 255 is 57.120000000000005 in floating point; the contract carries 57.12."""
    return [round(float(v), 6) for v in values]


def write_metadata(path, metadata: dict) -> None:
    Path(path).write_text(json.dumps(metadata, indent=2), encoding="utf-8")


def read_metadata(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
