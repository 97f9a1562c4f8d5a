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
                m, evaluator = _score(CheckpointDetector(config, prefix), Path(config["data"]["dir"]), None,
                                      SCORE_THRESHOLD)[:2]
                if args.recall_by_iou:
                    print_recall_by_iou(evaluator)
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
