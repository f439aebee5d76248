"""memomentum.method.rules: Me-Momentum's decision rules, each on small arrays and numbers,
checked against the method's statement (docs/method.md, "The procedure"): the confident set,
early stopping with a growing margin, whether and how long the inner rounds go on, which
model is kept as the best, and when the run ends. Ties and boundaries are tested on purpose:
they are where a changed comparison would show."""

import numpy as np
import pytest
import torch

from memomentum.method import rules

# The method's early stopping: the margin grows by 0.1 accuracy points an epoch without a big
# enough gain, and the first phase stops once it passes 2 (RunConfig's margin_step, margin_limit).
MARGIN_STEP, MARGIN_LIMIT = 0.1, 2.0


# -- the confident set ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_an_example_is_confident_exactly_when_the_prediction_equals_its_given_label(kind):
    as_array = np.asarray if kind == "numpy" else torch.as_tensor
    predicted = as_array([0, 2, 1, 1, 3, 0])
    labels = as_array([0, 1, 1, 2, 3, 3])  # the noisy labels, as given
    mask = rules.agrees_with_label(predicted, labels)
    assert [bool(m) for m in mask] == [True, False, True, False, True, False]
    assert mask.dtype == (np.bool_ if kind == "numpy" else torch.bool)
    assert [int(i) for i in as_array(np.arange(6))[mask]] == [0, 2, 4]  # the rows a round trains on


def test_the_confident_set_can_be_empty_or_everything():
    labels = np.array([3, 1, 4, 1, 5])
    nothing = rules.agrees_with_label((labels + 1) % 6, labels)
    assert nothing.shape == labels.shape and not nothing.any()
    assert np.arange(5)[nothing].size == 0  # no example to train on: an empty set, not an error
    assert rules.agrees_with_label(labels.copy(), labels).all()
    assert rules.agrees_with_label(np.array([], dtype=int), np.array([], dtype=int)).size == 0


# -- early stopping in the first phase --------------------------------------------------------
def test_the_first_phase_improves_only_by_more_than_the_margin():
    assert rules.first_phase_improved(50.3, 50.0, 0.2)
    assert not rules.first_phase_improved(50.2, 50.0, 0.2)  # a tie with best + margin is no gain
    assert not rules.first_phase_improved(50.1, 50.0, 0.2)  # a gain smaller than the margin
    assert not rules.first_phase_improved(50.0, 50.0, 0.0)  # the same accuracy again
    assert not rules.first_phase_improved(0.0, 0.0, 0.0)  # b starts at 0: 0 % is no first best


def test_the_first_phase_ends_once_the_margin_passes_its_limit_or_at_its_epoch_bound():
    assert not rules.first_phase_ends(2.0, MARGIN_LIMIT, epoch=5, epochs=100)  # at the limit: goes on
    assert rules.first_phase_ends(2.05, MARGIN_LIMIT, epoch=5, epochs=100)
    assert not rules.first_phase_ends(0.0, MARGIN_LIMIT, epoch=99, epochs=100)
    assert rules.first_phase_ends(0.0, MARGIN_LIMIT, epoch=100, epochs=100)  # the bound's own epoch is the last


def first_phase_length(vals, epochs=100):
    """The first phase as the method states it: b and m start at 0; val > b + m sets b = val
    and m = 0, anything else adds 0.1 to m; the phase stops once m > 2 or at its epoch bound.
    The epoch it stops after (1-based), or None if ``vals`` run out first."""
    best, margin = 0.0, 0.0
    for epoch, val in enumerate(vals, start=1):
        if rules.first_phase_improved(val, best, margin):
            best, margin = val, 0.0
        else:
            margin += MARGIN_STEP
        if rules.first_phase_ends(margin, MARGIN_LIMIT, epoch, epochs):
            return epoch
    return None


def test_early_stopping_waits_twenty_epochs_without_a_big_enough_gain():
    flat = [50.0] * 40
    assert first_phase_length(flat) == 1 + 20  # the best at epoch 1, then 20 epochs without gain
    assert first_phase_length([0.0] * 40) == 20  # never above 0: twenty epochs of margin
    assert first_phase_length(flat[:20]) is None  # 19 epochs without gain are not enough


def test_a_gain_smaller_than_the_grown_margin_does_not_reset_it_but_a_larger_one_does():
    rising_a_little = [50.0] * 10 + [50.5] + [50.5] * 30  # at epoch 11 the margin is 0.9 > 0.5
    assert first_phase_length(rising_a_little) == 21
    rising_enough = [50.0] * 10 + [51.0] + [51.0] * 30  # 51 > 50 + 0.9: b = 51, m = 0
    assert first_phase_length(rising_enough) == 11 + 20


def test_a_first_phase_that_keeps_improving_stops_at_its_epoch_bound():
    assert first_phase_length(list(np.arange(1.0, 40.0)), epochs=7) == 7


# -- the inner rounds -------------------------------------------------------------------------
def test_only_me_momentum_with_room_for_a_round_goes_on_to_rounds():
    assert rules.goes_on_to_rounds("memomentum", 2)  # max_inner_loop - 1 = 1 round
    assert not rules.goes_on_to_rounds("memomentum", 1)  # max_inner_loop - 1 = 0 rounds
    assert not rules.goes_on_to_rounds("ce", 20)  # the cross-entropy baseline: the first phase only


def test_another_round_only_while_the_best_validation_accuracy_rises():
    assert rules.another_round(61.0, 60.0, inner=1, max_inner_loop=20)
    assert not rules.another_round(60.0, 60.0, inner=1, max_inner_loop=20)  # a tie stops the rounds
    assert not rules.another_round(59.0, 60.0, inner=1, max_inner_loop=20)


def rounds_run(round_bests, max_inner_loop):
    """How many inner rounds run when round ``i`` ends with best validation accuracy
    ``round_bests[i - 1]`` (the previous round's best starts at 0)."""
    last = 0.0
    for inner, best in enumerate(round_bests, start=1):
        if not rules.another_round(best, last, inner, max_inner_loop):
            return inner
        last = best
    raise AssertionError("the rounds did not stop")


@pytest.mark.parametrize("max_inner_loop", [2, 3, 20])
def test_rising_rounds_stop_after_max_inner_loop_minus_one(max_inner_loop):
    always_rising = [50.0 + r for r in range(1, 40)]
    assert rounds_run(always_rising, max_inner_loop) == max_inner_loop - 1


def test_the_rounds_stop_at_the_first_round_that_does_not_raise_the_best():
    assert rounds_run([60.0, 62.0, 62.0, 70.0], max_inner_loop=20) == 3  # round 3 ties round 2
    assert rounds_run([60.0, 58.0, 70.0], max_inner_loop=20) == 2


# -- the best model ---------------------------------------------------------------------------
def test_a_model_is_the_new_best_only_when_strictly_better():
    assert rules.is_new_best(60.01, 60.0)
    assert not rules.is_new_best(60.0, 60.0)
    assert not rules.is_new_best(0.0, 0.0)  # the bests start at 0: a model at 0 % is never kept


def test_of_equal_models_the_earliest_is_kept():
    vals = [50.0, 60.0, 55.0, 60.0, 60.0, 42.0]
    best, kept = 0.0, None
    for epoch, val in enumerate(vals):
        if rules.is_new_best(val, best):
            best, kept = val, epoch
    assert kept == 1 == int(np.argmax(vals))


# -- the end of the run -----------------------------------------------------------------------
def outer_loops_run(method, max_outer_loop):
    done = 0
    while True:
        done += 1
        if rules.run_is_done(method, done, max_outer_loop):
            return done


@pytest.mark.parametrize("max_outer_loop", [1, 3])
def test_me_momentum_runs_max_outer_loop_outer_loops_and_the_baseline_one(max_outer_loop):
    assert outer_loops_run("memomentum", max_outer_loop) == max_outer_loop
    assert outer_loops_run("ce", max_outer_loop) == 1
    assert not rules.run_is_done("memomentum", max_outer_loop - 1, max_outer_loop)
    assert rules.run_is_done("memomentum", max_outer_loop, max_outer_loop)
