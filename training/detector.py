"""A detection model as a detector: uint8 image in, detection records (webdet.contract) out.

`ModelDetector` wraps a model that is already built (the one training holds in memory);
`CheckpointDetector` builds the model, reads a checkpoint into it and is then the same detector.
Training's live evaluation, `webdet evaluate` and export all call through here, so a checkpoint and
the model exported from it see images the same way, and a checkpoint scores the same AP wherever
it is evaluated.
"""
from pathlib import Path

import numpy as np
import tensorflow as tf

from webdet.contract import Detection, LabelMap, from_od_api
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


class ModelDetector:
    """A `webdet.contract.Detector` over a built model of one run's config.

    The model is used as it is, weights included, so training can score the weights it is holding
    right now. Its inference function is traced once for any image size. A model built under a
    `tf.distribute` strategy works too: calling it outside `strategy.run` reads the variables'
    primary copies, which inference needs and nothing more.
    """

    def __init__(self, model: tf.keras.Model, config: dict, prefix: str | None = None):
        self.config = config
        self.prefix = prefix
        self.source = prefix or "the model being trained"
        self.label_map = LabelMap.of(config["data"]["labels"])
        self.model = model
        self.detect_fn = make_detect_fn(model, config)

    def detect(self, image: np.ndarray, score_threshold: float = 0.0) -> list[Detection]:
        out = self.detect_fn(tf.convert_to_tensor(image, tf.uint8))
        h, w = image.shape[:2]
        return from_od_api(out["detection_boxes"].numpy(), out["detection_scores"].numpy(),
                           out["detection_classes"].numpy(), self.label_map, w, h, score_threshold)


class CheckpointDetector(ModelDetector):
    """The run's model with the weights of checkpoint `prefix`, as a `ModelDetector`."""

    def __init__(self, config: dict, prefix: str):
        model = build_model(config, len(config["data"]["labels"]))
        tf.train.Checkpoint(model=model).read(prefix).expect_partial()
        super().__init__(model, config, prefix)


def load_checkpoint_detector(run_dir, checkpoint: str = "best") -> CheckpointDetector:
    config = read_run_config(run_dir)
    return CheckpointDetector(config, find_checkpoint(run_dir, checkpoint))
