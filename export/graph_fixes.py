"""Rewrites that make the frozen detection graph convert correctly and run on every TF.js backend.

1. The TF.js converter folds each FusedBatchNorm into the convolution before it and deletes the
   intermediate BiasAdd, even when another node still reads that BiasAdd (the FPN's extra level 6
   is computed from level 5's conv output, before level 5's norm). Grappler then fails with
   "Non-existent input …/post_hoc_5/BiasAdd". Such a norm is written as its inference arithmetic
   (x * a + b with constant a, b) so nothing shared is folded away.
2. The converter fuses MobileNetV2's residual Add into the preceding convolution as a second fused
   argument (`_FusedConv2D` with fused_ops BiasAdd, Add). The wasm backend's FusedConv2D accepts
   only a rank-1 bias and fails with "FusedConv2D only supports rank-1 bias but got rank 4". The
   Add is split back out into its own node after conversion; webgl and cpu run the same graph.
"""
import base64

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, node_def_pb2


def _consumers(graph_def) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph_def.node:
        for name in node.input:
            key = name.lstrip("^").split(":")[0]
            counts[key] = counts.get(key, 0) + 1
    return counts


def _const(name: str, value: np.ndarray) -> node_def_pb2.NodeDef:
    node = node_def_pb2.NodeDef(name=name, op="Const")
    node.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=tf.float32.as_datatype_enum))
    node.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tf.make_tensor_proto(value.astype(np.float32))))
    return node


def _constant(nodes: dict, name: str) -> np.ndarray:
    """The value behind a (chain of Identity nodes to a) Const node."""
    node = nodes[name.lstrip("^").split(":")[0]]
    while node.op == "Identity":
        node = nodes[node.input[0].split(":")[0]]
    if node.op != "Const":
        raise ValueError(f"{name}: batch-norm parameter is not a constant ({node.op})")
    return tf.make_ndarray(node.attr["value"].tensor)


def unfold_shared_batch_norms(graph_def):
    """Replace FusedBatchNorm nodes whose input is also read elsewhere by Mul + AddV2 with constants."""
    nodes = {n.name: n for n in graph_def.node}
    consumers = _consumers(graph_def)
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    rewritten = 0
    for node in graph_def.node:
        source = node.input[0].split(":")[0] if node.input else ""
        if not node.op.startswith("FusedBatchNorm") or consumers.get(source, 0) < 2:
            out.node.append(node)
            continue
        gamma, beta, mean, var = (_constant(nodes, i) for i in node.input[1:5])
        scale = gamma / np.sqrt(var + node.attr["epsilon"].f)
        out.node.extend([_const(f"{node.name}/scale", scale), _const(f"{node.name}/shift", beta - mean * scale)])
        mul = node_def_pb2.NodeDef(name=f"{node.name}/mul", op="Mul", input=[node.input[0], f"{node.name}/scale"])
        mul.attr["T"].CopyFrom(attr_value_pb2.AttrValue(type=tf.float32.as_datatype_enum))
        add = node_def_pb2.NodeDef(name=node.name, op="AddV2", input=[f"{node.name}/mul", f"{node.name}/shift"])
        add.attr["T"].CopyFrom(mul.attr["T"])
        out.node.extend([mul, add])
        rewritten += 1
    return out, rewritten


def fused_ops(node: dict) -> list[str]:
    return [base64.b64decode(s).decode() for s in node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])]


def split_residual_adds(model_json: dict) -> int:
    """Turn `_FusedConv2D(x, w, bias, residual)` with fused_ops [BiasAdd, Add] into conv + AddV2."""
    topology = model_json["modelTopology"]
    new_nodes, split = [], 0
    for node in topology["node"]:
        ops = fused_ops(node)
        if node.get("op") == "_FusedConv2D" and ops[:2] == ["BiasAdd", "Add"] and len(node["input"]) >= 4:
            conv = dict(node, name=f"{node['name']}/conv", input=node["input"][:3])
            conv["attr"] = dict(node["attr"])
            conv["attr"]["fused_ops"] = {"list": {"s": [base64.b64encode(b"BiasAdd").decode()]}}
            conv["attr"]["num_args"] = {"i": "1"}
            add = {"name": node["name"], "op": "AddV2", "input": [conv["name"], node["input"][3]],
                   "attr": {"T": node["attr"].get("T", {"type": "DT_FLOAT"})}}
            new_nodes.extend([conv, add])
            split += 1
            if ops[2:]:
                raise ValueError(f"{node['name']}: unexpected activation after a fused residual Add: {ops}")
        else:
            new_nodes.append(node)
    topology["node"] = new_nodes
    return split
