"""Training throughput: `webdet train`'s loop and input pipeline against a bare gradient step.

Both run in one process on the same model, optimizer and batch size: the bare step feeds one cached
batch to `model(x, training=True)` + the loss + `apply_gradients`, so the ratio shows what the input
pipeline and the loop cost. Prints images/s of each, the ratio, and peak memory.

    python benchmarks/train_throughput.py                       # default 320 model, synthetic data
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="ssd_mobilenet_v2_320.yaml")
    parser.add_argument("--data", help="a prepared data/ folder (default: make a synthetic one)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_dir = Path(args.data) if args.data else synthetic_data(work)
        config = apply_overrides(load_config(args.config), [f"train.batch_size={args.batch_size}",
                                                            "train.init_checkpoint=none"])
        config = resolve_run(config, read_data_dir(data_dir), work / "run", log=lambda *_: None)
        trainer = Trainer(config, work / "run", make_strategy("one_device"))
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
        bare_ips = images / sorted(bare_times)[len(bare_times) // 2]
        webdet_ips = images / sorted(webdet_times)[len(webdet_times) // 2]
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = config["model"]["input_size"]
        print(f"model {config['model']['architecture']} {size}x{size}, batch {args.batch_size}, "
              f"{args.rounds} rounds x {args.steps} steps, data {data_dir}")
        print(f"bare model step:  {bare_ips:7.2f} images/s")
        print(f"webdet train:     {webdet_ips:7.2f} images/s")
        print(f"ratio webdet/bare: {webdet_ips / bare_ips:.3f}")
        print(f"peak memory (RSS): {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
