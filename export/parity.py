"""Proof that the browser model and the SavedModel agree: the TF.js model runs in Node with the real
tfjs runtime (wasm backend) and the web app's own pre/post-processing, on the same images.

Also measures the web model's own COCO AP on a test split, so a quantized export reports what the
quantization cost in accuracy, not only in box coordinates.
"""
import io
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from webdet.contract import Detection, LabelMap, as_arrays, box_iou
from webdet.errors import WebdetError
from webdet.resources import app_dist

# The Node tools bundled with tfjs into the app's dist/ (webapp/build.mjs): they need only `node`,
# in a checkout and in an installed wheel alike.
NODE_TOOLS = app_dist() / "node"
RUNNER = NODE_TOOLS / "run_model.mjs"
EXECUTOR = NODE_TOOLS / "execute_model.mjs"
IOU_MIN = 0.95
SCORE_TOLERANCE = 0.02
NODE_TIMEOUT_S = 1800


def _run_node(script: Path, job: dict, tmp: Path, what: str) -> dict:
    if not script.is_file():
        raise WebdetError(f"{script}: missing; build the web app (`make webapp`, or npm ci && npm run build "
                          "in webapp/) first")
    (tmp / "job.json").write_text(json.dumps(job))
    try:
        result = subprocess.run(["node", str(script), str(tmp / "job.json")], cwd=tmp,
                                capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    except FileNotFoundError:
        raise WebdetError("node: not found; Node.js 18+ runs the parity check (or pass --no-parity)") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no message"]
        raise WebdetError(f"{what}: {lines[-1]}")
    return json.loads(result.stdout)


def execute_web_model(model_dir: Path, array: np.ndarray, output_names, backend: str = "wasm") -> dict:
    """Raw outputs of any TF.js graph model for one float32 input, via `model.execute()` in Node."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.f32"
        np.ascontiguousarray(array, "<f4").tofile(path)
        job = {"model_dir": str(Path(model_dir).resolve()), "backend": backend, "outputs": list(output_names),
               "input": {"path": str(path), "shape": list(array.shape)}}
        result = _run_node(EXECUTOR, job, Path(tmp), f"{model_dir}: the TF.js model failed on the {backend} backend")
    return {name: np.asarray(out["values"], np.float32).reshape(out["shape"])
            for name, out in result["outputs"].items()}


def run_web_model(model_dir: Path, images: list[np.ndarray], backend: str = "wasm", repeats: int = 1,
                  score_threshold: float | None = None) -> dict:
    """Detections (and ms per run) from the TF.js model in Node: {"backend", "results": [{detections, ms}]}."""
    with tempfile.TemporaryDirectory() as tmp:
        job = {"model_dir": str(Path(model_dir).resolve()), "backend": backend, "repeats": repeats, "images": []}
        if score_threshold is not None:
            job["score_threshold"] = score_threshold
        for i, image in enumerate(images):
            path = Path(tmp) / f"{i}.rgb"
            np.ascontiguousarray(image, np.uint8).tofile(path)
            job["images"].append({"path": str(path), "width": image.shape[1], "height": image.shape[0]})
        return _run_node(RUNNER, job, Path(tmp), f"{model_dir}: the TF.js model failed on the {backend} backend")


def compare(reference: list[dict], candidate: list[dict]) -> dict:
    """Match each reference detection to the best-overlapping same-label candidate; report the worst pair."""
    worst_iou, worst_score, unmatched = 1.0, 0.0, 0
    for ref in reference:
        same = [c for c in candidate if c["label_id"] == ref["label_id"]]
        if not same:
            unmatched += 1
            worst_iou = 0.0
            continue
        best = max(same, key=lambda c: box_iou(ref["box"], c["box"]))
        worst_iou = min(worst_iou, box_iou(ref["box"], best["box"]))
        worst_score = max(worst_score, abs(ref["score"] - best["score"]))
    return {"detections": len(reference), "unmatched": unmatched, "min_iou": round(worst_iou, 4),
            "max_score_diff": round(worst_score, 4)}


def lowest_needed(score_threshold: float, eval_threshold: float) -> float:
    """The lowest score the web model must report: parity looks for twins down to the threshold
    minus the tolerance, and COCO scores everything from the evaluation threshold."""
    return max(0.0, min(score_threshold - SCORE_TOLERANCE, eval_threshold))


def check_parity(reference: list[list[Detection]], web: list[list[Detection]], score_threshold: float,
                 strict: bool, web_dir: Path | str = "web model") -> dict:
    """Every detection ≥ threshold on either side must have a twin on the other at IoU ≥ 0.95 and
    score ± 0.02: SavedModel → web model, and web model → SavedModel.

    `reference` holds the SavedModel's detections on each image and `web` the web model's on the
    same images, both down to the threshold minus the tolerance. Twins are looked for down to the threshold minus
    the tolerance, so a detection just above the threshold on one side and just below it on the
    other counts as a score difference, not as a miss. A model that detects nothing proves nothing:
    that is an error. `strict` (float32 exports) turns a failure into an error; quantized exports
    report their differences.
    """
    low = max(0.0, score_threshold - SCORE_TOLERANCE)
    per_image, web_count = [], 0
    for python_all, browser_all in zip(reference, web):
        python_low = [d for d in python_all if d["score"] >= low]
        python = [d for d in python_low if d["score"] >= score_threshold]
        browser = [d for d in browser_all if d["score"] >= score_threshold]
        web_count += len(browser)
        per_image.append(compare(python, browser_all))
        per_image.append({**compare(browser, python_low), "detections": 0})
    summary = {"images": len(reference), "score_threshold": score_threshold,
               "detections": sum(p["detections"] for p in per_image), "web_detections": web_count,
               "unmatched": sum(p["unmatched"] for p in per_image),
               "min_iou": min((p["min_iou"] for p in per_image), default=1.0),
               "max_score_diff": max((p["max_score_diff"] for p in per_image), default=0.0),
               "required": {"min_iou": IOU_MIN, "max_score_diff": SCORE_TOLERANCE}}
    if summary["detections"] == 0:
        raise WebdetError(f"{web_dir}: the model detects nothing on {summary['images']} test images; parity "
                          f"cannot be shown (score threshold {score_threshold:.2f}; train longer, or pass --no-parity)")
    summary["passed"] = summary["unmatched"] == 0 and summary["min_iou"] >= IOU_MIN and \
        summary["max_score_diff"] <= SCORE_TOLERANCE
    if strict and not summary["passed"]:
        raise WebdetError(f"{web_dir}: parity check failed: the TF.js model disagrees with the SavedModel on "
                          f"{summary['images']} images ({summary['unmatched']} of {summary['detections']} "
                          f"detections unmatched, min IoU {summary['min_iou']}, max score difference "
                          f"{summary['max_score_diff']}; need IoU ≥ {IOU_MIN} and scores within {SCORE_TOLERANCE})")
    return summary


def decode_rgb(encoded: bytes) -> np.ndarray:
    """A stored JPEG/PNG as an RGB uint8 array."""
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))


def read_test_split(data_dir) -> list[dict]:
    """The test split's images (RGB arrays) and ground truth in pixels (xmin, ymin, xmax, ymax)."""
    from webdet.data_prep.tfrecords import data_files, iter_examples

    items = []
    for index, example in enumerate(iter_examples(data_files(data_dir, "test"))):
        image = decode_rgb(example["encoded"])
        h, w = image.shape[:2]
        boxes = np.asarray(example["boxes"], np.float64).reshape(-1, 4) * [h, w, h, w]
        items.append({"image": image, "gt": {"image_id": index + 1, "height": h, "width": w,
                                             "boxes": boxes[:, [1, 0, 3, 2]],
                                             "classes": np.asarray(example["classes"], int)}})
    if not items:
        raise WebdetError(f"{data_dir}: no test images (test-*.tfrecord); run `webdet prepare` again")
    return items


def web_model_metrics(groundtruths: list[dict], web: list[list[Detection]], labels: LabelMap,
                      score_threshold: float) -> dict:
    """COCO AP/AP50/AR100 of the web model's detections on the test images, scored as `webdet evaluate` scores."""
    from webdet.training.coco_metrics import compute_coco_metrics

    predictions = [{"image_id": gt["image_id"], **as_arrays([d for d in found if d["score"] >= score_threshold])}
                   for gt, found in zip(groundtruths, web)]
    metrics = compute_coco_metrics(groundtruths, predictions, labels)
    return {"AP": metrics["AP"], "AP50": metrics["AP50"], "AR100": metrics["AR100"], "images": len(groundtruths)}


def has_test_split(data_dir) -> bool:
    return Path(data_dir).is_dir() and any(Path(data_dir).glob("test-*.tfrecord"))
