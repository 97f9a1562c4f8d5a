"""`webdet evaluate`: run a detector over the test split and report COCO metrics, per class, with pictures.

A detector is anything that follows `webdet.contract.Detector`: a checkpoint, a SavedModel or the web
model. Its detection records are scored in the original image's pixel space, so a resize, letterbox
or padding mistake in a model's pre- or post-processing shows up as lost AP instead of hiding.
"""
import csv
import io
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from webdet.contract import Detector, LabelMap, as_arrays
from webdet.data_prep.label_map import read_label_map
from webdet.data_prep.tfrecords import data_files, iter_examples
from webdet.training import eval_plots
from webdet.training.coco_metrics import STAT_NAMES, metrics_from_cocoeval, run_cocoeval
from webdet.errors import WebdetError

# COCO scores every detection the model returns (its detection generator already drops those below
# `eval.score_threshold`); `webdet evaluate --score-threshold` and training's live evaluation default to this.
SCORE_THRESHOLD = 0.0
# Pictures (confusion matrix, samples) show detections a user would see: the web app's default threshold.
PLOT_SCORE_THRESHOLD = 0.3
PER_CLASS_COLUMNS = ("class", "id", "ground_truth", "detections", "AP", "AP50", "AP75", "AR100")


def model_name(detector: Detector) -> str:
    """What a detector was loaded from (checkpoint prefix or SavedModel folder), for messages."""
    return str(getattr(detector, "source", None) or type(detector).__name__)


def check_label_maps(data_dir: Path, detector: Detector) -> LabelMap:
    """The data's label map, after checking it is the detector's one (same ids, same names)."""
    path = Path(data_dir) / "label_map.pbtxt"
    if not path.is_file():
        raise WebdetError(f"{path}: missing; is {data_dir} a folder written by `webdet prepare`?")
    data_labels = read_label_map(path)
    model_labels = LabelMap.of(detector.label_map)
    if model_labels != data_labels:
        raise WebdetError(f"{path}: classes {sorted(data_labels.items())} differ from the model's "
                          f"{sorted(model_labels.items())} ({model_name(detector)})")
    return data_labels


def decode_rgb(example: dict) -> np.ndarray:
    """The record's stored pixels as RGB uint8, without EXIF rotation (prepare already applied any
    rotation the boxes need, and TensorFlow's decoder ignores EXIF too)."""
    image = np.asarray(Image.open(io.BytesIO(example["encoded"])).convert("RGB"))
    if image.shape[:2] != (example["height"], example["width"]):
        raise WebdetError(f"{example['filename']}: image/height, image/width {example['height']}x"
                          f"{example['width']} in the record but the JPEG is {image.shape[0]}x{image.shape[1]}")
    return image


def to_pixel_xyxy(boxes, height: int, width: int) -> np.ndarray:
    """Normalised (ymin, xmin, ymax, xmax) → original-image pixels (xmin, ymin, xmax, ymax)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) * [height, width, height, width]
    return np.ascontiguousarray(boxes[:, [1, 0, 3, 2]])


def check_output(detections, detector: Detector, label_map: LabelMap, filename: str) -> dict:
    """The detector's records as arrays (pixel xyxy boxes, scores, class ids), or a one-line error."""
    name = model_name(detector)
    fields = {"box", "score", "label_id", "label"}
    if not isinstance(detections, list) or not all(isinstance(d, dict) and fields <= set(d) for d in detections):
        raise WebdetError(f"{name}: not a detector (its answer on {filename} is not a list of detection records)")
    arrays = as_arrays(detections)
    # pycocotools matches a NaN box to ground truth instead of failing, which inflates recall.
    if not (np.isfinite(arrays["boxes"]).all() and np.isfinite(arrays["scores"]).all()):
        raise WebdetError(f"{name}: on {filename} returned a box or score that is not a finite number")
    unknown = sorted({int(c) for c in arrays["classes"]} - set(label_map))
    if unknown:
        raise WebdetError(f"{name}: on {filename} returned class ids {unknown} that its label map "
                          f"{sorted(label_map)} does not have")
    return arrays


def run_detector(detector: Detector, data_dir: Path, label_map: LabelMap, max_images=None) -> tuple[list, list]:
    """Ground truth, detection records and their arrays (original-image pixels) for each test image,
    and seconds per call.

    The first call runs twice and only the second is timed: it traces the graph, which a deployed
    model does once, not per frame.
    """
    files = data_files(data_dir, "test")
    if not files:
        raise WebdetError(f"{data_dir}: no test-*.tfrecord shards; run `webdet prepare` again")
    items, seconds = [], []
    for index, example in enumerate(iter_examples(files)):
        if max_images is not None and index >= max_images:
            break
        image = decode_rgb(example)
        h, w = image.shape[:2]
        if index == 0:
            detector.detect(image)
        start = time.perf_counter()
        detections = detector.detect(image)
        seconds.append(time.perf_counter() - start)
        output = check_output(detections, detector, label_map, example["filename"])
        gt = {"image_id": index + 1, "height": h, "width": w, "boxes": to_pixel_xyxy(example["boxes"], h, w),
              "classes": np.asarray(example["classes"], np.int64)}
        items.append({"filename": example["filename"], "encoded": example["encoded"], "gt": gt,
                      "detections": detections, "pred": {"image_id": index + 1, **output}})
    if not items:
        raise WebdetError(f"{data_dir}: the test split has no images")
    return items, seconds


def above(pred: dict, score_threshold: float) -> dict:
    """The prediction with detections scoring below the threshold removed."""
    keep = pred["scores"] >= score_threshold
    return {**pred, "boxes": pred["boxes"][keep], "scores": pred["scores"][keep], "classes": pred["classes"][keep]}


def write_per_class_csv(per_class: dict, path: Path) -> None:
    """One row per class; undefined numbers (class without ground truth) are empty cells."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(PER_CLASS_COLUMNS)
        for name, row in per_class.items():
            writer.writerow([name] + [_cell(row[column]) for column in PER_CLASS_COLUMNS[1:]])


def _cell(value):
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else value


def confusion_summary(items, labels: dict, plot_threshold: float) -> dict:
    """The detection confusion matrix as JSON: rows true class + background, columns predicted + missed."""
    names = [labels[i] for i in sorted(labels)]
    matrix = eval_plots.confusion_matrix([it["gt"] for it in items], [it["pred"] for it in items], labels,
                                         plot_threshold)
    return {"rows": names + ["(background)"], "columns": names + ["(missed)"], "iou": eval_plots.IOU_MATCH,
            "score_threshold": plot_threshold, "matrix": matrix.tolist()}


def write_plots(evaluator, items, labels: dict, confusion: dict, out_dir: Path) -> list[str]:
    """pr_curve.png, confusion.png (more than one class) and samples.png; returns the names written."""
    threshold = confusion["score_threshold"]
    eval_plots.pr_curve_plot(evaluator, labels, out_dir / "pr_curve.png")
    written = ["pr_curve.png"]
    if len(labels) > 1:
        eval_plots.confusion_plot(np.array(confusion["matrix"]), labels, out_dir / "confusion.png", threshold)
        written.append("confusion.png")
    eval_plots.samples_plot(items, labels, out_dir / "samples.png", threshold)
    return written + ["samples.png"]


def score_detector(detector, data_dir, *, max_images=None, score_threshold=SCORE_THRESHOLD) -> dict:
    """COCO metrics of a detector on the test split of `data_dir`, writing nothing.

    This is the scoring `evaluate_detector` reports and training's live evaluation records, so a
    checkpoint has one AP wherever it is read: the 12 COCO numbers, per class, images, boxes,
    detections, ms per image at batch 1, and what was scored. Detections below `score_threshold`
    are dropped before COCO scores them (0: all are scored).
    """
    return _score(detector, Path(data_dir), max_images, score_threshold)[0]


def _score(detector, data_dir: Path, max_images, score_threshold) -> tuple[dict, object, list, dict]:
    """(metrics, the evaluated COCOeval, the per-image items, the label map) for `score_detector`."""
    labels = check_label_maps(data_dir, detector)
    items, seconds = run_detector(detector, data_dir, labels, max_images)
    for item in items:
        item["pred"] = above(item["pred"], score_threshold)
    gts, preds = [it["gt"] for it in items], [it["pred"] for it in items]
    evaluator = run_cocoeval(gts, preds, labels)
    metrics = {**metrics_from_cocoeval(evaluator, gts, preds, labels),
               "ms_per_image": round(1000 * float(np.median(seconds)), 2),
               "ms_per_image_mean": round(1000 * float(np.mean(seconds)), 2),
               "model": model_name(detector), "data": str(data_dir.resolve()), "split": "test",
               "max_images": max_images, "score_threshold": score_threshold}
    return metrics, evaluator, items, labels


def evaluate_detector(detector, data_dir, out_dir, *, max_images=None, score_threshold=SCORE_THRESHOLD,
                      title=None, plot_score_threshold=PLOT_SCORE_THRESHOLD) -> dict:
    """Score a detector on the test split of `data_dir` (`score_detector`) and write the report to `out_dir`.

    Writes metrics.json (12 COCO numbers, per class, images, ms per image at batch 1, what was
    evaluated, the confusion counts), per_class.csv, pr_curve.png, confusion.png (more than one class) and samples.png.
    Detections below `score_threshold` are dropped before COCO scores them (0: all are scored);
    the pictures show those at or above max(score_threshold, plot_score_threshold).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    scored, evaluator, items, labels = _score(detector, data_dir, max_images, score_threshold)
    plot_threshold = max(score_threshold, plot_score_threshold)
    metrics = {**scored, "evaluated": title or model_name(detector), "plot_score_threshold": plot_threshold,
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    metrics["confusion"] = confusion_summary(items, labels, plot_threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics["files"] = ["metrics.json", "per_class.csv"] + write_plots(evaluator, items, labels,
                                                                        metrics["confusion"], out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    write_per_class_csv(metrics["per_class"], out_dir / "per_class.csv")
    return metrics


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_metrics_table(metrics: dict) -> str:
    """The 12 COCO numbers, per-class AP and the speed, as a printed table (n/a: undefined by COCO)."""
    lines = [f"COCO metrics on {metrics['images']} test images, {metrics['ground_truth_boxes']} boxes "
             f"({metrics['evaluated']}):"]
    for start in range(0, len(STAT_NAMES), 6):
        names = STAT_NAMES[start:start + 6]
        lines.append("  " + " ".join(f"{n:>6s}" for n in names))
        lines.append("  " + " ".join(f"{_number(metrics[n]):>6s}" for n in names))
    lines.append(f"  {'class':16s} {'AP':>6s} {'AP50':>6s} {'AP75':>6s} {'AR100':>6s} {'boxes':>6s}")
    for name, row in metrics["per_class"].items():
        lines.append(f"  {name[:16]:16s} {_number(row['AP']):>6s} {_number(row['AP50']):>6s} "
                     f"{_number(row['AP75']):>6s} {_number(row['AR100']):>6s} {row['ground_truth']:>6d}")
    lines.append(f"Inference: {metrics['ms_per_image']:.1f} ms per image (median, batch 1, this machine)")
    return "\n".join(lines)
