"""The two serving graphs of a trained model.

- `DetectionModule.serve`: the TF2 Object Detection API signature (uint8 image of any size in,
  NMS'ed detections normalised to that image out, merged as `eval.merge_boxes` says), so code written
  for OD API exports works unchanged.
- `web_function`: a pure feed-forward graph for TF.js (fixed input, decoded boxes and sigmoid scores
  per anchor, no NMS, no control flow); NMS and the mapping back to the frame run in the web app.
"""
import tensorflow as tf
from official.vision.modeling.layers import detection_generator
from official.vision.ops import anchor

from webdet.training.model import detect_outputs, preprocess

DECODING_SCOPE = "box_decoding"


class DetectionModule(tf.Module):
    """Holds the model so the SavedModel carries its variables."""

    def __init__(self, model, config: dict):
        super().__init__()
        self.model = model
        self.input_size = int(config["model"]["input_size"])
        self.eval_config = dict(config["eval"])

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
    def serve(self, input_tensor):
        inputs, image_info = preprocess(input_tensor[0], self.input_size)
        outputs = detect_outputs(self.model, inputs[tf.newaxis], image_info, self.eval_config)
        scale = tf.tile(image_info[2:3, :], [1, 2])
        original = tf.tile(image_info[0:1, :], [1, 2])
        boxes = tf.clip_by_value(outputs["detection_boxes"] / scale[tf.newaxis] / original[tf.newaxis], 0.0, 1.0)
        count = tf.cast(outputs["num_detections"], tf.float32)
        valid = tf.sequence_mask(outputs["num_detections"], tf.shape(outputs["detection_scores"])[1], tf.float32)
        return {
            "detection_boxes": boxes * valid[..., tf.newaxis],
            "detection_scores": outputs["detection_scores"] * valid,
            "detection_classes": tf.cast(outputs["detection_classes"], tf.float32) * valid,
            "num_detections": count,
        }


def anchor_boxes(config: dict) -> dict:
    m = config["model"]
    size = int(m["input_size"])
    return anchor.Anchor(min_level=int(m["min_level"]), max_level=int(m["max_level"]),
                         num_scales=int(m["num_scales"]), aspect_ratios=list(m["aspect_ratios"]),
                         anchor_size=float(m["anchor_size"]), image_size=[size, size]).multilevel_boxes


def web_function(model, config: dict):
    """[1, S, S, 3] normalised float32 → {"boxes": [1, N, 4] yxyx in [0, 1], "scores": [1, N, K]}.

    The decoding is Model Garden's own detection generator with NMS switched off (the step just
    before its NMS), so the SavedModel and the web model agree by construction. Each part runs in a
    name scope that says which stage added a node, for conversion errors.
    """
    size = int(config["model"]["input_size"])
    anchors = {level: tf.constant(boxes.numpy()[tf.newaxis]) for level, boxes in anchor_boxes(config).items()}
    decoder_config = dict(model.detection_generator.get_config(), apply_nms=False)
    decode = detection_generator.MultilevelDetectionGenerator.from_config(decoder_config)

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="input")])
    def web(images):
        features = model.decoder(model.backbone(images, training=False), training=False)
        raw_scores, raw_boxes = model.head(features, training=False)[:2]
        with tf.name_scope(DECODING_SCOPE):
            decoded = decode(raw_boxes, raw_scores, anchors, tf.constant([[size, size]], tf.float32))
            boxes = decoded["decoded_boxes"][:, :, 0, :] / float(size)
        return {"boxes": tf.identity(boxes, name="boxes"),
                "scores": tf.identity(decoded["decoded_box_scores"], name="scores")}

    return web
