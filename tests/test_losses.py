"""The training loss as Model Garden computes it from webdet's config."""
import pytest
import tensorflow as tf

from webdet.training.config import apply_overrides, load_config
from webdet.training.model import build_task
from webdet.training.task import giou_loss


PLAIN = ["train.augment.hflip=false", "train.augment.scale_min=1.0", "train.augment.scale_max=1.0"]


@pytest.fixture(scope="module")
def train_batch(prepared_dir):
    """One train batch (images, labels), read once: the train pipeline interleaves its shards in no fixed
    order (`deterministic=False`), so two reads can give two different first batches."""
    task = build_task(apply_overrides(load_config("tiny"), PLAIN), str(prepared_dir), 3)
    return next(iter(task.build_inputs(task.task_config.train_data)))


def losses_of(train_batch, prepared_dir, *settings):
    """Model Garden's class, box and total loss of the tiny model on `train_batch`, with fixed weights."""
    task = build_task(apply_overrides(load_config("tiny"), [*PLAIN, *settings]), str(prepared_dir), 3)
    tf.keras.utils.set_random_seed(0)
    model = task.build_model()
    images, labels = train_batch
    _, cls_loss, box_loss, model_loss = task.build_losses(model(images, training=False), labels)
    return float(cls_loss), float(box_loss), float(model_loss)


def test_box_loss_weight_scales_the_box_term_of_the_training_loss(train_batch, prepared_dir):
    cls_default, box_default, total_default = losses_of(train_batch, prepared_dir)
    cls_heavy, box_heavy, total_heavy = losses_of(train_batch, prepared_dir, "train.box_loss_weight=100")
    assert (cls_heavy, box_heavy) == pytest.approx((cls_default, box_default), rel=1e-5)
    assert box_default > 0
    # Model Garden's RetinaNet default (50) unless the config says otherwise.
    assert total_default == pytest.approx(cls_default + 50 * box_default, rel=1e-5)
    assert total_heavy == pytest.approx(cls_heavy + 100 * box_heavy, rel=1e-5)


def test_giou_loss_weight_adds_the_giou_term_to_the_total_and_keeps_the_box_figure(train_batch, prepared_dir):
    cls_off, box_off, total_off = losses_of(train_batch, prepared_dir)
    cls_on, box_on, total_on = losses_of(train_batch, prepared_dir, "train.giou_loss_weight=2")
    cls_on4, box_on4, total_on4 = losses_of(train_batch, prepared_dir, "train.giou_loss_weight=4")
    assert (cls_on, box_on) == pytest.approx((cls_off, box_off), rel=1e-5)
    assert (cls_on4, box_on4) == pytest.approx((cls_off, box_off), rel=1e-5)
    giou_term = (total_on - total_off) / 2
    # An untrained model's boxes are loose: 1 - GIoU is well above zero on the matched anchors.
    assert giou_term > 0.05
    assert total_on4 - total_off == pytest.approx(4 * giou_term, rel=1e-4)


def test_giou_loss_is_zero_for_boxes_on_their_targets_and_grows_as_they_drift(train_batch):
    labels = train_batch[1]
    assert float(tf.reduce_sum(labels["box_weights"])) > 0
    exact = giou_loss(labels["box_targets"], labels)
    # dx = 0.5 shifts each box by half its anchor's width; dw = log 2 doubles it.
    shifted = giou_loss({k: v + tf.constant([0.0, 0.5, 0.0, 0.0] * (v.shape[-1] // 4)) for k, v
                         in labels["box_targets"].items()}, labels)
    widened = giou_loss({k: v + tf.constant([0.0, 0.0, 0.0, 0.693] * (v.shape[-1] // 4)) for k, v
                         in labels["box_targets"].items()}, labels)
    assert float(exact) == pytest.approx(0.0, abs=1e-5)
    assert float(shifted) > 0.2 and float(widened) > 0.2


def test_giou_loss_sends_a_finite_gradient_to_the_box_head(train_batch):
    labels = train_batch[1]
    outputs = {k: tf.Variable(tf.zeros_like(v)) for k, v in labels["box_targets"].items()}
    with tf.GradientTape() as tape:
        loss = giou_loss(outputs, labels)
    grads = tape.gradient(loss, list(outputs.values()))
    total = sum(float(tf.reduce_sum(tf.abs(g))) for g in grads)
    assert all(bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads)
    assert total > 0
