"""Training throughput: `webdet train`'s loop and input pipeline against a bare gradient step.

Both run in one process on the same model, optimizer and batch size: the bare step feeds one cached
batch to `model(x, training=True)` + the loss + `apply_gradients`, so the ratio shows what the input
pipeline and the loop cost. Prints images/s of each, the ratio, and peak memory.

    python benchmarks/train_throughput.py                       # 320 model: synthetic data and kangaroo
    python benchmarks/train_throughput.py --data data/ --config tiny --steps 40
"""
import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402

from webdet.training.config import apply_overrides, load_config  # noqa: E402
from webdet.training.strategy import make_strategy  # noqa: E402
from webdet.training.train import Trainer, read_data_dir, resolve_run  # noqa: E402

KANGAROO = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "kangaroo"


def synthetic_data(work: Path) -> Path:
    from webdet.data_prep.prepare import prepare
    from webdet.data_prep.synth import make_dataset

    make_dataset(work / "synth", images=120, seed=1)
    prepare([work / "synth"], work / "data", seed=0)
    return work / "data"


def time_webdet(trainer: Trainer, iterator, steps: int) -> float:
    start = time.perf_counter()
    trainer.train_steps(iterator, steps)
    return time.perf_counter() - start


def make_bare_step(trainer: Trainer, batch):
    task, model, optimizer = trainer.task, trainer.model, trainer.optimizer
    images, labels = batch

    @tf.function
    def bare(count):
        for _ in tf.range(count):
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                loss = task.build_losses(outputs=outputs, labels=labels, aux_losses=model.losses)[0]
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))

    def run(steps: int) -> float:
        start = time.perf_counter()
        bare(tf.constant(steps))
        return time.perf_counter() - start

    return run


def kangaroo_data(work: Path) -> Path | None:
    """The shared kangaroo set (real JPEGs) prepared into work/kangaroo-data; None when ../shared is absent."""
    from webdet.data_prep.prepare import prepare

    source = KANGAROO
    if not source.is_dir():
        return None
    prepare([source], work / "kangaroo-data", seed=0)
    return work / "kangaroo-data"


def measure(data_dir: Path, work: Path, args) -> dict:
    """images/s of webdet's loop and of the bare step on one dataset, in this process."""
    config = apply_overrides(load_config(args.config), [f"train.batch_size={args.batch_size}",
                                                        "train.init_checkpoint=none"])
    config = resolve_run(config, read_data_dir(data_dir), work / f"run-{data_dir.name}", log=lambda *_: None)
    trainer = Trainer(config, work / f"run-{data_dir.name}", make_strategy("one_device"))
    dataset = trainer.task.build_inputs(trainer.task_config.train_data)
    iterator = iter(trainer.strategy.experimental_distribute_dataset(dataset))
    bare = make_bare_step(trainer, next(iter(dataset)))
    time_webdet(trainer, iterator, 2)  # trace and warm up both
    bare(2)
    webdet_times, bare_times = [], []
    for _ in range(args.rounds):
        bare_times.append(bare(args.steps))
        webdet_times.append(time_webdet(trainer, iterator, args.steps))
    images = args.steps * args.batch_size
    return {"bare": images / sorted(bare_times)[len(bare_times) // 2],
            "webdet": images / sorted(webdet_times)[len(webdet_times) // 2], "size": config["model"]["input_size"],
            "architecture": config["model"]["architecture"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="ssd_mobilenet_v2_320.yaml")
    parser.add_argument("--data", help="a prepared data/ folder (default: synthetic data and the kangaroo set)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.data:
            datasets = {Path(args.data).name: Path(args.data)}
        else:
            datasets = {"synthetic": synthetic_data(work), "kangaroo (real JPEGs)": kangaroo_data(work)}
        rows = {name: measure(path, work, args) for name, path in datasets.items() if path is not None}
        first = next(iter(rows.values()))
        print(f"model {first['architecture']} {first['size']}x{first['size']}, batch {args.batch_size}, "
              f"{args.rounds} rounds x {args.steps} steps, median round")
        print(f"{'data':24} {'bare step':>10} {'webdet train':>13} {'ratio':>6}   (images/s)")
        for name, row in rows.items():
            print(f"{name:24} {row['bare']:10.2f} {row['webdet']:13.2f} {row['webdet'] / row['bare']:6.3f}")
        for name in set(datasets) - set(rows):
            print(f"{name:24} skipped: {KANGAROO} is not present")
        print(f"peak memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
