"""`webdet evaluate`: run a detector over the test split and report COCO metrics, per class, with pictures.

Boxes are compared in the original image's pixel space, so a resize, letterbox or padding mistake in
a model's pre- or post-processing shows up as lost AP instead of hiding.
"""
import csv
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from data_prep.label_map import read_label_map
from data_prep.tfrecords import data_files, iter_examples
from training import eval_plots
from training.coco_metrics import STAT_NAMES, compute_coco_metrics
from webdet.errors import WebdetError

SAMPLE_SCORE_THRESHOLD = 0.3


def check_labels(data_dir: Path, detector_labels: dict) -> dict:
    path = Path(data_dir) / "label_map.pbtxt"
    if not path.is_file():
        raise WebdetError(f"{path}: missing; is {data_dir} a folder written by `webdet prepare`?")
    data_labels = read_label_map(path)
    if {int(k): v for k, v in detector_labels.items()} != data_labels:
        raise WebdetError(f"{path}: classes {sorted(data_labels.items())} differ from the model's "
                          f"{sorted(detector_labels.items())}")
    return data_labels


def run_detector(detector, data_dir: Path, max_images=None):
    """Ground truth and predictions in original-image pixels (x0, y0, x1, y1), and ms per image."""
    files = data_files(data_dir, "test")
    if not files:
        raise WebdetError(f"{data_dir}: no test-*.tfrecord shards; run `webdet prepare` again")
    items, seconds = [], []
    for index, example in enumerate(iter_examples(files)):
        if max_images is not None and index >= max_images:
            break
        image = np.asarray(Image.open(io.BytesIO(example["encoded"])).convert("RGB"))
        h, w = image.shape[:2]
        if index == 0:
            detector(image)  # the first call traces the graph; keep it out of the timing
        start = time.perf_counter()
        out = detector(image)
        seconds.append(time.perf_counter() - start)
        scale = np.array([h, w, h, w], np.float64)
        to_xyxy = lambda b: (np.asarray(b, np.float64).reshape(-1, 4) * scale)[:, [1, 0, 3, 2]]  # noqa: E731
        gt = {"image_id": index + 1, "height": h, "width": w, "boxes": to_xyxy(example["boxes"]),
              "classes": np.asarray(example["classes"], int)}
        pred = {"image_id": index + 1, "boxes": to_xyxy(out["boxes"]), "scores": np.asarray(out["scores"], float),
                "classes": np.asarray(out["classes"], int)}
        items.append({"filename": example["filename"], "encoded": example["encoded"], "gt": gt, "pred": pred})
    if not items:
        raise WebdetError(f"{data_dir}: the test split has no images")
    return items, 1000 * float(np.median(seconds))


def evaluate_detector(detector, data_dir, out_dir, *, max_images=None, score_threshold=0.0, title=None) -> dict:
    """Write metrics.json, per_class.csv, pr_curve.png, confusion.png (several classes) and samples.png."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    labels = check_labels(data_dir, detector.label_map)
    items, ms = run_detector(detector, data_dir, max_images)
    for item in items:
        keep = item["pred"]["scores"] >= score_threshold
        item["pred"] = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in item["pred"].items()}
    gts, preds = [it["gt"] for it in items], [it["pred"] for it in items]
    metrics = compute_coco_metrics(gts, preds, labels)
    evaluator = metrics.pop("_evaluator")
    metrics.update(images=len(items), ms_per_image=round(ms, 2), evaluated=title or "detector",
                   data=str(data_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    with open(out_dir / "per_class.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["class", "id", "ground_truth", "AP", "AP50"])
        for name, row in metrics["per_class"].items():
            writer.writerow([name, row["id"], row["ground_truth"], _cell(row["AP"]), _cell(row["AP50"])])
    eval_plots.pr_curve(evaluator, labels, out_dir / "pr_curve.png")
    if len(labels) > 1:
        matrix = eval_plots.confusion(gts, preds, labels, SAMPLE_SCORE_THRESHOLD)
        eval_plots.confusion_plot(matrix, labels, out_dir / "confusion.png", SAMPLE_SCORE_THRESHOLD)
    eval_plots.samples_plot(items, labels, out_dir / "samples.png", SAMPLE_SCORE_THRESHOLD)
    return metrics


def _cell(value):
    return "" if value is None else f"{value:.4f}"


def format_metrics_table(metrics: dict) -> str:
    """The 12 COCO numbers, per-class AP and the speed, as a printed table."""
    fmt = lambda v: "  n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"COCO metrics on {metrics['images']} test images ({metrics['evaluated']}):"]
    for i in range(0, len(STAT_NAMES), 6):
        names = STAT_NAMES[i:i + 6]
        lines.append("  " + "  ".join(f"{n:>6s}" for n in names))
        lines.append("  " + "  ".join(f"{fmt(metrics[n]):>6s}" for n in names))
    lines.append("Per class:           AP   AP50  ground truth")
    for name, row in metrics["per_class"].items():
        lines.append(f"  {name[:16]:16s} {fmt(row['AP']):>6s} {fmt(row['AP50']):>6s}  {row['ground_truth']}")
    lines.append(f"Inference: {metrics['ms_per_image']:.1f} ms per image (batch 1, this machine)")
    return "\n".join(lines)
