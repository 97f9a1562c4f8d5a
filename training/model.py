"""The detection model and its inference function, shared by train, evaluate and export."""
import warnings

import tensorflow as tf
from official.vision.ops import preprocess_ops

from webdet.training import experiment
from webdet.training.box_merge import merge_boxes
from webdet.training.task import MosaicRetinaNetTask

# The MobileNetV2 backbone offers a level-6 feature the FPN builds itself; Keras warns about it on every call.
warnings.filterwarnings("ignore", message="Input dict contained keys")
# The backbone's final 1x1 conv feeds no pyramid level, so it never gets gradients; TF warns every step.
tf.get_logger().setLevel("ERROR")

# Model Garden's RetinaNet parser normalises with these ImageNet statistics (RGB, 0..255 scale);
# the exported models and the web app must use the same numbers.
PIXEL_MEAN = [float(v) for v in preprocess_ops.MEAN_RGB]
PIXEL_STD = [float(v) for v in preprocess_ops.STDDEV_RGB]


def build_task(config: dict, data_dir: str, num_classes: int, total_steps: int = 1) -> MosaicRetinaNetTask:
    t = config["train"]
    return MosaicRetinaNetTask(experiment.task_config(config, data_dir, num_classes, total_steps),
                               mosaic_frequency=float(t["augment"].get("mosaic") or 0.0), seed=int(t["seed"]),
                               giou_loss_weight=float(t.get("giou_loss_weight") or 0.0))


def build_model(config: dict, num_classes: int) -> tf.keras.Model:
    """The Model Garden RetinaNet (SSD MobileNetV2 FPNLite), built so its variables exist."""
    task = build_task(config, "", num_classes)
    model = task.build_model()
    size = int(config["model"]["input_size"])
    model(tf.zeros([1, size, size, 3]), training=False)
    return model


def checkpoint_for(model, optimizer=None) -> tf.train.Checkpoint:
    """The checkpoint layout of a webdet run (the same object names as Model Garden's trainer)."""
    if optimizer is None:
        return tf.train.Checkpoint(model=model)
    return tf.train.Checkpoint(model=model, optimizer=optimizer)


def preprocess(image_uint8: tf.Tensor, input_size: int):
    """Normalise and letterbox one [H, W, 3] uint8 image exactly as the evaluation parser does.

    Returns the [S, S, 3] float32 input and the scale from original pixels to input pixels.
    """
    image = preprocess_ops.normalize_image(image_uint8)
    image, image_info = preprocess_ops.resize_and_crop_image(
        image, [input_size, input_size], padded_size=[input_size, input_size],
        aug_scale_min=1.0, aug_scale_max=1.0)
    return image, image_info


def detect_outputs(model, inputs: tf.Tensor, image_info: tf.Tensor, eval_config: dict) -> dict:
    """The model's NMS'ed detections for a batch of one preprocessed image, in input pixels, with their
    boxes merged (training/box_merge.py) when `eval.merge_boxes` is on.

    Boxes are clipped to the image inside the letterbox (its scaled size, image_info[0] x image_info[2]) before
    NMS, as docs/metadata.md says; image_info[1] is the whole padded input, padding included.
    """
    scaled_size = tf.round(image_info[0] * image_info[2])
    outputs = model(inputs, image_shape=scaled_size[tf.newaxis], training=False)
    if eval_config.get("merge_boxes"):
        outputs = dict(outputs, detection_boxes=merge_boxes(outputs, float(eval_config["iou_threshold"]),
                                                            float(eval_config["score_threshold"])))
    return outputs


def make_detect_fn(model, config: dict):
    """A traced function: uint8 image [H, W, 3] → OD API-style detections normalised to that image.

    Boxes come back as (ymin, xmin, ymax, xmax) fractions of the original image, classes are
    label-map ids (from 1), as the TF2 Object Detection API's serving signature returns them.
    """
    input_size = int(config["model"]["input_size"])

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    def detect(image):
        inputs, image_info = preprocess(image, input_size)
        outputs = detect_outputs(model, inputs[tf.newaxis], image_info, config["eval"])
        scale = tf.tile(image_info[2:3, :], [1, 2])  # [[sy, sx, sy, sx]]
        original = tf.tile(image_info[0:1, :], [1, 2])
        boxes = outputs["detection_boxes"][0] / scale / original
        count = tf.cast(outputs["num_detections"][0], tf.int32)
        return {
            "detection_boxes": tf.clip_by_value(boxes[:count], 0.0, 1.0),
            "detection_scores": outputs["detection_scores"][0][:count],
            "detection_classes": tf.cast(outputs["detection_classes"][0][:count], tf.int32),
        }

    return detect
