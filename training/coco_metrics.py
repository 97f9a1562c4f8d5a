"""COCO detection metrics from plain arrays, computed by pycocotools.

Used by `webdet evaluate`; Model Garden's COCO evaluator (also pycocotools) scores the live
evaluation during training, so both report the same definitions.
"""
import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _xywh(boxes) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)


def build_coco(groundtruths, label_map: dict) -> COCO:
    images, annotations = [], []
    for gt in groundtruths:
        images.append({"id": int(gt["image_id"]), "width": int(gt["width"]), "height": int(gt["height"])})
        for box, cls in zip(_xywh(gt["boxes"]), gt["classes"]):
            annotations.append({"id": len(annotations) + 1, "image_id": int(gt["image_id"]),
                                "category_id": int(cls), "bbox": box.tolist(), "area": float(box[2] * box[3]),
                                "iscrowd": 0})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": int(i), "name": n} for i, n in sorted(label_map.items())]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def detections_list(predictions) -> list[dict]:
    out = []
    for pred in predictions:
        for box, score, cls in zip(_xywh(pred["boxes"]), pred["scores"], pred["classes"]):
            out.append({"image_id": int(pred["image_id"]), "category_id": int(cls), "bbox": box.tolist(),
                        "score": float(score)})
    return out


def run_cocoeval(groundtruths, predictions, label_map: dict) -> COCOeval | None:
    """The evaluated COCOeval object, or None when there is nothing to score."""
    gt = build_coco(groundtruths, label_map)
    detections = detections_list(predictions)
    if not detections or not gt.dataset["images"]:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(detections)
        evaluator = COCOeval(gt, dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _mean_valid(values) -> float | None:
    values = np.asarray(values)
    values = values[values > -1]
    return float(values.mean()) if values.size else None


def per_class(evaluator: COCOeval | None, groundtruths, label_map: dict) -> dict:
    """AP (IoU .50:.95) and AP50 per class; None for a class with no ground truth."""
    has_gt = {int(c) for gt in groundtruths for c in gt["classes"]}
    result = {}
    for k, (class_id, name) in enumerate(sorted(label_map.items())):
        if class_id not in has_gt:
            result[name] = {"id": class_id, "AP": None, "AP50": None, "ground_truth": 0}
            continue
        count = sum(int(np.sum(np.asarray(gt["classes"]) == class_id)) for gt in groundtruths)
        if evaluator is None:
            result[name] = {"id": class_id, "AP": 0.0, "AP50": 0.0, "ground_truth": count}
            continue
        precision = evaluator.eval["precision"][:, :, k, 0, -1]  # [IoU, recall], all areas, 100 dets
        result[name] = {"id": class_id, "AP": _mean_valid(precision) or 0.0,
                        "AP50": _mean_valid(precision[0]) or 0.0, "ground_truth": count}
    return result


def compute_coco_metrics(groundtruths, predictions, label_map: dict) -> dict:
    """The 12 standard COCO numbers plus per-class AP/AP50.

    groundtruths: [{image_id, height, width, boxes (n,4 xmin,ymin,xmax,ymax pixels), classes}]
    predictions:  [{image_id, boxes (pixels xyxy), scores, classes}]
    A number COCO leaves undefined (no ground truth of that kind) is None.
    """
    label_map = {int(k): v for k, v in label_map.items()}
    evaluator = run_cocoeval(groundtruths, predictions, label_map)
    any_gt = any(len(gt["classes"]) for gt in groundtruths)
    if evaluator is None:
        stats = {name: (0.0 if any_gt else None) for name in STAT_NAMES}
    else:
        stats = {name: (float(v) if v > -1 else None) for name, v in zip(STAT_NAMES, evaluator.stats)}
    return {**stats, "per_class": per_class(evaluator, groundtruths, label_map), "_evaluator": evaluator}
