"""Pictures of an evaluation: precision-recall per class, a confusion matrix and the worst test images."""
import io

import numpy as np
from PIL import Image

IOU_MATCH = 0.5
# No green: ground truth is drawn in green.
PREDICTION_COLOURS = ("tab:orange", "tab:blue", "tab:red", "tab:purple", "tab:pink", "tab:brown", "tab:cyan")


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def pr_curve(evaluator, label_map: dict, path) -> None:
    """Precision against recall at IoU 0.5 for each class (from COCOeval's accumulated table)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 5))
    recall = np.linspace(0, 1, 101)
    for k, (_, name) in enumerate(sorted(label_map.items())):
        if evaluator is None:
            continue
        precision = evaluator.eval["precision"][0, :, k, 0, -1]
        if np.all(precision < 0):
            continue
        ap50 = precision[precision > -1].mean()
        ax.plot(recall, np.clip(precision, 0, 1), label=f"{name} (AP50 {ap50:.3f})")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall at IoU 0.5", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(loc="lower left")
    else:
        ax.text(0.5, 0.5, "no detections", ha="center")
    _save(plt, fig, path)


def iou_matrix(a, b) -> np.ndarray:
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def match_image(gt, pred, score_threshold: float):
    """Greedy class-agnostic matching at IoU 0.5, highest score first.

    Returns (pairs of (gt class, predicted class), unmatched gt classes, unmatched predicted classes).
    """
    keep = np.asarray(pred["scores"]) >= score_threshold
    boxes, classes = np.asarray(pred["boxes"]).reshape(-1, 4)[keep], np.asarray(pred["classes"])[keep]
    order = np.argsort(-np.asarray(pred["scores"])[keep], kind="stable")
    ious = iou_matrix(gt["boxes"], boxes)
    used, pairs, false_pos = set(), [], []
    for j in order:
        candidates = [i for i in range(len(gt["classes"])) if i not in used and ious[i, j] >= IOU_MATCH]
        if candidates:
            best = max(candidates, key=lambda i: (gt["classes"][i] == classes[j], ious[i, j]))
            used.add(best)
            pairs.append((int(gt["classes"][best]), int(classes[j])))
        else:
            false_pos.append(int(classes[j]))
    missed = [int(c) for i, c in enumerate(gt["classes"]) if i not in used]
    return pairs, missed, false_pos


def confusion(groundtruths, predictions, label_map: dict, score_threshold: float) -> np.ndarray:
    """Rows: true class (last row background), columns: predicted class (last column: missed)."""
    ids = sorted(label_map)
    index = {c: i for i, c in enumerate(ids)}
    matrix = np.zeros((len(ids) + 1, len(ids) + 1), int)
    for gt, pred in zip(groundtruths, predictions):
        pairs, missed, false_pos = match_image(gt, pred, score_threshold)
        for true, guess in pairs:
            matrix[index[true], index[guess]] += 1
        for true in missed:
            matrix[index[true], -1] += 1
        for guess in false_pos:
            matrix[-1, index[guess]] += 1
    return matrix


def confusion_plot(matrix: np.ndarray, label_map: dict, path, score_threshold: float) -> None:
    plt = _plt()
    names = [label_map[i] for i in sorted(label_map)]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3, 1.1 * len(names) + 2.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names) + 1), names + ["(missed)"], rotation=30, ha="right")
    ax.set_yticks(range(len(names) + 1), names + ["(background)"])
    for (r, c), value in np.ndenumerate(matrix):
        ax.text(c, r, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="ground truth",
           title=f"Detections at IoU 0.5, score ≥ {score_threshold:g}")
    _save(plt, fig, path)


def image_errors(gt, pred, score_threshold: float) -> int:
    pairs, missed, false_pos = match_image(gt, pred, score_threshold)
    wrong_class = sum(1 for true, guess in pairs if true != guess)
    return len(missed) + len(false_pos) + wrong_class


def samples_plot(items, label_map: dict, path, score_threshold: float, limit: int = 12) -> None:
    """Test images with ground truth (dashed green) and predictions (solid, coloured), worst first."""
    plt = _plt()
    ranked = sorted(items, key=lambda it: -image_errors(it["gt"], it["pred"], score_threshold))[:limit]
    cols = min(4, max(1, len(ranked)))
    rows = max(1, -(-len(ranked) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, item in zip(axes.flat, ranked):
        gt, pred = item["gt"], item["pred"]
        ax.imshow(Image.open(io.BytesIO(item["encoded"])).convert("RGB"))
        for box in np.asarray(gt["boxes"]).reshape(-1, 4):
            ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, ec="lime",
                                       lw=2, ls="--"))
        for box, score, cls in zip(np.asarray(pred["boxes"]).reshape(-1, 4), pred["scores"], pred["classes"]):
            if score < score_threshold:
                continue
            colour = PREDICTION_COLOURS[int(cls) % len(PREDICTION_COLOURS)]
            ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, ec=colour, lw=1.5))
            ax.text(box[0], box[1], f"{label_map.get(int(cls), cls)} {score:.2f}", color="white", fontsize=7,
                    va="bottom", bbox={"facecolor": colour, "pad": 1, "lw": 0})
        errors = image_errors(gt, pred, score_threshold)
        ax.set_title(f"{item['filename']}: {errors} error{'s' if errors != 1 else ''}", fontsize=8)
    fig.suptitle(f"Worst test images first: ground truth dashed green, predictions ≥ {score_threshold:g} solid")
    _save(plt, fig, path)


def _save(plt, fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
