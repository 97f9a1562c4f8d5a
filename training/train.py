"""`webdet train`: fine-tune (or train from scratch) the detector on a prepared `data/` folder.

Model, inputs and loss are Model Garden's RetinaNet task; this module owns the run: the resolved
config, checkpoints and resume, progress, live evaluation, early stopping and the plots. Live
evaluation is `webdet evaluate`'s own scoring (`score_detector` over a `ModelDetector` of the model in
memory), so the AP recorded for a checkpoint is the AP `webdet evaluate --run` reports for it.
"""
import contextlib
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
from official.modeling.optimization.ema_optimizer import ExponentialMovingAverage
from tqdm import tqdm

from webdet.data_prep.label_map import read_label_map
from webdet.training import experiment, init_checkpoint
from webdet.training.anchor_fit import anchor_fit, describe as describe_anchor_fit
from webdet.training.config import apply_overrides, read_run_config, save_config, validate
from webdet.training.detector import ModelDetector
from webdet.training.evaluate import SCORE_THRESHOLD, score_detector
from webdet.training.history import History, plot_history
from webdet.training.model import build_task
from webdet.training.strategy import make_strategy
from webdet.errors import WebdetError

EXPLODED_LOSS = 1e4
# What a resumed run may change: how long and how it runs, not what it trains.
RESUMABLE = ("train.steps", "train.epochs", "train.patience", "train.log_every_steps", "train.checkpoint_every_minutes",
             "train.strategy")


@dataclass
class DataInfo:
    data_dir: Path
    labels: dict
    train_images: int
    test_images: int


def read_data_dir(data_dir) -> DataInfo:
    """What train needs from `data/`, with one-line errors for a folder prepare did not write."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise WebdetError(f"{data_dir}: no such data folder; run `webdet prepare LABELIMG_DIR --out {data_dir}`")
    label_map = data_dir / "label_map.pbtxt"
    if not label_map.is_file():
        raise WebdetError(f"{label_map}: missing; is {data_dir} a folder written by `webdet prepare`?")
    labels = read_label_map(label_map)
    if not labels:
        raise WebdetError(f"{label_map}: no classes in the label map")
    counts = {}
    for split in ("train", "test"):
        files = sorted(data_dir.glob(f"{split}-*.tfrecord"))
        if not files:
            raise WebdetError(f"{data_dir}: no {split}-*.tfrecord shards; run `webdet prepare` again")
        counts[split] = sum(1 for _ in tf.data.TFRecordDataset([str(f) for f in files]))
    if counts["train"] == 0:
        raise WebdetError(f"{data_dir}: the train split is empty (0 images)")
    return DataInfo(data_dir, labels, counts["train"], counts["test"])


def resolve_run(config: dict, data: DataInfo, run_dir: Path, log, overrides=()) -> dict:
    """A new run saves its resolved config and label map; an existing one must match its data, and
    keeps its config but for the `overrides` a resumed run may take (`resume_config`)."""
    saved_map = run_dir / "label_map.pbtxt"
    if (run_dir / "config.yaml").is_file():
        resolved = read_run_config(run_dir)
        if read_label_map(saved_map) != data.labels:
            raise WebdetError(
                f"{data.data_dir / 'label_map.pbtxt'}: classes {sorted(data.labels.values())} differ from the run's "
                f"{saved_map} ({sorted(read_label_map(saved_map).values())}); use a new --run folder")
        log(f"Resuming run {run_dir} with its saved config.yaml")
        return resume_config(resolved, overrides, run_dir, log)
    config = validate(config)
    batch = int(config["train"]["batch_size"])
    per_epoch = experiment.steps_per_epoch(data.train_images, batch)
    steps = config["train"].get("steps") or per_epoch * int(config["train"]["epochs"])
    config["train"]["steps"] = int(steps)
    config["data"] = {"dir": str(data.data_dir.resolve()), "train_images": data.train_images,
                      "test_images": data.test_images, "steps_per_epoch": per_epoch,
                      "labels": {int(k): v for k, v in data.labels.items()}}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    shutil.copyfile(data.data_dir / "label_map.pbtxt", saved_map)
    return config


def _value(config: dict, key: str):
    node = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def resume_config(saved: dict, overrides, run_dir: Path, log) -> dict:
    """The saved config with what a resumed run may change: how long it trains (train.steps or
    train.epochs), patience, logging and the strategy. Any other change asked for is refused, naming
    the key, instead of being ignored; the config saved with the run is updated."""
    updated = apply_overrides(saved, overrides)
    keys = [item.partition("=")[0] for item in overrides]
    changed = [key for key in dict.fromkeys(keys) if _value(updated, key) != _value(saved, key)]
    refused = [key for key in changed if key not in RESUMABLE]
    if refused:
        key = refused[0]
        raise WebdetError(f"{key}={_value(updated, key)}: a resumed run keeps its saved config, where it is "
                          f"{_value(saved, key)} ({run_dir / 'config.yaml'}); only {', '.join(sorted(RESUMABLE))} "
                          f"can change, so use a new --run folder")
    t = updated["train"]
    if t.get("steps") is None:
        t["steps"] = int(updated["data"]["steps_per_epoch"]) * int(t["epochs"])
    if not changed and t["steps"] == saved["train"]["steps"]:
        return saved
    if t["steps"] != saved["train"]["steps"]:
        log(f"train.steps {saved['train']['steps']} → {t['steps']}: the learning-rate schedule now spans "
            f"{t['steps']} steps")
    save_config(updated, run_dir / "config.yaml")
    return updated


class Trainer:
    """Holds the task, model, optimizer and checkpoints of one run."""

    def __init__(self, config: dict, run_dir: Path, strategy: tf.distribute.Strategy):
        self.config, self.run_dir, self.strategy = config, run_dir, strategy
        data_dir = config["data"]["dir"]
        total = int(config["train"]["steps"])
        self.task = build_task(config, data_dir, len(config["data"]["labels"]), total)
        self.task_config = self.task.task_config
        with strategy.scope():
            self.model = self.task.build_model()
            self.optimizer = self.task.create_optimizer(experiment.schedule(config, total))
            self.ema = isinstance(self.optimizer, ExponentialMovingAverage)
            if self.ema:
                self.optimizer.shadow_copy(self.model)
            self.train_metrics = self.task.build_metrics(training=True)
            self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        self.last = tf.train.CheckpointManager(self.checkpoint, str(run_dir / "checkpoints"), max_to_keep=3)
        self.best = tf.train.CheckpointManager(self.checkpoint, str(run_dir / "checkpoints" / "best"),
                                               max_to_keep=1)
        self._train_fn = None
        self._detector = None

    def train_iterator(self):
        """An iterator over the task's train inputs, built as they are now (with or without the mosaic)."""
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: self.task.build_inputs(self.task_config.train_data, ctx))
        return iter(dataset)

    def mosaic_closes_at(self) -> int | None:
        """The step from which the train pictures are plain photos (`train.augment.close_mosaic_epochs`),
        or None when the mosaic is off or stays on to the end."""
        t = self.config["train"]
        epochs = float((t.get("augment") or {}).get("close_mosaic_epochs") or 0)
        if self.task.mosaic_frequency <= 0 or epochs <= 0:
            return None
        return max(0, int(t["steps"]) - round(epochs * int(self.config["data"]["steps_per_epoch"])))

    def close_mosaic(self, log):
        """Turn the mosaic off and return a new iterator of plain photos: the last epochs learn from
        pictures like the ones the model will see (Ultralytics' close_mosaic)."""
        log(f"Step {self.step}: mosaic off for the last {int(self.config['train']['steps']) - self.step} steps "
            f"(train.augment.close_mosaic_epochs={self.config['train']['augment']['close_mosaic_epochs']})")
        self.task.mosaic_frequency = 0.0
        return self.train_iterator()

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def learning_rate(self) -> float:
        lr = self.optimizer.learning_rate
        return float(lr(self.optimizer.iterations) if callable(lr) else lr)

    def restore_or_initialize(self, init_spec: str, log) -> None:
        if self.last.latest_checkpoint:
            self.checkpoint.restore(self.last.latest_checkpoint).expect_partial()
            self._swap_if_ema()  # the checkpoint holds the average as the model: train on the raw weights again
            log(f"Resumed from {self.last.latest_checkpoint} at step {self.step}")
            return
        prefix = init_checkpoint.resolve(init_spec)
        if prefix:
            counts = init_checkpoint.restore_pretrained(self.model, prefix)
            log(f"Initialised from {prefix}: {counts['restored']}/{counts['total']} variables restored "
                f"(backbone, FPN, box head); the class layer ({counts['fresh']}) starts fresh")
        else:
            log("Training from scratch (no initial checkpoint)")

    def train_steps(self, iterator, count: int) -> dict:
        """Run `count` steps in one traced loop; returns the mean losses over them."""
        if self._train_fn is None:
            def step_fn(inputs):
                self.task.train_step(inputs, self.model, self.optimizer, metrics=self.train_metrics)

            @tf.function
            def loop(iterator, count):
                for _ in tf.range(count):
                    self.strategy.run(step_fn, args=(next(iterator),))

            self._train_fn = loop
        for metric in self.train_metrics:
            metric.reset_state()
        self._train_fn(iterator, tf.constant(count, tf.int32))
        return {m.name: float(m.result()) for m in self.train_metrics}

    def evaluate(self) -> dict:
        """COCO metrics of the current weights on the test split, as `webdet evaluate --run` computes them.

        The same detector (one image at a time, boxes back in original-image pixels) and the same
        pycocotools scoring at the same score threshold, so the AP recorded here for a checkpoint is
        the AP `webdet evaluate` reports for it. Empty when the test split has no images.
        """
        if not self.config["data"].get("test_images"):
            return {}
        if self._detector is None:
            self._detector = ModelDetector(self.model, self.config)
        with self._averaged():
            return score_detector(self._detector, self.config["data"]["dir"], score_threshold=SCORE_THRESHOLD)

    def save(self, manager: tf.train.CheckpointManager | None = None) -> str:
        """Write a checkpoint (to `last`, or to `manager`). With a moving average its model is the averaged
        weights, so evaluate, export and `--init-checkpoint` read them; the raw ones sit in its place."""
        with self._averaged():
            return (manager or self.last).save(checkpoint_number=self.step)

    @contextlib.contextmanager
    def _averaged(self):
        """The model holds the moving average of its weights inside the block (a no-op without one)."""
        self._swap_if_ema()
        try:
            yield
        finally:
            self._swap_if_ema()

    def _swap_if_ema(self) -> None:
        if self.ema:
            with self.strategy.scope():
                self.optimizer.swap_weights()


def train(data_dir, run_dir, config: dict, *, init_checkpoint_spec=None, strategy_name=None,
          log=print, progress=True, overrides=()) -> dict:
    """Train until `train.steps`, evaluating every `train.eval_every_epochs`; resumable.

    `overrides` are the KEY=VALUE changes asked for on this call (CLI flags and --set): a new run
    already has them in `config`; a resumed run applies those it can take and refuses the others.
    Returns the run summary (also written to `summary.json`).
    """
    run_dir = Path(run_dir)
    data = read_data_dir(data_dir)
    config = resolve_run(config, data, run_dir, log, overrides)
    t = config["train"]
    strategy = make_strategy(strategy_name or t.get("strategy", "auto"))
    tf.keras.utils.set_random_seed(int(t["seed"]))
    trainer = Trainer(config, run_dir, strategy)
    trainer.restore_or_initialize(init_checkpoint_spec or t["init_checkpoint"], log)
    if trainer.step == 0:
        check_anchors(data, config, run_dir, log)
    if trainer.step >= int(t["steps"]):
        log(f"Run {run_dir} is already at step {trainer.step} of train.steps {t['steps']}: nothing to train; "
            f"pass --steps N (more than {trainer.step}) to train longer")
    history = History(run_dir)
    summary = _run_loop(trainer, config, history, log, progress)
    summary["plots"] = [str(p) for p in plot_history(history.rows, run_dir / "plots")]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    log(describe(summary))
    return summary


def check_anchors(data: DataInfo, config: dict, run_dir: Path, log) -> dict:
    """Say how well the anchors fit the train boxes before training on them; saved as anchor_fit.json."""
    fit = anchor_fit(data.data_dir, config["model"])
    (run_dir / "anchor_fit.json").write_text(json.dumps(fit, indent=2), encoding="utf-8")
    log(describe_anchor_fit(fit))
    return fit


def _run_loop(trainer: Trainer, config: dict, history: History, log, progress: bool) -> dict:
    t = config["train"]
    total, per_epoch = int(t["steps"]), int(config["data"]["steps_per_epoch"])
    batch = int(t["batch_size"])
    eval_every = max(1, int(t["eval_every_epochs"] * per_epoch))
    log_every = max(1, int(t["log_every_steps"]))
    patience = t.get("patience")
    best = history.best()
    best_ap = best["AP"] if best else -1.0
    stale = _evaluations_since_best(history)
    close_at = trainer.mosaic_closes_at()
    iterator = trainer.close_mosaic(log) if close_at is not None and close_at <= trainer.step < total else \
        trainer.train_iterator()
    start_step, started = trainer.step, time.time()
    save_every_s, last_saved = 60 * float(t.get("checkpoint_every_minutes", 10)), started
    stopped = "completed"
    bar = tqdm(total=total, initial=start_step, unit="step", disable=not progress, dynamic_ncols=True,
               mininterval=1.0)
    try:
        while trainer.step < total:
            step = trainer.step
            count = min(log_every, total - step, eval_every - step % eval_every,
                        close_at - step if close_at is not None and step < close_at else total)
            tick = time.time()
            losses = trainer.train_steps(iterator, count)
            seconds = time.time() - tick
            loss = losses["total_loss"]
            if not math.isfinite(loss) or loss > EXPLODED_LOSS:
                kept = trainer.last.latest_checkpoint or "none yet"
                raise WebdetError(
                    f"training diverged at step {trainer.step}: loss = {loss:.4g}; the last good checkpoint "
                    f"({kept}) is kept. Lower train.learning_rate (now {t['learning_rate']}) and run again")
            row = {"step": trainer.step, "epoch": round(trainer.step / per_epoch, 3),
                   "seconds": round(time.time() - started, 1), "loss": loss, "cls_loss": losses["cls_loss"],
                   "box_loss": losses["box_loss"], "learning_rate": trainer.learning_rate(),
                   "images_per_sec": round(count * batch / max(seconds, 1e-9), 2)}
            bar.update(count)
            if close_at is not None and trainer.step == close_at < total:
                iterator = trainer.close_mosaic(bar.write if progress else log)
            if not progress:
                log(f"step {row['step']}/{total}  loss {loss:.3f} (cls {row['cls_loss']:.3f}, box "
                    f"{row['box_loss']:.4f})  lr {row['learning_rate']:.2g}  {row['images_per_sec']:.1f} img/s")
            bar.set_postfix(loss=f"{loss:.3f}", cls=f"{row['cls_loss']:.3f}", box=f"{row['box_loss']:.4f}",
                            lr=f"{row['learning_rate']:.2g}", img_s=f"{row['images_per_sec']:.1f}")
            if trainer.step % eval_every == 0 or trainer.step >= total:
                trainer.save()
                last_saved = time.time()
                metrics = trainer.evaluate()
                row.update(AP=metrics.get("AP"), AP50=metrics.get("AP50"), AR100=metrics.get("AR100"))
                improved = row["AP"] is not None and row["AP"] > best_ap
                if improved:
                    best_ap, stale = row["AP"], 0
                    trainer.save(trainer.best)
                else:
                    stale += 1
                (bar.write if progress else log)(f"step {trainer.step}: AP {_number(row['AP'])}  AP50 "
                                                 f"{_number(row['AP50'])}  AR100 {_number(row['AR100'])}"
                                                 f"{'  (best)' if improved else ''}")
                history.log(row)
                if patience and stale >= int(patience):
                    bar.write(f"Early stop: no AP improvement in {stale} evaluations (patience {patience})")
                    stopped = "early_stopped"
                    break
            else:
                history.log(row)
                if time.time() - last_saved >= save_every_s:
                    trainer.save()  # so a hard kill loses minutes, not an evaluation interval
                    last_saved = time.time()
    except KeyboardInterrupt:
        bar.close()
        saved = trainer.save()
        log(f"Interrupted at step {trainer.step}; saved {saved}. Run the same command to resume.")
        raise
    finally:
        bar.close()
    return _summary(trainer, history, start_step, time.time() - started, batch, stopped)


def _number(value) -> str:
    """A metric for the progress line; n/a where COCO leaves it undefined (no ground truth)."""
    return "n/a" if value is None else f"{value:.3f}"


def _evaluations_since_best(history: History) -> int:
    evals = history.evaluations()
    if not evals:
        return 0
    best_index = max(range(len(evals)), key=lambda i: evals[i]["AP"])
    return len(evals) - 1 - best_index


def _summary(trainer: Trainer, history: History, start_step: int, seconds: float, batch: int,
             stopped: str) -> dict:
    best = history.best() or {}
    steps = trainer.step - start_step
    return {"run_dir": str(trainer.run_dir), "status": stopped, "steps": trainer.step,
            "steps_this_session": steps, "seconds": round(seconds, 1),
            "images_per_sec": round(steps * batch / seconds, 2) if seconds > 0 and steps else None,
            "best_step": best.get("step"), "best_AP": best.get("AP"), "best_AP50": best.get("AP50"),
            "best_AR100": best.get("AR100"), "best_checkpoint": trainer.best.latest_checkpoint,
            "last_checkpoint": trainer.last.latest_checkpoint}


def describe(summary: dict) -> str:
    """The one-paragraph end-of-run summary."""
    if summary.get("best_AP") is None:
        best = "no evaluation yet"
    else:
        best = (f"best AP {summary['best_AP']:.3f} (AP50 {summary['best_AP50']:.3f}, AR100 "
                f"{summary['best_AR100']:.3f}) at step {summary['best_step']}")
    speed = f", {summary['images_per_sec']} images/s" if summary.get("images_per_sec") else ""
    return (f"Training {summary['status'].replace('_', ' ')} at step {summary['steps']}: {best}; "
            f"{summary['steps_this_session']} steps in {summary['seconds']:.0f} s{speed}. "
            f"Best checkpoint: {summary['best_checkpoint']}. Plots in {Path(summary['run_dir']) / 'plots'}.")
