"""Translate a webdet config into Model Garden's RetinaNet experiment: the model, inputs and loss all
come from `official.vision`, so nothing here re-implements the network, the anchor labeler or the loss."""
import math

from official.modeling import optimization
from official.vision.configs import backbones, common, decoders
from official.vision.configs import retinanet as rcfg


def model_config(config: dict, num_classes: int) -> rcfg.RetinaNet:
    """SSD MobileNetV2 FPNLite: MobileNetV2 backbone, separable-conv FPN and RetinaNet head."""
    m = config["model"]
    size = int(m["input_size"])
    return rcfg.RetinaNet(
        num_classes=num_classes + 1,  # Model Garden keeps class 0 for background
        input_size=[size, size, 3],
        min_level=int(m["min_level"]),
        max_level=int(m["max_level"]),
        anchor=rcfg.Anchor(num_scales=int(m["num_scales"]), aspect_ratios=list(m["aspect_ratios"]),
                           anchor_size=float(m["anchor_size"])),
        backbone=backbones.Backbone(type="mobilenet", mobilenet=backbones.MobileNet(
            model_id="MobileNetV2", filter_size_scale=float(m["backbone_width"]))),
        # use_keras_layer: the top-down path upsamples with ResizeNearestNeighbor instead of reshape + Tile. The
        # same variables and the same numbers (a checkpoint of either layout reads into the other bit for bit),
        # but TF.js wasm runs Tile slowly: 23 of 143 ms per frame on the 320 model before, 0.4 ms after.
        decoder=decoders.Decoder(type="fpn", fpn=decoders.FPN(
            num_filters=int(m["fpn_filters"]), use_separable_conv=True, use_keras_layer=True)),
        head=rcfg.RetinaNetHead(num_convs=int(m["head_convs"]), num_filters=int(m["head_filters"]),
                                use_separable_conv=True),
        norm_activation=common.NormActivation(activation=m["activation"], use_sync_bn=False,
                                              norm_momentum=0.99, norm_epsilon=1e-3),
        # "batched" is tf.image.combined_non_max_suppression: per-class greedy NMS over every anchor at
        # or above the score threshold, then the best max_detections overall, with no pre-NMS top-k.
        # That is the post-processing docs/metadata.md specifies for the web app, so the SavedModel,
        # the checkpoint and the browser give the same detections (and the same AP) for an image.
        detection_generator=rcfg.DetectionGenerator(
            apply_nms=True, nms_version="batched",
            pre_nms_score_threshold=float(config["eval"]["score_threshold"]),
            nms_iou_threshold=float(config["eval"]["iou_threshold"]),
            max_num_detections=int(config["eval"]["max_detections"]),
            # The candidates before NMS, for merge-NMS (training/box_merge.py).
            return_decoded=bool(config["eval"].get("merge_boxes"))),
    )


def train_data_config(pattern: str, batch_size: int, augment: dict, seed: int) -> rcfg.DataConfig:
    """Model Garden's TFRecord reader, OD API decoder and RetinaNet parser (with augmentation) for the
    train split. The test split is read by webdet's evaluation (`webdet.training.evaluate`), not here."""
    parser = rcfg.Parser(
        aug_rand_hflip=bool(augment.get("hflip")),
        aug_scale_min=float(augment.get("scale_min", 1.0)),
        aug_scale_max=float(augment.get("scale_max", 1.0)),
        aug_type=augmentation(augment),
    )
    return rcfg.DataConfig(
        input_path=pattern, global_batch_size=batch_size, is_training=True, dtype="float32",
        parser=parser, shuffle_buffer_size=1000, drop_remainder=True, cycle_length=2, deterministic=False,
        seed=seed, decoder=common.DataDecoder(type="simple_decoder"),
    )


def augmentation(augment: dict) -> common.Augmentation | None:
    """Model Garden's box-aware augmenter applied before scale jitter, or None.

    random_crop: the SSD paper's random crop (the OD API's ssd_random_crop), a crop covering at least a random
    0-70% of some box, keeping boxes where half of them stays inside. policy autoaugment: the detection policy
    learned by Zoph et al. 2019 (colour, equalize, cutout, box-aware shear, rotate and translate).
    policy randaugment: RandAugment's detection ops, two per image."""
    if augment.get("random_crop"):
        return common.Augmentation(type="ssd_random_crop")
    policy = augment.get("policy")
    if policy == "autoaugment":
        return common.Augmentation(type="autoaug", autoaug=common.AutoAugment(augmentation_name="detection_v0"))
    if policy == "randaugment":
        return common.Augmentation(type="randaug")
    return None


def schedule(config: dict, total_steps: int) -> optimization.OptimizationConfig:
    """Warm-up then cosine decay; SGD with momentum (the zoo's choice) or AdamW (faster from scratch); an
    optional moving average of the weights (`train.ema_decay`)."""
    t = config["train"]
    lr = float(t["learning_rate"])
    warmup = min(int(t["warmup_steps"]), max(total_steps - 1, 0))
    if t["optimizer"] == "sgd":
        optimizer = {"type": "sgd", "sgd": {"momentum": 0.9, "global_clipnorm": float(t["gradient_clip_norm"])}}
    else:
        optimizer = {"type": "adamw", "adamw": {"weight_decay_rate": float(t["weight_decay"]),
                                                 "global_clipnorm": float(t["gradient_clip_norm"]),
                                                 "exclude_from_weight_decay": ["batch_normalization", "bias"]}}
    ema = t.get("ema_decay")
    return optimization.OptimizationConfig({
        "optimizer": optimizer,
        # Model Garden's ExponentialMovingAverage wrapper: its decay ramps up as (1 + step) / (10 + step) to ema_decay.
        "ema": {"average_decay": float(ema)} if ema else None,
        "learning_rate": {"type": "cosine", "cosine": {"initial_learning_rate": lr,
                                                       "decay_steps": max(total_steps, 1)}},
        "warmup": {"type": "linear", "linear": {"warmup_steps": warmup, "warmup_learning_rate": lr * 0.01}},
    })


def task_config(config: dict, data_dir, num_classes: int, total_steps: int = 1) -> rcfg.RetinaNetTask:
    """The RetinaNetTask training uses: model, train inputs and losses (evaluation is webdet's own)."""
    t = config["train"]
    weight_decay = float(t["weight_decay"]) if t["optimizer"] == "sgd" else 0.0
    return rcfg.RetinaNetTask(
        model=model_config(config, num_classes),
        train_data=train_data_config(f"{data_dir}/train-*.tfrecord", int(t["batch_size"]), t["augment"],
                                     int(t["seed"])),
        losses=rcfg.Losses(l2_weight_decay=weight_decay, box_loss_weight=int(t.get("box_loss_weight", 50))),
    )


def steps_per_epoch(num_train_images: int, batch_size: int) -> int:
    return max(1, math.floor(num_train_images / batch_size))
