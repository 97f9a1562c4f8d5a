"""The train/test split: by image, seeded, stratified so every class lands on both sides when it can."""
import pytest

from webdet.data_prep.split import default_shards, split_images


def dataset(n_common=40, n_rare=3, n_negative=10, n_pairs=0) -> dict[str, set]:
    images = {f"common{k}": {"common"} for k in range(n_common)}
    images |= {f"rare{k}": {"rare"} for k in range(n_rare)}
    images |= {f"neg{k}": set() for k in range(n_negative)}
    images |= {f"pair{k}": {"common", "paired"} for k in range(n_pairs)}
    return images


def classes_on(side, images) -> set:
    return set().union(*(images[k] for k in side))


def test_every_image_lands_on_exactly_one_side():
    images = dataset()
    train, test = split_images(images, 0.2, seed=1)
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(images)


def test_same_seed_same_split_other_seed_other_split():
    images = dataset()
    assert split_images(images, 0.2, seed=1) == split_images(dict(reversed(list(images.items()))), 0.2, seed=1)
    assert split_images(images, 0.2, seed=1) != split_images(images, 0.2, seed=2)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_test_share_follows_the_fraction(fraction):
    images = dataset(n_common=200, n_rare=20, n_negative=30)
    _, test = split_images(images, fraction, seed=0)
    assert abs(len(test) / len(images) - fraction) < 0.02


def test_a_rare_class_and_the_negatives_reach_both_sides():
    images = dataset(n_common=40, n_rare=2, n_negative=10)
    for seed in range(10):
        train, test = split_images(images, 0.2, seed=seed)
        assert {"common", "rare"} <= classes_on(train, images) and {"common", "rare"} <= classes_on(test, images)
        assert any(not images[k] for k in train) and any(not images[k] for k in test)


def test_a_class_only_seen_alongside_another_still_reaches_both_sides():
    images = dataset(n_common=30, n_rare=0, n_negative=0, n_pairs=2)
    for seed in range(10):
        train, test = split_images(images, 0.2, seed=seed)
        assert "paired" in classes_on(train, images) and "paired" in classes_on(test, images)


def test_a_class_with_one_image_stays_in_train():
    images = dataset(n_common=20, n_rare=1, n_negative=0)
    train, _ = split_images(images, 0.2, seed=0)
    assert "rare0" in train


def test_fraction_zero_puts_everything_in_train():
    images = dataset()
    train, test = split_images(images, 0.0, seed=0)
    assert test == [] and len(train) == len(images)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_fraction_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        split_images(dataset(), fraction, seed=0)


@pytest.mark.parametrize("images, shards", [(0, 1), (1, 1), (500, 1), (501, 2), (2600, 6)])
def test_about_five_hundred_images_per_shard(images, shards):
    assert default_shards(images) == shards


def test_a_class_never_the_rarest_on_its_images_is_moved_to_reach_both_sides():
    # Each "zebra" image also holds a one-off class, so grouping by rarest class alone would keep both in train.
    images = dataset(n_common=20, n_rare=0, n_negative=0) | {"z1": {"zebra", "tag1"}, "z2": {"zebra", "tag2"}}
    for seed in range(5):
        train, test = split_images(images, 0.2, seed=seed)
        assert "zebra" in classes_on(train, images) and "zebra" in classes_on(test, images)
