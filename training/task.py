"""Model Garden's RetinaNet task with two additions: the mosaic of four photos, and a GIoU box loss.

Mosaic (Bochkovskiy et al. 2020, YOLOv4) stitches four decoded training photos into one 2x2 collage with
their boxes, so each picture the model learns from holds more objects, at more scales and against more
backgrounds. It is Model Garden's own (`official.projects.yolo.ops.mosaic`), run between the decoder and
the RetinaNet parser, which then augments and labels the collage as it does any photo.

GIoU (Rezatofighi et al. 2019) scores each predicted box as a whole against its matched ground truth, where the
Huber loss weighs four encoded offsets alike; it pushes on what COCO's AP at IoU 0.75 and above rewards: tight
boxes. It is added to the Huber loss, as mmdetection's RetinaNet-GIoU and FCOS do, with Model Garden's own box
decoding and GIoU (`official.vision.ops.box_ops`, `official.projects.yolo.ops.box_ops`).
"""
import tensorflow as tf
from official.common import dataset_fn
from official.projects.yolo.ops import box_ops as yolo_box_ops
from official.projects.yolo.ops import mosaic
from official.vision.configs import retinanet as rcfg
from official.vision.dataloaders import input_reader, input_reader_factory, retinanet_input, tf_example_decoder
from official.vision.losses import loss_utils
from official.vision.ops import box_ops
from official.vision.tasks.retinanet import RetinaNetTask


def giou_loss(box_outputs, labels, box_coder_weights=None) -> tf.Tensor:
    """The sum of 1 - GIoU between each positive anchor's decoded box and its matched ground truth, over the
    number of positives plus one: the normalisation Model Garden's RetinaNet uses for its Huber box loss."""
    def flat(levels):
        return tf.cast(loss_utils.multi_level_flatten(levels, last_dim=4), tf.float32)

    anchors = flat(labels["anchor_boxes"])
    predicted = box_ops.decode_boxes(flat(box_outputs), anchors, box_coder_weights)
    matched = box_ops.decode_boxes(flat(labels["box_targets"]), anchors, box_coder_weights)
    _, giou = yolo_box_ops.compute_giou(matched, predicted, yxyx=True)
    weights = tf.cast(labels["box_weights"], tf.float32)
    return tf.reduce_sum((1.0 - giou) * weights) / (tf.reduce_sum(weights) + 1.0)


class MosaicRetinaNetTask(RetinaNetTask):
    """A RetinaNetTask whose training inputs are a 2x2 mosaic with probability `mosaic_frequency`, and whose
    loss adds `giou_loss_weight` times the GIoU box loss (0: Model Garden's loss unchanged)."""

    def __init__(self, params: rcfg.RetinaNetTask, mosaic_frequency: float = 0.0, seed: int = 0,
                 giou_loss_weight: float = 0.0):
        super().__init__(params)
        self.mosaic_frequency = float(mosaic_frequency)
        self.seed = int(seed)
        self.giou_loss_weight = float(giou_loss_weight)

    def build_losses(self, outputs, labels, aux_losses=None):
        """Model Garden's (total, class, box, model) losses; the GIoU term joins the total and model losses,
        while `box_loss` stays the Huber term so its figure means what it does in Model Garden."""
        total, cls_loss, box_loss, model_loss = super().build_losses(outputs, labels, aux_losses)
        if not self.giou_loss_weight:
            return total, cls_loss, box_loss, model_loss
        weights = self.task_config.model.detection_generator.box_coder_weights
        extra = self.giou_loss_weight * giou_loss(outputs["box_outputs"], labels, weights)
        return total + self.task_config.losses.loss_weight * extra, cls_loss, box_loss, model_loss + extra

    def build_inputs(self, params: rcfg.DataConfig, input_context=None):
        if not (params.is_training and self.mosaic_frequency > 0):
            return super().build_inputs(params, input_context)
        reader = input_reader_factory.input_reader_generator(
            params,
            dataset_fn=dataset_fn.pick_dataset_fn(params.file_type),
            decoder_fn=tf_example_decoder.TfExampleDecoder().decode,
            sample_fn=self.mosaic().mosaic_fn(is_training=True),
            combine_fn=input_reader.create_combine_fn(params),
            parser_fn=self.parser(params).parse_fn(True))
        return reader.read(input_context=input_context)

    def mosaic(self) -> mosaic.Mosaic:
        """Collages at the model's input size. The parser after it flips and scale-jitters, so the mosaic
        itself only letterboxes each photo into its quarter and shifts the centre (YOLOv7's 0.25)."""
        return mosaic.Mosaic(
            output_size=list(self.task_config.model.input_size[:2]),
            mosaic_frequency=self.mosaic_frequency, mosaic_crop_mode="scale", mosaic_center=0.25,
            letter_box=True, random_flip=False, area_thresh=0.1, seed=self.seed)

    def parser(self, params: rcfg.DataConfig) -> retinanet_input.Parser:
        """The parser RetinaNetTask.build_inputs builds, from the same config fields."""
        model, p = self.task_config.model, params.parser
        return retinanet_input.Parser(
            output_size=model.input_size[:2], min_level=model.min_level, max_level=model.max_level,
            num_scales=model.anchor.num_scales, aspect_ratios=model.anchor.aspect_ratios,
            anchor_size=model.anchor.anchor_size, dtype=params.dtype, match_threshold=p.match_threshold,
            unmatched_threshold=p.unmatched_threshold,
            box_coder_weights=model.detection_generator.box_coder_weights, aug_type=p.aug_type,
            aug_rand_hflip=p.aug_rand_hflip, aug_rand_jpeg=p.aug_rand_jpeg, aug_scale_min=p.aug_scale_min,
            aug_scale_max=p.aug_scale_max, skip_crowd_during_training=p.skip_crowd_during_training,
            max_num_instances=p.max_num_instances, pad=p.pad, keep_aspect_ratio=p.keep_aspect_ratio)
