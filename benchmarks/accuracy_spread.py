"""How far one accuracy figure can be trusted: several runs of one recipe (different seeds) scored side by
side, each with a bootstrap standard error over the test photos, then their mean and spread.

Two sources of doubt are told apart. The standard error of one run is the test split's: resampling its photos
with replacement and scoring again shows how much AP moves with which photos happen to be in a split this size.
COCO's AP is not a mean over photos, so resampled figures may sit off the full split's; the last lines
print by how much, beside the standard errors.
The spread between runs is the training's: the same recipe, another seed. Each run's checkpoint is scored
once, as `webdet evaluate` scores it; the resamples re-score those detections with pycocotools.

    python benchmarks/accuracy_spread.py --runs /tmp/k0/run-a /tmp/k1/run-a /tmp/k2/run-a
    python benchmarks/accuracy_spread.py --runs R1 R2 --targets AP=0.25,AP50=0.65,AR100=0.52 --resamples 1000
    python benchmarks/accuracy_spread.py --runs R1 R2 --merge-boxes on   # runs trained before merge-NMS, with it
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
METRICS = ("AP", "AP50", "AR100")


def targets(text: str) -> dict:
    """AP=0.25,AP50=0.65 → {"AP": 0.25, "AP50": 0.65}; only the figures this script reports."""
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    if any(len(pair) != 2 or pair[0] not in METRICS for pair in pairs):
        raise argparse.ArgumentTypeError(f"{text}: expected NAME=VALUE pairs with NAME one of {', '.join(METRICS)}")
    return {name: float(value) for name, value in pairs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="training run folders of one recipe")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--resamples", type=int, default=500, help="bootstrap resamples of the test photos")
    parser.add_argument("--targets", type=targets, default={}, help="e.g. AP=0.25,AP50=0.65,AR100=0.52")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    parser.add_argument("--merge-boxes", choices=("on", "off"), default=None,
                        help="score with merge-NMS on or off (eval.merge_boxes; default: each run's own)")
    args = parser.parse_args()
    from webdet.training.config import read_run_config
    from webdet.training.detector import CheckpointDetector, find_checkpoint
    from webdet.training.evaluate import SCORE_THRESHOLD, _score

    scored = []
    for run in args.runs:
        config = read_run_config(run)
        if args.merge_boxes:
            config["eval"]["merge_boxes"] = args.merge_boxes == "on"
        prefix = find_checkpoint(run, args.checkpoint)
        metrics, _, items, labels = _score(CheckpointDetector(config, prefix), Path(config["data"]["dir"]), None,
                                           SCORE_THRESHOLD)
        scored.append({"run": run, "seed": config["train"]["seed"], "prefix": prefix, "metrics": metrics,
                       "items": items, "labels": labels})
    sizes = {len(s["items"]) for s in scored}
    if len(sizes) != 1:
        print(f"the runs were scored on test splits of different sizes {sorted(sizes)}: not one recipe's data")
        return 2
    photos = sizes.pop()
    draws = np.random.default_rng(args.seed).integers(0, photos, size=(args.resamples, photos))
    boot = np.array([[resampled(s["items"], s["labels"], draw) for s in scored] for draw in draws])
    print(f"{len(scored)} runs, {photos} test photos; ± is the standard error over "
          f"{args.resamples} bootstrap resamples of the test photos")
    print("| run | seed | step | " + " | ".join(METRICS) + (" | meets targets |" if args.targets else " |"))
    print("|---|---|---|" + "---|" * (len(METRICS) + bool(args.targets)))
    for index, s in enumerate(scored):
        cells = [cell(s["metrics"][m], boot[:, index, k]) for k, m in enumerate(METRICS)]
        meets = [meets_all(s["metrics"], args.targets)] if args.targets else []
        print(f"| {s['run']} | {s['seed']} | {s['prefix'].rsplit('-', 1)[-1]} | " + " | ".join(cells + meets) + " |")
    point = np.array([[s["metrics"][m] for m in METRICS] for s in scored])
    mean_cells = [cell(point[:, k].mean(), boot[:, :, k].mean(axis=1)) for k in range(len(METRICS))]
    print("| mean of runs | | | " + " | ".join(mean_cells)
          + (" | |" if args.targets else " |"))
    spread = [f"{point[:, k].std(ddof=1):.3f}" if len(scored) > 1 else "n/a" for k in range(len(METRICS))]
    print("| spread between runs (std) | | | " + " | ".join(spread) + (" | |" if args.targets else " |"))
    lift = np.nanmean(boot, axis=0) - point
    print("resampled minus full-split figures, mean over runs: " + ", ".join(
        f"{m} {lift[:, k].mean():+.3f}" for k, m in enumerate(METRICS)))
    if args.targets:
        met = sum(meets_all(s["metrics"], args.targets) == "yes" for s in scored)
        print(f"{met} of {len(scored)} runs meet every target ({', '.join(f'{k} >= {v:g}' for k, v in args.targets.items())})")
    return 0


def resampled(items, labels, draw) -> list[float]:
    """AP, AP50 and AR100 of the detections on one resample of the test photos (a photo drawn twice counts
    twice, under a new image id)."""
    from webdet.training.coco_metrics import run_cocoeval, summary_stats

    gts, preds = [], []
    for new_id, index in enumerate(draw, start=1):
        gts.append({**items[index]["gt"], "image_id": new_id})
        preds.append({**items[index]["pred"], "image_id": new_id})
    stats = summary_stats(run_cocoeval(gts, preds, labels))
    return [stats[m] if stats[m] is not None else np.nan for m in METRICS]


def cell(value: float, samples) -> str:
    return f"{value:.3f} ± {np.nanstd(samples, ddof=1):.3f}"


def meets_all(metrics: dict, wanted: dict) -> str:
    return "yes" if all(metrics[name] >= value for name, value in wanted.items()) else "no"


if __name__ == "__main__":
    from webdet.errors import WebdetError

    try:
        sys.exit(main())
    except WebdetError as error:
        sys.exit(f"error: {error}")
