"""The seeded train/validation split against the reference's fixtures and its recipe."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import fixture_file

from memomentum.base.errors import InputError
from memomentum.noise.split import train_val_split


def oracle_split(n, seed, fraction=0.9):
    """Reference ``dataset_split``: reseed the global generator, choose without replacement."""
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        train = np.random.choice(n, int(n * fraction), replace=False)
    finally:
        np.random.set_state(saved)
    return train, np.delete(np.arange(n), train)


def test_fashion_mnist_split_fixture():
    fixture = fixture_file("reference_noise_fashion_mnist_seed1.npz")
    train, val = train_val_split(60000, seed=1)
    np.testing.assert_array_equal(train, fixture["split_seed1_train_index"].astype(np.int64))
    assert train.shape == (54000,) and val.shape == (6000,)


def test_cifar_shaped_split_fixture():
    fixture = fixture_file("reference_instance_noise_cifar_shaped_seed3.npz")
    train, val = train_val_split(500, seed=3)
    np.testing.assert_array_equal(train, fixture["train_index"].astype(np.int64))
    assert len(val) == 50


@pytest.mark.parametrize(
    "n,seed,fraction", [(2, 0, 0.5), (10, 1, 0.9), (1000, 7, 0.8), (12345, 2**32 - 1, 0.9), (60000, 1, 0.9)]
)
def test_split_matches_reference_recipe(n, seed, fraction):
    train, val = train_val_split(n, seed=seed, train_fraction=fraction)
    ref_train, ref_val = oracle_split(n, seed, fraction)
    np.testing.assert_array_equal(train, ref_train)
    np.testing.assert_array_equal(val, ref_val)
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert len(train) == int(n * fraction)
    assert np.all(np.diff(val) > 0)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))


def test_split_leaves_global_random_state_alone():
    before = np.random.get_state()
    train_val_split(100, seed=5)
    after = np.random.get_state()
    assert before[0] == after[0] and all(np.array_equal(a, b) for a, b in zip(before[1:], after[1:]))


@pytest.mark.parametrize(
    "args,kwargs,message",
    [
        ((1,), dict(seed=1), "num_examples must be an integer of at least 2"),
        ((0,), dict(seed=1), "num_examples must be an integer of at least 2"),
        ((10.0,), dict(seed=1), "num_examples must be an integer of at least 2"),
        ((True,), dict(seed=1), "num_examples must be an integer of at least 2"),
        ((10,), dict(seed=-1), "seed must be an integer in 0..4294967295"),
        ((10,), dict(seed="1"), "seed must be an integer in 0..4294967295"),
        ((10,), dict(seed=1, train_fraction=0.0), "train_fraction must be a number strictly between 0 and 1"),
        ((10,), dict(seed=1, train_fraction=1.0), "train_fraction must be a number strictly between 0 and 1"),
        ((10,), dict(seed=1, train_fraction="most"), "train_fraction must be a number strictly between 0 and 1"),
        ((10,), dict(seed=1, train_fraction=0.05), "both parts must be non-empty"),
        ((3,), dict(seed=1, train_fraction=0.3), "both parts must be non-empty"),
    ],
)
def test_split_validation(args, kwargs, message):
    with pytest.raises(InputError) as err:
        train_val_split(*args, **kwargs)
    assert message in str(err.value)
