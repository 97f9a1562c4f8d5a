"""A trained checkpoint as a detector: uint8 image in, OD API-style detections out.

Evaluate and export call this, so a checkpoint and the model exported from it see images the same way.
"""
from pathlib import Path

import numpy as np
import tensorflow as tf

from webdet.training.config import read_run_config
from webdet.training.model import build_model, make_detect_fn
from webdet.errors import WebdetError


def find_checkpoint(run_dir, checkpoint: str = "best") -> str:
    """`best`, `last` or an explicit prefix → a checkpoint prefix of this run."""
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    if checkpoint in ("best", "last"):
        best = tf.train.latest_checkpoint(str(ckpt_dir / "best"))
        last = tf.train.latest_checkpoint(str(ckpt_dir))
        prefix = (best or last) if checkpoint == "best" else last
        if not prefix:
            raise WebdetError(f"{ckpt_dir}: no checkpoint yet; train first (`webdet train --run {run_dir}`)")
        return prefix
    if not Path(checkpoint + ".index").is_file():
        raise WebdetError(f"--checkpoint {checkpoint}: not a checkpoint prefix (no {checkpoint}.index)")
    return checkpoint


class CheckpointDetector:
    """Callable detector over one run's model; `label_map` maps ids (from 1) to names."""

    def __init__(self, config: dict, prefix: str):
        self.config = config
        self.prefix = prefix
        self.label_map = {int(k): v for k, v in config["data"]["labels"].items()}
        self.model = build_model(config, len(self.label_map))
        tf.train.Checkpoint(model=self.model).read(prefix).expect_partial()
        self.detect_fn = make_detect_fn(self.model, int(config["model"]["input_size"]))

    def __call__(self, image: np.ndarray) -> dict:
        out = self.detect_fn(tf.convert_to_tensor(image, tf.uint8))
        return {"boxes": out["detection_boxes"].numpy(), "scores": out["detection_scores"].numpy(),
                "classes": out["detection_classes"].numpy().astype(np.int64)}


def load_checkpoint_detector(run_dir, checkpoint: str = "best") -> CheckpointDetector:
    config = read_run_config(run_dir)
    return CheckpointDetector(config, find_checkpoint(run_dir, checkpoint))
