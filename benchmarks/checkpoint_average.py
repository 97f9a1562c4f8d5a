"""What averaging a run's last checkpoints does to COCO AP/AR: each checkpoint and the mean of their weights
(every float variable, batch-norm statistics included), scored side by side on the run's test split as
`webdet evaluate` scores them. This is the checkpoint-averaging cousin of an EMA of the weights: no training
time, only the checkpoints a run already keeps (the three newest, by default).

    python benchmarks/checkpoint_average.py --run runs/kangaroo
    python benchmarks/checkpoint_average.py --run runs/kangaroo --steps 2240,2300 --merge-boxes off,on
"""
import argparse
import copy
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval_postprocessing import switches  # noqa: E402  (the same --merge-boxes parsing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="a training run folder")
    parser.add_argument("--steps", type=steps_list, default=None,
                        help="checkpoint steps to average, e.g. 2080,2240,2300 (default: the run's three newest)")
    parser.add_argument("--merge-boxes", type=switches, default=None, help="off, on or off,on (default: the run's own)")
    args = parser.parse_args()
    import tensorflow as tf

    from webdet.training.config import read_run_config
    from webdet.training.detector import ModelDetector
    from webdet.training.model import build_model

    config = read_run_config(args.run)
    prefixes = checkpoint_prefixes(args.run, args.steps)
    merges = args.merge_boxes or [bool(config["eval"].get("merge_boxes"))]
    print(f"{args.run}, test split of {config['data']['dir']}")
    print("| weights | merge | AP | AP50 | AP75 | AR100 |")
    print("|---|---|---|---|---|---|")
    for merge in merges:
        # The model's detection head is built for one merge setting, so each setting gets its own model.
        scored = copy.deepcopy(config)
        scored["eval"]["merge_boxes"] = merge
        model = build_model(scored, len(config["data"]["labels"]))
        weights = []
        for prefix in prefixes:
            tf.train.Checkpoint(model=model).read(prefix).expect_partial()
            weights.append([v.numpy() for v in model.variables])
        detector = ModelDetector(model, scored)
        for prefix, single in zip(prefixes, weights):
            row(Path(prefix).name, merge, score(model, detector, [single], config))
        for first in range(len(weights) - 1):
            names = "+".join(Path(p).name.removeprefix("ckpt-") for p in prefixes[first:])
            row(f"mean of {names}", merge, score(model, detector, weights[first:], config))
    return 0


def steps_list(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give checkpoint steps as integers, e.g. 2240,2300") from None


def checkpoint_prefixes(run: Path, steps: list[int] | None) -> list[str]:
    """The prefixes of the asked steps, or of the run's three newest checkpoints, oldest first."""
    folder = run / "checkpoints"
    if steps:
        prefixes = [str(folder / f"ckpt-{s}") for s in steps]
    else:
        found = sorted(folder.glob("ckpt-*.index"), key=lambda p: int(p.stem.removeprefix("ckpt-")))
        prefixes = [str(p.with_suffix("")) for p in found[-3:]]
    missing = [p for p in prefixes if not Path(p + ".index").is_file()]
    if missing or len(prefixes) < 2:
        raise SystemExit(f"{folder}: need two or more checkpoints to average; "
                         f"missing {', '.join(missing) or 'checkpoints'}")
    return prefixes


def score(model, detector, weights: list, config: dict) -> dict:
    """The test-split metrics of `model` holding the mean of `weights` (integer variables from the last)."""
    from webdet.training.evaluate import score_detector

    for variable, *values in zip(model.variables, *weights):
        variable.assign(sum(values) / len(values) if variable.dtype.is_floating else values[-1])
    return score_detector(detector, config["data"]["dir"])


def row(name: str, merge: bool, m: dict) -> None:
    cells = " | ".join("–" if m[k] is None else f"{m[k]:.3f}" for k in ("AP", "AP50", "AP75", "AR100"))
    print(f"| {name} | {'on' if merge else 'off'} | {cells} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
