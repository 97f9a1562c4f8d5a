"""How well the model's anchors fit the train boxes: checked when a run starts, saved with the run.

Ultralytics' AutoAnchor check, over Model Garden's anchors. Each train box is letterboxed to the model's
input as evaluation sees it and compared with every anchor. Model Garden's labeler makes an anchor a
positive for a box at IoU ≥ 0.5. A box with no such anchor still gets its single closest anchor, but learns
from one example where others learn from tens. The share of boxes that have one (the best possible
recall) says whether `model.anchor_size` and `model.aspect_ratios` suit the data.
"""
import numpy as np
from official.vision.configs import retinanet as rcfg
from official.vision.ops import anchor

from webdet.data_prep.tfrecords import data_files, iter_examples
from webdet.training.eval_plots import iou_matrix

MATCH_THRESHOLD = rcfg.Parser().match_threshold
# Below this best possible recall the line says which settings to change. Measured on synthetic shapes
# (tiny model, 900 steps; docs/from_scratch.md): 0.89 trained as well as 0.98 (AP 0.735 against 0.705, two
# seeds each), and 0.51 lost 0.24 AP. Ultralytics warns below 0.98 for its own, looser, match rule.
POOR_FIT = 0.8


def train_boxes(data_dir, input_size: int) -> np.ndarray:
    """Every train box, in input pixels (ymin, xmin, ymax, xmax), after the evaluation letterbox."""
    boxes = [np.zeros((0, 4))]
    for example in iter_examples(data_files(data_dir, "train")):
        h, w = example["height"], example["width"]
        scale = input_size / max(h, w)
        boxes.append(np.asarray(example["boxes"], np.float64).reshape(-1, 4) * [h, w, h, w] * scale)
    return np.concatenate(boxes)


def model_anchors(model: dict) -> np.ndarray:
    """Every anchor of the model's config, in input pixels (ymin, xmin, ymax, xmax), all levels."""
    size = int(model["input_size"])
    levels = anchor.Anchor(int(model["min_level"]), int(model["max_level"]), int(model["num_scales"]),
                           [float(a) for a in model["aspect_ratios"]], float(model["anchor_size"]),
                           (size, size)).multilevel_boxes
    return np.concatenate([np.reshape(v.numpy(), (-1, 4)) for v in levels.values()])


def iou_with_anchors(boxes: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per box: its best IoU with any anchor, and how many anchors reach the match threshold.
    In blocks of boxes, so a large dataset never holds a boxes × anchors matrix. IoU does not change when
    x and y swap places in both sets, so Model Garden's (y, x) order goes to `iou_matrix` as it is."""
    best, positives = [], []
    for block in np.array_split(boxes, max(1, len(boxes) // 256)):
        iou = iou_matrix(block, anchors)
        best.append(iou.max(axis=1))
        positives.append((iou >= MATCH_THRESHOLD).sum(axis=1))
    return np.concatenate(best), np.concatenate(positives)


def anchor_fit(data_dir, model: dict) -> dict:
    """The fit of `model`'s anchors to the train boxes of a prepared `data_dir`."""
    boxes = train_boxes(data_dir, int(model["input_size"]))
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    if not len(boxes):
        return {"boxes": 0}
    best, positives = iou_with_anchors(boxes, model_anchors(model))
    heights, widths = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return {"boxes": len(boxes), "covered": int((best >= MATCH_THRESHOLD).sum()),
            "best_possible_recall": float((best >= MATCH_THRESHOLD).mean()),
            "median_best_iou": float(np.median(best)), "positives_per_box": float(positives.mean()),
            "median_box_size": float(np.median(np.sqrt(heights * widths))),
            "median_width_to_height": float(np.median(widths / heights)),
            "anchor_size": float(model["anchor_size"]), "aspect_ratios": [float(a) for a in model["aspect_ratios"]]}


def describe(fit: dict) -> str:
    """The line train prints: the fit, and which settings to change when it is poor."""
    if not fit["boxes"]:
        return "Anchors: no train boxes to check them against"
    line = (f"Anchors: {fit['covered']}/{fit['boxes']} train boxes have an anchor at IoU ≥ {MATCH_THRESHOLD:g} "
            f"(best possible recall {fit['best_possible_recall']:.3f}; median best IoU {fit['median_best_iou']:.2f}, "
            f"{fit['positives_per_box']:.1f} positive anchors per box)")
    if fit["best_possible_recall"] < POOR_FIT:
        line += (f". A poor fit: {fit['boxes'] - fit['covered']} boxes (median size {fit['median_box_size']:.0f} px, "
                 f"width/height {fit['median_width_to_height']:.2f} at the input size) learn from one anchor "
                 f"each; try other model.anchor_size ({fit['anchor_size']:g}) or model.aspect_ratios "
                 f"({fit['aspect_ratios']}) in a new run")
    return line
