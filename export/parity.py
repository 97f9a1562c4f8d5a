"""Proof that the browser model and the SavedModel agree: the TF.js model runs in Node with the real
tfjs runtime (wasm backend) and the web app's own pre/post-processing, on the same images."""
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from export.detector import to_detections
from webdet.errors import WebdetError

WEBAPP = Path(__file__).resolve().parents[1] / "webapp"
RUNNER = WEBAPP / "tools" / "run_model.mjs"
IOU_MIN = 0.95
SCORE_TOLERANCE = 0.02


def run_web_model(model_dir: Path, images: list[np.ndarray], backend: str = "wasm", repeats: int = 1,
                  score_threshold: float | None = None) -> dict:
    """Detections (and ms per run) from the TF.js model in Node."""
    if not (WEBAPP / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        raise WebdetError(f"{WEBAPP}/node_modules is missing: run `make webapp` (npm ci in webapp/) first")
    with tempfile.TemporaryDirectory() as tmp:
        job = {"model_dir": str(model_dir), "backend": backend, "repeats": repeats, "images": []}
        if score_threshold is not None:
            job["score_threshold"] = score_threshold
        for i, image in enumerate(images):
            path = Path(tmp) / f"{i}.rgb"
            np.ascontiguousarray(image, np.uint8).tofile(path)
            job["images"].append({"path": str(path), "width": image.shape[1], "height": image.shape[0]})
        (Path(tmp) / "job.json").write_text(json.dumps(job))
        result = subprocess.run(["node", str(RUNNER), str(Path(tmp) / "job.json")], cwd=WEBAPP,
                                capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise WebdetError(f"the TF.js model failed on the {backend} backend: {result.stderr.strip().splitlines()[-1]}")
    return json.loads(result.stdout)


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare(reference: list[dict], candidate: list[dict]) -> dict:
    """Match each reference detection to the best same-label candidate; report the worst agreement."""
    worst_iou, worst_score, unmatched = 1.0, 0.0, 0
    for ref in reference:
        same = [c for c in candidate if c["labelId"] == ref["label_id"]]
        if not same:
            unmatched += 1
            worst_iou = 0.0
            continue
        best = max(same, key=lambda c: box_iou(ref["box"], c["box"]))
        worst_iou = min(worst_iou, box_iou(ref["box"], best["box"]))
        worst_score = max(worst_score, abs(ref["score"] - best["score"]))
    return {"detections": len(reference), "unmatched": unmatched, "min_iou": round(worst_iou, 4),
            "max_score_diff": round(worst_score, 4)}


def check_parity(saved_model_detector, web_dir: Path, images: list[np.ndarray], score_threshold: float,
                 strict: bool) -> dict:
    """Every SavedModel detection ≥ threshold must have a web twin at IoU ≥ 0.95 and score ± 0.02."""
    web = run_web_model(web_dir, images, "wasm", score_threshold=max(0.0, score_threshold - SCORE_TOLERANCE))
    per_image = []
    for image, result in zip(images, web["results"]):
        h, w = image.shape[:2]
        reference = to_detections(saved_model_detector(image), saved_model_detector.label_map, w, h, score_threshold)
        per_image.append(compare(reference, result["detections"]))
    summary = {"images": len(images), "backend": web["backend"], "score_threshold": score_threshold,
               "detections": sum(p["detections"] for p in per_image),
               "unmatched": sum(p["unmatched"] for p in per_image),
               "min_iou": min((p["min_iou"] for p in per_image), default=1.0),
               "max_score_diff": max((p["max_score_diff"] for p in per_image), default=0.0)}
    summary["passed"] = summary["unmatched"] == 0 and summary["min_iou"] >= IOU_MIN and \
        summary["max_score_diff"] <= SCORE_TOLERANCE
    if strict and not summary["passed"]:
        raise WebdetError(f"parity check failed: the TF.js model disagrees with the SavedModel on {summary['images']} "
                          f"images ({summary['unmatched']} unmatched, min IoU {summary['min_iou']}, max score "
                          f"difference {summary['max_score_diff']}; need IoU ≥ {IOU_MIN}, ± {SCORE_TOLERANCE})")
    return summary
