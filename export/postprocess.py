"""The web contract's pre- and post-processing in NumPy (docs/metadata.md), the reference the web app's
JavaScript is held to: both are tested against tests/fixtures/postprocess_cases.json."""

import numpy as np

from webdet.contract import box_iou


def fit_transform(metadata: dict, width: int, height: int) -> tuple[float, float, int, int]:
    """(scale_y, scale_x, input_h, input_w) from frame pixels to model-input pixels.

    Letterbox resizes to round(H*s) x round(W*s), s = min(in_h/H, in_w/W), computed as the SavedModel's
    Model Garden preprocessing computes it (float32, ties to even: 680x1024 → 212x320), so each axis keeps
    its own exact scale (resized size / frame size).
    """
    _, in_h, in_w, _ = metadata["input"]["shape"]
    if metadata["input"].get("fit") == "stretch":
        return in_h / height, in_w / width, in_h, in_w
    scale = min(np.float32(in_h) / np.float32(height), np.float32(in_w) / np.float32(width))
    new_h = min(in_h, int(np.round(np.float32(height) * scale)))
    new_w = min(in_w, int(np.round(np.float32(width) * scale)))
    return new_h / height, new_w / width, in_h, in_w


def nms(candidates: list[tuple], iou_threshold: float, limit: int) -> list[tuple]:
    """Greedy NMS over (score, anchor, box), highest score first, ties by lower anchor index."""
    kept = []
    for cand in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if len(kept) >= limit:
            break
        if all(box_iou(k[2], cand[2]) <= iou_threshold for k in kept):
            kept.append(cand)
    return kept


def merge(box: list, boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list:
    """Merge-NMS: `box` moved to the IoU x score weighted mean of the `boxes` (with their `scores`) that
    overlap it by more than `iou_threshold`, itself among them."""
    weights = np.array([box_iou(box, b) for b in boxes.tolist()])
    weights = np.where(weights > iou_threshold, weights * scores, 0.0)
    if weights.sum() <= 0:
        return box
    return (weights @ boxes / weights.sum()).tolist()


def postprocess(boxes, scores, metadata: dict, frame_width: int, frame_height: int, score_threshold=None) -> list[dict]:
    """boxes [N, 4] (input fractions, yxyx), scores [N, K] → detections in frame pixels, best first."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(len(boxes), -1)
    min_score = metadata.get("min_score", 0.0)
    threshold = max(metadata["score_threshold"] if score_threshold is None else score_threshold, min_score)
    limit = int(metadata["max_detections"])
    sy, sx, in_h, in_w = fit_transform(metadata, frame_width, frame_height)
    # Clipped to the image inside the letterbox before NMS, as the SavedModel's decoder does.
    limits = np.array([frame_height * sy / in_h, frame_width * sx / in_w] * 2)
    boxes = np.clip(boxes, 0.0, limits)
    found = []
    for column, label in enumerate(metadata["labels"]):
        anchors = np.flatnonzero(scores[:, column] >= threshold)
        candidates = [(float(scores[a, column]), int(a), boxes[a].tolist()) for a in anchors]
        kept = nms(candidates, metadata["iou_threshold"], limit)
        if metadata.get("merge_boxes"):
            # Every box of this class at or above min_score votes, also those the threshold hides.
            voters = np.flatnonzero(scores[:, column] >= min_score)
            kept = [(s, a, merge(b, boxes[voters], scores[voters, column], metadata["iou_threshold"]))
                    for s, a, b in kept]
        found += [(s, a, b, column) for s, a, b in kept]
    found = sorted(found, key=lambda d: (-d[0], d[1]))[:limit]
    result = []
    for score, _, (y0, x0, y1, x1), column in found:
        box = [x0 * in_w / sx, y0 * in_h / sy, x1 * in_w / sx, y1 * in_h / sy]
        box = [min(max(v, 0.0), float(frame_width if i % 2 == 0 else frame_height)) for i, v in enumerate(box)]
        label = metadata["labels"][column]
        result.append({"box": box, "score": score, "label_id": int(label["id"]), "label": label["name"]})
    return result
