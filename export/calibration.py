"""The default score threshold of an export: the one that maximises F1 on the run's test split.

A fixed 0.30 is wrong for most models: a young model scores true objects at 0.2, a long-trained one
scores false ones at 0.4. The app's slider and the server start at this threshold, and the export
prints the precision and recall a user gets there.

Detections are matched to ground truth by pycocotools (COCOeval at IoU 0.5, the AP50 rule), so a
"true positive" here is the same thing the AP50 figure counts. One threshold serves all classes,
as the app has one slider: precision and recall are pooled over classes.
"""
import math

import numpy as np

from webdet.errors import WebdetError
from webdet.training.coco_metrics import IOU_50, run_cocoeval

AUTO = "auto"
FALLBACK = 0.3  # when there is nothing to calibrate on: the threshold the app used before calibration


def configured_threshold(value):
    """`export.score_threshold` from the run's config: "auto" (calibrate), or a fixed number in (0, 1]."""
    if value == AUTO:
        return AUTO
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0.0 < number <= 1.0:
        raise WebdetError(f"export.score_threshold={value}: must be auto or a number in (0, 1]")
    return number


def matched_scores(groundtruths, predictions, label_map: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """Every scored detection's score and whether COCO matched it at IoU 0.5; and the ground-truth count."""
    evaluator = run_cocoeval(groundtruths, predictions, label_map)
    everything = evaluator.params.areaRng[0]
    scores, hits, truths = [], [], 0
    for result in evaluator.evalImgs:
        if result is None or result["aRng"] != everything:
            continue
        counted = ~np.asarray(result["dtIgnore"], bool)[IOU_50]
        matches = np.asarray(result["dtMatches"])[IOU_50]
        scores.extend(np.asarray(result["dtScores"])[counted])
        hits.extend(matches[counted] > 0)
        truths += int(np.sum(~np.asarray(result["gtIgnore"], bool)))
    return np.asarray(scores, np.float64), np.asarray(hits, bool), truths


def precision_recall(scores: np.ndarray, hits: np.ndarray, truths: int) -> tuple:
    """Precision and recall at each distinct score, as thresholds: (thresholds, precision, recall)."""
    order = np.argsort(-scores, kind="mergesort")
    scores, hits = scores[order], hits[order]
    tp = np.cumsum(hits)
    kept = np.arange(1, len(scores) + 1)
    last_of_each_score = np.r_[scores[1:] != scores[:-1], True]
    return (scores[last_of_each_score], (tp / kept)[last_of_each_score],
            (tp / max(truths, 1))[last_of_each_score])


def calibrate(groundtruths, predictions, label_map: dict, configured=AUTO, minimum: float = 0.01) -> dict:
    """The F1-maximising threshold (floored to 0.01 so the slider can show it, and never below
    `minimum`) with its precision, recall and F1 there. A configured number is kept as it is,
    with its precision and recall; so is FALLBACK, with the reason, when the model finds nothing
    right on the test split."""
    scores, hits, truths = matched_scores(groundtruths, predictions, label_map)
    result = {"method": "max_f1", "iou": 0.5, "images": len(groundtruths), "ground_truth_boxes": truths}
    if configured != AUTO or truths == 0 or not hits.any():
        fixed = FALLBACK if configured == AUTO else float(configured)
        reason = ("set in the run's config (export.score_threshold)" if configured != AUTO else
                  "no ground truth" if truths == 0 else "no detection matches the ground truth at IoU 0.5")
        return {**result, "method": "fixed", "score_threshold": fixed, "reason": reason,
                **_at(scores, hits, truths, fixed)}
    thresholds, precision, recall = precision_recall(scores, hits, truths)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1))
    threshold = max(round(minimum, 2), math.floor(thresholds[best] * 100) / 100)
    return {**result, "score_threshold": threshold, **_at(scores, hits, truths, threshold)}


def _at(scores: np.ndarray, hits: np.ndarray, truths: int, threshold: float) -> dict:
    """Precision, recall and F1 of the detections scoring at least `threshold`."""
    kept = scores >= threshold
    tp = int(np.sum(hits & kept))
    precision = tp / int(kept.sum()) if kept.any() else 0.0
    recall = tp / truths if truths else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def describe(calibration: dict) -> str:
    """One line for the export's log."""
    where = f"on {calibration['images']} test images at IoU 0.5"
    numbers = (f"precision {calibration['precision']:.3f}, recall {calibration['recall']:.3f}, "
               f"F1 {calibration['f1']:.3f}")
    if calibration["method"] == "max_f1":
        return f"Score threshold {calibration['score_threshold']:.2f} (max F1 {where}): {numbers}"
    why = f" ({calibration['reason']})" if calibration.get("reason") else ""
    return f"Score threshold {calibration['score_threshold']:.2f}, fixed{why}; {where}: {numbers}"
