"""The TF.js graph model: freeze the feed-forward graph, convert it, and check what came out."""
import json
import tempfile
from pathlib import Path

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_conversion

from export.graph_fixes import split_residual_adds, unfold_shared_batch_norms
from export.graphs import web_function
from webdet.errors import WebdetError

SHARD_BYTES = 4 * 1024 * 1024
# Ops that would force executeAsync, dynamic shapes or slow paths in the browser.
FORBIDDEN_OPS = ("Enter", "Exit", "LoopCond", "Merge", "Switch", "NextIteration", "While", "StatelessWhile",
                 "If", "StatelessIf", "NonMaxSuppressionV2", "NonMaxSuppressionV3", "NonMaxSuppressionV4",
                 "NonMaxSuppressionV5", "CombinedNonMaxSuppression", "TensorListReserve", "Where")
QUANTIZATION = {None: None, "none": None, "uint8": {"uint8": "*"}, "float16": {"float16": "*"}}
STAGES = ("backbone", "fpn", "retina_net_head", "multilevel_detection_generator")


def stage_of(node_name: str) -> str:
    """Which part of the model added a node, for error messages."""
    return next((s for s in STAGES if s in node_name), "decoding")


def convert(model, config: dict, out_dir: Path, quantize: str | None) -> dict:
    """Write model.json + shards into `out_dir`; returns facts for the export report."""
    frozen = convert_variables_to_constants_v2(web_function(model, config).get_concrete_function())
    graph_def, unfolded = unfold_shared_batch_norms(frozen.graph.as_graph_def())
    num_anchors = int(frozen.outputs[0].shape[1])
    with tempfile.TemporaryDirectory() as tmp:
        tf.io.write_graph(graph_def, tmp, "frozen.pb", as_text=False)
        try:
            tfjs_conversion.convert_tf_frozen_model(
                str(Path(tmp) / "frozen.pb"), "boxes,scores", str(out_dir),
                quantization_dtype_map=QUANTIZATION[quantize], weight_shard_size_bytes=SHARD_BYTES)
        except ValueError as exc:
            message = str(exc).replace("\n", " ")
            raise WebdetError(f"TF.js conversion failed: {message}") from None
    model_json_path = out_dir / "model.json"
    model_json = json.loads(model_json_path.read_text(encoding="utf-8"))
    split = split_residual_adds(model_json)
    model_json_path.write_text(json.dumps(model_json), encoding="utf-8")
    check_feed_forward(model_json)
    return {"num_anchors": num_anchors, "ops": sorted({n["op"] for n in model_json["modelTopology"]["node"]}),
            "shared_batch_norms_unfolded": unfolded, "residual_adds_split": split,
            "shards": sorted(p.name for p in out_dir.glob("group*.bin"))}


def check_feed_forward(model_json: dict) -> None:
    """Refuse a graph TF.js could only run with executeAsync (control flow, NMS, dynamic shapes)."""
    bad = [(n["op"], n["name"]) for n in model_json["modelTopology"]["node"] if n["op"] in FORBIDDEN_OPS]
    if bad:
        op, name = bad[0]
        raise WebdetError(f"the web graph contains {op} (node {name}, added by the {stage_of(name)}); "
                          "it would need executeAsync in the browser")
