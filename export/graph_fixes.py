"""Rewrites that make the frozen detection graph convert correctly and run on every TF.js backend.

Both work around passes of the TF.js converter (tensorflowjs 4.22) that assume a node has one reader:

1. Batch-norm folding (`fold_batch_norms`) folds each FusedBatchNorm into the convolution before it
   and deletes the intermediate BiasAdd, even when another node still reads that BiasAdd (the FPN's
   extra level 6 is computed from level 5's conv output, before level 5's norm). Grappler then fails
   with "Non-existent input …/post_hoc_5/BiasAdd". Such a norm is written as its inference
   arithmetic (x * a + b with constant a, b) so nothing shared is folded away.
2. Bias-add normalisation (`normalize_bias_add`) turns *every* Add/AddV2 whose first input is a
   Conv2D, DepthwiseConv2dNative or MatMul into a BiasAdd, without checking that the other input is
   a 1-D constant. A residual connection `conv(x) + shortcut` thus becomes a BiasAdd with a rank-4
   "bias", which grappler fuses into `_FusedConv2D`. The webgl and cpu backends broadcast it and get
   the right answer; the wasm backend refuses it: "FusedConv2D only supports rank-1 bias but got
   rank 4". Addition commutes, so such adds are written `shortcut + conv(x)`: the converter leaves
   them alone and the conv still fuses with its real bias and activation.

`tensor_bias_nodes` checks the converted model.json for any fused op whose bias is not a rank-1
weight, so a converter change that reintroduces the problem fails the export instead of the browser.
"""
import base64

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, node_def_pb2

# Ops the converter's bias-add normalisation treats as "the op before a bias".
BIAS_PRODUCERS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")
FUSED_WITH_BIAS = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul")


def _node_name(tensor_name: str) -> str:
    return tensor_name.lstrip("^").split(":")[0]


def _consumers(graph_def) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph_def.node:
        for name in node.input:
            key = _node_name(name)
            counts[key] = counts.get(key, 0) + 1
    return counts


def _const(name: str, value: np.ndarray) -> node_def_pb2.NodeDef:
    node = node_def_pb2.NodeDef(name=name, op="Const")
    node.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=tf.float32.as_datatype_enum))
    node.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tf.make_tensor_proto(value.astype(np.float32))))
    return node


def _constant(nodes: dict, name: str) -> np.ndarray | None:
    """The value behind a (chain of Identity nodes to a) Const node, or None if it is computed."""
    node = nodes.get(_node_name(name))
    while node is not None and node.op == "Identity":
        node = nodes.get(_node_name(node.input[0]))
    if node is None or node.op != "Const":
        return None
    return tf.make_ndarray(node.attr["value"].tensor)


def unfold_shared_batch_norms(graph_def):
    """Replace FusedBatchNorm nodes whose input is also read elsewhere by Mul + AddV2 with constants.

    Returns the new GraphDef and how many norms were rewritten.
    """
    nodes = {n.name: n for n in graph_def.node}
    consumers = _consumers(graph_def)
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    rewritten = 0
    for node in graph_def.node:
        source = _node_name(node.input[0]) if node.input else ""
        if not node.op.startswith("FusedBatchNorm") or consumers.get(source, 0) < 2:
            out.node.append(node)
            continue
        gamma, beta, mean, var = (_constant(nodes, i) for i in node.input[1:5])
        if any(v is None for v in (gamma, beta, mean, var)):
            raise ValueError(f"{node.name}: batch-norm parameters are not constants in the frozen graph")
        scale = gamma / np.sqrt(var + node.attr["epsilon"].f)
        out.node.extend([_const(f"{node.name}/scale", scale), _const(f"{node.name}/shift", beta - mean * scale)])
        mul = node_def_pb2.NodeDef(name=f"{node.name}/mul", op="Mul", input=[node.input[0], f"{node.name}/scale"])
        mul.attr["T"].CopyFrom(attr_value_pb2.AttrValue(type=tf.float32.as_datatype_enum))
        add = node_def_pb2.NodeDef(name=node.name, op="AddV2", input=[f"{node.name}/mul", f"{node.name}/shift"])
        add.attr["T"].CopyFrom(mul.attr["T"])
        out.node.extend([mul, add])
        rewritten += 1
    return out, rewritten


def protect_tensor_adds(graph_def) -> int:
    """Swap the inputs of `conv(x) + tensor` adds (in place) so the converter keeps them as adds.

    An add is left as it is when its other input is a 1-D constant: that one is a real bias and
    should fuse. Returns how many adds were swapped.
    """
    nodes = {n.name: n for n in graph_def.node}
    swapped = 0
    for node in graph_def.node:
        if node.op not in ("Add", "AddV2") or len(node.input) != 2:
            continue
        first = nodes.get(_node_name(node.input[0]))
        if first is None or first.op not in BIAS_PRODUCERS:
            continue
        other = _constant(nodes, node.input[1])
        if other is not None and other.ndim == 1:
            continue
        node.input[0], node.input[1] = node.input[1], node.input[0]
        swapped += 1
    return swapped


def fused_ops(node: dict) -> list[str]:
    """The `fused_ops` attribute of a model.json node, decoded (e.g. ["BiasAdd", "Relu6"])."""
    encoded = node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
    return [base64.b64decode(s).decode() for s in encoded]


def tensor_bias_nodes(model_json: dict) -> list[str]:
    """Names of fused nodes whose bias is not a rank-1 weight (the wasm backend rejects them)."""
    weight_ranks = {w["name"]: len(w["shape"]) for group in model_json.get("weightsManifest", [])
                    for w in group["weights"]}
    bad = []
    for node in model_json["modelTopology"]["node"]:
        if node.get("op") not in FUSED_WITH_BIAS or "BiasAdd" not in fused_ops(node):
            continue
        data_inputs = [i for i in node.get("input", []) if not i.startswith("^")]
        bias = _node_name(data_inputs[2]) if len(data_inputs) > 2 else None
        if bias is None or weight_ranks.get(bias) != 1:
            bad.append(node["name"])
    return bad
