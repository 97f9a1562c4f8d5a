"""Model Garden's RetinaNet task with one addition to its train inputs: the mosaic of four photos.

Mosaic (Bochkovskiy et al. 2020, YOLOv4) stitches four decoded training photos into one 2x2 collage with
their boxes, so each picture the model learns from holds more objects, at more scales and against more
backgrounds. It is Model Garden's own (`official.projects.yolo.ops.mosaic`), run between the decoder and
the RetinaNet parser, which then augments and labels the collage as it does any photo.
"""
from official.common import dataset_fn
from official.projects.yolo.ops import mosaic
from official.vision.configs import retinanet as rcfg
from official.vision.dataloaders import input_reader, input_reader_factory, retinanet_input, tf_example_decoder
from official.vision.tasks.retinanet import RetinaNetTask


class MosaicRetinaNetTask(RetinaNetTask):
    """A RetinaNetTask whose training inputs are a 2x2 mosaic with probability `mosaic_frequency`."""

    def __init__(self, params: rcfg.RetinaNetTask, mosaic_frequency: float = 0.0, seed: int = 0):
        super().__init__(params)
        self.mosaic_frequency = float(mosaic_frequency)
        self.seed = int(seed)

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
