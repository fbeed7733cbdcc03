"""The built-in shapes dataset: deterministic, balanced, and colour-blind to the class."""

import hashlib
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from swincli.datasets.shapes import TRAIN_LENGTH, VAL_LENGTH, ShapesDataset, make_datasets


def pixels(ds: ShapesDataset, i: int) -> np.ndarray:
    return np.asarray(ds[i][0])


def digest(ds: ShapesDataset, i: int) -> str:
    return hashlib.sha256(pixels(ds, i).tobytes()).hexdigest()


def test_same_index_same_pixels_across_instances():
    a, b = ShapesDataset("train", seed=3), ShapesDataset("train", seed=3)
    for i in (0, 1, 7, 123, TRAIN_LENGTH - 1):
        assert np.array_equal(pixels(a, i), pixels(b, i))
    assert np.array_equal(pixels(a, -1), pixels(a, TRAIN_LENGTH - 1))


def test_same_pixels_in_another_process():
    # Python's hash() is salted per process; a fresh interpreter with another salt must agree.
    ds = ShapesDataset("val", size=32)
    code = (
        "from swincli.datasets.shapes import ShapesDataset; import hashlib, numpy as np; "
        "ds = ShapesDataset('val', size=32); "
        "print(' '.join(hashlib.sha256(np.asarray(ds[i][0]).tobytes()).hexdigest() for i in (0, 5, 999)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [digest(ds, i) for i in (0, 5, 999)]


def test_splits_and_seeds_differ():
    train, val = make_datasets(size=32)
    assert all(not np.array_equal(pixels(train, i), pixels(val, i)) for i in range(20))
    assert not np.array_equal(pixels(train, 0), pixels(ShapesDataset("train", size=32, seed=1), 0))
    train_digests = {digest(train, i) for i in range(300)}
    assert not train_digests & {digest(val, i) for i in range(300)}


def test_image_size_mode_and_labels():
    for size in (48, 64):
        ds = ShapesDataset("train", size=size, length=25)
        for i in range(len(ds)):
            image, label = ds[i]
            assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (size, size)
            assert label == ds.targets[i] and 0 <= label < len(ds.classes)
    with pytest.raises(IndexError):
        ds[25]
    with pytest.raises(ValueError):
        ShapesDataset("test")


def test_classes_lengths_and_balance():
    train, val = make_datasets()
    assert (len(train), len(val)) == (TRAIN_LENGTH, VAL_LENGTH)
    assert 8 <= len(train.classes) <= 10 and len(set(train.classes)) == len(train.classes)
    assert train.class_to_idx == {c: i for i, c in enumerate(train.classes)}
    for ds in (train, val):
        counts = Counter(ds.targets)
        assert set(counts) == set(range(len(ds.classes)))
        assert max(counts.values()) - min(counts.values()) <= 1
    assert len(ShapesDataset("val", length=17)) == 17


def test_transform_is_applied():
    from torchvision import transforms

    ds = ShapesDataset("val", size=48, length=4, transform=transforms.ToTensor())
    x, label = ds[2]
    assert isinstance(x, torch.Tensor) and x.shape == (3, 48, 48) and x.dtype == torch.float32
    assert label == ds.targets[2]
    assert torch.equal(x, transforms.ToTensor()(ShapesDataset("val", size=48, length=4)[2][0]))


def f_statistics(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One-way ANOVA F per feature column: ~1 when the class says nothing about the feature."""
    classes = np.unique(labels)
    n = len(labels)
    means = np.stack([features[labels == c].mean(0) for c in classes])
    between = sum((labels == c).sum() * (m - features.mean(0)) ** 2 for c, m in zip(classes, means))
    within = sum(((features[labels == c] - m) ** 2).sum(0) for c, m in zip(classes, means))
    return (between / (len(classes) - 1)) / (within / (n - len(classes)))


def test_colour_carries_no_class_information():
    ds = ShapesDataset("train", size=32, length=1600)  # 160 or more per class
    images = np.stack([pixels(ds, i) for i in range(len(ds))]).reshape(len(ds), -1, 3).astype(np.float64)
    labels = np.array(ds.targets)
    # Mean colour, colour spread and brightest/darkest luma: nothing a colour histogram would see.
    luma = images @ np.array([0.299, 0.587, 0.114])
    stats = np.concatenate([images.mean(1), images.std(1), np.percentile(luma, [5, 95], axis=1).T], 1)
    f = f_statistics(stats, labels)
    assert f.max() < 4.0, f  # the 99.9% quantile of F(9, 1590) is about 3.1
    # The check has power: a modest class-tied tint (8 units of red per class step) is flagged.
    leaky = stats.copy()
    leaky[:, 0] += 8.0 * labels
    assert f_statistics(leaky, labels)[0] > 20
