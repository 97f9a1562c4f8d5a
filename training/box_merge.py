"""Merge-NMS: each box NMS keeps is moved to the weighted mean of the boxes it suppressed.

NMS decides which boxes survive and with what score; the boxes it throws away still say where the
object is. Averaging them into the survivor (box voting, Gidaris & Komodakis 2015; YOLOv5's `merge`
option of its NMS) places boxes better without adding or removing any, so recall at high IoU rises
(docs/from_scratch.md has what it does to AP, AP50 and AR100). Each kept box becomes the mean of the
candidates of its class that score at least the floor and overlap it by more than the NMS IoU threshold
(itself included), weighted by IoU × score. The web app's post-processing does the same
(docs/metadata.md, `merge_boxes`).
"""
import tensorflow as tf
from official.vision.ops import box_ops


def merge_boxes(outputs: dict, iou_threshold: float, min_score: float) -> tf.Tensor:
    """`outputs["detection_boxes"]` [1, M, 4] merged with the candidates they were picked from.

    `outputs` is a RetinaNet inference output for one image with the decoded boxes before NMS as well
    (`return_decoded`): `decoded_boxes` [1, N, 1, 4] and `decoded_box_scores` [1, N, K], in the same
    input-pixel coordinates as the detections, whose `detection_classes` are label ids from 1.
    """
    boxes = outputs["detection_boxes"][0]
    scores = outputs["decoded_box_scores"][0]
    # Only candidates at or above the floor can vote: a few hundred of the ~19k anchors once trained.
    voters = tf.where(tf.reduce_max(scores, axis=-1) >= min_score)[:, 0]
    candidates = tf.gather(outputs["decoded_boxes"][0, :, 0, :], voters)
    columns = tf.maximum(tf.cast(outputs["detection_classes"][0], tf.int32) - 1, 0)
    # Each voter's score for each detection's class: [M, N'].
    scores = tf.transpose(tf.gather(tf.gather(scores, voters), columns, axis=1))
    overlap = box_ops.bbox_overlap(boxes[tf.newaxis], candidates[tf.newaxis])[0]
    weights = tf.where((overlap > iou_threshold) & (scores >= min_score), overlap * scores, 0.0)
    total = tf.reduce_sum(weights, axis=-1, keepdims=True)
    merged = tf.linalg.matmul(weights, candidates) / tf.maximum(total, 1e-12)
    # Padding rows (past num_detections) have no voters and keep their zeros.
    return tf.where(total > 0.0, merged, boxes)[tf.newaxis]
