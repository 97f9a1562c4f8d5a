"""The training loss as Model Garden computes it from webdet's config."""
import pytest
import tensorflow as tf

from webdet.training.config import apply_overrides, load_config
from webdet.training.model import build_task


def losses_of_one_batch(prepared_dir, *settings):
    """Model Garden's class, box and total loss of the tiny model on one train batch, with fixed weights."""
    config = apply_overrides(load_config("tiny"), ["train.augment.hflip=false", "train.augment.scale_min=1.0",
                                                   "train.augment.scale_max=1.0", *settings])
    task = build_task(config, str(prepared_dir), 3)
    tf.keras.utils.set_random_seed(0)
    model = task.build_model()
    images, labels = next(iter(task.build_inputs(task.task_config.train_data)))
    _, cls_loss, box_loss, model_loss = task.build_losses(model(images, training=False), labels)
    return float(cls_loss), float(box_loss), float(model_loss)


def test_box_loss_weight_scales_the_box_term_of_the_training_loss(prepared_dir):
    cls_default, box_default, total_default = losses_of_one_batch(prepared_dir)
    cls_heavy, box_heavy, total_heavy = losses_of_one_batch(prepared_dir, "train.box_loss_weight=100")
    assert box_default > 0
    # Model Garden's RetinaNet default (50) unless the config says otherwise.
    assert total_default == pytest.approx(cls_default + 50 * box_default, rel=1e-5)
    assert total_heavy == pytest.approx(cls_heavy + 100 * box_heavy, rel=1e-5)
