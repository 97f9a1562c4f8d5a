"""What the post-processing settings do to COCO AP/AR: one run's checkpoint scored, side by side, at several
scoring floors (`eval.score_threshold`), NMS IoU thresholds (`eval.iou_threshold`) and with merge-NMS off and on
(`eval.merge_boxes`), each as `webdet evaluate` scores it. Both settings are also the exported models' (`min_score`, `iou_threshold` in
metadata.json), so the web app and the API return what is scored here.

    python benchmarks/eval_postprocessing.py --run runs/kangaroo
    python benchmarks/eval_postprocessing.py --run demo/runs/synth --floors 0.05,0.01,0.001 --nms-ious 0.5
    python benchmarks/eval_postprocessing.py --run runs/kangaroo --floors 0.01 --nms-ious 0.5,0.6,0.7
    python benchmarks/eval_postprocessing.py --run runs/kangaroo --floors 0.01,0.001 --soft-nms-sigmas 0.3,0.5,1
    python benchmarks/eval_postprocessing.py --run runs/kangaroo --floors 0.01 --recall-by-iou
    python benchmarks/eval_postprocessing.py --run runs/kangaroo --floors 0.01 --merge-boxes off,on
    python benchmarks/eval_postprocessing.py --run runs/kangaroo --floors 0.01 --errors

Soft-NMS (`--soft-nms-sigmas`, Bodla et al. 2017) is measured here only: Model Garden's Gaussian Soft-NMS
decays the scores of overlapping boxes instead of removing them. webdet does not offer it (see
docs/from_scratch.md for why).
"""
import argparse
import copy
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def numbers(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a training run folder")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--floors", type=numbers, default=numbers("0.05,0.01,0.001"))
    parser.add_argument("--nms-ious", type=numbers, default=None, help="default: the run's own")
    parser.add_argument("--merge-boxes", type=switches, default=None, help="off, on or off,on (default: the run's own)")
    parser.add_argument("--soft-nms-sigmas", type=numbers, default=[], help="also score Gaussian Soft-NMS")
    parser.add_argument("--recall-by-iou", action="store_true",
                        help="also print COCO recall (100 boxes per image) at each IoU threshold 0.5:0.95")
    parser.add_argument("--errors", action="store_true",
                        help="also print what the best-scoring detections are at IoU 0.5: right, or which wrong")
    args = parser.parse_args()
    from webdet.training.config import read_run_config
    from webdet.training.detector import CheckpointDetector, find_checkpoint
    from webdet.training.evaluate import SCORE_THRESHOLD, _score, score_detector

    saved = read_run_config(args.run)
    prefix = find_checkpoint(args.run, args.checkpoint)
    own_merge = bool(saved["eval"].get("merge_boxes"))
    print(f"{prefix}, test split of {saved['data']['dir']} (the run's own floor "
          f"{saved['eval']['score_threshold']}, NMS IoU {saved['eval']['iou_threshold']}, "
          f"merge-NMS {'on' if own_merge else 'off'})")
    print("| floor | NMS IoU | merge | AP | AP50 | AP75 | AR100 | detections per image | ms per image (median) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for floor in args.floors:
        for iou in args.nms_ious or [saved["eval"]["iou_threshold"]]:
            for merge in args.merge_boxes or [own_merge]:
                config = copy.deepcopy(saved)
                config["eval"].update(score_threshold=floor, iou_threshold=iou, merge_boxes=merge)
                # One pass over the test split gives both the metrics and, when asked, the recall per IoU.
                m, evaluator, items = _score(CheckpointDetector(config, prefix), Path(config["data"]["dir"]), None,
                                             SCORE_THRESHOLD)[:3]
                if args.recall_by_iou:
                    print_recall_by_iou(evaluator)
                if args.errors:
                    print_error_kinds(items)
                row(floor, f"{iou:g} | {'on' if merge else 'off'}", m)
        for sigma in args.soft_nms_sigmas:
            config = copy.deepcopy(saved)
            config["eval"].update(score_threshold=floor, merge_boxes=False)
            m = score_detector(soft_nms(CheckpointDetector(config, prefix), sigma), config["data"]["dir"])
            row(floor, f"Soft-NMS sigma {sigma:g} | off", m)
    return 0


def switches(text: str) -> list[bool]:
    values = {"off": False, "on": True}
    if not all(v in values for v in text.split(",")):
        raise argparse.ArgumentTypeError(f"{text}: expected off, on or off,on")
    return [values[v] for v in text.split(",")]


def row(floor: float, nms: str, m: dict) -> None:
    print(f"| {floor:g} | {nms} | {m['AP']:.4f} | {m['AP50']:.4f} | {m['AP75']:.4f} | {m['AR100']:.4f} | "
          f"{m['detections'] / m['images']:.1f} | {m['ms_per_image']} |", flush=True)


def print_recall_by_iou(evaluator) -> None:
    """Where AR is lost: COCO's recall at 100 boxes per image, all sizes, mean over classes, per IoU threshold."""
    import numpy as np

    recall = evaluator.eval["recall"][:, :, 0, -1]
    by_iou = [float(np.mean(r[r >= 0])) if (r >= 0).any() else float("nan") for r in recall]
    print("recall at IoU " + ", ".join(f"{t:.2f}: {v:.2f}" for t, v in zip(evaluator.params.iouThrs, by_iou)),
          flush=True)


ERROR_KINDS = ("right", "duplicate", "wrong class", "part", "group", "offset", "background")


def print_error_kinds(items) -> None:
    """Where AP50 is lost: the best-scoring detections over the whole split (as many as half, once and twice
    the ground-truth boxes), each counted as right (IoU >= 0.5 with a same-class box not yet taken, greedily
    by score as COCO matches) or as one kind of wrong: a duplicate of a taken box, the wrong class, part of an
    object (80 % of the box inside it), a group (half of each of two or more objects inside the box), offset
    (IoU 0.1-0.5 otherwise) or background (IoU < 0.1 with every object)."""
    import numpy as np

    ranked, objects = [], 0
    for item in items:
        gt_boxes, gt_classes = np.asarray(item["gt"]["boxes"], float).reshape(-1, 4), item["gt"]["classes"]
        objects += len(gt_boxes)
        pred, taken = item["pred"], np.zeros(len(gt_boxes), bool)
        for j in np.argsort(-np.asarray(pred["scores"]), kind="stable"):
            box = np.asarray(pred["boxes"][j], float)
            kind = error_kind(box, int(pred["classes"][j]), gt_boxes, gt_classes, taken)
            ranked.append((float(pred["scores"][j]), kind))
    ranked.sort(key=lambda r: -r[0])
    for n in sorted({max(1, objects // 2), objects, 2 * objects}):
        top = ranked[:n]
        counts = ", ".join(f"{k} {sum(1 for _, x in top if x == k)}" for k in ERROR_KINDS)
        print(f"best {len(top)} detections (score >= {top[-1][0]:.2f}; {objects} objects): {counts}", flush=True)


def error_kind(box, label: int, gt_boxes, gt_classes, taken) -> str:
    """One detection's kind (print_error_kinds); marks the object it takes in `taken`."""
    import numpy as np
    from webdet.training.eval_plots import iou_matrix

    iou = iou_matrix(box[np.newaxis], gt_boxes)[0]
    lo, hi = np.maximum(box[:2], gt_boxes[:, :2]), np.minimum(box[2:], gt_boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    box_area, gt_area = np.prod(box[2:] - box[:2]), np.prod(gt_boxes[:, 2:] - gt_boxes[:, :2], axis=1)
    same = np.asarray(gt_classes) == label
    free = np.where(same & ~taken, iou, -1.0)
    if free.size and free.max() >= 0.5:
        taken[free.argmax()] = True
        return "right"
    if (iou[same] >= 0.5).any():
        return "duplicate"
    if (iou >= 0.5).any():
        return "wrong class"
    if not iou.size or iou.max() < 0.1:
        return "background"
    if (inter / gt_area > 0.5).sum() >= 2:
        return "group"
    return "part" if inter[iou.argmax()] / box_area > 0.8 else "offset"


def soft_nms(detector, sigma: float):
    """The detector with Model Garden's Gaussian Soft-NMS in place of greedy NMS: no box is removed for
    overlap, its score decays by exp(-IoU^2 / (2 sigma)) against each better box (TF's kernel), and the
    floor still applies to the decayed score."""
    from official.vision.modeling.layers import detection_generator
    from webdet.training.model import make_detect_fn

    settings = dict(detector.model.detection_generator.get_config(), nms_version="v1", soft_nms_sigma=sigma,
                    nms_iou_threshold=1.0)
    detector.model._detection_generator = detection_generator.MultilevelDetectionGenerator.from_config(settings)
    detector.detect_fn = make_detect_fn(detector.model, detector.config)
    return detector


if __name__ == "__main__":
    sys.exit(main())
