"""One resolved experiment config: YAML files in `configs/`, `base:` inheritance and `--set` overrides.

The resolved config is saved in the run directory (`config.yaml`) so evaluate and export read the
decisions train made instead of re-deriving them.
"""
import copy
import math
from pathlib import Path

import yaml

from webdet.errors import WebdetError
from webdet.resources import config_dir

CONFIG_DIR = config_dir()
DEFAULT_CONFIG = "ssd_mobilenet_v2_320.yaml"
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")


def find_config(name_or_path) -> Path:
    """A config path as given, or a name looked up in `configs/` (with or without `.yaml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (CONFIG_DIR / path.name, CONFIG_DIR / f"{path.name}.yaml"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise WebdetError(f"{name_or_path}: no such config file (built-in configs: {known})")


def merge(base: dict, override: dict) -> dict:
    """Deep-merge `override` into a copy of `base`: nested dicts merge, everything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(name_or_path=DEFAULT_CONFIG) -> dict:
    """Read a config file and the chain of `base:` files it extends."""
    path = find_config(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise WebdetError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise WebdetError(f"{path}: a config must be a mapping of sections")
    base = data.pop("base", None)
    if base:
        data = merge(load_config(path.parent / base if (path.parent / base).is_file() else base), data)
    return data


def apply_overrides(config: dict, overrides) -> dict:
    """Apply `section.key=value` strings; values are parsed as YAML (numbers, lists, null)."""
    config = copy.deepcopy(config)
    for item in overrides or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise WebdetError(f"--set {item}: expected KEY=VALUE, e.g. train.learning_rate=0.02")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise WebdetError(f"--set {item}: unknown section '{part}'")
            node = node[part]
        if leaf not in node:
            raise WebdetError(f"--set {item}: unknown key '{key}' (known: {', '.join(sorted(node))})")
        node[leaf] = yaml.safe_load(raw)
    return config


AUGMENT_POLICIES = (None, "autoaugment", "randaugment")


def validate(config: dict) -> dict:
    """Check the values train cannot work with, naming the key."""
    model, train = config["model"], config["train"]
    stride = 2 ** int(model["max_level"])
    size = int(model["input_size"])
    if size <= 0 or size % stride:
        raise WebdetError(f"model.input_size={size}: must be a positive multiple of {stride} (2**max_level)")
    if int(train["batch_size"]) < 1:
        raise WebdetError(f"train.batch_size={train['batch_size']}: must be at least 1")
    if float(train["learning_rate"]) <= 0:
        raise WebdetError(f"train.learning_rate={train['learning_rate']}: must be positive")
    if train["optimizer"] not in ("sgd", "adamw"):
        raise WebdetError(f"train.optimizer={train['optimizer']}: must be sgd or adamw")
    ema = train.get("ema_decay")
    if ema is not None and not (isinstance(ema, (int, float)) and 0 < ema < 1):
        raise WebdetError(f"train.ema_decay={ema}: must be null (off) or a number between 0 and 1, e.g. 0.999")
    box_weight = train.get("box_loss_weight", 50)
    if isinstance(box_weight, bool) or not isinstance(box_weight, int) or box_weight < 1:
        raise WebdetError(f"train.box_loss_weight={box_weight}: must be a whole number, 1 or more "
                          "(Model Garden's RetinaNet uses 50)")
    giou = train.get("giou_loss_weight") or 0.0
    if isinstance(giou, bool) or not isinstance(giou, (int, float)) or not (math.isfinite(giou) and giou >= 0):
        raise WebdetError(f"train.giou_loss_weight={giou}: must be a number, 0 (off) or more, e.g. 2 "
                          "(the GIoU box loss's weight, added to the Huber box loss)")
    augment = train.get("augment") or {}
    if augment.get("policy") not in AUGMENT_POLICIES:
        raise WebdetError(f"train.augment.policy={augment['policy']}: must be null, autoaugment or randaugment")
    if augment.get("policy") and augment.get("random_crop"):
        raise WebdetError(f"train.augment.policy={augment['policy']}: cannot be combined with "
                          "train.augment.random_crop=true; choose one")
    mosaic = augment.get("mosaic") or 0.0
    if isinstance(mosaic, bool) or not isinstance(mosaic, (int, float)) or not 0 <= mosaic <= 1:
        raise WebdetError(f"train.augment.mosaic={mosaic}: must be a probability from 0 (off) to 1 (every photo)")
    close = augment.get("close_mosaic_epochs") or 0
    if isinstance(close, bool) or not isinstance(close, (int, float)) or not (math.isfinite(close) and close >= 0):
        raise WebdetError(f"train.augment.close_mosaic_epochs={close}: must be a number of epochs, 0 or more "
                          "(the last epochs train on plain photos)")
    merge_boxes = config.get("eval", {}).get("merge_boxes", False)
    if not isinstance(merge_boxes, bool):
        raise WebdetError(f"eval.merge_boxes={merge_boxes}: must be true (merge-NMS) or false (plain NMS)")
    if train.get("steps") is None and int(train["epochs"]) < 1:
        raise WebdetError("train.epochs: must be at least 1 when train.steps is null")
    return config


def save_config(config: dict, path) -> None:
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def read_run_config(run_dir) -> dict:
    """The resolved config a run saved; a one-line error when the folder is not a run."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise WebdetError(f"{run_dir}: not a training run (no config.yaml); run `webdet train` first")
    return yaml.safe_load(path.read_text(encoding="utf-8"))
