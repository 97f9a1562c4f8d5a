"""Pictures of an evaluation: precision-recall per class, a confusion matrix and the worst test images.

All boxes are (xmin, ymin, xmax, ymax) in original-image pixels, as `webdet.training.coco_metrics` takes them.
Rendering uses matplotlib's Agg backend, so plots are written on machines without a display.
"""
import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from webdet.training.coco_metrics import xyxy_to_xywh

IOU_MATCH = 0.5
GROUND_TRUTH_COLOUR = "lime"
# Ground truth is drawn dashed in green, so predictions use any colour but green.
PREDICTION_COLOURS = ("tab:orange", "tab:blue", "tab:red", "tab:purple", "tab:pink", "tab:brown", "tab:cyan")
SAMPLE_COLUMNS = 4
DPI = 90


def _pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def pr_curve_plot(evaluator, label_map: dict, path) -> None:
    """Precision against recall at IoU 0.5 per class, read from COCOeval's accumulated precision table.

    That table holds COCO's interpolated precision at 101 recall points (0 beyond the highest recall
    reached); a class without ground truth has no curve and is named as such in the legend.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    recall_points = evaluator.params.recThrs
    precision = evaluator.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, all areas, 100 detections
    for k, class_id in enumerate(evaluator.params.catIds):
        name = label_map[class_id]
        curve = precision[:, k]
        if np.all(curve < 0):
            ax.plot([], [], ls="none", label=f"{name}: no ground truth")
            continue
        ax.plot(recall_points, curve, lw=2, label=f"{name} (AP50 {curve.mean():.3f})")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall at IoU 0.5 (COCO, interpolated)",
           xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    _save(plt, fig, path)


def iou_matrix(boxes_a, boxes_b) -> np.ndarray:
    """IoU between every box of `boxes_a` (rows) and `boxes_b` (columns), by pycocotools."""
    a, b = xyxy_to_xywh(boxes_a), xyxy_to_xywh(boxes_b)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    return np.asarray(coco_mask.iou(a, b, [0] * len(b)), np.float64).reshape(len(a), len(b))


@dataclass
class ImageMatch:
    """How one image's predictions meet its ground truth at IoU 0.5 (class ids throughout)."""
    pairs: list = field(default_factory=list)            # (true class, predicted class, IoU)
    missed: list = field(default_factory=list)           # true classes nothing found
    false_positives: list = field(default_factory=list)  # predicted classes with no box under them

    @property
    def wrong_class(self) -> int:
        return sum(1 for true, guess, _ in self.pairs if true != guess)

    @property
    def errors(self) -> int:
        return len(self.missed) + len(self.false_positives) + self.wrong_class

    @property
    def mean_iou(self) -> float:
        return float(np.mean([iou for _, _, iou in self.pairs])) if self.pairs else 0.0


def match_image(gt: dict, pred: dict, score_threshold: float) -> ImageMatch:
    """Greedy matching at IoU ≥ 0.5, highest score first, each ground-truth box used once.

    Matching ignores the class (preferring a same-class box among the overlapping ones), so a box
    found with the wrong label counts as a confusion, not as one miss plus one false positive.
    """
    scores = np.asarray(pred["scores"], np.float64).reshape(-1)
    keep = scores >= score_threshold
    boxes = np.asarray(pred["boxes"], np.float64).reshape(-1, 4)[keep]
    classes, scores = np.asarray(pred["classes"]).reshape(-1)[keep], scores[keep]
    gt_classes = np.asarray(gt["classes"]).reshape(-1)
    ious = iou_matrix(gt["boxes"], boxes)
    used, match = set(), ImageMatch()
    for j in np.argsort(-scores, kind="stable"):
        candidates = [i for i in range(len(gt_classes)) if i not in used and ious[i, j] >= IOU_MATCH]
        if not candidates:
            match.false_positives.append(int(classes[j]))
            continue
        best = max(candidates, key=lambda i: (gt_classes[i] == classes[j], ious[i, j]))
        used.add(best)
        match.pairs.append((int(gt_classes[best]), int(classes[j]), float(ious[best, j])))
    match.missed = [int(c) for i, c in enumerate(gt_classes) if i not in used]
    return match


def confusion_matrix(groundtruths, predictions, label_map: dict, score_threshold: float) -> np.ndarray:
    """Counts with rows = true class + a last "background" row (false positives) and columns =
    predicted class + a last "missed" column (ground truth nothing found), in sorted label-id order."""
    index = {class_id: i for i, class_id in enumerate(sorted(label_map))}
    matrix = np.zeros((len(index) + 1, len(index) + 1), np.int64)
    for gt, pred in zip(groundtruths, predictions):
        match = match_image(gt, pred, score_threshold)
        for true, guess, _ in match.pairs:
            matrix[index[true], index[guess]] += 1
        for true in match.missed:
            matrix[index[true], -1] += 1
        for guess in match.false_positives:
            matrix[-1, index[guess]] += 1
    return matrix


def confusion_plot(matrix: np.ndarray, label_map: dict, path, score_threshold: float) -> None:
    """The confusion matrix as an annotated heat map."""
    plt = _pyplot()
    names = [label_map[i] for i in sorted(label_map)]
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 3.5, 1.0 * len(names) + 3))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names) + 1), names + ["(missed)"], rotation=30, ha="right")
    ax.set_yticks(range(len(names) + 1), names + ["(background)"])
    top = matrix.max() or 1
    for (row, col), value in np.ndenumerate(matrix):
        if row == len(names) and col == len(names):
            continue  # background predicted as nothing: not counted by a detector
        ax.text(col, row, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    ax.set(xlabel="predicted", ylabel="ground truth",
           title=f"Detections at IoU {IOU_MATCH}, score ≥ {score_threshold:g}")
    _save(plt, fig, path)


def worst_first(items, score_threshold: float) -> list:
    """Items ordered by most errors, then by the loosest boxes (lowest mean IoU of matches)."""
    matches = [match_image(item["gt"], item["pred"], score_threshold) for item in items]
    order = sorted(range(len(items)), key=lambda i: (-matches[i].errors, matches[i].mean_iou))
    return [(items[i], matches[i]) for i in order]


def _describe(match: ImageMatch) -> str:
    """A panel title's verdict, e.g. "1 missed, 2 false positive"."""
    if not match.errors:
        return "all found"
    parts = [(len(match.missed), "missed"), (len(match.false_positives), "false positive"),
             (match.wrong_class, "wrong class")]
    return ", ".join(f"{count} {what}" for count, what in parts if count)


def _draw_ground_truth(ax, plt, gt: dict, label_map: dict) -> None:
    """Dashed green boxes, class name under the bottom-left corner."""
    for box, cls in zip(np.asarray(gt["boxes"]).reshape(-1, 4), np.asarray(gt["classes"]).reshape(-1)):
        ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False,
                                   ec=GROUND_TRUTH_COLOUR, lw=2, ls="--"))
        ax.text(box[0], box[3], label_map.get(int(cls), str(cls)), color="black", fontsize=6, va="top",
                bbox={"facecolor": GROUND_TRUTH_COLOUR, "pad": 1, "lw": 0})


def _draw_predictions(ax, plt, pred: dict, label_map: dict, score_threshold: float) -> None:
    """Solid boxes in a colour per class, "name score" above the top-left corner; the most
    confident are drawn last so their labels stay readable where boxes coincide."""
    scores = np.asarray(pred["scores"]).reshape(-1)
    boxes, classes = np.asarray(pred["boxes"]).reshape(-1, 4), np.asarray(pred["classes"]).reshape(-1)
    for j in np.argsort(scores, kind="stable"):
        if scores[j] < score_threshold:
            continue
        box, colour = boxes[j], PREDICTION_COLOURS[int(classes[j]) % len(PREDICTION_COLOURS)]
        ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, ec=colour, lw=1.5))
        ax.text(box[0], box[1], f"{label_map.get(int(classes[j]), classes[j])} {scores[j]:.2f}", color="white",
                fontsize=6, va="bottom", bbox={"facecolor": colour, "pad": 1, "lw": 0})


def samples_plot(items, label_map: dict, path, score_threshold: float, limit: int = 12) -> None:
    """A grid of test images, worst first, with ground truth and predictions in two styles.

    items: [{filename, encoded (image bytes), gt {boxes, classes}, pred {boxes, scores, classes}}]
    """
    plt = _pyplot()
    ranked = worst_first(items, score_threshold)[:limit]
    cols = min(SAMPLE_COLUMNS, max(1, len(ranked)))
    rows = max(1, -(-len(ranked) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (item, match) in zip(axes.flat, ranked):
        ax.imshow(Image.open(io.BytesIO(item["encoded"])).convert("RGB"))
        _draw_ground_truth(ax, plt, item["gt"], label_map)
        _draw_predictions(ax, plt, item["pred"], label_map, score_threshold)
        ax.set_title(f"{item['filename'][:28]}: {_describe(match)}", fontsize=8)
    fig.suptitle(f"Worst test images first ({len(ranked)} of {len(items)}): ground truth dashed green, "
                 f"predictions with score ≥ {score_threshold:g} solid", fontsize=10)
    _save(plt, fig, path)
