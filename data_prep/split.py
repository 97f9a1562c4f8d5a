"""Seeded train/test split by image, stratified by class."""
import math
import random
from collections import defaultdict

NEGATIVE = "__negative__"


def split_images(image_classes: dict[str, set], test_fraction: float = 0.2, seed: int = 42):
    """Return (train_keys, test_keys).

    Images are grouped by their rarest class (negatives on their own) and each group is split on its
    own, so every class lands in both splits when it has at least two images; all boxes of an image
    stay on one side.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError("test_fraction must be in [0, 1)")
    counts = defaultdict(int)
    for classes in image_classes.values():
        for name in classes:
            counts[name] += 1
    groups = defaultdict(list)
    for key in sorted(image_classes):
        classes = image_classes[key]
        groups[min(classes, key=lambda c: (counts[c], c)) if classes else NEGATIVE].append(key)
    rng = random.Random(seed)
    train, test = set(), set()
    for group in sorted(groups):
        keys = groups[group]
        rng.shuffle(keys)
        n_test = round(len(keys) * test_fraction)
        if test_fraction > 0 and group != NEGATIVE and len(keys) >= 2:
            n_test = min(max(n_test, 1), len(keys) - 1)
        test.update(keys[:n_test])
        train.update(keys[n_test:])
    if test_fraction > 0:
        _cover_every_class(image_classes, counts, train, test)
    return sorted(train), sorted(test)


def _movable(key, name, image_classes, source: set) -> bool:
    """An image can leave `source` when every class on it stays represented there."""
    return all(sum(1 for k in source if c in image_classes[k]) >= 2 for c in image_classes[key] if c != name)


def _cover_every_class(image_classes, counts, train: set, test: set) -> None:
    """Move single images so a class with ≥2 images appears on both sides."""
    for name in sorted(counts):
        if counts[name] < 2:
            continue
        for source, target in ((train, test), (test, train)):
            if any(name in image_classes[k] for k in target):
                continue
            candidates = sorted(k for k in source if name in image_classes[k])
            if len(candidates) < 2:
                continue
            chosen = next((k for k in candidates if _movable(k, name, image_classes, source)), candidates[0])
            target.add(chosen)
            source.discard(chosen)


def default_shards(num_images: int) -> int:
    """About 500 images per shard: several readers in parallel on big sets, one file on small ones."""
    return max(1, math.ceil(num_images / 500))
