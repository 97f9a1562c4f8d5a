"""COCO detection metrics from plain arrays, computed by pycocotools.

`webdet evaluate` and the live evaluation during training both score through `run_cocoeval` and
`metrics_from_cocoeval` (by way of `webdet.training.evaluate.score_detector`), the export's web-model
check through `compute_coco_metrics`, so every number the project reports has COCO's own definition:
101-point interpolated AP averaged over IoU 0.50:0.95, small/medium/large by box area, AR at 1/10/100
detections per image. Where COCO leaves a number undefined (no ground truth of that kind) it is None
(JSON null), never a made-up 0.
"""
import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
# Indices into COCOeval.eval["precision"] [IoU, recall, class, area, max detections].
IOU_50, IOU_75, AREA_ALL, MAX_DETS_100 = 0, 5, 0, -1


def xyxy_to_xywh(boxes) -> np.ndarray:
    """(n, 4) xmin, ymin, xmax, ymax pixels → COCO's xmin, ymin, width, height (C-ordered float64,
    which pycocotools' C functions need: they read column-major arrays' memory wrongly)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.ascontiguousarray(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1))


def check_inputs(groundtruths, predictions, label_map: dict) -> None:
    """Raise ValueError for input pycocotools would crash on or silently ignore.

    Unknown image ids crash `loadRes`; class ids outside the label map would be dropped without a word.
    """
    image_ids = [int(gt["image_id"]) for gt in groundtruths]
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("groundtruths: image_id values must be unique")
    known_images = set(image_ids)
    for kind, items in (("groundtruths", groundtruths), ("predictions", predictions)):
        for item in items:
            classes = np.asarray(item["classes"]).reshape(-1)
            if len(np.asarray(item["boxes"]).reshape(-1, 4)) != len(classes):
                raise ValueError(f"{kind}: image {item['image_id']}: boxes and classes differ in length")
            unknown = sorted({int(c) for c in classes} - set(label_map))
            if unknown:
                raise ValueError(f"{kind}: image {item['image_id']}: class ids {unknown} are not in the label "
                                 f"map {sorted(label_map)}")
            if kind == "predictions" and int(item["image_id"]) not in known_images:
                raise ValueError(f"predictions: image_id {item['image_id']} has no ground-truth entry")


def ground_truth_coco(groundtruths, label_map: dict) -> COCO:
    """A COCO ground-truth object built in memory; every image is listed, with or without boxes."""
    images, annotations = [], []
    for gt in groundtruths:
        images.append({"id": int(gt["image_id"]), "width": int(gt["width"]), "height": int(gt["height"])})
        for box, cls in zip(xyxy_to_xywh(gt["boxes"]), np.asarray(gt["classes"]).reshape(-1)):
            annotations.append({"id": len(annotations) + 1, "image_id": int(gt["image_id"]),
                                "category_id": int(cls), "bbox": box.tolist(), "area": float(box[2] * box[3]),
                                "iscrowd": 0})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": int(i), "name": n} for i, n in sorted(label_map.items())]}
    coco.createIndex()
    return coco


def detections_coco(gt_coco: COCO, predictions) -> COCO:
    """The detections as a COCO result object (an empty one when there are none: loadRes cannot take [])."""
    detections = [{"image_id": int(pred["image_id"]), "category_id": int(cls), "bbox": box.tolist(),
                   "score": float(score)}
                  for pred in predictions
                  for box, score, cls in zip(xyxy_to_xywh(pred["boxes"]),
                                             np.asarray(pred["scores"]).reshape(-1),
                                             np.asarray(pred["classes"]).reshape(-1))]
    if detections:
        return gt_coco.loadRes(detections)
    empty = COCO()
    empty.dataset = {"images": list(gt_coco.dataset["images"]), "annotations": [],
                     "categories": list(gt_coco.dataset["categories"])}
    empty.createIndex()
    return empty


def run_cocoeval(groundtruths, predictions, label_map: dict) -> COCOeval:
    """The evaluated, accumulated and summarised COCOeval; pycocotools' printing is swallowed."""
    label_map = {int(k): v for k, v in label_map.items()}
    check_inputs(groundtruths, predictions, label_map)
    with contextlib.redirect_stdout(io.StringIO()):
        gt_coco = ground_truth_coco(groundtruths, label_map)
        evaluator = COCOeval(gt_coco, detections_coco(gt_coco, predictions), iouType="bbox")
        evaluator.params.imgIds = sorted(gt_coco.getImgIds())
        evaluator.params.catIds = sorted(label_map)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _defined_mean(values) -> float | None:
    """Mean over the entries COCO defines (it marks undefined ones -1), or None when there are none."""
    values = np.asarray(values, np.float64)
    values = values[values > -1]
    return float(values.mean()) if values.size else None


def summary_stats(evaluator: COCOeval) -> dict:
    """The 12 standard numbers of `COCOeval.summarize`, None where COCO reports -1 (undefined)."""
    return {name: (float(value) if value > -1 else None) for name, value in zip(STAT_NAMES, evaluator.stats)}


def per_class_metrics(evaluator: COCOeval, groundtruths, predictions, label_map: dict) -> dict:
    """Per class name: id, AP (IoU .50:.95), AP50, AP75, AR100 and the box counts behind them.

    A class with no ground truth has every number None: COCO leaves it out of the means too.
    """
    precision, recall = evaluator.eval["precision"], evaluator.eval["recall"]
    gt_classes = np.concatenate([np.asarray(g["classes"], np.int64).reshape(-1) for g in groundtruths] or [[]])
    dt_classes = np.concatenate([np.asarray(p["classes"], np.int64).reshape(-1) for p in predictions] or [[]])
    result = {}
    for k, class_id in enumerate(evaluator.params.catIds):
        table = precision[:, :, k, AREA_ALL, MAX_DETS_100]
        result[label_map[class_id]] = {
            "id": int(class_id), "AP": _defined_mean(table), "AP50": _defined_mean(table[IOU_50]),
            "AP75": _defined_mean(table[IOU_75]), "AR100": _defined_mean(recall[:, k, AREA_ALL, MAX_DETS_100]),
            "ground_truth": int(np.sum(gt_classes == class_id)), "detections": int(np.sum(dt_classes == class_id)),
        }
    return result


def metrics_from_cocoeval(evaluator: COCOeval, groundtruths, predictions, label_map: dict) -> dict:
    """The JSON-ready summary of an evaluated COCOeval: 12 numbers, per class, and what was counted."""
    label_map = {int(k): v for k, v in label_map.items()}
    return {**summary_stats(evaluator),
            "per_class": per_class_metrics(evaluator, groundtruths, predictions, label_map),
            "images": len(groundtruths),
            "ground_truth_boxes": sum(len(np.asarray(g["classes"]).reshape(-1)) for g in groundtruths),
            "detections": sum(len(np.asarray(p["classes"]).reshape(-1)) for p in predictions)}


def compute_coco_metrics(groundtruths, predictions, label_map: dict) -> dict:
    """The 12 standard COCO numbers plus per-class AP/AP50, computed by pycocotools, silently.

    groundtruths: [{image_id, height, width, boxes (n,4 xmin,ymin,xmax,ymax pixels), classes}]
    predictions:  [{image_id, boxes (pixels xyxy), scores, classes}]
    label_map:    {id (from 1): name}
    Images without ground truth still count (their detections are false positives); an empty
    prediction set scores 0 wherever ground truth exists.
    """
    evaluator = run_cocoeval(groundtruths, predictions, label_map)
    return metrics_from_cocoeval(evaluator, groundtruths, predictions, label_map)
