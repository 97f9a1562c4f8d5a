"""What the scoring floor (`eval.score_threshold`) does to COCO AP/AR: one run's best checkpoint, scored
at several floors side by side, each as `webdet evaluate` scores it.

    python benchmarks/scoring_floor.py --run runs/kangaroo
    python benchmarks/scoring_floor.py --run demo/runs/synth --floors 0.05,0.01,0.001
"""
import argparse
import copy
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a training run folder")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--floors", default="0.05,0.01,0.001")
    args = parser.parse_args()
    from webdet.training.config import read_run_config
    from webdet.training.detector import CheckpointDetector, find_checkpoint
    from webdet.training.evaluate import score_detector

    saved = read_run_config(args.run)
    prefix = find_checkpoint(args.run, args.checkpoint)
    print(f"{prefix}, test split of {saved['data']['dir']} (the run's own floor: "
          f"{saved['eval']['score_threshold']})")
    print("| floor | AP | AP50 | AR100 | ms per image (median) |")
    print("|---|---|---|---|---|")
    for floor in [float(f) for f in args.floors.split(",")]:
        config = copy.deepcopy(saved)
        config["eval"]["score_threshold"] = floor
        metrics = score_detector(CheckpointDetector(config, prefix), config["data"]["dir"])
        print(f"| {floor:g} | {metrics['AP']:.4f} | {metrics['AP50']:.4f} | {metrics['AR100']:.4f} | "
              f"{metrics['ms_per_image']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
