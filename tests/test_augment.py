"""Training augmentation as the model sees it: the train split through Model Garden's parser."""
import numpy as np
import pytest

from webdet.training.config import apply_overrides, load_config
from webdet.training.model import build_task

BATCHES = 6


def parsed_batches(prepared_dir, *settings, images=None, batches=BATCHES):
    """image_info (original, scaled, scale, offset) and positive-anchor counts of a few train batches; the
    images themselves too when a list is given."""
    config = apply_overrides(load_config("tiny"), ["train.augment.hflip=false", "train.augment.scale_min=1.0",
                                                   "train.augment.scale_max=1.0", *settings])
    task = build_task(config, str(prepared_dir), 3)
    dataset = task.build_inputs(task.task_config.train_data)
    infos, positives = [], []
    for batch, labels in dataset.take(batches):
        if images is not None:
            images.extend(batch.numpy())
        infos.append(labels["image_info"].numpy())
        per_level = [np.sum(t.numpy() > 0, axis=(1, 2, 3)) for t in labels["cls_targets"].values()]
        positives.append(np.sum(per_level, axis=0))
    return np.concatenate(infos), np.concatenate(positives)


def test_random_crop_crops_and_keeps_the_boxes_that_stay_in_view(prepared_dir):
    plain_infos, plain_positives = parsed_batches(prepared_dir, "train.augment.random_crop=false")
    infos, positives = parsed_batches(prepared_dir, "train.augment.random_crop=true")
    # The synthetic photos are at least 200 x 280 pixels: anything smaller is a crop.
    def crops(info):
        return (info[:, 0, 0] < 200) | (info[:, 0, 1] < 280)
    assert not crops(plain_infos).any()
    cropped = crops(infos)
    assert cropped.mean() > 0.3
    # A crop keeps a box when half of it stays inside, so crops hold objects to learn from about as often
    # as whole photos do (some synthetic photos have none).
    assert (positives[cropped] > 0).mean() > (plain_positives > 0).mean() - 0.25


@pytest.mark.parametrize("policy", ["autoaugment", "randaugment"])
def test_augmentation_policy_changes_the_photos_and_keeps_their_objects(prepared_dir, policy):
    every, plain, augmented = [], [], []
    # Without augmentation each photo always parses to the same pixels: 40 batches of 8, over three epochs
    # of the fixture's train split, hold every train photo's only version, and another pass finds nothing
    # new (the control).
    parsed_batches(prepared_dir, images=every, batches=40)
    _, plain_positives = parsed_batches(prepared_dir, images=plain)
    _, positives = parsed_batches(prepared_dir, f"train.augment.policy={policy}", images=augmented)
    seen = {image.tobytes() for image in every}

    def changed(images):
        return np.mean([image.tobytes() not in seen for image in images])
    assert changed(plain) == 0
    assert changed(augmented) > 0.5
    assert (positives > 0).mean() > (plain_positives > 0).mean() - 0.25


def test_mosaic_stitches_four_photos_into_one_and_keeps_their_objects(prepared_dir):
    plain_infos, plain_positives = parsed_batches(prepared_dir)
    infos, positives = parsed_batches(prepared_dir, "train.augment.mosaic=1.0")
    size = load_config("tiny")["model"]["input_size"]
    # The parser sees each photo at its own size (the synthetic ones are at least 200 x 280) and each
    # mosaic as one collage at the model's input size.
    assert not (plain_infos[:, 0] == size).all(axis=1).any()
    assert (infos[:, 0] == size).all()
    # Boxes follow their photos into the collage: it holds objects to learn from as often as a photo does.
    assert (positives > 0).mean() > (plain_positives > 0).mean() - 0.25
