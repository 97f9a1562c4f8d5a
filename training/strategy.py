"""Pick the tf.distribute strategy: the same training code runs on one CPU, several GPUs or a TPU."""
import os

import tensorflow as tf
from official.common import distribute_utils

from webdet.training.config import STRATEGIES as CHOICES
from webdet.errors import WebdetError


def resolve_name(name: str) -> str:
    """`auto`: a TPU when one is configured, all GPUs when there are several, else one device."""
    if name != "auto":
        return name
    if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
        return "tpu"
    return "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one_device"


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    if name not in CHOICES:
        raise WebdetError(f"--strategy {name}: choose one of {', '.join(CHOICES)}")
    resolved = resolve_name(name)
    gpus = len(tf.config.list_physical_devices("GPU"))
    tpu = os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or ""
    try:
        return distribute_utils.get_distribution_strategy(
            distribution_strategy=resolved, num_gpus=gpus, tpu_address=tpu if resolved == "tpu" else None)
    except (ValueError, RuntimeError) as exc:
        raise WebdetError(f"--strategy {name}: cannot start it here ({exc})") from None
