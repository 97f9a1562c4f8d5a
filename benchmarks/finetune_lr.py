"""Fine-tuning learning rates, checked by transfer: pretrain the 320 model from scratch on one dataset,
then fine-tune that checkpoint on a different one (class layer reset, as with COCO weights) at several
peak learning rates, side by side with the same budget from scratch. Prints AP against steps for each,
so the default `train.learning_rate` of the pretrained recipe (configs/ssd_mobilenet_v2_320.yaml) is
chosen by measurement.

Source: webdet's synthetic shapes (3 classes, made here). Target: the shared kangaroo set (1 class);
skips when ../shared is absent. `--model tiny` runs the same recipe (SGD with momentum, batch 8, cosine
decay) on the tiny network at 128 px, a proxy for slow machines. The warm-up is, unless `--warmup` says
otherwise, the share the default had before this experiment (200 of 960 steps); it is now 0.

    python benchmarks/finetune_lr.py --work /tmp/finetune                  # the 320 model
    python benchmarks/finetune_lr.py --model tiny --pretrain-steps 1200 --steps 320
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
KANGAROO = REPO.parent / "shared" / "datasets" / "kangaroo"


def prepared(work: Path, name: str, make_source) -> Path:
    """A prepared data folder, made once and reused by later runs of this script."""
    from webdet.data_prep.prepare import prepare
    data = work / name
    if not (data / "label_map.pbtxt").is_file():
        prepare([make_source()], data)
    return data


def run(data: Path, run_dir: Path, config_name: str, settings: list[str]) -> list[dict]:
    """Train (or resume a finished run) and return its evaluations: step, AP, AP50, AR100."""
    from webdet.training.config import apply_overrides, load_config
    from webdet.training.history import read_history
    from webdet.training.train import train
    config = apply_overrides(load_config(config_name), settings)
    started = time.time()
    summary = train(data, run_dir, config, progress=False, log=lambda line: None)
    rows = [r for r in read_history(run_dir / "history.csv") if r.get("AP") is not None]
    print(f"  {run_dir.name}: best AP {summary['best_AP']:.3f} at step {summary['best_step']} "
          f"({time.time() - started:.0f} s this call)", flush=True)
    return [{k: r[k] for k in ("step", "AP", "AP50", "AR100")} for r in rows]


# Per network: the from-scratch recipe the source is pretrained with, and the config fine-tuned from it.
# The fine-tuning recipe is the 320 default's: tiny.yaml inherits its weight decay and clipping, and only
# its optimizer (AdamW, for training from scratch) differs.
FINE_TUNE = ["train.optimizer=sgd"]
MODELS = {"320": {"scratch": "ssd_mobilenet_v2_320_scratch.yaml", "fine_tune": "ssd_mobilenet_v2_320.yaml"},
          "tiny": {"scratch": "tiny.yaml", "fine_tune": "tiny.yaml"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/webdet-finetune")
    parser.add_argument("--model", choices=sorted(MODELS), default="320")
    parser.add_argument("--rates", default="0.01,0.02,0.04,0.08", help="peak learning rates to fine-tune at")
    parser.add_argument("--steps", type=int, default=240, help="fine-tuning steps on the target")
    parser.add_argument("--eval-every-epochs", type=float, default=5.0)
    parser.add_argument("--pretrain-steps", type=int, default=400, help="from-scratch steps on the source")
    parser.add_argument("--source-images", type=int, default=480)
    parser.add_argument("--warmup", type=int, help="fine-tuning warm-up steps (default: 200/960 of --steps)")
    parser.add_argument("--seed", type=int, default=0, help="fine-tuning seed (class layer init, data order)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="another config change for the fine-tuning runs, e.g. train.augment.random_crop=true")
    args = parser.parse_args()
    if not KANGAROO.is_dir():
        print(f"skipped: {KANGAROO} is not present")
        return 0
    from webdet.data_prep.synth import make_dataset

    work, model = Path(args.work), MODELS[args.model]
    source = prepared(work, "source-data", lambda: make_dataset(work / "source-voc", args.source_images, seed=7))
    target = prepared(work, "target-data", lambda: KANGAROO)
    # The earlier default warmed up for 200 of about 960 steps (60 epochs); the baselines keep that share.
    share = max(1, round(args.steps * 200 / 960))
    warmup = share if args.warmup is None else args.warmup
    variant = ("" if warmup == share else f"-warmup{warmup}") + ("" if args.seed == 0 else f"-seed{args.seed}")
    variant += "".join(f"-{item.rpartition('.')[2].replace('=', '')}" for item in args.set)
    budget = [f"train.steps={args.steps}", f"train.eval_every_epochs={args.eval_every_epochs}"]

    print(f"{args.model} model; pretraining on {args.source_images} synthetic images, {args.pretrain_steps} steps "
          "(the from-scratch recipe)")
    pretrain_dir = work / f"pretrain-{args.model}-{args.pretrain_steps}"
    source_curve = run(source, pretrain_dir, model["scratch"],
                       [f"train.steps={args.pretrain_steps}", "train.eval_every_epochs=100"])
    checkpoint = str(pretrain_dir / "checkpoints" / "best")

    curves = {}
    for rate in [float(r) for r in args.rates.split(",")]:
        print(f"fine-tuning on kangaroo from the synthetic checkpoint at learning rate {rate:g}, warm-up {warmup}")
        curves[" ".join([f"pretrained, lr {rate:g}, warm-up {warmup}, seed {args.seed}", *args.set])] = run(
            target, work / f"finetune-{args.model}-lr{rate:g}-{args.steps}{variant}", model["fine_tune"],
            [*FINE_TUNE, *budget, f"train.warmup_steps={warmup}", f"train.learning_rate={rate}",
             f"train.init_checkpoint={checkpoint}", f"train.seed={args.seed}", *args.set])
    # Baselines: the same budget with no pretraining, at the default's warm-up share.
    print("the same budget from scratch, the fine-tuning recipe at lr 0.04")
    curves["scratch, lr 0.04"] = run(target, work / f"scratch-sgd-{args.model}-{args.steps}", model["fine_tune"],
                                     [*FINE_TUNE, *budget, f"train.warmup_steps={share}", "train.learning_rate=0.04",
                                      "train.init_checkpoint=none"])
    print("the same budget from scratch, the from-scratch recipe")
    curves["scratch, from-scratch recipe"] = run(target, work / f"scratch-recipe-{args.model}-{args.steps}",
                                                 model["scratch"], [*budget, f"train.warmup_steps={share}",
                                                                    "train.init_checkpoint=none"])

    steps = sorted({row["step"] for curve in curves.values() for row in curve})
    print(f"\nsource AP after pretraining: {source_curve[-1]['AP']:.3f}")
    print(f"kangaroo test AP by step ({args.model} model, batch 8, cosine decay to step {args.steps}):")
    print("| run | " + " | ".join(f"step {int(s)}" for s in steps) + " | best AP50 | best AR100 |")
    print("|---|" + "---|" * (len(steps) + 2))
    for name, curve in curves.items():
        by_step = {row["step"]: row for row in curve}
        cells = [f"{by_step[s]['AP']:.3f}" if s in by_step else "–" for s in steps]
        best = max(curve, key=lambda r: r["AP"])
        print(f"| {name} | " + " | ".join(cells) + f" | {best['AP50']:.3f} | {best['AR100']:.3f} |")
    results = {"source": source_curve, "warmup": warmup, "curves": curves}
    (work / f"finetune_lr-{args.model}{variant}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
