"""The web-graph conversion on small graphs: the converter traps webdet repairs, and the graphs it refuses.

Each graph is converted with the real tensorflowjs converter and, where it runs, executed with the
real TF.js runtime in Node, so a converter or runtime upgrade that changes behaviour shows up here.
"""
import numpy as np
import pytest
import tensorflow as tf
from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_conversion

from webdet.export.graph_fixes import protect_tensor_adds, tensor_bias_nodes
from webdet.export.parity import execute_web_model
from webdet.export.web_model import convert_graph, freeze_function
from webdet.errors import WebdetError

SHAPE = [1, 8, 8, 4]


def residual_block():
    """conv(x) + x with a bias-free conv: the layout of MobileNetV2's projection + shortcut."""
    kernel = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 4, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec(SHAPE, tf.float32, name="input")])
    def block(x):
        return {"out": tf.nn.conv2d(x, kernel, 1, "SAME") + x}

    return block


def test_converter_alone_turns_a_residual_add_into_a_rank4_bias(tmp_path):
    graph_def, _ = freeze_function(residual_block())
    tf.io.write_graph(graph_def, str(tmp_path), "frozen.pb", as_text=False)
    tfjs_conversion.convert_tf_frozen_model(str(tmp_path / "frozen.pb"), "out", str(tmp_path / "web"))
    import json

    model_json = json.loads((tmp_path / "web" / "model.json").read_text())
    assert tensor_bias_nodes(model_json), "the converter no longer folds the residual add into the conv"
    with pytest.raises(WebdetError, match="rank-1 bias"):
        execute_web_model(tmp_path / "web", np.zeros(SHAPE, np.float32), ["out"], "wasm")


def test_protected_residual_add_runs_on_wasm_and_matches_tensorflow(tmp_path):
    block = residual_block()
    graph_def, _ = freeze_function(block)
    facts = convert_graph(graph_def, tmp_path / "web", output_names=("out",))
    assert facts["residual_adds_protected"] == 1
    x = np.random.default_rng(1).normal(size=SHAPE).astype(np.float32)
    expected = block(tf.constant(x))["out"].numpy()
    for backend in ("wasm", "cpu"):
        got = execute_web_model(tmp_path / "web", x, ["out"], backend)["out"]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_protection_leaves_a_real_bias_to_fuse():
    kernel = tf.constant(np.ones((1, 1, 4, 4), np.float32))
    bias = tf.constant(np.arange(4, dtype=np.float32))

    @tf.function(input_signature=[tf.TensorSpec(SHAPE, tf.float32)])
    def conv_bias(x):
        return {"out": tf.nn.conv2d(x, kernel, 1, "SAME") + bias}

    graph_def, _ = freeze_function(conv_bias)
    assert protect_tensor_adds(graph_def) == 0


def test_an_op_tfjs_cannot_run_is_named_with_its_stage(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def colour(x):
        with tf.name_scope("fpn"):
            return {"out": tf.image.rgb_to_hsv(x)}

    graph_def, _ = freeze_function(colour)
    with pytest.raises(WebdetError) as info:
        convert_graph(graph_def, tmp_path / "web", output_names=("out",))
    message = str(info.value)
    assert "RGBToHSV" in message and "decoder (FPN)" in message and "\n" not in message


def test_nms_in_the_graph_is_refused_as_needing_execute_async(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([10, 4], tf.float32), tf.TensorSpec([10], tf.float32)])
    def with_nms(boxes, scores):
        with tf.name_scope("box_decoding"):
            keep = tf.image.non_max_suppression(boxes, scores, 5)
            return {"out": tf.gather(boxes, keep)}

    graph_def, _ = freeze_function(with_nms)
    with pytest.raises(WebdetError, match=r"NonMaxSuppression\w* .*box decoding.*executeAsync"):
        convert_graph(graph_def, tmp_path / "web", output_names=("out",))
