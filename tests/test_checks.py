"""memomentum.base.checks and memomentum.base.cores: the small rules every layer shares."""

from __future__ import annotations

import os

import numpy as np
import pytest

from memomentum.base.checks import check_seed, first_few
from memomentum.base.cores import available_cores, core_ids, cores_up_to
from memomentum.base.errors import InputError


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1, np.int64(7), np.uint32(2**32 - 1)])
def test_a_seed_is_a_whole_number_below_two_to_the_32(seed):
    assert check_seed(seed) == int(seed) and type(check_seed(seed)) is int


@pytest.mark.parametrize(
    "seed, shown",
    [(-1, "-1"), (2**32, "4294967296"), (1.0, "1.0"), (True, "True"), ("1", "'1'"), (np.float64(1.5), "1.5")],
)
def test_anything_else_is_refused_in_one_sentence_naming_the_option(seed, shown):
    with pytest.raises(InputError) as e:
        check_seed(seed, "--noise-seed", allowed="a whole number", why=" (or leave it out)")
    assert str(e.value) == f"--noise-seed must be a whole number in 0..4294967295 (or leave it out), got {shown}"


def test_first_few_names_how_many_more_there_are():
    assert first_few(["a", "b"], 3) == "a, b"
    assert first_few(["a", "b", "c"], 3) == "a, b, c"
    assert first_few(["a", "b", "c", "d", "e"], 3) == "a, b, c and 2 more"
    assert first_few(["a", "b", "c"], 3, total=2003) == "a, b, c and 2,000 more"  # of a total counted elsewhere


def test_the_cores_counted_are_the_ones_this_process_may_run_on():
    if hasattr(os, "sched_getaffinity"):
        assert core_ids() == sorted(os.sched_getaffinity(0))
        assert available_cores() == len(os.sched_getaffinity(0))
    else:
        assert core_ids() == [] and available_cores() == (os.cpu_count() or 1)


def test_cores_up_to_counts_the_available_cores_within_the_limit(monkeypatch):
    from memomentum.base import cores

    monkeypatch.setattr(cores, "available_cores", lambda: 24)
    assert cores_up_to(16) == 16 and cores_up_to(32) == 24
    monkeypatch.setattr(cores, "available_cores", lambda: 1)
    assert cores_up_to(16) == 1


def test_counted_names_one_in_the_singular_and_groups_thousands():
    from memomentum.base.checks import counted

    assert counted(1, "label") == "1 label"
    assert counted(0, "example") == "0 examples"
    assert counted(2000, "label") == "2,000 labels"
    assert counted(2000, "epoch", grouped=False) == "2000 epochs"  # the progress lines' count
    assert counted(1, "outer loop", grouped=False) == "1 outer loop"
