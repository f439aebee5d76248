"""Me-Momentum's decision rules (docs/method.md, "The procedure"), as pure functions.

The benchmark procedure (:mod:`.procedure`, one epoch at a time) and the estimator's
scikit-learn rounds (:mod:`.sklearn_rounds`, one fit per phase) both decide with
these, so that the two cannot drift apart. They work on numpy arrays and torch tensors alike.
"""

from __future__ import annotations


def agrees_with_label(predicted, labels):
    """The confident set's rule: an example is confident when the network's prediction
    equals its given (noisy) label. A boolean mask over the examples."""
    return predicted == labels


def first_phase_improved(val: float, best: float, margin: float) -> bool:
    """Early stopping's test in the first phase: validation accuracy beats the best so far
    by more than the growing margin."""
    return val > best + margin


def first_phase_ends(margin: float, margin_limit: float, epoch: int, epochs: int) -> bool:
    """The first phase stops once the margin has grown past its limit, or at its epoch bound."""
    return margin > margin_limit or epoch >= epochs


def goes_on_to_rounds(method: str, max_inner_loop: int) -> bool:
    """After the first phase: the cross-entropy baseline (and a run without inner rounds) stops."""
    return method != "ce" and max_inner_loop > 1


def another_round(round_best: float, last_round_best: float, inner: int, max_inner_loop: int) -> bool:
    """After inner round ``inner`` (1-based): one more round while the outer loop's best
    validation accuracy still rises, at most ``max_inner_loop - 1`` rounds."""
    return round_best > last_round_best and inner < max_inner_loop - 1


def is_new_best(val: float, best: float) -> bool:
    """A model is kept as the best (of an outer loop, or of the run) only when strictly better."""
    return val > best


def run_is_done(method: str, outer_loops_done: int, max_outer_loop: int) -> bool:
    """After an outer loop: the baseline has one; Me-Momentum stops at its bound."""
    return method == "ce" or outer_loops_done >= max_outer_loop
