"""memomentum.config.RunConfig: checked when it is made, frozen afterwards."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from memomentum.base.errors import InputError
from memomentum.config import RunConfig


def test_a_bad_value_is_refused_when_the_configuration_is_made():
    with pytest.raises(InputError, match=r"^epochs must be a whole number of at least 1, got 0$"):
        RunConfig(epochs=0)


def test_a_configuration_is_frozen_and_a_changed_copy_is_checked_again():
    cfg = RunConfig(epochs=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 4  # type: ignore[misc]
    assert dataclasses.replace(cfg, epochs=4).epochs == 4 and cfg.epochs == 3
    with pytest.raises(InputError, match=r"^unknown device 'tpu'; choose one of auto, cpu, cuda$"):
        dataclasses.replace(cfg, device="tpu")


def test_numpy_numbers_become_python_numbers_that_config_json_takes():
    cfg = RunConfig(seed=np.int64(3), noise_seed=np.uint32(5), lr=np.float32(0.5), epochs=np.int32(2))
    assert [type(v) for v in (cfg.seed, cfg.noise_seed, cfg.lr, cfg.epochs)] == [int, int, float, int]
    assert json.loads(json.dumps(cfg.to_dict()))["seed"] == 3


def test_the_noise_defaults_are_filled_in_and_kept_by_a_copy():
    cfg = RunConfig()
    assert (cfg.noise_type, cfg.noise_rate) == ("instance", 0.4)
    resolved = cfg.resolved("lenet")
    assert (resolved.noise_type, resolved.noise_rate, resolved.model, resolved.epochs) == ("instance", 0.4, "lenet", 60)
