"""The TF.js graph model: freeze the feed-forward graph, repair it for the converter, convert it with
tensorflowjs, and check what came out (no control flow or NMS, every bias rank-1, 4 MiB shards)."""
import json
import tempfile
from collections import Counter
from pathlib import Path

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_conversion

from webdet.export.graph_fixes import protect_tensor_adds, tensor_bias_nodes, unfold_shared_batch_norms
from webdet.export.graphs import DECODING_SCOPE, web_function
from webdet.errors import WebdetError

SHARD_BYTES = 4 * 1024 * 1024
OUTPUT_NAMES = ("boxes", "scores")  # sorted: the converter orders structured outputs by key
# Ops that would force executeAsync, dynamic shapes or slow paths in the browser.
FORBIDDEN_OPS = ("Enter", "Exit", "LoopCond", "Merge", "Switch", "NextIteration", "While", "StatelessWhile",
                 "If", "StatelessIf", "NonMaxSuppressionV2", "NonMaxSuppressionV3", "NonMaxSuppressionV4",
                 "NonMaxSuppressionV5", "CombinedNonMaxSuppression", "TensorListReserve", "Where")
QUANTIZATION = {None: None, "none": None, "uint8": {"uint8": "*"}, "float16": {"float16": "*"}}
# Name-scope prefix in the frozen graph → the stage of the model that added the node.
STAGES = {"mobile_net": "backbone (MobileNetV2)", "fpn": "decoder (FPN)", "retina_net_head": "head (RetinaNet)",
          DECODING_SCOPE: "box decoding"}


def stage_of(node_name: str) -> str:
    """Which part of the model added a node, for error messages."""
    return STAGES.get(node_name.split("/")[0], "serving function")


def freeze_function(function) -> tuple:
    """A tf.function returning a dict of tensors → (frozen GraphDef whose output nodes carry the dict's
    keys as names, the output shapes by key)."""
    concrete = function.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    graph_def = frozen.graph.as_graph_def()
    keys = sorted(concrete.structured_outputs)  # flattened outputs follow the sorted keys
    rename = {tensor.name.split(":")[0]: key for key, tensor in zip(keys, frozen.outputs)}
    taken = {n.name for n in graph_def.node if n.name in keys and n.name not in rename}
    _rename_nodes(graph_def, {name: f"{name}_inner" for name in taken})
    _rename_nodes(graph_def, rename)
    return graph_def, {key: concrete.structured_outputs[key].shape.as_list() for key in keys}


def freeze_web_graph(model, config: dict):
    """The feed-forward web function as a frozen GraphDef with outputs named `boxes` and `scores`.

    Returns (graph_def, number of anchors).
    """
    graph_def, shapes = freeze_function(web_function(model, config))
    return graph_def, int(shapes["boxes"][1])


def _rename_nodes(graph_def, rename: dict) -> None:
    for node in graph_def.node:
        if node.name in rename:
            node.name = rename[node.name]
        for i, name in enumerate(node.input):
            prefix = "^" if name.startswith("^") else ""
            base, sep, port = name.lstrip("^").partition(":")
            if base in rename:
                node.input[i] = prefix + rename[base] + sep + port


def unsupported_ops(graph_def) -> dict[str, list[str]]:
    """Ops TF.js cannot run (per the converter's own op list) → the nodes that use them."""
    ops = tfjs_conversion.validate(graph_def, skip_op_check=False, strip_debug_ops=False)
    return {op: [n.name for n in graph_def.node if n.op == op] for op in sorted(ops)}


def convert_graph(graph_def, out_dir: Path, quantize: str | None = None, output_names=OUTPUT_NAMES) -> dict:
    """Repair, convert and check one frozen graph; write model.json + shards into `out_dir`."""
    unsupported = unsupported_ops(graph_def)
    if unsupported:
        op, nodes = next(iter(unsupported.items()))
        raise WebdetError(f"web model: op {op} cannot run in TF.js (node {nodes[0]}, added by the "
                          f"{stage_of(nodes[0])})" + (f"; also {', '.join(list(unsupported)[1:])}"
                                                      if len(unsupported) > 1 else ""))
    graph_def, unfolded = unfold_shared_batch_norms(graph_def)
    swapped = protect_tensor_adds(graph_def)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tf.io.write_graph(graph_def, tmp, "frozen.pb", as_text=False)
        try:
            tfjs_conversion.convert_tf_frozen_model(
                str(Path(tmp) / "frozen.pb"), ",".join(output_names), str(out_dir),
                quantization_dtype_map=QUANTIZATION[quantize], weight_shard_size_bytes=SHARD_BYTES,
                metadata={"structuredOutputKeys": list(output_names)})
        except (ValueError, tf.errors.OpError) as exc:
            message = " ".join(str(exc).split())
            raise WebdetError(f"web model: the TF.js converter failed: {message}") from None
    model_json = json.loads((out_dir / "model.json").read_text(encoding="utf-8"))
    check_feed_forward(model_json)
    check_wasm_biases(model_json)
    shards = sorted(p.name for p in out_dir.glob("group*.bin"))
    return {"ops": dict(sorted(Counter(n["op"] for n in model_json["modelTopology"]["node"]).items())),
            "shared_batch_norms_unfolded": unfolded, "residual_adds_protected": swapped, "shards": shards}


def convert(model, config: dict, out_dir: Path, quantize: str | None) -> dict:
    """The model's web graph → `out_dir` (model.json + shards); returns facts for the export report."""
    graph_def, num_anchors = freeze_web_graph(model, config)
    return {"num_anchors": num_anchors, **convert_graph(graph_def, out_dir, quantize)}


def check_feed_forward(model_json: dict) -> None:
    """Refuse a graph TF.js could only run with executeAsync (control flow, NMS) or with dynamic shapes."""
    nodes = model_json["modelTopology"]["node"]
    bad = [(n["op"], n["name"]) for n in nodes if n["op"] in FORBIDDEN_OPS]
    if bad:
        op, name = bad[0]
        raise WebdetError(f"web model: the graph contains {op} (node {name}, added by the {stage_of(name)}); "
                          "it would need executeAsync in the browser")
    for node in nodes:
        if node["op"] == "Placeholder":
            dims = node["attr"].get("shape", {}).get("shape", {}).get("dim", [])
            if not dims or any(int(d.get("size", -1)) < 1 for d in dims):
                raise WebdetError(f"web model: input {node['name']} has a dynamic shape; it must be fixed")


def check_wasm_biases(model_json: dict) -> None:
    """Refuse fused convolutions whose bias is not rank-1: the wasm backend cannot run them."""
    bad = tensor_bias_nodes(model_json)
    if bad:
        raise WebdetError(f"web model: {len(bad)} fused op(s) take a tensor as bias (first: {bad[0]}, added by "
                          f"the {stage_of(bad[0])}); the TF.js wasm backend would refuse them")
