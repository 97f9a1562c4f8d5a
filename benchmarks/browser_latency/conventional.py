"""The conventional TF.js export the seed tutorials produce, for comparison only: the same weights,
but Model Garden's NMS kept inside the graph. Its while-loops become Enter/LoopCond control flow, so
TF.js can only run it with `executeAsync`."""
import json
import tempfile
from pathlib import Path

import tensorflow as tf
from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_conversion

from webdet.export.graph_fixes import protect_tensor_adds, unfold_shared_batch_norms
from webdet.export.web_model import QUANTIZATION, SHARD_BYTES, freeze_function

OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


def nms_in_graph_function(model, input_size: int):
    """Normalised float32 [1, S, S, 3] → NMS'ed detections, with NMS as a graph loop."""
    @tf.function(input_signature=[tf.TensorSpec([1, input_size, input_size, 3], tf.float32, name="input")])
    def detect(images):
        outputs = model(images, image_shape=tf.constant([[input_size, input_size]], tf.float32), training=False)
        return {key: tf.cast(outputs[key], tf.float32) for key in OUTPUTS}

    return detect


def export_conventional(model, input_size: int, out_dir: Path, quantize=None) -> dict:
    """Convert the NMS-in-graph function with the tensorflowjs converter; returns its control-flow and NMS ops."""
    graph_def, _ = freeze_function(nms_in_graph_function(model, input_size))
    # The same converter repairs as webdet's own export, so the two differ only in where NMS runs.
    graph_def, _ = unfold_shared_batch_norms(graph_def)
    protect_tensor_adds(graph_def)
    with tempfile.TemporaryDirectory() as tmp:
        tf.io.write_graph(graph_def, tmp, "frozen.pb", as_text=False)
        tfjs_conversion.convert_tf_frozen_model(
            str(Path(tmp) / "frozen.pb"), ",".join(OUTPUTS), str(out_dir),
            quantization_dtype_map=QUANTIZATION[quantize], weight_shard_size_bytes=SHARD_BYTES)
    return conventional_facts(out_dir)


def conventional_facts(out_dir: Path) -> dict:
    """The control-flow and NMS ops of a converted model.json."""
    nodes = json.loads((out_dir / "model.json").read_text())["modelTopology"]["node"]
    ops = {n["op"] for n in nodes}
    return {"control_flow_ops": sorted(ops & {"Enter", "Exit", "LoopCond", "Merge", "Switch", "NextIteration"}),
            "nms_ops": sorted(op for op in ops if "NonMaxSuppression" in op)}
